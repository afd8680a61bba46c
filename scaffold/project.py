"""An existing project: its repository, its answers, and its pristine renders.

A *pristine render* is a commit whose tree is exactly the template's output for
the project's answers, marked with a ``Scaffold-Render:`` trailer. ``scaffold
new`` makes the first one; every update adds one whose parent is the previous
one and merges it into the user's branch. So the base of the next update is
always in the project's own history: no old template needs to be on disk, in a
wheel or in git, and a fresh clone can update as well as the original.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaffold import git, paths, sources
from scaffold.errors import AnswerError, ScaffoldError
from scaffold.render import read_answers, render
from scaffold.sources import ANSWERS_FILE, Template
from scaffold.template import normalized, parse_data, questions, with_defaults

ADOPT_HINT = "run `scaffold adopt` to record one (see docs/updating.md)"
# How to bring a project made by hand under scaffold (docs/updating.md).
ADOPT_BY_HAND = (
    "to update a project you made by hand from scaffold's template, adopt it first, "
    "saying how scaffold would have made it: `scaffold adopt -d task=... -d logger=...` "
    "(see docs/updating.md)"
)


@dataclass(frozen=True)
class Project:
    """A project in a git repository, checked out at the repository's top.

    Attributes:
        root: The repository's top folder.
        answers: The answers file's entries (None when it has none).
    """

    root: Path
    answers: dict[str, Any] | None

    @property
    def name(self) -> str:
        """The project's name, for messages."""
        return str((self.answers or {}).get("project_name") or self.root.name)

    def require_answers(self) -> dict[str, Any]:
        """The answers, or a ScaffoldError that says how to adopt the project."""
        if self.answers is None:
            raise ScaffoldError(
                f"{self.root} is not a scaffold project: it has no {ANSWERS_FILE}; " + ADOPT_BY_HAND
            )
        return self.answers


def open_project(path: Path) -> Project:
    """The project at ``path`` (or the repository holding it).

    Raises:
        ScaffoldError: ``path`` is missing, not in git, or git has no commit yet.
    """
    path = paths.normalise(path)
    if not path.is_dir():
        raise ScaffoldError(f"{path} is not a folder; pass the project's folder")
    root = git.toplevel(path)
    if root is None and not (path / ANSWERS_FILE).is_file():
        raise ScaffoldError(
            f"{path} is not a scaffold project: it has no {ANSWERS_FILE} and is not in git; "
            "to update a project you made by hand from scaffold's template, make it a git "
            "repository (`git init && git add -A && git commit -m 'Import'`), then adopt it, "
            "saying how scaffold would have made it: `scaffold adopt -d task=... -d logger=...` "
            "(see docs/updating.md)"
        )
    if root is None:
        raise ScaffoldError(
            f"{path} is not in a git repository; scaffold updates by merging with git. "
            "Make it one: `git init && git add -A && git commit -m 'Import'`, "
            "then `scaffold adopt`"
        )
    if git.rev(root, "HEAD") is None:
        raise ScaffoldError(f"{root} has no commit yet: `git add -A && git commit` first")
    answers_path = root / ANSWERS_FILE
    answers = read_answers(answers_path) if answers_path.is_file() else None
    return Project(root, answers)


def require_no_operation(project: Project) -> None:
    """Refuse a repository in the middle of a merge, rebase, cherry-pick or revert."""
    if operation := git.operation_in_progress(project.root):
        raise ScaffoldError(
            f"a {operation} is in progress in {project.root}; finish or abort it first"
        )


def uncommitted(project: Project) -> str:
    """The uncommitted paths, for a message (``"README.md, x.py and 3 more"``), or ``""``."""
    dirty = git.status(project.root)
    more = f" and {len(dirty) - 5} more" if len(dirty) > 5 else ""
    return ", ".join(dirty[:5]) + more


def require_clean(project: Project) -> None:
    """Refuse a tree with uncommitted work, or an unfinished merge or rebase.

    Raises:
        ScaffoldError: Naming the files, and saying "commit or stash first".
    """
    require_no_operation(project)
    if dirty := uncommitted(project):
        raise ScaffoldError(
            f"{project.root} has uncommitted changes ({dirty}); scaffold never "
            "risks uncommitted work: commit or stash them first (`git stash -u`)"
        )


