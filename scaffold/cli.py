"""The command line: parse, call the library, print the result."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scaffold import __version__
from scaffold.errors import AnswerError

if TYPE_CHECKING:
    from scaffold.template import Question


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
    "scaffold new my-exp --defaults -d callbacks=early_stopping,model_checkpoint",
)


class NewCommand(click.Command):
    """``scaffold new``, whose help lists every question of the bundled template."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Append the questions, their choices and defaults (read from copier.yml)."""
        from scaffold.template import bundled_template, questions

        rows = []
        for question in questions(bundled_template()).values():
            if not question.computed:
                rows.append((question.name, _described(question)))
        with formatter.section("Questions (answer with -d KEY=VALUE)"):
            formatter.write_dl(rows)
        with formatter.section("Examples"):
            for example in EXAMPLES:
                formatter.write(f"{'':>{formatter.current_indent}}{example}\n")


def _described(question: Question) -> str:
    """The help text, choices and default of a question, as ``-d`` takes them."""
    choices = ", ".join(map(str, question.values)) or question.type
    if question.multiselect:
        # What -d takes for several: comma-separated, or nothing for none.
        default = ",".join(map(str, question.default or []))
        several = question.values[:2]
        return (
            f"{question.help}. [any of {choices}; default: {default}; several: "
            f"-d {question.name}={','.join(map(str, several))}; none: -d {question.name}=]"
        )
    return f"{question.help}. [{choices}; default: {_shown_default(question.default)}]"


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


def _data_option(help_text: str) -> Callable:
    return click.option(
        "-d",
        "--data",
        "data",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_data_pair,
        help=help_text,
    )


def _template_options(help_text: str) -> Callable:
    def decorate(command: Callable) -> Callable:
        command = click.option(
            "--trust",
            is_flag=True,
            help="Allow the template's tasks, migrations and Jinja extensions (its code runs).",
        )(command)
        command = click.option(
            "--vcs-ref", metavar="REF", help="A git template's tag, branch or commit."
        )(command)
        return click.option("--template", "template", metavar="SRC", help=help_text)(command)

    return decorate


def _path_argument() -> Callable:
    return click.argument(
        "path", type=click.Path(path_type=Path, file_okay=False), default=".", required=False
    )


@main.command(cls=NewCommand, short_help="Create a new project in DEST.")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--defaults", is_flag=True, help="Don't ask: take the default of every question not given."
)
@_data_option("Answer a question up front (repeatable).")
@click.option(
    "--answers-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help=(
        "Answers from a YAML file (e.g. another project's .copier-answers.yml); -d answers "
        "win. Its project_name and package_name are not used."
    ),
)
@click.option("--no-git", is_flag=True, help="Don't git init and commit the new project.")
@_template_options(
    "The template: a folder, a git URL or path (with @REF), or a name from templates.toml "
    "(default: the bundled one)."
)
def new(
    dest: Path,
    defaults: bool,
    data: list,
    answers_file: Path | None,
    no_git: bool,
    template: str | None,
    vcs_ref: str | None,
    trust: bool,
) -> None:
    """Create a new project in DEST: a new folder, an empty one, or a fresh `git init`."""
    from scaffold import sources
    from scaffold.new import create, describe, load_answers_file, names_from_elsewhere, next_steps
    from scaffold.template import parse_data

    spec = sources.parse(template, vcs_ref=vcs_ref)
    pairs = load_answers_file(answers_file) if answers_file else []
    pairs, dropped = names_from_elsewhere(pairs, data)
    if dropped:
        shown = ", ".join(f"{key}={value!r}" for key, value in dropped.items())
        click.echo(
            f"Note: not using the names in {answers_file} ({shown}): they are another "
            "project's. This one's come from its folder; to choose them, pass "
            + " ".join(f"-d {key}=..." for key in dropped),
            err=True,
        )
    with sources.fetch(spec, trust=trust) as fetched:
        answers = parse_data(fetched.path, pairs + data)
        if not defaults and not sys.stdin.isatty():
            raise AnswerError(
                "no terminal to ask the questions in; pass --defaults (and -d KEY=VALUE "
                "for the answers to change) to answer without one"
            )
        created = create(
            dest, data=answers, defaults=defaults, use_git=not no_git, template=fetched
        )
    click.echo(describe(created))
    click.echo("\nNext:")
    for command in next_steps(created):
        click.echo(f"  {command}")


