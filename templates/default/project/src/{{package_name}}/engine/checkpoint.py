"""Checkpoints: plain dicts of tensors and primitives, written atomically.

Every checkpoint loads with ``torch.load(path, weights_only=True)``: no pickled
classes, so loading one can't run code, and it still loads after the project's
classes are renamed. A checkpoint is written to a temporary file, flushed to
disk and renamed over the target, so a crash mid-write never leaves a torn
file behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FORMAT = "scaffold-checkpoint-v1"


def save(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (temp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as file:
        torch.save(checkpoint, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
    # Make the rename itself durable.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if checkpoint.get("format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a checkpoint of this project "
            f"(format {checkpoint.get('format')!r}, expected {FORMAT!r})"
        )
    return checkpoint


def find_last(root: str | Path) -> Path:
    """The most recent ``last.ckpt`` under ``root`` (for ``--ckpt_path last``)."""
    candidates = sorted(Path(root).glob("**/last.ckpt"), key=os.path.getmtime)
    if not candidates:
        raise FileNotFoundError(
            f"--ckpt_path last: no last.ckpt under {str(root)!r}; train first, "
            "or pass the path of a checkpoint"
        )
    return candidates[-1]


def remove(path: str | Path) -> None:
    """Delete a checkpoint file, if it is there."""
    Path(path).unlink(missing_ok=True)
