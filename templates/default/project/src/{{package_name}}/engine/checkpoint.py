"""Checkpoints: plain dicts of tensors and primitives, written atomically, checked when read.

Every checkpoint loads with ``torch.load(path, weights_only=True)``: no pickled
classes, so loading one can't run code, and it still loads after the project's
classes are renamed.

Writing. A checkpoint is written to a temporary file beside its target, named
for this writer alone (``.last.ckpt.<pid>-<random>.tmp``) and locked while it
is written, then flushed to disk and renamed over the target: a reader sees
the old file or the new one, never a torn one. A killed writer leaves at most
its temp file, which no ``*.ckpt`` pattern matches and which the next run that
resumes from that folder deletes (:func:`clean_stale`). A write that fails
(disk full, read-only file system) deletes its temp file and raises one
:class:`CheckpointError` naming the file and the cause; the previous
checkpoint stays as it was.

Reading. ``torch.load`` doesn't check the CRC-32 that ``torch.save`` records
for every member of its zip archive, so a flipped bit in a tensor would load
silently. :func:`load` checks them first, and refuses whatever isn't a zip of
plain data (an empty, cut-short, text or random file, a pickle) without
unpickling it. It also refuses a checkpoint that lacks an entry, and
:func:`check_fits` (``fits.py``) one of another model, before any weight is loaded.

Sharing a folder: see :mod:`folder_lock`.
"""

from __future__ import annotations

import os
import pickle
import re
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch

from .errors import CheckpointError, cause
from .fits import check_fits as check_fits  # re-exported: they were defined here
from .fits import shapes as shapes
from .folder_lock import FolderLock as FolderLock
from .folder_lock import fcntl, lock

FORMAT = "scaffold-checkpoint-v1"
TEMP, TRASH = ".tmp", ".trash"  # suffixes of the hidden names used while writing
MANIFEST = "SHA256SUMS"  # in a checkpoint folder (sharded strategies): written last
# What every checkpoint holds.
REQUIRED = (
    "format",
    "epoch",
    "global_step",
    "loops",
    "state_dict",
    "hyper_parameters",
    "optimizer_states",
    "lr_schedulers",
    "precision",
    "callbacks",
    "rng",
)
# What only resuming a fit needs: a weights-only checkpoint (ModelCheckpoint's
# save_weights_only, Lightning's) leaves it out and says so ("weights_only").
RESUMING = ("optimizer_states", "lr_schedulers", "callbacks", "rng")
_CHUNK = 1 << 24  # bytes read at a time when checking a file


# ---------------------------------------------------------------- writing


