"""A throw-away folder tree to run `scaffold` in, with sentinels that must survive.

Destination bugs delete folders (`scaffold new typo/../proj` once emptied the
folder it ran in), so tests of destinations never run scaffold where a bug could
reach anything but the sandbox: HOME and the working folder are several levels
inside it, every level holds sentinel files, and :func:`inside` tells whether a
path (read both the kernel's way and lexically, prefix by prefix) stays in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gitrepo import IDENTITY

# The working folder is sandbox/a/b/c; HOME is sandbox/a/home.
LEVELS = ("a", "b", "c")


@dataclass(frozen=True)
class Sandbox:
    """Where a case runs: ``root`` holds everything, ``cwd`` and ``home`` are inside it."""

    root: Path
    cwd: Path
    home: Path

    def env(self) -> dict[str, str]:
        """The environment scaffold runs in: HOME, config and git identity all in the sandbox."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
        env.update(IDENTITY)
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            COLUMNS="200",
        )
        env.pop("SCAFFOLD_CONFIG", None)
        return env

    def run(self, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        """``scaffold <args>`` in a subprocess, from ``cwd``."""
        return subprocess.run(
            [sys.executable, "-m", "scaffold", *args],
            cwd=self.cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def make_sandbox(base: Path) -> Sandbox:
    """A fresh sandbox under ``base``: sentinels at every level, symlinks, a project-like cwd."""
    root = base.resolve() / "sandbox"  # no symlink above it: lexical and kernel paths agree
    folder = root
    for level in ("", *LEVELS):
        folder = folder / level if level else folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sentinel.txt").write_bytes(f"sentinel of {folder}\n".encode())
        (folder / "keep").mkdir()
        (folder / "keep" / "inside.txt").write_bytes(b"keep me\n")
    cwd = folder
    home = root / "a" / "home"
    home.mkdir()
    (home / "sentinel.txt").write_bytes(b"home sentinel\n")
    # What a user's project folder holds (the files `n1/..` once replaced).
    (cwd / "README.md").write_text("# mine\n")
    (cwd / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    (cwd / ".gitignore").write_text("*.log\n")
    (cwd / "tests").mkdir()
    (cwd / "tests" / "test_mine.py").write_text("def test_mine():\n    pass\n")
    (cwd / "empty").mkdir()
    # Symlinks whose `..` differs between the kernel and a lexical reading.
    (cwd / "keep" / "x" / "y").mkdir(parents=True)
    (cwd / "deep").symlink_to(cwd / "keep" / "x" / "y")
    (cwd / "up").symlink_to("..")
    (cwd / "to-empty").symlink_to("empty")
    (cwd / "dangling").symlink_to(cwd / "nowhere" / "at-all")
    return Sandbox(root, cwd, home)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root``, symlinks not followed: kind, bytes or link target, mode."""
    found: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = ("link", str(path.readlink()))
            elif path.is_dir():
                found[key] = ("dir", info.st_mode)
            else:
                found[key] = ("file", path.read_bytes(), info.st_mode)
    return found


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> tuple[list[str], list[str]]:
    """``(changed or removed, added)`` paths between two snapshots."""
    lost = sorted(key for key, value in before.items() if after.get(key) != value)
    added = sorted(key for key in after if key not in before)
    return lost, added


def no_such_user(name: str) -> bool:
    """Whether ``~name`` names no user (so a buggy scaffold can't expand it anywhere)."""
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return True
    return False


def split(raw: str, sandbox: Sandbox) -> tuple[str, list[str]] | None:
    """``raw`` as ``(the folder it starts from, its components)``; None if not in the sandbox."""
    if raw == "~" or raw.startswith("~/"):
        return str(sandbox.home), raw[2:].split("/")
    root = str(sandbox.root)
    if raw == root or raw.startswith(root + "/"):
        return root, raw[len(root) + 1 :].split("/")
    if raw.startswith(("/", "~")):
        return None
    return str(sandbox.cwd), raw.split("/")


def inside(raw: str, sandbox: Sandbox) -> bool:
    """Whether every prefix of ``raw``, read lexically and by the kernel, stays in the sandbox.

    A buggy scaffold may create or delete any prefix of the destination (its
    "missing parents"), under either reading: only paths for which all of
    them stay inside the sandbox are safe to hand to a scaffold under test.
    A ``~user`` path is safe only when there is no such user.
    """
    if raw.startswith("~") and not (raw == "~" or raw.startswith("~/")):
        return no_such_user(raw[1:].split("/", 1)[0])
    found = split(raw, sandbox)
    if found is None:
        return False
    base, parts = found
    root = os.path.realpath(sandbox.root)
    for end in range(len(parts) + 1):
        prefix = "/".join([base, *parts[:end]])
        for reading in (os.path.normpath(prefix), os.path.realpath(prefix)):
            if reading != root and not reading.startswith(root + "/"):
                return False
    return True
