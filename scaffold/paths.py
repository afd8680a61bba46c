"""Paths from the user, made absolute and normal before anything looks at them.

Every command that takes a path (``new DEST``, ``template init DEST``, the
PATH of ``update``/``adopt``/``check``/``diff``, ``--answers-file``, a local
``--template``) passes it through :func:`normalise` first, so every check and
every file operation afterwards sees one path with no ``~`` and no ``..``.

``..`` is removed as written (``typo/../proj`` is ``./proj``, whether or not
``typo`` exists), like ``os.path.abspath``. The kernel reads ``link/..`` as the
parent of the folder ``link`` points to, which is somewhere else: for such a
path the two readings differ, and scaffold refuses it and names both, rather
than guess which one the user meant.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from scaffold.errors import PathError

# POSIX limits used when the filesystem can't be asked (Linux's own values).
NAME_MAX = 255
PATH_MAX = 4096


def expand_user(text: str) -> str:
    """``~`` and ``~user`` expanded, like the shell; an unknown user is a clean error.

    Raises:
        PathError: ``~user`` names no user, or ``~`` has no home folder.
    """
    if not text.startswith("~"):
        return text
    user, slash, rest = text[1:].partition("/")
    if user:
        try:
            home = pwd.getpwnam(user).pw_dir
        except KeyError:
            raise PathError(
                f"{text!r}: there is no user named {user!r}, so '~{user}' has no home folder; "
                f"for a folder literally named '~{user}', write './~{user}{slash}{rest}'"
            ) from None
    else:
        try:
            home = str(Path.home())
        except RuntimeError:  # no HOME, and no entry for this user in the password file
            raise PathError(f"{text!r}: HOME is not set, so '~' has no home folder") from None
    return home.rstrip("/") + "/" + rest if rest or slash else home


def normalise(path: str | os.PathLike[str]) -> Path:
    """``path`` expanded (``~``), absolute, with ``.`` and ``..`` removed as written.

    Raises:
        PathError: An unknown ``~user``; a name longer than the filesystem
            allows; or a symbolic link followed by ``..`` (the kernel and the
            path as written disagree on where that is).
    """
    text = expand_user(os.fspath(path))
    lexical = os.path.normpath(Path(text).absolute())
    _check_lengths(text, lexical)
    kernel = os.path.realpath(text)
    if os.path.realpath(lexical) != kernel:
        link = _first_link_before_dotdot(Path(text))
        raise PathError(
            f"{text!r} is ambiguous: {link} is a symbolic link, so '..' after it means "
            f"{kernel} to the system but {lexical} as written; write the path you mean "
            "without '..'"
        )
    return Path(lexical)


def _check_lengths(text: str, lexical: str) -> None:
    """Refuse names and paths the filesystem can't hold, before the system does it rudely."""
    limit = _limit(lexical, "PC_NAME_MAX", NAME_MAX)
    for name in text.split("/"):
        size = len(os.fsencode(name))
        if size > limit:
            shown = name if len(name) <= 40 else name[:20] + "…" + name[-10:]
            raise PathError(
                f"the name {shown!r} is {size} bytes, longer than the filesystem allows "
                f"({limit} bytes); choose a shorter name"
            )
    size = len(os.fsencode(lexical))
    path_limit = _limit(lexical, "PC_PATH_MAX", PATH_MAX)
    if size >= path_limit:
        raise PathError(
            f"the path {lexical[:40]}… is {size} bytes, longer than the filesystem allows "
            f"({path_limit} bytes); choose a shorter path"
        )


def _limit(path: str, name: str, fallback: int) -> int:
    """The filesystem's limit ``name`` where ``path`` (or its nearest existing parent) lives."""
    for existing in [Path(path), *Path(path).parents]:
        try:
            return os.pathconf(existing, name)
        except FileNotFoundError:
            continue  # not made yet: ask its parent
        except (OSError, ValueError):
            break  # too long already, or the filesystem doesn't say
    return fallback


def _first_link_before_dotdot(path: Path) -> Path:
    """The symbolic link that the first ambiguous ``..`` of ``path`` climbs out of."""
    current = Path("/") if path.is_absolute() else Path.cwd()
    for name in path.parts[1:] if path.is_absolute() else path.parts:
        if name == "..":
            if os.path.realpath(current) != str(current):
                return _first_link(current)
            current = current.parent
        else:
            current = current / name
    return path


def _first_link(path: Path) -> Path:
    """The outermost symbolic link among ``path`` and its parents."""
    for folder in [*reversed(path.parents), path]:
        if folder.is_symlink():
            return folder
    return path