@main.command(short_help="Merge template changes and changed answers into a project.")
@_path_argument()
@_data_option("Change an answer (repeatable); the others are kept, new questions default.")
@_template_options("Update from another template source than the one the project records.")
@click.option("--dry-run", is_flag=True, help="Print the summary and the diff; change nothing.")
@click.option("--abort", "abort_", is_flag=True, help="Undo an update stopped on conflicts.")
@click.option(
    "--restore-deleted",
    is_flag=True,
    help="Bring back template files you deleted (by default they stay deleted).",
)
def update(
    path: Path,
    data: list,
    template: str | None,
    vcs_ref: str | None,
    trust: bool,
    dry_run: bool,
    abort_: bool,
    restore_deleted: bool,
) -> None:
    """Bring template changes (and changed answers) into the project at PATH, keeping your edits.

    A git merge of a new pristine render: conflicts are ordinary git conflicts
    (exit code 1); `scaffold update --abort` restores the state before the update.
    """
    from scaffold import update as updating

    if abort_:
        head = updating.abort(path)
        click.echo(f"Update aborted; back at {head[:12]}, exactly as before.")
        return
    found = updating.plan(
        path,
        template=template,
        vcs_ref=vcs_ref,
        data=data,
        trust=trust,
        restore_deleted=restore_deleted,
        dry_run=dry_run,
    )
    click.echo(updating.summary(found))
    if note := updating.dry_run_note(found):
        click.echo(note, err=True)
    if found.up_to_date:
        return
    if dry_run:
        click.echo("\n" + updating.diff(found), nl=False)
        click.echo("\nDry run: nothing was changed.")
        return
    outcome = updating.apply(found)
    reinstall = updating.reinstall_help(found)
    if outcome.conflicts:
        click.echo("\n" + updating.conflict_help(outcome))
        if reinstall:
            click.echo("Once it is committed: " + reinstall[0].lower() + reinstall[1:])
        sys.exit(1)
    click.echo(f"\nUpdated: merge commit {outcome.commit}.")
    if reinstall:
        click.echo(reinstall)


@main.command(short_help="Record a pristine render for a project that has none.")
@_path_argument()
@_data_option("An answer (repeatable); without an answers file, give -d or --defaults.")
@click.option(
    "--defaults",
    is_flag=True,
    help="Without an answers file: take the default of every answer not given with -d.",
)
@_template_options("The template that made the project (default: the one it records).")
def adopt(
    path: Path, data: list, defaults: bool, template: str | None, vcs_ref: str | None, trust: bool
) -> None:
    """Give an existing project at PATH a pristine render to update from.

    For projects made with --no-git, whose history was squashed, or made without
    scaffold. No file changes except the answers file.
    """
    from scaffold.adopt import adopt as adopting

    adopted = adopting(
        path, template=template, vcs_ref=vcs_ref, data=data, trust=trust, defaults=defaults
    )
    for warning in adopted.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(
        f"Adopted {adopted.root} as a render of {adopted.source} {adopted.version} "
        f"(merge commit {adopted.commit}); `scaffold update` works from here."
    )


@main.command(short_help="Exit 1 when a newer template version exists (for CI).")
@_path_argument()
def check(path: Path) -> None:
    """Exit 1 if a newer version of the project's template exists (for CI)."""
    from scaffold.adopt import check as checking

    result = checking(path)
    click.echo(result.message)
    if result.outdated:
        sys.exit(1)


@main.command()
@_path_argument()
@click.option("--stat", is_flag=True, help="Only the changed files and line counts.")
def diff(path: Path, stat: bool) -> None:
    """Show how the project has drifted from its last pristine render."""
    from scaffold.adopt import drift

    click.echo(drift(path, stat=stat), nl=False)


@main.command(short_help="List the named templates and their versions.")
def templates() -> None:
    """List the templates you can name with --template, and their versions."""
    from scaffold.registry import listing

    for row in listing():
        click.echo(row)


@main.group()
def template() -> None:
    """Make and maintain team templates."""


@template.command("init", short_help="Start a team template from the bundled one.")
@click.argument("dest", type=click.Path(path_type=Path))
def template_init(dest: Path) -> None:
    """Start a team template in DEST from the bundled one (a git repository, ready to tag)."""
    from scaffold.template_init import init

    made = init(dest)
    click.echo(f"Created the template {made.path} (git commit {made.commit}). Next:")
    for step in made.next_steps:
        click.echo(f"  {step}")