def save(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (own temp file, fsync, rename)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp, fd = claim_temp(path, directory=False)
        with os.fdopen(fd, "wb") as file:  # closing it releases the temp file's lock
            serialize(checkpoint, file)
            if fcntl is not None:  # renamed while still locked: no cleaner takes it
                os.replace(tmp, path)
        if fcntl is None:  # Windows can't rename a file that is open
            os.replace(tmp, path)
        sync_dir(path.parent)  # make the rename itself durable
    except OSError as error:
        discard(tmp)
        raise write_error(path, error) from None
    except BaseException:  # Ctrl-C or a bug mid-write: still no temp file left behind
        discard(tmp)
        raise


def serialize(checkpoint: dict[str, Any], file: IO[bytes]) -> None:
    """Serialize into ``file`` and force the bytes to disk (the one place bytes are written)."""
    try:
        torch.save(checkpoint, file)
    except RuntimeError as error:
        if (cause := failed_write(error)) is not None:
            raise cause from None
        raise
    file.flush()
    os.fsync(file.fileno())


def failed_write(error: BaseException) -> OSError | None:
    """The file system's error behind ``error``, if a write failed; else None.

    torch's zip writer reports a failed write (a full disk, a file-size limit)
    as a RuntimeError raised around the OSError, which is its context. Through
    a wrapped stream (torch.distributed.checkpoint's) the OSError is lost and
    only the writer's words remain: the cause is then those words.
    """
    if isinstance(error, OSError):
        return error
    if not isinstance(error, RuntimeError):
        return None
    if isinstance(error.__context__, OSError):
        return error.__context__
    if found := _WRITER_FAILED.search(str(error)):
        return OSError(f"the file system refused a write (torch: {found.group(1)})")
    return None


# torch's zip writer, when a write fails: "[enforce fail at inline_container.cc:N] .
# unexpected pos 704 vs 598", or "... failed writing file data/0: file write failed".
_WRITER_FAILED = re.compile(
    r"inline_container\.cc:\d+\] \. (unexpected pos .*|.*file write failed)"
)


def write_error(path: str | Path, error: OSError) -> CheckpointError:
    """One line for a failed write: the cause, the file, and what is still there."""
    if os.path.lexists(path):
        kept = "it was not replaced (an earlier version there is intact)"
    else:
        kept = "nothing was written there"
    return CheckpointError(
        f"{cause(error)} while writing {str(path)!r}; {kept}: free some space, or write elsewhere"
    )


def hidden_name(target: Path, suffix: str) -> Path:
    """A name beside ``target`` for this writer alone: ``.last.ckpt.<pid>-<random><suffix>``."""
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def claim_temp(target: Path, *, directory: bool) -> tuple[Path, int]:
    """Create this writer's temp file (or folder) beside ``target``, locked while it writes.

    The lock tells :func:`clean_stale` that the writer is alive. A cleaner can
    delete the name between our creating and locking it (it saw no lock yet):
    then the locked inode has no links left, and we try again with a new name.
    """
    while True:
        tmp = hidden_name(target, TEMP)
        if directory:
            tmp.mkdir()
            fd = os.open(tmp, os.O_RDONLY)
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(tmp, flags, 0o666)
        if not lock(fd, wait=True) or os.fstat(fd).st_nlink > 0:
            return tmp, fd
        os.close(fd)


def discard(tmp: Path | None) -> None:
    """Delete a temp file or folder (a write that failed), if there is one."""
    if tmp is None:
        return
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def sync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable (fsync the folder itself)."""
    if os.name == "nt":
        return  # Windows can't open a folder to fsync it
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: str | Path) -> None:
    """Delete a checkpoint file, if it is there."""
    path = Path(path)
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        raise CheckpointError(f"{cause(error)} while deleting checkpoint {str(path)!r}") from None


def clean_stale(folder: str | Path) -> None:
    """Delete what killed writers left in ``folder``: temp files and half-deleted folders.

    A temp entry whose writer is alive is locked and stays. A dead writer's
    temp folder (sharded strategies) that is complete (its ``SHA256SUMS`` was
    written) and whose target is missing was killed between the two renames
    that swap a folder into place: it is renamed into place instead.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if not entry.name.startswith("."):
            continue
        if entry.name.endswith(TRASH):
            discard(entry)
        elif entry.name.endswith(TEMP):
            _clean_temp(entry)


def _clean_temp(tmp: Path) -> None:
    try:
        fd = os.open(tmp, os.O_RDONLY)
    except OSError:
        return  # gone already (renamed into place, or deleted)
    try:
        dead = lock(fd, wait=False)  # False: no locks here, so no telling: leave it
    except OSError:
        dead = False  # its writer is alive
    if not dead:
        os.close(fd)
        return
    try:
        target = tmp.with_name(tmp.name[1:].rsplit(".", 2)[0])  # .last.ckpt.<id>.tmp
        if tmp.is_dir() and (tmp / MANIFEST).is_file() and not target.exists():
            tmp.rename(target)
        else:
            discard(tmp)
    except OSError:
        pass  # cleaning up is best effort: the next run tries again
    finally:
        os.close(fd)


# ---------------------------------------------------------------- reading


def load(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    without: tuple[str, ...] = (),
    weights: bool = True,
    resuming: bool = False,
) -> dict[str, Any]:
    """Read a checkpoint file written by :func:`save`, after checking it.

    Args:
        path: The file.
        map_location: Where to put its tensors.
        without: Keys of :data:`REQUIRED` this file doesn't hold (a folder's
            ``trainer.ckpt`` keeps no weights).
        weights: False to look at everything but the tensors (``--ckpt_path
            best`` reads last.ckpt's callback state): they are memory-mapped,
            never read, and only the pickle's CRC-32 is checked, so a large
            model's checkpoint costs neither the time nor the memory.
        resuming: A fit resumes from it, so a weights-only one is refused.

    Raises:
        CheckpointError: It is missing, not a checkpoint (empty, cut short,
            text, random bytes, a pickle), corrupt, or not whole; or weights
            only, with ``resuming``.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        raise CheckpointError(
            f"{str(path)!r} is a folder, but this project writes checkpoint files (*.ckpt); "
            "folders come from the fsdp and deepspeed strategies"
        )
    with path.open("rb") as file:
        _check_archive(path, file, everything=weights)
        file.seek(0)
        try:
            checkpoint = torch.load(
                file if weights else path,  # mmap needs the file's name
                map_location=map_location,
                weights_only=True,
                mmap=not weights,
            )
        except pickle.UnpicklingError:
            raise CheckpointError(
                f"{str(path)!r} holds Python objects, not only tensors and plain data: "
                "not loaded (checkpoints load with weights_only=True, so they can't run code)"
            ) from None
        except (RuntimeError, EOFError, ValueError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CheckpointError(
                f"checkpoint {str(path)!r} can't be read ({reason}); use another checkpoint"
            ) from None
    _check_contents(path, checkpoint, without, resuming)
    return checkpoint


def _check_archive(path: Path, file: IO[bytes], *, everything: bool = True) -> None:
    """Refuse what isn't a whole, uncorrupted zip, before anything is unpickled.

    ``everything=False`` checks the CRC-32 of the pickle (``data.pkl``) only, not the tensors'.
    """
    head = file.read(4)
    if not head:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is empty (0 bytes): its write never finished; "
            "use another checkpoint"
        )
    file.seek(0)
    member = ""
    try:
        with zipfile.ZipFile(file) as archive:
            for info in archive.infolist():
                if not everything and not info.filename.endswith("data.pkl"):
                    continue
                member = info.filename
                with archive.open(info) as data:  # reading to the end checks the CRC-32
                    while data.read(_CHUNK):
                        pass
    except zipfile.BadZipFile as error:
        if "CRC" in str(error):
            raise CheckpointError(
                f"checkpoint {str(path)!r} is corrupt: the bytes of {member!r} don't match "
                "the CRC-32 recorded when it was written (a damaged disk or copy); use "
                "another checkpoint"
            ) from None
        raise CheckpointError(
            f"{str(path)!r} is not a checkpoint: {_what_it_is(head)}; pass a .ckpt "
            "this project wrote"
        ) from None
    except (EOFError, ValueError, NotImplementedError, OverflowError) as error:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged ({error}); use another checkpoint"
        ) from None


def _what_it_is(head: bytes) -> str:
    """A guess at what a file that isn't a zip archive is, from its first bytes."""
    if head.startswith(b"PK"):
        return "it starts like one but is cut short (its write or copy never finished)"
    if head[:1] == b"\x80":
        return "it is a pickle, and was not unpickled (that could run code)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "its bytes are not a zip archive as torch.save writes"
    return "it is a text file"


def _check_contents(path: Path, checkpoint: Any, without: tuple[str, ...], resuming: bool) -> None:
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else None
        if isinstance(checkpoint, dict) and "format" not in checkpoint:
            what = "a dict without a 'format' entry (exported weights, or another program's)"
        else:
            what = f"format {found!r}, expected {FORMAT!r}"
        raise CheckpointError(
            f"{str(path)!r} is not a checkpoint of this project ({what}); pass a .ckpt "
            "this project wrote"
        )
    if checkpoint.get("weights_only") is True:
        if resuming:
            raise CheckpointError(
                f"{str(path)!r} holds the model's weights only (save_weights_only=True), "
                "not the optimizer and loop state a fit resumes from; validate, test or "
                "predict with it, or start a new fit from its weights (load_from_checkpoint)"
            )
        without = (*without, *RESUMING)
    missing = [key for key in REQUIRED if key not in without and key not in checkpoint]
    if missing:
        raise CheckpointError(
            f"checkpoint {str(path)!r} lacks {', '.join(map(repr, missing))}: it was "
            "edited, or not written by this project; use another checkpoint"
        )


@dataclass(frozen=True)
class Source:
    """Which checkpoint was loaded, and where in training it was written."""

    path: Path
    epoch: int
    step: int

    def __str__(self) -> str:
        return f"{self.path} (epoch {self.epoch}, step {self.step})"


def source(path: str | Path, checkpoint: dict[str, Any]) -> Source:
    """Describe a loaded checkpoint for the 'Loaded ...' line."""
    return Source(Path(path), int(checkpoint["epoch"]), int(checkpoint["global_step"]))
