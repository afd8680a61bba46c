"""The git operations scaffold needs, with errors a user can act on.

Besides ``init_and_commit`` for ``scaffold new``, this module builds commits
from a folder *outside* the repository (a pristine render) without touching the
repository's work tree or index: ``git add`` runs with a throw-away index file
and ``--work-tree`` pointed at the folder, and ``commit-tree`` writes the
commit object. Nothing here ever passes ``--ignored`` to git, so ignored run
outputs (runs/, data/, checkpoints) are never walked, read or hashed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from scaffold.errors import GitError

# Used only when the user has no git identity configured: the first commit is
# the template's pristine output, so naming scaffold as its author is honest.
FALLBACK_IDENTITY = ("scaffold", "scaffold@localhost")

# Commits whose tree is exactly a template's output carry this trailer.
RENDER_TRAILER = "Scaffold-Render"


def call(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``git <args>`` in ``repo`` and return the result, whatever its exit status."""
    if shutil.which("git") is None:
        raise GitError("git is not installed; install it, or pass --no-git")
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env} if env else None,
    )


def run(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``git <args>`` in ``repo``; return stdout, or raise GitError."""
    result = call(repo, *args, env=env)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise GitError(f"`git {' '.join(args)}` failed in {repo}: {detail}")
    return result.stdout


def identity(repo: Path) -> list[str]:
    """``-c`` options naming scaffold as the author where the user has no identity."""
    options = []
    for key, fallback in zip(("user.name", "user.email"), FALLBACK_IDENTITY, strict=True):
        if not call(repo, "config", key).stdout.strip():
            options += ["-c", f"{key}={fallback}"]
    return options


def render_message(subject: str, source: str, version: str) -> str:
    """A commit message marking its commit as a pristine render of ``source`` at ``version``."""
    return f"{subject}\n\n{RENDER_TRAILER}: {source} {version}\n"


def init_and_commit(repo: Path, message: str) -> str:
    """Make ``repo`` a git repository holding one commit of every file; return its hash."""
    run(repo, "-c", "init.defaultBranch=main", "init", "--quiet")
    run(repo, "add", "--all")
    run(repo, *identity(repo), "commit", "--quiet", "--no-verify", "-m", message)
    return run(repo, "rev-parse", "--short", "HEAD").strip()


def toplevel(path: Path) -> Path | None:
    """The top of the git work tree holding ``path``, or None outside any repository."""
    result = call(path, "rev-parse", "--show-toplevel")
    return Path(result.stdout.strip()).resolve() if result.returncode == 0 else None


def rev(repo: Path, name: str) -> str | None:
    """The full hash ``name`` resolves to, or None."""
    result = call(repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    return result.stdout.strip() if result.returncode == 0 else None


def git_path(repo: Path, name: str) -> Path:
    """The path of ``name`` inside the repository's git dir (worktree-aware)."""
    return (repo / run(repo, "rev-parse", "--git-path", name).strip()).resolve()


def status(repo: Path) -> list[str]:
    """The paths with tracked changes, and the untracked files git doesn't ignore.

    Ignored folders are not walked (no ``--ignored``): a 5 GB data/ costs nothing.
    """
    out = run(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    entries = iter(out.split("\0"))
    paths = []
    for entry in entries:
        if not entry:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":
            next(entries, None)  # a rename's source path follows its entry
    return paths


def operation_in_progress(repo: Path) -> str | None:
    """The name of an unfinished merge, rebase, cherry-pick or revert, or None."""
    for marker, name in (
        ("MERGE_HEAD", "merge"),
        ("rebase-merge", "rebase"),
        ("rebase-apply", "rebase"),
        ("CHERRY_PICK_HEAD", "cherry-pick"),
        ("REVERT_HEAD", "revert"),
    ):
        if git_path(repo, marker).exists():
            return name
    return None


def find_render(repo: Path, start: str = "HEAD") -> str | None:
    """The newest pristine-render commit reachable from ``start``, or None.

    Pristine commits form a chain (each one's parent is the previous render), so
    the first hit in topological order is the newest.
    """
    out = run(
        repo, "rev-list", "--topo-order", "-n", "1", f"--grep=^{RENDER_TRAILER}: ", start, "--"
    )
    return out.strip() or None


def commit_folder(repo: Path, folder: Path, *, parents: list[str], message: str) -> str:
    """Commit every file of ``folder`` (outside ``repo``) into ``repo``'s object store.

    The repository's work tree, index and refs are untouched: the files are added
    through a temporary index, and the commit is only an object until something
    refers to it.

    Returns:
        The new commit's full hash.
    """
    git_dir = run(repo, "rev-parse", "--absolute-git-dir").strip()
    with tempfile.TemporaryDirectory(prefix="scaffold-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        where = ["--git-dir", git_dir, "--work-tree", str(folder)]
        run(repo, *where, "add", "--all", ".", env=env)
        tree = run(repo, *where, "write-tree", env=env).strip()
    parent_args = [arg for parent in parents for arg in ("-p", parent)]
    return run(repo, *identity(repo), "commit-tree", tree, *parent_args, "-m", message).strip()


def tree_of(repo: Path, commit: str) -> str:
    """The tree hash of ``commit``."""
    return run(repo, "rev-parse", f"{commit}^{{tree}}").strip()


def ls_tree(repo: Path, treeish: str) -> dict[str, str]:
    """Every file of ``treeish``: path -> blob hash (mode folded in, so mode changes count)."""
    out = run(repo, "ls-tree", "-r", "-z", "--full-tree", treeish)
    files = {}
    for entry in filter(None, out.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, _, blob = meta.split()
        files[path] = f"{mode}:{blob}"
    return files


def diff_names(repo: Path, old: str, new: str) -> list[tuple[str, str, str]]:
    """``(status, old path, new path)`` for each change from ``old`` to ``new``, renames found."""
    out = run(repo, "diff-tree", "-r", "-z", "-M", "--name-status", "--no-commit-id", old, new)
    fields = [f for f in out.split("\0") if f]
    changes = []
    i = 0
    while i < len(fields):
        code = fields[i]
        if code[0] in "RC":
            changes.append((code[0], fields[i + 1], fields[i + 2]))
            i += 3
        else:
            changes.append((code[0], fields[i + 1], fields[i + 1]))
            i += 2
    return changes