def last_render(project: Project) -> str:
    """The newest pristine-render commit reachable from HEAD.

    Raises:
        ScaffoldError: None is (history squashed, a shallow clone, ``--no-git``).
    """
    found = git.find_render(project.root)
    if found:
        return found
    shallow = git.run(project.root, "rev-parse", "--is-shallow-repository").strip() == "true"
    if shallow:
        raise ScaffoldError(
            f"{project.root} is a shallow clone, so its pristine render isn't here; "
            "run `git fetch --unshallow` first"
        )
    raise ScaffoldError(
        f"no pristine render of the template in {project.root}'s history (made with "
        f"--no-git, or history squashed or rewritten); {ADOPT_HINT}"
    )


def template_spec(project: Project, template: str | None, vcs_ref: str | None) -> sources.Spec:
    """The template to render: ``--template`` if given, else the one the answers record.

    A project without an answers file defaults to the bundled template. A
    relative ``_src_path`` (written by copier itself) is relative to the project,
    never to the folder scaffold runs in.
    """
    recorded = (project.answers or {}).get("_src_path")
    if template is None and recorded is None and project.answers is not None:
        raise ScaffoldError(
            f"{ANSWERS_FILE} doesn't say which template made the project; pass --template"
        )
    text = template
    if text is None and recorded is not None:
        text = str(recorded)
        local = not sources.is_url(text) and not text.startswith("scaffold:")
        if local and not Path(paths.expand_user(text)).is_absolute():
            text = str((project.root / text).resolve())
    return sources.parse(text, vcs_ref=vcs_ref)


def merged_answers(
    template: Template, old: dict[str, Any], pairs: list[tuple[str, Any]]
) -> dict[str, Any]:
    """The old answers the template still asks, updated by ``-d`` pairs.

    Questions the template added take their defaults when rendered; kept
    answers to questions the new answers don't ask are dropped.

    Raises:
        AnswerError: A ``-d`` answer that is unknown or invalid.
    """
    known = questions(template.path)
    kept = {
        key: value
        for key, value in normalized(template.path, old).items()
        if key in known and not known[key].computed and not key.startswith("_")
    }
    given = parse_data(template.path, pairs)
    merged = {**kept, **given}
    # A kept answer whose question the new answers no longer ask (deepspeed_stage
    # after -d strategy=ddp) goes, as copier would not ask it.
    return {key: value for key, value in merged.items() if key in given or known[key].asked(merged)}


def answer_changes(
    template: Template, old: dict[str, Any], new: dict[str, Any], used: dict[str, Any]
) -> list[str]:
    """``"logger: 'tensorboard' -> 'wandb'"`` for every answer whose value changes.

    Args:
        template: The new template.
        old: The answers file before the update.
        new: The answers file the new render writes.
        used: Every answer the new render used, those copier doesn't record
            (questions not asked, like ``deepspeed_stage`` for ``ddp``) included.
    """
    known = questions(template.path)
    old = normalized(template.path, old)  # `logger: csv` from before it took several
    before = with_defaults(template.path, old)  # what the old render used, unasked ones too
    lines = []
    for key in sorted(k for k in {*old, *new} if not str(k).startswith("_")):
        if key in known and known[key].computed:
            continue
        if key in old and key in new:
            if old[key] != new[key]:
                lines.append(f"{key}: {old[key]!r} -> {new[key]!r}")
        elif key in old:
            if key in used and used[key] == old[key]:
                continue  # not asked now (one answer is possible), and it is the same one
            # The value used now, if any, is a default nothing may need: don't show it.
            lines.append(f"{key}: {old[key]!r} (no longer asked)")
        else:
            question = known.get(key)
            newly = question is not None and not question.asked(before)
            lines.append(f"{key}: {new[key]!r} ({'asked now' if newly else 'new question'})")
    return lines


def render_commit(
    project: Project,
    template: Template,
    data: dict[str, Any],
    *,
    parents: list[str],
    subject: str,
) -> tuple[str, dict[str, Any]]:
    """Render ``template`` outside the project and commit the result as a pristine render.

    Nothing in the project's work tree, index or refs changes: the commit is an
    object until something refers to it.

    Returns:
        The commit's hash and the answers it was rendered with.
    """
    tmp = Path(tempfile.mkdtemp(prefix="scaffold-render-"))
    try:
        target = tmp / project.root.name
        try:
            answers = render(template, target, data=data, defaults=True)
        except AnswerError as error:
            raise AnswerError(f"{error.message} (with the project's answers and -d)") from None
        message = git.render_message(subject, template.source, template.version)
        commit = git.commit_folder(project.root, target, parents=parents, message=message)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return commit, answers
