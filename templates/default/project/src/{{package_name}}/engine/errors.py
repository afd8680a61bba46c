"""The errors this project raises on purpose: problems the user can fix.

``__main__`` prints a ``UsageError`` as one line (``error: <message>``) and
exits with status 1: a bad config value, a launch the strategy can't train in,
a checkpoint that can't be used, a non-finite loss, a data path that isn't
there. Every other exception is a bug, in this project or in your code, and
keeps its full traceback. ``--traceback`` shows the traceback of a
``UsageError`` too, for debugging.

Raise them from your own code for what the user can fix, with a message that
names the value and the fix::

    if not root.is_dir():
        raise ConfigError(f"data.root={str(root)!r} is not a folder; download the data first")
"""

from __future__ import annotations

import errno
import functools
import math
import os
from collections.abc import Callable
from typing import Any, TypeVar


class UsageError(Exception):
    """A problem with how the project was run; the message names the value and the fix.

    Attributes:
        every_rank: Raised the same way on every rank at the same point (a
            checkpoint write that rank zero did for all): only rank zero prints it.
    """

    every_rank = False


class ConfigError(UsageError, ValueError):
    """An option's value, a config file or an override that can't be used."""


class CheckpointError(UsageError):
    """A checkpoint that can't be read or written; the message names the file and why."""


class NonFiniteLossError(UsageError):
    """The loss became inf or nan; training stopped before applying it."""


def cause(error: OSError) -> str:
    """An OS error in words: ``no space left on device``, ``read-only file system``, ..."""
    return os.strerror(error.errno).lower() if error.errno else str(error)


# A file system that takes no more: full, over quota, read-only, or a file-size limit.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
F = TypeVar("F", bound=Callable[..., Any])


def disk_errors_in_one_line(command: F) -> F:
    """``command`` with a write the file system refused raised as one ``UsageError`` line.

    Checkpoints, predictions and the CSV logger say which file they were
    writing; this catches the other writes (the run folder's files, the other
    loggers', plots), where the error often doesn't name its file.
    """

    @functools.wraps(command)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except OSError as error:
            if error.errno not in DISK_FULL:
                raise
            where = f" while writing {str(error.filename)!r}" if error.filename else ""
            fix = "write elsewhere" if error.errno == errno.EROFS else "free some space"
            raise UsageError(
                f"{cause(error)}{where}: {fix} (the run's files go under "
                "--trainer.default_root_dir)"
            ) from error

    return guarded  # type: ignore[return-value]


def check_range(section: str, low: float, high: float = math.inf, **values: float) -> None:
    """Refuse option values outside ``[low, high]``, NaN and infinity included.

    Args:
        section: The config section the options belong to (``model``, ``data``).
        low: The smallest value allowed.
        high: The largest value allowed.
        **values: The options' names and values.

    Raises:
        ConfigError: Naming every value out of range, and the range to use.
    """
    # NaN fails every comparison; infinity needs its own check. (math.isfinite
    # alone would overflow on a huge int.)
    bad = {
        name: value
        for name, value in values.items()
        if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value))
    }
    if not bad:
        return
    named = ", ".join(f"{section}.{name}={value!r}" for name, value in bad.items())
    finite = "finite " if any(isinstance(value, float) for value in bad.values()) else ""
    limits = f"of at least {low}" if high == math.inf else f"in [{low}, {high}]"
    raise ConfigError(f"{named}: use a {finite}value {limits}")


def check_indices(what: str, low: int, high: int, option: str, count: int) -> None:
    """Refuse class labels or token ids outside ``[0, count)`` (the data's ``low`` to ``high``).

    Checked on the first batch, so a model too small for its data stops with
    the option to change, not with an index error deep inside torch.

    Raises:
        ConfigError: Naming the offending id, the option and the value it needs.
    """
    if low < 0:
        raise ConfigError(f"the data has {what} {low}: {what}s must be 0 or more")
    if high >= count:
        raise ConfigError(
            f"the data has {what} {high}, but {option}={count} covers {what}s 0 to "
            f"{count - 1}: set {option} to at least {high + 1}"
        )


def check_size(what: str, size: int, option: str, value: int) -> None:
    """Refuse a model option that doesn't match the size the data has (first batch).

    Raises:
        ConfigError: Naming both sizes and the option to change.
    """
    if size != value:
        raise ConfigError(
            f"the data has {size} {what}, but {option}={value}: set {option} to {size}"
        )
