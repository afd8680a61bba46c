"""``scaffold adopt``, ``scaffold check`` and ``scaffold diff``: a project and its template.

``adopt`` gives a project whose history has no pristine render (made with
``--no-git``, squashed, or made without scaffold) a base for future updates: it
renders the template for the project's answers, commits that as a pristine
root commit, and merges it into HEAD with ``-s ours``, so no file changes but
the answers file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaffold import git, paths, sources
from scaffold.errors import ScaffoldError
from scaffold.project import (
    Project,
    last_render,
    merged_answers,
    open_project,
    render_commit,
    require_clean,
    template_spec,
)
from scaffold.render import read_answers
from scaffold.sources import ANSWERS_FILE


@dataclass
class Adopted:
    """What ``adopt`` recorded."""

    root: Path
    source: str
    version: str
    commit: str
    warnings: list[str] = field(default_factory=list)


def adopt(
    path: Path,
    *,
    template: str | None = None,
    vcs_ref: str | None = None,
    data: list[tuple[str, Any]] = (),
    trust: bool = False,
    defaults: bool = False,
) -> Adopted:
    """Record a pristine render for the project at ``path`` without changing its files.

    The template is ``--template``, else the one the answers file records, else
    the bundled one; a git template is rendered at the recorded version when
    no ``--vcs-ref`` is given.

    Args:
        path: The project.
        template: ``--template``.
        vcs_ref: ``--vcs-ref``.
        data: ``-d`` answers.
        trust: ``--trust``.
        defaults: Without an answers file, ``--defaults``: every answer not in
            ``data`` takes its default. Without both, a project with no answers
            file is refused (scaffold can't tell how it would have been made).

    Raises:
        ScaffoldError: Not a clean git project, no answers file and no answer
            given, or it already has a pristine render.
    """
    project = open_project(path)
    if project.answers is None and not data and not defaults:
        raise ScaffoldError(
            f"{project.root} has no {ANSWERS_FILE}, so scaffold can't tell how it would have "
            "made this project; say it with -d (e.g. `scaffold adopt -d task=autoencoder "
            "-d logger=csv`), or pass --defaults to record a render of every default answer"
        )
    require_clean(project)
    if git.find_render(project.root):
        raise ScaffoldError(
            f"{project.root} already has a pristine render in its history; use `scaffold update`"
        )
    answers = project.answers or {}
    recorded = answers.get("_commit")
    spec = template_spec(project, template, vcs_ref)
    warnings = []
    if spec.kind == "git" and vcs_ref is None and recorded and template is None:
        spec = sources.parse(spec.source, vcs_ref=str(recorded))
    with sources.fetch(spec, trust=trust) as fetched:
        if recorded and str(recorded) != fetched.version and spec.kind != "git":
            warnings.append(
                f"the project records {fetched.source} {recorded}, which is not available; "
                f"rendered {fetched.version} instead. The next update brings only changes "
                f"made after {fetched.version}: compare with `scaffold diff` first"
            )
        commit, _ = render_commit(
            project,
            fetched,
            merged_answers(fetched, answers, list(data)),
            parents=[],
            subject=f"Pristine render of {project.name} (scaffold adopt)",
        )
    _merge_ours(project.root, commit, f"Adopt {fetched.source} {fetched.version} as the template")
    short = git.run(project.root, "rev-parse", "--short", "HEAD").strip()
    return Adopted(project.root, fetched.source, fetched.version, short, warnings)


def _merge_ours(repo: Path, commit: str, message: str) -> None:
    """Merge ``commit`` keeping every file as it is, except the answers file it records."""
    git.run(
        repo,
        *git.identity(repo),
        "merge",
        "--quiet",
        "-s",
        "ours",
        "--no-ff",
        "--no-commit",
        "--allow-unrelated-histories",
        "--no-verify",
        "-m",
        message,
        commit,
    )
    (repo / ANSWERS_FILE).write_text(git.run(repo, "show", f"{commit}:{ANSWERS_FILE}"))
    git.run(repo, "add", "--", ANSWERS_FILE)
    git.run(repo, *git.identity(repo), "commit", "--quiet", "--no-verify", "--no-edit")


@dataclass(frozen=True)
class Checked:
    """Whether a newer template version exists."""

    outdated: bool
    message: str


def check(path: Path) -> Checked:
    """Compare the template version the project records with the newest one.

    Needs only the answers file (not git history), so it runs in CI on any checkout.
    """
    path = paths.normalise(path)
    root = git.toplevel(path) if path.is_dir() else None
    answers_path = (root or path) / ANSWERS_FILE
    if not answers_path.is_file():
        raise ScaffoldError(f"{answers_path.parent} has no {ANSWERS_FILE}; is it a project?")
    answers = read_answers(answers_path)
    spec = template_spec(Project(answers_path.parent, answers), None, None)
    recorded = str(answers.get("_commit", ""))
    latest = sources.latest_version(spec)
    if not _newer(latest, recorded):
        return Checked(False, f"Up to date: {spec.source} {recorded}.")
    return Checked(
        True,
        f"A newer template exists: {spec.source} {recorded} -> {latest}; "
        "run `scaffold update` (or `scaffold update --dry-run` to see the changes).",
    )


def _newer(latest: str, recorded: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(latest) > Version(recorded)
    except InvalidVersion:
        return latest != recorded  # commits and content hashes: any difference is new


def drift(path: Path, *, stat: bool = False) -> str:
    """``git diff`` from the last pristine render to the work tree: the user's own changes."""
    project = open_project(path)
    base = last_render(project)
    options = ["--stat"] if stat else []
    return git.run(project.root, "diff", "-M", *options, base, "--")
