"""``scaffold new``: render the template into a new folder, then commit it.

Nothing reaches the destination until everything succeeded: copier asks its
questions and renders into a staging folder (:mod:`scaffold.destination`), the
answers file is finalised, git commits the pristine render, and only then is
the result moved into place. Any failure, Ctrl-C included, removes what this
call made and leaves everything else exactly as it was.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaffold import destination, git, paths, rules, sources
from scaffold.errors import AnswerError, ScaffoldError
from scaffold.render import read_answers, render
from scaffold.sources import Template

# The answers that name a project (never taken from another project's answers file).
NAMES = ("project_name", "package_name")


@dataclass(frozen=True)
class Created:
    """What ``scaffold new`` made."""

    path: Path
    answers: dict[str, Any]
    files: int
    commit: str | None


def load_answers_file(path: Path) -> list[tuple[str, Any]]:
    """Answers from a YAML file (a previous project's .copier-answers.yml works too)."""
    path = paths.normalise(path)
    data = read_answers(
        path, name=f"--answers-file {path}", fix="pass a YAML file of answers", error=AnswerError
    )
    return [(str(k), v) for k, v in data.items() if not str(k).startswith("_")]


def create(
    dest: Path,
    *,
    data: dict[str, Any],
    defaults: bool,
    use_git: bool = True,
    template: Template | None = None,
) -> Created:
    """Render a template (the bundled one unless given) into ``dest``.

    Args:
        dest: A folder that doesn't exist yet, an empty one, or one holding only
            a fresh ``git init`` (the render becomes its first commit).
        data: Answers given up front (already checked by ``template.parse_data``).
        defaults: Take every other answer's default instead of asking.
        use_git: Commit the pristine render, marked as such (see
            :func:`scaffold.git.render_message`) for ``scaffold update``; in a
            new repository unless the destination holds a fresh one.
        template: From :func:`scaffold.sources.fetch`; None for the bundled one.

    Raises:
        ScaffoldError: On bad input; nothing is written then.
    """
    where = destination.check(dest)
    if template is None:
        with sources.fetch(sources.parse(None)) as bundled:
            return create(dest, data=data, defaults=defaults, use_git=use_git, template=bundled)
    if use_git and shutil.which("git") is None:
        raise ScaffoldError("git is not installed; install it, or pass --no-git")
    with destination.staged(where) as stage:
        try:
            answers = render(template, stage.target, data=data, defaults=defaults)
        except AnswerError as error:
            raise _name_not_given(error, where.path.name, data) from None
        files = sum(1 for p in stage.target.rglob("*") if p.is_file())
        message = _first_message(answers, template) if use_git else None
        commit = stage.install(message)
    return Created(where.path, answers, files, commit)


def _name_not_given(error: AnswerError, folder: str, data: dict[str, Any]) -> AnswerError:
    """Say so when the refused name is one the user never typed (a default from the folder)."""
    if error.message.startswith("project_name=") and "project_name" not in data:
        return AnswerError(
            f"{error.message}; project_name defaults to the folder's name {folder!r}: pass "
            f"-d project_name={rules.project_name_for(folder)}, or choose another folder name"
        )
    if error.message.startswith("package_name=") and "package_name" not in data:
        return AnswerError(
            f"{error.message}; package_name is derived from project_name unless you pass "
            "-d package_name=NAME"
        )
    return error


def names_from_elsewhere(
    pairs: list[tuple[str, Any]], data: list[tuple[str, Any]]
) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """Split another project's names off the answers of an ``--answers-file``.

    A project's names are its own: reusing another project's package name would
    make two projects that can't be installed side by side. So the names in an
    answers file are not used; this project's come from ``-d``, or its folder.

    Returns:
        The answers to keep, and the names dropped that ``-d`` doesn't give anyway.
    """
    given = {key for key, _ in data}
    kept = [(key, value) for key, value in pairs if key not in NAMES]
    dropped = {key: value for key, value in pairs if key in NAMES and key not in given}
    return kept, dropped


def _first_message(answers: dict[str, Any], template: Template) -> str:
    name = answers.get("project_name", "the project")
    if template.source == sources.BUNDLED_SOURCE:
        subject = f"Generate {name} with scaffold {template.version}"
    else:
        subject = f"Generate {name} from {template.source} {template.version}"
    return git.render_message(subject, template.source, template.version)


def next_steps(created: Created, cwd: Path | None = None) -> list[str]:
    """The three commands to run next."""
    cwd = cwd or Path.cwd()
    try:
        shown = created.path.relative_to(cwd)
    except ValueError:
        shown = created.path
    steps = [f"cd {shown}", install_command(created.answers)]
    if (created.path / "scripts" / "train.sh").is_file():
        steps.append("scripts/train.sh")  # torchrun, one process per device
    elif package := created.answers.get("package_name"):  # a team template may not ask it
        steps.append(f"python -m {package} fit")
    return steps


def install_command(answers: dict[str, Any]) -> str:
    """The command that installs the project (from its folder) for development."""
    # DeepSpeed is an optional dependency of the projects that train with it.
    extras = "dev,deepspeed" if answers.get("strategy") == "deepspeed" else "dev"
    return f'pip install -e ".[{extras}]"'


def describe(created: Created) -> str:
    """One line saying what was made."""
    a = created.answers
    git_part = f", git commit {created.commit}" if created.commit else ", no git"
    if not {"project_name", "task", "hardware", "strategy", "precision", "logger"} <= set(a):
        name = a.get("project_name", created.path.name)
        return f"Created {name} in {created.path} ({created.files} files{git_part})"
    return (
        f"Created {a['project_name']} in {created.path}: {a['task'].replace('_', ' ')} on "
        f"{a['hardware']} ({a['strategy']}, {a['precision']}), {_loggers(a['logger'])} "
        f"({created.files} files{git_part})"
    )


def _loggers(chosen: Any) -> str:
    """``logger csv``, ``loggers tensorboard, wandb`` or ``no logger``."""
    names = chosen if isinstance(chosen, list) else [chosen]
    if not names:
        return "no logger"
    return f"logger{'s' if len(names) > 1 else ''} {', '.join(map(str, names))}"
