"""The few git operations scaffold needs, with errors a user can act on."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from scaffold.errors import GitError

# Used only when the user has no git identity configured: the first commit is
# the template's pristine output, so naming scaffold as its author is honest.
FALLBACK_IDENTITY = ("scaffold", "scaffold@localhost")


def run(repo: Path, *args: str) -> str:
    """Run ``git <args>`` in ``repo``; return stdout, or raise GitError."""
    if shutil.which("git") is None:
        raise GitError("git is not installed; install it, or pass --no-git")
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise GitError(f"`git {' '.join(args)}` failed in {repo}: {detail}")
    return result.stdout


def _identity(repo: Path) -> list[str]:
    options = []
    for key, fallback in zip(("user.name", "user.email"), FALLBACK_IDENTITY, strict=True):
        found = subprocess.run(
            ["git", "config", key], cwd=repo, capture_output=True, text=True, check=False
        )
        if not found.stdout.strip():
            options += ["-c", f"{key}={fallback}"]
    return options


def init_and_commit(repo: Path, message: str) -> str:
    """Make ``repo`` a git repository holding one commit of every file; return its hash."""
    run(repo, "-c", "init.defaultBranch=main", "init", "--quiet")
    run(repo, "add", "--all")
    run(repo, *_identity(repo), "commit", "--quiet", "--no-verify", "-m", message)
    return run(repo, "rev-parse", "--short", "HEAD").strip()
