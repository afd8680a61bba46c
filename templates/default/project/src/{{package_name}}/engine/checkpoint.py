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
:func:`check_fits` one of another model, before any weight is loaded.

Sharing a folder. A run that writes into a checkpoint folder it was given
(``dirpath``) holds :class:`FolderLock` on it while it trains: a second run
pointed there is refused with the holder's pid. The lock is an ``fcntl.flock``,
so it dies with its process (SIGKILL included). Where fcntl is missing
(Windows) there is no lock, and two runs must not share a folder.
"""

from __future__ import annotations

import errno
import os
import pickle
import secrets
import shutil
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch

from .errors import UsageError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (see the module docstring)
    fcntl = None

FORMAT = "scaffold-checkpoint-v1"
LOCK_FILE = ".lock"  # in a checkpoint folder a run writes into: who holds it
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
_CHUNK = 1 << 24  # bytes read at a time when checking a file
# flock's errors on a file system that has no locks (not every OS has every name).
_NO_LOCKS = {getattr(errno, name, None) for name in ("ENOLCK", "ENOSYS", "EOPNOTSUPP", "ENOTSUP")}


class CheckpointError(UsageError):
    """A checkpoint that can't be read or written; the message names the file and why."""


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
    torch.save(checkpoint, file)
    file.flush()
    os.fsync(file.fileno())


def write_error(path: str | Path, error: OSError) -> CheckpointError:
    """One line for a failed write: the cause, the file, and what is still there."""
    return CheckpointError(
        f"{cause(error)} while writing {str(path)!r}; it was not replaced (an earlier version "
        "there is intact): free some space, or write elsewhere"
    )


def cause(error: OSError) -> str:
    """``no space left on device``, ``read-only file system``, ..."""
    return os.strerror(error.errno).lower() if error.errno else str(error)


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


def lock(fd: int, *, wait: bool) -> bool:
    """Lock ``fd`` (``flock``, exclusive); False where there are no locks (Windows, some NFS).

    Raises BlockingIOError when another process holds it and ``wait`` is False.
    """
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in _NO_LOCKS:
            return False
        raise
    return True


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


# ---------------------------------------------------------------- the folder lock


class FolderLock:
    """The lock of a checkpoint folder: one run at a time writes there.

    ``<folder>/.lock`` is locked with ``fcntl.flock`` and holds the holder's
    pid and host, for the message another run gets. The kernel drops the lock
    when its process ends, however it ends, so a killed run never leaves a
    stale lock behind. The file itself stays (deleting it would let a second
    run lock a new file while the first still holds the old one).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise CheckpointError naming the folder and its holder."""
        if self._file is not None:
            return
        path = self.folder / LOCK_FILE
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            file = path.open("a+", encoding="utf-8")
            locked = lock(file.fileno(), wait=False)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise CheckpointError(
                f"checkpoint folder {str(self.folder)!r} is in use by another run ({holder}); "
                "give this run its own folder (--checkpoint.dirpath), or wait for that one "
                "to end"
            ) from None
        except OSError as error:
            raise write_error(path, error) from None
        if not locked:  # Windows, or a file system without locks
            file.close()
            print(f"note: {str(self.folder)!r} can't be locked: two runs must not share it")
            return
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        """Let another run write here (closing the file drops the lock)."""
        if self._file is not None:
            self._file.close()
            self._file = None


# ---------------------------------------------------------------- reading


def load(
    path: str | Path, map_location: str | torch.device = "cpu", *, without: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Read a checkpoint file written by :func:`save`, after checking it.

    Args:
        path: The file.
        map_location: Where to put its tensors.
        without: Keys of :data:`REQUIRED` this file doesn't hold (a folder's
            ``trainer.ckpt`` keeps no weights).

    Raises:
        CheckpointError: It is missing, not a checkpoint (empty, cut short,
            text, random bytes, a pickle), corrupt, or not whole.
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
        _check_archive(path, file)
        file.seek(0)
        try:
            checkpoint = torch.load(file, map_location=map_location, weights_only=True)
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
    _check_contents(path, checkpoint, without)
    return checkpoint


