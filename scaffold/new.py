"""``scaffold new``: render the template into a new folder, then commit it.

Nothing reaches the destination until everything succeeded: copier asks its
questions and renders into a staging folder beside the destination, the
answers file is finalised, git commits the pristine render, and only then is
the result moved into place. Any failure, Ctrl-C included, removes the staging
folder and leaves the destination exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaffold import git, sources
from scaffold.errors import AnswerError, DestinationError, ScaffoldError
from scaffold.render import read_answers, render
from scaffold.sources import Template


@dataclass(frozen=True)
class Created:
    """What ``scaffold new`` made."""

    path: Path
    answers: dict[str, Any]
    files: int
    commit: str | None


def check_destination(dest: Path) -> list[Path]:
    """Refuse a destination that can't take a new project.

    Returns:
        The missing parent folders that would have to be created, outermost first.

    Raises:
        DestinationError: ``dest`` is a file, a non-empty folder, inside a file,
            or its nearest existing parent is not writable.
    """
    if dest.exists() and not dest.is_dir():
        raise DestinationError(f"{dest} is a file; choose a folder that doesn't exist yet")
    if dest.is_dir() and any(dest.iterdir()):
        raise DestinationError(
            f"{dest} already exists and is not empty; scaffold never writes into "
            "existing files: choose a new folder name"
        )
    missing = []
    parent = dest.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    if not parent.is_dir():
        raise DestinationError(f"{parent} is a file, so {dest} can't be created inside it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DestinationError(
            f"{parent} is not writable, so {dest} can't be created; choose a folder "
            "you can write to"
        )
    return list(reversed(missing))


def load_answers_file(path: Path) -> list[tuple[str, Any]]:
    """Answers from a YAML file (a previous project's .copier-answers.yml works too)."""
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
        dest: A folder that doesn't exist yet, or an empty one.
        data: Answers given up front (already checked by ``template.parse_data``).
        defaults: Take every other answer's default instead of asking.
        use_git: ``git init`` and commit the pristine render, marked as such
            (see :func:`scaffold.git.render_message`) for ``scaffold update``.
        template: From :func:`scaffold.sources.fetch`; None for the bundled one.

    Raises:
        ScaffoldError: On bad input; nothing is written then.
    """
    dest = dest.expanduser().absolute()
    missing_parents = check_destination(dest)
    if template is None:
        with sources.fetch(sources.parse(None)) as bundled:
            return create(dest, data=data, defaults=defaults, use_git=use_git, template=bundled)
    if use_git and shutil.which("git") is None:
        raise ScaffoldError("git is not installed; install it, or pass --no-git")
    try:
        for folder in missing_parents:
            folder.mkdir()
        staging = Path(tempfile.mkdtemp(prefix=".scaffold-", dir=dest.parent))
    except OSError as error:
        _remove(missing_parents)
        raise DestinationError(
            f"can't create {dest}: {error.strerror}; choose a folder you can write to"
        ) from None
    try:
        # Render into <staging>/<dest name>, so copier's folder-name default is right.
        target = staging / dest.name
        answers = render(template, target, data=data, defaults=defaults)
        files = sum(1 for p in target.rglob("*") if p.is_file())
        commit = None
        if use_git:
            commit = git.init_and_commit(target, _first_message(answers, template))
        _move_into_place(target, dest)
    except BaseException:
        _remove(missing_parents)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Created(dest, answers, files, commit)


def _remove(created_folders: list[Path]) -> None:
    for folder in reversed(created_folders):
        shutil.rmtree(folder, ignore_errors=True)


def _first_message(answers: dict[str, Any], template: Template) -> str:
    name = answers.get("project_name", "the project")
    if template.source == sources.BUNDLED_SOURCE:
        subject = f"Generate {name} with scaffold {template.version}"
    else:
        subject = f"Generate {name} from {template.source} {template.version}"
    return git.render_message(subject, template.source, template.version)


def _move_into_place(target: Path, dest: Path) -> None:
    if not dest.exists():
        target.rename(dest)
        return
    # An empty folder the user made: keep it (and its permissions), fill it.
    for child in target.iterdir():
        child.rename(dest / child.name)


def next_steps(created: Created, cwd: Path | None = None) -> list[str]:
    """The three commands to run next."""
    cwd = cwd or Path.cwd()
    try:
        shown = created.path.relative_to(cwd)
    except ValueError:
        shown = created.path
    # DeepSpeed is an optional dependency of the projects that train with it.
    extras = "dev,deepspeed" if created.answers.get("strategy") == "deepspeed" else "dev"
    steps = [f"cd {shown}", f'pip install -e ".[{extras}]"']
    if (created.path / "scripts" / "train.sh").is_file():
        steps.append("scripts/train.sh")  # torchrun, one process per device
    elif package := created.answers.get("package_name"):  # a team template may not ask it
        steps.append(f"python -m {package} fit")
    return steps


def describe(created: Created) -> str:
    """One line saying what was made."""
    a = created.answers
    git_part = f", git commit {created.commit}" if created.commit else ", no git"
    if not {"project_name", "task", "hardware", "strategy", "precision", "logger"} <= set(a):
        name = a.get("project_name", created.path.name)
        return f"Created {name} in {created.path} ({created.files} files{git_part})"
    return (
        f"Created {a['project_name']} in {created.path}: {a['task'].replace('_', ' ')} on "
        f"{a['hardware']} ({a['strategy']}, {a['precision']}), logger {a['logger']} "
        f"({created.files} files{git_part})"
    )
