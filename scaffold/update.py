"""``scaffold update``: a three-way git merge of a new pristine render into the project.

base   = the newest pristine-render commit in the project's history (the template
         version and answers the project was last rendered with);
ours   = HEAD, the project as the user has it;
theirs = a new pristine render (the template now, the answers now), committed
         with *base* as its parent, without touching the work tree.

``git merge-tree`` computes the result first, so ``--dry-run`` and the summary
come from the same merge ``git merge`` then makes. git does rename detection
(an answer-driven package rename carries the user's edits to the new path),
conflict markers, unmerged index entries for IDE merge tools, and
``git merge --abort``. scaffold adds two policies: a file the user deleted
stays deleted even if the template changed it ("kept deleted"), unless
``--restore-deleted`` asks for it back; and the answers file, scaffold's record
of the last render, is always the new render's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scaffold import git, sources
from scaffold.config import tomllib
from scaffold.errors import GitError, ScaffoldError
from scaffold.new import install_command
from scaffold.project import (
    Project,
    answer_changes,
    last_render,
    merged_answers,
    open_project,
    render_commit,
    require_clean,
    require_no_operation,
    template_spec,
    uncommitted,
)
from scaffold.sources import ANSWERS_FILE

RECORD = "scaffold-update.json"
# Rename detection beyond git's defaults: a package rename moves every file,
# and files the user added to the renamed package follow it.
MERGE_CONFIG = (
    "-c",
    "merge.renames=true",
    "-c",
    "merge.directoryRenames=true",
    "-c",
    "merge.renameLimit=100000",
    "-c",
    "diff.renameLimit=100000",
)
ORDER = ("conflict", "kept deleted", "restored", "merged", "renamed", "updated", "added", "removed")


@dataclass(frozen=True)
class Change:
    """What the update does to one path."""

    status: str
    path: str
    detail: str = ""


@dataclass
class Plan:
    """An update, computed but not applied.

    Attributes:
        project: The project.
        base: The last pristine render (the merge base).
        new: The new pristine render (a commit object only, so far).
        result: The tree ``git merge`` will produce (conflicted files with markers).
        old_version / new_version: The template versions, as recorded.
        answers: Lines saying which answers change.
        changes: Per-path outcome; files left as they were are only counted.
        unchanged: How many template files the update leaves as they are.
        up_to_date: The new render is the last one: nothing to do.
        dependencies: How the rendered pyproject.toml's dependencies change
            (``"+ wandb>=0.17"``, ``"- tensorboard>=2.14"``); empty when they don't.
        install: The command that reinstalls the project with its new dependencies.
        uncommitted: Uncommitted paths (a dry run previews from the last commit).
    """

    project: Project
    base: str
    new: str
    result: str
    source: str
    old_version: str
    new_version: str
    answers: list[str]
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    up_to_date: bool = False
    dependencies: list[str] = field(default_factory=list)
    install: str = ""
    uncommitted: str = ""

    def paths(self, *statuses: str) -> list[str]:
        """The paths whose status is one of ``statuses``."""
        return [c.path for c in self.changes if c.status in statuses]


@dataclass(frozen=True)
class Outcome:
    """What applying a plan did."""

    commit: str | None
    conflicts: list[str]


def plan(
    path: Path,
    *,
    template: str | None = None,
    vcs_ref: str | None = None,
    data: list[tuple[str, Any]] = (),
    trust: bool = False,
    restore_deleted: bool = False,
    dry_run: bool = False,
) -> Plan:
    """Render the new pristine tree, commit it (objects only) and compute the merge.

    Touches no file of the project: safe for ``--dry-run``, which also works
    on a tree with uncommitted changes (the preview starts from HEAD).

    Raises:
        ScaffoldError: Not a project, uncommitted work, no pristine render, a bad
            answer or template; the project is exactly as it was.
    """
    project = open_project(path)
    old = project.require_answers()
    _clear_stale_record(project)
    if dry_run:
        require_no_operation(project)
    else:
        require_clean(project)
    base = last_render(project)
    spec = template_spec(project, template, vcs_ref)
    with sources.fetch(spec, trust=trust) as fetched:
        answers = merged_answers(fetched, old, list(data))
        new, rendered = render_commit(
            project,
            fetched,
            answers,
            parents=[base],
            subject=f"Render {project.name} with {fetched.source} {fetched.version}",
        )
        recorded = _answers_at(project.root, new)
        changed_answers = answer_changes(fetched, old, recorded, rendered)
    result, stages = _merge_tree(project.root, "HEAD", new)
    found = Plan(
        project=project,
        base=base,
        new=new,
        result=result,
        source=spec.source,
        old_version=str(old.get("_commit", "?")),
        new_version=fetched.version,
        answers=changed_answers,
        up_to_date=git.tree_of(project.root, new) == git.tree_of(project.root, base),
        dependencies=dependency_changes(project.root, base, new),
        install=install_command(rendered),
        uncommitted=uncommitted(project) if dry_run else "",
    )
    if not found.up_to_date:
        _classify(found, stages, restore_deleted=restore_deleted)
    return found


def _answers_at(repo: Path, commit: str) -> dict[str, Any]:
    """The answers file of ``commit`` (a pristine render)."""
    return yaml.safe_load(git.run(repo, "show", f"{commit}:{ANSWERS_FILE}")) or {}


def dependency_changes(repo: Path, old: str, new: str) -> list[str]:
    """How the dependencies in pyproject.toml differ from render ``old`` to render ``new``.

    Returns:
        ``"+ wandb>=0.17"`` for each added requirement, ``"- ..."`` for each removed
        one (``"+ [deepspeed] ..."`` for an extra's); empty if none changed, or
        the renders have no pyproject.toml (a team template may not).
    """
    before, after = _requirements(repo, old), _requirements(repo, new)
    added = [f"+ {item}" for item in sorted(after - before)]
    return added + [f"- {item}" for item in sorted(before - after)]


def _requirements(repo: Path, commit: str) -> set[str]:
    shown = git.call(repo, "show", f"{commit}:pyproject.toml")
    if shown.returncode != 0:
        return set()
    try:
        project = tomllib.loads(shown.stdout).get("project", {})
    except tomllib.TOMLDecodeError:
        return set()
    found = set(project.get("dependencies", []))
    for extra, items in project.get("optional-dependencies", {}).items():
        found |= {f"[{extra}] {item}" for item in items}
    return found


def _merge_tree(repo: Path, ours: str, theirs: str) -> tuple[str, dict[str, set[int]]]:
    """The merged tree and, for each conflicted path, the index stages it has."""
    result = git.call(
        repo, *MERGE_CONFIG, "merge-tree", "--write-tree", "--no-messages", "-z", ours, theirs
    )
    if result.returncode not in (0, 1):
        raise GitError(f"`git merge-tree` failed in {repo}: {result.stderr.strip()}")
    tree, *entries = result.stdout.split("\0")
    stages: dict[str, set[int]] = {}
    for entry in entries:
        if "\t" not in entry:
            continue
        meta, name = entry.split("\t", 1)
        stages.setdefault(name, set()).add(int(meta.split()[2]))
    return tree, stages


def _classify(found: Plan, stages: dict[str, set[int]], *, restore_deleted: bool) -> None:
    repo = found.project.root
    base, ours = git.ls_tree(repo, found.base), git.ls_tree(repo, "HEAD")
    theirs, result = git.ls_tree(repo, found.new), git.ls_tree(repo, found.result)
    changes: dict[str, Change] = {}
    if ours.get(ANSWERS_FILE) != theirs.get(ANSWERS_FILE):
        # scaffold's record of the last render: always the new render's.
        changes[ANSWERS_FILE] = Change("updated", ANSWERS_FILE)
    for name, present in stages.items():
        if name == ANSWERS_FILE:
            continue
        if 2 not in present:  # the user deleted it, the template changed it
            status = "restored" if restore_deleted else "kept deleted"
            changes[name] = Change(status, name, "you deleted it; the template changed it")
        else:
            changes[name] = Change("conflict", name)
    for code, old, new in git.diff_names(repo, "HEAD", found.result):
        if new in changes:
            continue
        if code == "A":
            changes[new] = Change("added", new)
        elif code == "D":
            changes[new] = Change("removed", new)
        elif code == "R":
            edited = ours.get(old) != base.get(old)
            note = f"from {old}" + (", with your edits" if edited else "")
            changes[new] = Change("renamed", new, note)
        elif ours.get(new) == base.get(new):
            changes[new] = Change("updated", new)
        else:
            changes[new] = Change("merged", new, "your edits kept")
    if restore_deleted:
        user_deleted = [
            old for code, old, _ in git.diff_names(repo, found.base, "HEAD") if code == "D"
        ]
        for name in user_deleted:
            if name in theirs and name not in result and name not in changes:
                changes[name] = Change("restored", name, "you deleted it; restored")
    found.changes = sorted(changes.values(), key=lambda c: (ORDER.index(c.status), c.path))
    found.unchanged = sum(
        1 for name in theirs if name not in changes and result.get(name) == ours.get(name)
    )


def apply(found: Plan) -> Outcome:
    """Merge the new pristine render into the user's branch.

    Records the pre-update state for ``--abort`` first. On a clean merge the
    merge commit is made; on conflicts the repository is left in git's ordinary
    merge-conflict state.
    """
    repo = found.project.root
    head = git.rev(repo, "HEAD")
    branch = git.call(repo, "symbolic-ref", "--quiet", "HEAD").stdout.strip() or None
    record = git.git_path(repo, RECORD)
    record.write_text(json.dumps({"head": head, "branch": branch, "render": found.new}))
    message = _message(found)
    merged = git.call(
        repo, *MERGE_CONFIG, "merge", "--no-ff", "--no-commit", "--no-verify", "-m", message,
        found.new,
    )  # fmt: skip
    if git.rev(repo, "MERGE_HEAD") is None:  # git refused before merging anything
        record.unlink()
        raise GitError(f"`git merge` failed in {repo}: {(merged.stderr or merged.stdout).strip()}")
    if ANSWERS_FILE in found.paths("updated"):
        git.run(repo, "checkout", found.new, "--", ANSWERS_FILE)
    for name in found.paths("kept deleted"):
        git.run(repo, "rm", "--quiet", "--force", "--", name)
    for name in found.paths("restored"):
        git.run(repo, "checkout", found.new, "--", name)
    conflicts = _unmerged(repo)
    # git listed every path it stopped on, kept-deleted files too: list only real conflicts.
    git.git_path(repo, "MERGE_MSG").write_text(_merge_message(message, conflicts))
    if conflicts:
        return Outcome(None, conflicts)
    git.run(repo, *git.identity(repo), "commit", "--quiet", "--no-verify", "--no-edit")
    record.unlink()
    return Outcome(git.run(repo, "rev-parse", "--short", "HEAD").strip(), [])


def _unmerged(repo: Path) -> list[str]:
    out = git.run(repo, "ls-files", "--unmerged", "-z")
    return sorted({entry.split("\t", 1)[1] for entry in out.split("\0") if "\t" in entry})


def _message(found: Plan) -> str:
    subject = f"Update {found.project.name} to {found.source} {found.new_version}"
    body = "\n".join(f"- {line}" for line in found.answers)
    return f"{subject}\n\n{body}" if body else subject


def _merge_message(message: str, conflicts: list[str]) -> str:
    """The merge commit's message, with git's comment block for the conflicts left to resolve."""
    if not conflicts:
        return message + "\n"
    listed = "".join(f"#\t{name}\n" for name in conflicts)
    return f"{message}\n\n# Conflicts:\n{listed}"


def abort(path: Path) -> str:
    """Restore the exact state before the update: HEAD, branch, index and work tree.

    Returns:
        The commit HEAD is back at.

    Raises:
        ScaffoldError: No update to abort, or one already committed.
    """
    project = open_project(path)
    repo = project.root
    record = git.git_path(repo, RECORD)
    if not record.is_file():
        raise ScaffoldError(f"no scaffold update is in progress in {repo}; nothing to abort")
    state = json.loads(record.read_text())
    branch = git.call(repo, "symbolic-ref", "--quiet", "HEAD").stdout.strip() or None
    if git.rev(repo, "MERGE_HEAD") != state["render"] or branch != state["branch"]:
        record.unlink()
        raise ScaffoldError(
            f"the update is no longer in progress (it was committed, or you moved on); "
            f"to undo it: `git reset --hard {state['head'][:12]}`"
        )
    git.run(repo, "merge", "--abort")
    git.run(repo, "reset", "--quiet", "--hard", state["head"])
    record.unlink()
    return state["head"]


def _clear_stale_record(project: Project) -> None:
    """Forget a finished update (its conflicts resolved and committed by the user)."""
    record = git.git_path(project.root, RECORD)
    if record.is_file() and git.rev(project.root, "MERGE_HEAD") is None:
        record.unlink()
    elif record.is_file():
        raise ScaffoldError(
            "a scaffold update is in progress: resolve the conflicts, `git add` the files "
            "and `git commit`, or undo it with `scaffold update --abort`"
        )


def summary(found: Plan) -> str:
    """The per-file summary: one line per file the update touches, then the counts."""
    if found.old_version == found.new_version:
        head = f"{found.source} {found.new_version}"
    else:
        head = f"{found.source}: {found.old_version} -> {found.new_version}"
    lines = [head]
    lines += [f"  answer {line}" for line in found.answers]
    lines += [f"  dependency {line}" for line in found.dependencies]
    if found.up_to_date:
        return "\n".join([*lines, "Already up to date: the template renders what it rendered."])
    width = max((len(c.status) for c in found.changes), default=0)
    for change in found.changes:
        detail = f"  ({change.detail})" if change.detail else ""
        lines.append(f"  {change.status:<{width}}  {change.path}{detail}")
    lines.append(f"  {found.unchanged} template files unchanged")
    return "\n".join(lines)


def diff(found: Plan) -> str:
    """The diff the update makes to the project (conflicted files show their markers)."""
    if found.up_to_date:
        return ""
    repo = found.project.root
    skip = [f":(exclude,literal){name}" for name in [ANSWERS_FILE, *found.paths("kept deleted")]]
    answers = git.run(repo, "diff", "HEAD", found.new, "--", ANSWERS_FILE)
    return answers + git.run(repo, *MERGE_CONFIG, "diff", "-M", "HEAD", found.result, "--", *skip)


def conflict_help(outcome: Outcome) -> str:
    """What to do next when the merge stopped on conflicts."""
    files = "\n".join(f"  {name}" for name in outcome.conflicts)
    return (
        f"Conflicts in {len(outcome.conflicts)} file(s), marked <<<<<<< / >>>>>>>:\n{files}\n"
        "Resolve them (in your editor, or `git mergetool`), then `git add` them and "
        "`git commit`.\nOr undo the whole update: scaffold update --abort"
    )


def reinstall_help(found: Plan) -> str:
    """What to run after an update that changed the project's dependencies, or ``""``."""
    if not found.dependencies:
        return ""
    return (
        f"The project's dependencies changed: reinstall it, in {found.project.root}:\n"
        f"  {found.install}"
    )


def dry_run_note(found: Plan) -> str:
    """The note for a dry run on a tree with uncommitted changes, or ``""``."""
    if not found.uncommitted:
        return ""
    return (
        f"Note: uncommitted changes ({found.uncommitted}) are not part of this preview, "
        "which starts from your last commit; commit or stash them before `scaffold update`."
    )
