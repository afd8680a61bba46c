"""What ``self.log`` does: Lightning's step/epoch semantics in one small class.

Values stay tensors on the device until they are shown or written, so logging
inside ``training_step`` never forces the GPU to synchronise. Epoch values are
batch-size-weighted means (or sums, maxima, minima) kept in float64
accumulators; with ``sync_dist=True`` the sums and the batch counts are reduced
across processes *before* dividing, so ranks that saw different numbers of
batches still give the true mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

# Hooks where self.log defaults to per-step values (all others: per-epoch).
STEP_HOOKS = frozenset({"training_step", "on_train_batch_end"})
REDUCTIONS = ("mean", "sum", "max", "min")

# all_reduce(tensor, op) for sync_dist; the identity on a single process.
SyncFn = Callable[[torch.Tensor, str], torch.Tensor]


def _no_sync(tensor: torch.Tensor, op: str) -> torch.Tensor:
    return tensor


@dataclass
class _Entry:
    """One logged name within one stage (train, validate or test)."""

    on_step: bool
    on_epoch: bool
    prog_bar: bool
    logger: bool
    reduce_fx: str
    sync_dist: bool
    last: torch.Tensor | None = None  # the most recent step value
    total: torch.Tensor | None = None  # weighted sum, or running max/min
    weight: float = 0.0  # sum of batch sizes that went into `total`
    batch: int = -1  # the Metrics.batches count when last logged
    keys: tuple[str, str] = field(default=("", ""))  # (step key, epoch key)

    def update(self, value: torch.Tensor, batch: int, batch_size: int) -> None:
        self.last = value
        self.batch = batch
        if not self.on_epoch:
            return
        if self.total is None:
            # float64 accumulators: float32 sums drift over long epochs (MPS has
            # no float64, so it keeps float32).
            dtype = torch.float32 if value.device.type == "mps" else torch.float64
            if self.reduce_fx in ("mean", "sum"):
                self.total = torch.zeros((), dtype=dtype, device=value.device)
            else:
                self.total = value.to(dtype)
        # In place, one kernel per call: this runs inside every training step.
        if self.reduce_fx == "mean":
            self.total.add_(value, alpha=batch_size)
        elif self.reduce_fx == "sum":
            self.total.add_(value)
        elif self.reduce_fx == "max":
            torch.maximum(self.total, value, out=self.total)
        else:
            torch.minimum(self.total, value, out=self.total)
        self.weight += batch_size

    def reduce(self, sync: SyncFn) -> torch.Tensor:
        total = self.total
        if self.reduce_fx == "mean":
            weight = torch.tensor(self.weight, dtype=total.dtype, device=total.device)
            if self.sync_dist:
                total, weight = sync(total, "sum"), sync(weight, "sum")
            return total / weight
        return sync(total, self.reduce_fx) if self.sync_dist else total


class Metrics:
    """Collects ``self.log`` calls and hands them to loggers and callbacks.

    Attributes:
        callback_metrics: Latest value of every logged name, for callbacks
            (ModelCheckpoint, EarlyStopping) and for ``trainer.callback_metrics``.
        progress_bar_metrics: The ``prog_bar=True`` subset, for the progress bar.
    """

    def __init__(self, sync: SyncFn = _no_sync) -> None:
        self.sync = sync
        self.stage = "train"
        self.hook = "training_step"
        self.callback_metrics: dict[str, torch.Tensor] = {}
        self.progress_bar_metrics: dict[str, torch.Tensor] = {}
        self._stages: dict[str, dict[str, _Entry]] = {}
        self._batch: Any = None
        self._batch_size: int | None = None
        self.batches = 0  # batches seen: tells this step's values from older ones

    def start(self, stage: str) -> None:
        """Begin an epoch of ``stage``: forget that stage's accumulators."""
        self.stage = stage
        self._stages[stage] = {}

    def switch(self, stage: str) -> None:
        """Go back to ``stage`` (after a validation inside a training epoch)."""
        self.stage = stage

    @property
    def _entries(self) -> dict[str, _Entry]:
        return self._stages.setdefault(self.stage, {})

    def new_batch(self, batch: Any) -> None:
        """Remember the batch, to infer its size only if a metric needs it."""
        self._batch = batch
        self._batch_size = None
        self.batches += 1

    def log(
        self,
        name: str,
        value: torch.Tensor | float,
        *,
        prog_bar: bool,
        logger: bool,
        on_step: bool | None,
        on_epoch: bool | None,
        reduce_fx: str,
        sync_dist: bool,
        batch_size: int | None,
    ) -> None:
        """Record one value; see ``Module.log`` for the options."""
        if reduce_fx not in REDUCTIONS:
            raise ValueError(
                f"self.log({name!r}, reduce_fx={reduce_fx!r}): use one of {REDUCTIONS}"
            )
        step_default = self.hook in STEP_HOOKS
        on_step = step_default if on_step is None else on_step
        on_epoch = (not step_default) if on_epoch is None else on_epoch
        if on_step and self.hook not in STEP_HOOKS:
            raise ValueError(
                f"self.log({name!r}, on_step=True) is only allowed in training_step "
                f"(called from {self.hook}); use on_epoch=True"
            )
        if not isinstance(value, torch.Tensor):
            value = torch.tensor(float(value))
        value = value.detach()
        if value.ndim:
            if value.numel() != 1:
                raise ValueError(
                    f"self.log({name!r}) needs a single number, got shape "
                    f"{tuple(value.shape)}; reduce it first (e.g. .mean())"
                )
            value = value.reshape(())
        entry = self._entries.get(name)
        if entry is None:
            entry = _Entry(on_step, on_epoch, prog_bar, logger, reduce_fx, sync_dist)
            forked = on_step and on_epoch
            entry.keys = (f"{name}_step", f"{name}_epoch") if forked else (name, name)
            self._entries[name] = entry
        if batch_size is None and on_epoch and reduce_fx == "mean":
            batch_size = self._inferred_batch_size()
        entry.update(value, self.batches, batch_size or 1)

    def fold_steps(self) -> None:
        """Show the latest step values to callbacks and the progress bar.

        Called when they are read, not on every step: a fast loop shouldn't
        pay for bookkeeping nobody looks at.
        """
        for name, entry in self._entries.items():
            if not entry.on_step or entry.last is None:
                continue
            key = entry.keys[0]
            self.callback_metrics[key] = entry.last
            if not entry.on_epoch:
                self.callback_metrics[name] = entry.last
            if entry.prog_bar:
                self.progress_bar_metrics[key] = entry.last

    def collect_step(self) -> dict[str, torch.Tensor]:
        """This step's ``on_step`` values, keyed for loggers."""
        self.fold_steps()
        return {
            entry.keys[0]: entry.last
            for entry in self._entries.values()
            if entry.on_step and entry.logger and entry.batch == self.batches
        }

    def collect_epoch(self) -> dict[str, torch.Tensor]:
        """Reduce every ``on_epoch`` value of the stage, keyed for loggers."""
        logged = {}
        for name, entry in self._entries.items():
            if not entry.on_epoch or entry.total is None:
                continue
            value = entry.reduce(self.sync)
            key = entry.keys[1]
            self.callback_metrics[key] = value
            self.callback_metrics[name] = value
            if entry.prog_bar:
                self.progress_bar_metrics[key] = value
            if entry.logger:
                logged[key] = value
        return logged

    def _inferred_batch_size(self) -> int:
        if self._batch_size is None:
            self._batch_size = batch_size_of(self._batch)
        return self._batch_size


def batch_size_of(batch: Any) -> int:
    """The length of the first tensor found in the batch (1 if there is none)."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.ndim else 1
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            size = batch_size_of(item)
            if size != 1 or isinstance(item, torch.Tensor):
                return size
    return 1


def as_floats(metrics: dict[str, torch.Tensor]) -> dict[str, float]:
    """Tensors to Python floats, for loggers and the progress bar."""
    return {name: float(value) for name, value in metrics.items()}
