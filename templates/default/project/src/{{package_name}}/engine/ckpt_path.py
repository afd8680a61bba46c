"""What ``--ckpt_path`` names: 'last', 'best' or the path of a checkpoint.

'last' is the newest ``last.ckpt`` under the runs folder. 'best' is what the
ModelCheckpoint that ranked that run's checkpoints recorded in it, found beside
it, so a run folder that was moved or copied still works; in the process that
trained, the callback knows it. Each refusal names the run and what to pass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checkpoint import TEMP, CheckpointError, clean_stale, load


def find_last(root: str | Path, asked: str = "last") -> Path:
    """The most recent ``last.ckpt`` under ``root`` (for ``--ckpt_path last``).

    What killed writers left beside a last.ckpt is tidied first (:func:`clean_stale`),
    so a sharded one killed between its two renames is found in place.
    """
    root = Path(root)
    for folder in {tmp.parent for tmp in root.glob(f"**/.last.ckpt.*{TEMP}")}:
        clean_stale(folder)
    candidates = sorted(root.glob("**/last.ckpt"), key=os.path.getmtime)
    if not candidates:
        why = "" if asked == "last" else " (ModelCheckpoint records the best one there)"
        raise CheckpointError(
            f"--ckpt_path {asked}: no last.ckpt under {str(root)!r}{why}; train first, "
            "or pass the path of a checkpoint"
        )
    return candidates[-1]


def find_best(root: str | Path, callbacks: Sequence[Any] = ()) -> Path:
    """The best checkpoint for ``--ckpt_path best``.

    In the process that trained, the ModelCheckpoint callback knows it. In a
    later one, it is the ``best_model_path`` that the ModelCheckpoint state in
    the newest last.ckpt (what ``--ckpt_path last`` picks) recorded, found
    beside that last.ckpt, so a run folder that was moved or copied still works.

    Raises:
        CheckpointError: Naming that run, when it ranked nothing (no
            ModelCheckpoint, no monitor, or another monitor than ``callbacks``'),
            or its best checkpoint is gone.
    """
    ours = [cb for cb in callbacks if hasattr(cb, "best_model_path")]
    if ours and ours[0].best_model_path:  # this process trained
        return Path(ours[0].best_model_path)
    last = find_last(root, asked="best")
    run = f"--ckpt_path best: the run that wrote {str(last)!r}"
    state = _trainer_state(last)
    if state.get("weights_only") is True:
        raise CheckpointError(
            f"{run} saved weights only (save_weights_only=True), which keep no record of "
            "the best checkpoint; pass the path of a checkpoint"
        )
    saved = _ranking(state, ours[0].monitor if ours else None)
    if saved is None:
        raise CheckpointError(
            f"{run} had no ModelCheckpoint, so it ranked no checkpoint; pass 'last' or "
            "the path of a checkpoint"
        )
    monitor = saved.get("monitor")
    if monitor is None:
        raise CheckpointError(
            f"{run} ranked no metric (checkpoint.monitor was null); pass 'last', or train "
            "with --checkpoint.monitor set to a logged metric"
        )
    if ours and ours[0].monitor not in (None, monitor):
        raise CheckpointError(
            f"{run} ranked its checkpoints by {monitor!r}, not {ours[0].monitor!r} as "
            f"checkpoint.monitor says here; pass --checkpoint.monitor {monitor} for its best, "
            "or the path of a checkpoint"
        )
    if not saved.get("best_model_path"):
        raise CheckpointError(
            f"{run} saved no checkpoint ranked by {monitor!r} (validation never logged it, "
            "or save_top_k was 0); pass 'last' or the path of a checkpoint"
        )
    best = _beside(last, Path(saved["best_model_path"]), saved.get("dirpath"))
    if not best.exists():
        raise CheckpointError(
            f"{run} recorded {str(best)!r} as its best by {monitor!r} "
            f"({saved['best_model_score']:.6g}), which no longer exists (deleted or moved); "
            "pass 'last' or the path of another checkpoint"
        )
    return best


def _trainer_state(last: Path) -> dict[str, Any]:
    """What ``last`` (a file or a sharded folder) holds besides the weights."""
    if last.is_dir():
        try:  # checkpoint folders exist in fsdp and deepspeed projects only
            from .checkpoint_folder import SHARDED, TRAINER_FILE  # it imports this module
        except ImportError:
            state = load(last)  # refuses the folder, saying what it is
        else:
            state = load(last / TRAINER_FILE, without=SHARDED)
    else:
        state = load(last, weights=False)
    return state


def _ranking(state: dict[str, Any], monitor: str | None) -> dict[str, Any] | None:
    """The ModelCheckpoint state in a checkpoint's ``state``, ``monitor``'s if any."""
    states = state["callbacks"].values()  # duck typing: a ModelCheckpoint's has best_model_path
    found = [s for s in states if isinstance(s, dict) and "best_model_path" in s]
    return ([s for s in found if s.get("monitor") == monitor] or found or [None])[0]


def _beside(last: Path, best: Path, dirpath: str | None) -> Path:
    """Where ``best`` is now: ModelCheckpoint wrote it in ``last``'s folder (its dirpath)."""
    if dirpath is not None:
        try:
            return last.parent / best.relative_to(dirpath)
        except ValueError:
            pass  # written elsewhere: take it as it was recorded
    return best


def resolve(ckpt_path: str | Path, root: str | Path, callbacks: Sequence[Any] = ()) -> Path:
    """``--ckpt_path``: 'last' (the newest last.ckpt under ``root``), 'best' or a path that exists.

    ``callbacks``: the Trainer's, for 'best' (:func:`find_best`).
    """
    if str(ckpt_path) == "best":
        path = find_best(root, callbacks)
    elif str(ckpt_path) == "last":
        path = find_last(root)
    else:
        path = Path(ckpt_path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return path
