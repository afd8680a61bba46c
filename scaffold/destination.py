"""Where ``scaffold new`` and ``scaffold template init`` write: checked, staged, moved into place.

The rule: a call changes only what it created. The destination must not
exist, or be an empty folder, or hold nothing but a fresh ``git init`` (a
``.git`` with no commits). Everything is made in a staging folder first
(beside the destination, or inside it when it already exists, so the final
moves never cross filesystems) and moved into place only when it is complete.
Every folder and file this call creates is recorded as it is made, and a
failure (Ctrl-C included) removes exactly those: a missing parent is removed
with ``rmdir``, so a folder someone else filled meanwhile is left alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from scaffold import git, paths
from scaffold.errors import DestinationError

GIT_DIR = ".git"


@dataclass(frozen=True)
class Destination:
    """A checked destination.

    Attributes:
        path: Absolute and normalised.
        exists: It is already a folder (empty, or holding only a fresh ``.git``).
        fresh_repo: It holds only a ``.git`` with no commits.
        missing: The parent folders to create, outermost first.
    """

    path: Path
    exists: bool
    fresh_repo: bool
    missing: tuple[Path, ...]


def check(path: str | os.PathLike[str]) -> Destination:
    """Normalise ``path`` and refuse it if it can't take a new project.

    Raises:
        PathError: See :func:`scaffold.paths.normalise`.
        DestinationError: A symbolic link, a file, a non-empty folder, a git
            repository with commits, a path inside a file, or an unwritable place.
    """
    dest = paths.normalise(path)
    try:
        return _check(dest)
    except OSError as error:  # e.g. a parent that can't be searched
        raise DestinationError(
            f"can't use {dest}: {error.strerror}; choose a folder you can write to"
        ) from None


def _check(dest: Path) -> Destination:
    if dest.is_symlink():
        target = dest.readlink()
        state = "" if dest.exists() else ", which doesn't exist"
        raise DestinationError(
            f"{dest} is a symbolic link (to {target}{state}); scaffold writes only into a "
            "real folder: pass the folder it points to, or a new name"
        )
    if dest.exists() and not dest.is_dir():
        raise DestinationError(f"{dest} is a file; choose a folder that doesn't exist yet")
    if dest.is_dir():
        fresh_repo = _holds_only_a_fresh_repo(dest)
        _require_writable(dest, dest)
        return Destination(dest, exists=True, fresh_repo=fresh_repo, missing=())
    missing = []
    parent = dest.parent
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = parent.parent
    if parent.is_symlink() and not parent.exists():
        raise DestinationError(
            f"{parent} is a symbolic link to {parent.readlink()}, which doesn't exist, "
            f"so {dest} can't be created inside it"
        )
    if not parent.is_dir():
        raise DestinationError(f"{parent} is a file, so {dest} can't be created inside it")
    _require_writable(parent, dest)
    return Destination(dest, exists=False, fresh_repo=False, missing=tuple(reversed(missing)))


def _holds_only_a_fresh_repo(dest: Path) -> bool:
    """True for a folder holding only a ``git init`` with no commits; refuse anything else in it."""
    entries = [entry.name for entry in dest.iterdir()]
    if not entries:
        return False
    repo = dest / GIT_DIR
    if entries != [GIT_DIR] or repo.is_symlink() or not repo.is_dir():
        raise DestinationError(
            f"{dest} already exists and is not empty; scaffold never writes into "
            "existing files: choose a new folder name"
        )
    if git.toplevel(dest) != dest.resolve():
        raise DestinationError(
            f"{dest} holds a .git folder that git doesn't recognise as a repository; "
            "choose a new folder name, or remove the .git folder"
        )
    if git.call(dest, "rev-list", "-n", "1", "--all").stdout.strip():
        raise DestinationError(
            f"{dest} is a git repository that has commits; scaffold new puts its first "
            "commit only into a fresh `git init`: choose a new folder name"
        )
    return True


def _require_writable(folder: Path, dest: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DestinationError(
            f"{folder} is not writable, so {dest} can't be created; choose a folder "
            "you can write to"
        )


@dataclass
class Stage:
    """A staging folder for one destination, and a record of what this call made.

    Attributes:
        dest: The checked destination.
        target: Where to build the result (named like the destination).
    """

    dest: Destination
    target: Path
    _made: list[Path] = field(default_factory=list)

    def install(self, commit_message: str | None) -> str | None:
        """Move the finished ``target`` into place, committing it first if asked.

        Args:
            commit_message: Commit the files as the first commit (of a new
                repository, or of the destination's fresh one); None: no git.

        Returns:
            The commit's short hash, or None.
        """
        if self.dest.fresh_repo and commit_message is not None:
            # Build the commit in the user's repository without touching its
            # index or refs, move the files in, and only then point HEAD at it.
            repo = self.dest.path
            commit = git.commit_folder(repo, self.target, parents=[], message=commit_message)
            self._move_children()
            git.run(repo, "update-ref", "-m", "scaffold new", "HEAD", commit)
            git.run(repo, "reset", "--quiet")  # the index from the commit
            return git.run(repo, "rev-parse", "--short", "HEAD").strip()
        commit = git.init_and_commit(self.target, commit_message) if commit_message else None
        if self.dest.exists:
            self._move_children()
        else:
            self.target.rename(self.dest.path)
            self._made.append(self.dest.path)
        return commit

    def _move_children(self) -> None:
        for child in sorted(self.target.iterdir()):
            moved = self.dest.path / child.name
            if os.path.lexists(moved):  # appeared since the check: never replace it
                raise DestinationError(
                    f"{moved} appeared while scaffold was writing; nothing of yours was changed"
                )
            child.rename(moved)
            self._made.append(moved)

    def undo(self) -> None:
        """Remove what this call made, newest first; folders that existed are never touched."""
        for made in reversed(self._made):
            if made.is_dir() and not made.is_symlink():
                shutil.rmtree(made, ignore_errors=True)
            elif os.path.lexists(made):
                made.unlink()


@contextmanager
def staged(dest: Destination) -> Iterator[Stage]:
    """Create the missing parents and a staging folder; undo everything on any failure.

    Raises:
        DestinationError: A folder can't be created (e.g. a read-only filesystem).
    """
    created: list[Path] = []
    staging = None
    try:
        for folder in dest.missing:
            folder.mkdir()  # never exist_ok: a folder that exists is not ours
            created.append(folder)
        holder = dest.path if dest.exists else dest.path.parent
        staging = Path(tempfile.mkdtemp(prefix=".scaffold-", dir=holder))
    except OSError as error:
        _remove_folders(created)
        folder = error.filename or dest.path
        also = "" if str(folder) == str(dest.path) else f", so {dest.path} can't be made"
        raise DestinationError(
            f"can't create {folder}: {error.strerror}{also}; choose a folder you can write to"
        ) from None
    stage = Stage(dest, staging / dest.path.name)
    try:
        yield stage
    except BaseException as error:
        stage.undo()
        shutil.rmtree(staging, ignore_errors=True)
        _remove_folders(created)
        if isinstance(error, OSError):  # a name or path too long, a full disk, ...
            where = error.filename or dest.path
            raise DestinationError(
                f"can't write {where}: {error.strerror}; nothing was written"
            ) from None
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _remove_folders(created: list[Path]) -> None:
    """``rmdir`` the folders this call made, innermost first; a non-empty one stays."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return
