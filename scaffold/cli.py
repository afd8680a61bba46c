"""The command line: parse, call the library, print the result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from scaffold import __version__
from scaffold.errors import AnswerError


def _data_pair(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list:
    pairs = []
    for item in values:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. -d task=autoencoder)")
        pairs.append((key.strip(), value))
    return pairs


EXAMPLES = (
    "scaffold new my-exp",
    "scaffold new my-exp --defaults",
    "scaffold new my-exp --defaults -d task=language_model -d precision=bf16-mixed",
)


class NewCommand(click.Command):
    """``scaffold new``, whose help lists every question of the bundled template."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Append the questions, their choices and defaults (read from copier.yml)."""
        from scaffold.template import bundled_template, questions

        rows = []
        for question in questions(bundled_template()).values():
            if question.computed:
                continue
            choices = ", ".join(map(str, question.values)) or question.type
            rows.append(
                (
                    question.name,
                    f"{question.help}. [{choices}; default: {_shown_default(question.default)}]",
                )
            )
        with formatter.section("Questions (answer with -d KEY=VALUE)"):
            formatter.write_dl(rows)
        with formatter.section("Examples"):
            for example in EXAMPLES:
                formatter.write(f"{'':>{formatter.current_indent}}{example}\n")


def _shown_default(default: Any) -> str:
    text = str(default)
    if "{{" not in text:
        return text
    return {
        "{{ _folder_name }}": "the folder's name",
        "{{ package_name_for(project_name) }}": "derived from project_name",
        "{{ default_strategy() }}": "derived from hardware, devices, num_nodes",
    }.get(text, "derived")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="scaffold")
def main() -> None:
    """Start a deep-learning experiment: a standalone PyTorch project you own."""


@main.command(cls=NewCommand)
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--defaults", is_flag=True, help="Don't ask: take the default of every question not given."
)
@click.option(
    "-d",
    "--data",
    "data",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_data_pair,
    help="Answer a question up front (repeatable).",
)
@click.option(
    "--answers-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Answers from a YAML file (e.g. another project's .copier-answers.yml); -d answers win.",
)
@click.option("--no-git", is_flag=True, help="Don't git init and commit the new project.")
def new(dest: Path, defaults: bool, data: list, answers_file: Path | None, no_git: bool) -> None:
    """Create a new project in DEST (a folder that doesn't exist yet, or an empty one)."""
    from scaffold.new import create, describe, load_answers_file, next_steps
    from scaffold.template import bundled_template, parse_data

    pairs = load_answers_file(answers_file) if answers_file else []
    answers = parse_data(bundled_template(), pairs + data)
    if not defaults and not sys.stdin.isatty():
        raise AnswerError(
            "no terminal to ask the questions in; pass --defaults (and -d KEY=VALUE "
            "for the answers to change) to answer without one"
        )
    created = create(dest, data=answers, defaults=defaults, use_git=not no_git)
    click.echo(describe(created))
    click.echo("\nNext:")
    for command in next_steps(created):
        click.echo(f"  {command}")