def _check_archive(path: Path, file: IO[bytes]) -> None:
    """Refuse what isn't a whole, uncorrupted zip, before anything is unpickled."""
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


def _check_contents(path: Path, checkpoint: Any, without: tuple[str, ...]) -> None:
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


# ---------------------------------------------------------------- does it fit?


def shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    """The full shape of every tensor in ``module``'s state dict.

    Sharded tensors report their full shape (FSDP's DTensors do;
    DeepSpeed ZeRO-3 keeps it in ``ds_shape``).
    """
    return {
        name: list(getattr(tensor, "ds_shape", tensor.shape))
        # nn.Module's own state_dict, not an override: one state_dict hook per save.
        for name, tensor in torch.nn.Module.state_dict(module, keep_vars=True).items()
        if isinstance(tensor, torch.Tensor)
    }


def check_fits(path: str | Path, checkpoint: dict[str, Any], module: torch.nn.Module) -> None:
    """Refuse a checkpoint of another model (other weights, or other sizes) before loading it."""
    saved = checkpoint.get("shapes")
    if saved is None and isinstance(checkpoint.get("state_dict"), dict):
        state = checkpoint["state_dict"]
        saved = {k: list(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    if saved is None:
        return  # a folder written before shapes were recorded: the strategy checks
    ours = shapes(module)
    missing, unexpected = sorted(ours.keys() - saved.keys()), sorted(saved.keys() - ours.keys())
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds another model's weights (it lacks "
            f"{_few(missing)}; it has {_few(unexpected)}, which this model lacks): was it "
            "written by another project or task?"
        )
    differ = [name for name in ours if list(saved[name]) != ours[name]]
    if differ:
        name = differ[0]
        raise CheckpointError(
            f"checkpoint {str(path)!r} was trained with other model sizes: {name} is "
            f"{saved[name]} there, {ours[name]} here; "
            + _hparams_hint(checkpoint.get("hyper_parameters"), getattr(module, "hparams", {}))
        )


def _few(names: list[str]) -> str:
    if not names:
        return "nothing"
    shown = ", ".join(map(repr, names[:3]))
    return f"{shown} and {len(names) - 3} more" if len(names) > 3 else shown


def _hparams_hint(saved: Any, ours: dict[str, Any]) -> str:
    """Which model options to pass to build the model the checkpoint was trained as."""
    if not isinstance(saved, dict):
        return "build the model with the options it was trained with"
    differ = {k: v for k, v in saved.items() if k in ours and ours[k] != v}
    if not differ:
        return "build the model with the options it was trained with"
    options = ", ".join(f"{k}={v!r} (here {ours[k]!r})" for k, v in differ.items())
    flags = " ".join(f"--model.{k} {v}" for k, v in differ.items())
    return f"it was trained with {options}: pass {flags}"


# ---------------------------------------------------------------- finding one


def find_last(root: str | Path) -> Path:
    """The most recent ``last.ckpt`` under ``root`` (for ``--ckpt_path last``).

    What killed writers left beside a last.ckpt is tidied first (:func:`clean_stale`),
    so a sharded one killed between its two renames is found in place.
    """
    root = Path(root)
    for folder in {tmp.parent for tmp in root.glob(f"**/.last.ckpt.*{TEMP}")}:
        clean_stale(folder)
    candidates = sorted(root.glob("**/last.ckpt"), key=os.path.getmtime)
    if not candidates:
        raise CheckpointError(
            f"--ckpt_path last: no last.ckpt under {str(root)!r}; train first, "
            "or pass the path of a checkpoint"
        )
    return candidates[-1]


def resolve(ckpt_path: str | Path, root: str | Path) -> Path:
    """``--ckpt_path``: 'last' (the newest last.ckpt under ``root``) or a path that exists."""
    path = find_last(root) if str(ckpt_path) == "last" else Path(ckpt_path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return path
