"""What ``self.log`` does: every logged value, kept for loggers, callbacks and the bar.

Three kinds of value can be logged: a number, a one-element tensor, or a
metric object (a torchmetrics ``Metric``, or anything with ``compute()`` and
``reset()``; this project does not depend on torchmetrics). Numbers and
tensors are reduced here; a metric object keeps its own state: the user
updates it in the step, its ``forward`` result is the step value, and at the
end of the epoch it is computed (syncing itself across processes) and reset.

Values stay tensors on the device until they are shown or written, so logging
inside ``training_step`` never forces the GPU to synchronise. Epoch values are
batch-size-weighted means (or sums, maxima, minima) kept in float64
accumulators; with ``sync_dist=True`` the sums and the batch counts are reduced
across processes *before* dividing, so ranks that saw different numbers of
batches still give the true mean (Lightning averages the ranks' means).

:class:`Metrics` keeps one entry per name, hook, stage and dataloader, and
hands the values out when they are read; Lightning's rules for a name (where
it may be logged, with which options) and the entry that adds its values up
are in ``log_entry.py``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch

from .log_entry import (
    LOGGING_HOOKS,
    LogEntry,
    SyncFn,
    is_metric,
    new_entry,
    refuse_changed,
    reset_metric_objects,
)


def _no_sync(tensor: torch.Tensor, op: str) -> torch.Tensor:
    return tensor


class Metrics:
    """Collects ``self.log`` calls and hands them to loggers and callbacks.

    The Trainer tells it where the loop is: ``hook`` (the hook or step being
    called, as Lightning's ``_current_fx_name``), ``start``/``switch`` (the
    stage), ``new_batch`` (the batch, and its dataloader when an evaluation
    has several) and ``reset`` (a new fit, validate or test run).

    Attributes:
        callback_metrics: Latest value of every logged name, for callbacks
            (ModelCheckpoint, EarlyStopping) and for ``trainer.callback_metrics``.
        progress_bar_metrics: The ``prog_bar=True`` values, for the progress bar.
        logged_metrics: The ``logger=True`` values, as sent to the loggers.
    """

    def __init__(self, sync: SyncFn = _no_sync) -> None:
        self.sync = sync
        self.stage = "train"
        self.hook = ""  # the hook being called; set by the Trainer
        self.callback_metrics: dict[str, torch.Tensor] = {}
        self.progress_bar_metrics: dict[str, torch.Tensor] = {}
        self.logged_metrics: dict[str, torch.Tensor] = {}
        # Epoch names -> the dataloader they were logged from (None: every one).
        self.loader_of: dict[str, int | None] = {}
        self._stages: dict[str, dict[tuple[str, str, int | None], LogEntry]] = {}
        # Each distinct self.log call (stage, hook, dataloader, name, options) -> its
        # entry: a call seen before in the stage's epoch skips the checks.
        self._calls: dict[tuple[Any, ...], LogEntry] = {}
        self._batch: Any = None
        self._batch_size: int | None = None
        self.dataloader_idx: int | None = None  # None: the stage has one dataloader
        self._eval_steps: dict[tuple[str, int | None], int] = {}
        self.batches = 0  # batches seen: tells this step's values from older ones

    def reset(self) -> None:
        """A new run (fit, validate, test): forget every value, as Lightning does."""
        self.hook = ""  # no hook yet: self.log is refused until the Trainer names one
        for entries in self._stages.values():
            reset_metric_objects(entries.values())
        self._stages = {}
        self._calls = {}
        self._eval_steps = {}
        self.callback_metrics.clear()
        self.progress_bar_metrics.clear()
        self.logged_metrics.clear()
        self.loader_of.clear()

    def start(self, stage: str) -> None:
        """Begin an epoch of ``stage``: forget that stage's accumulators."""
        # The last training steps' values stay visible to the validation's
        # callbacks (a monitor check lists them), as in Lightning.
        self.fold_steps()
        self.stage = stage
        self._stages[stage] = {}
        self._calls = {call: entry for call, entry in self._calls.items() if call[0] != stage}
        self.dataloader_idx = None

    def switch(self, stage: str) -> None:
        """Go back to ``stage`` (after a validation inside a training epoch)."""
        self.stage = stage
        self.dataloader_idx = None

    @property
    def _entries(self) -> dict[tuple[str, str, int | None], LogEntry]:
        return self._stages.setdefault(self.stage, {})

    def new_batch(self, batch: Any, dataloader_idx: int | None = None) -> None:
        """Remember the batch, to infer its size only if a value needs it.

        Args:
            batch: The batch the next step receives.
            dataloader_idx: Its dataloader's index when the stage has several
                (names logged per batch get ``/dataloader_idx_N``); None when
                there is one, as in Lightning.
        """
        self._batch = batch
        self._batch_size = None
        self.dataloader_idx = dataloader_idx
        self.batches += 1

    def log(
        self,
        name: str,
        value: Any,
        *,
        prog_bar: bool,
        logger: bool,
        on_step: bool | None,
        on_epoch: bool | None,
        reduce_fx: str | Callable,
        sync_dist: bool,
        batch_size: int | None,
        add_dataloader_idx: bool = True,
        detach: bool = True,
    ) -> None:
        """Record one value; see ``Module.log`` for the options."""
        options = (prog_bar, logger, on_step, on_epoch, reduce_fx, add_dataloader_idx)
        call = (self.stage, self.hook, self.dataloader_idx, name, sync_dist, options)
        entry = self._calls.get(call)
        if entry is None or not isinstance(value, torch.Tensor):
            entry = self._checked_entry(name, value, options, sync_dist)
            self._calls[call] = entry
        entry.batch = self.batches
        if isinstance(value, (torch.Tensor, numbers.Number)):
            self._log_value(entry, name, value, batch_size, detach)
        else:  # a metric object (the checks refused anything else)
            entry.metric = value
            cache = getattr(value, "_forward_cache", None)  # what its forward() returned
            entry.last = cache.detach() if isinstance(cache, torch.Tensor) else None
            entry.fresh = True

    def _checked_entry(
        self, name: str, value: Any, options: tuple[Any, ...], sync_dist: bool
    ) -> LogEntry:
        """The entry a self.log call adds to, after Lightning's checks (made on first use)."""
        levels = LOGGING_HOOKS.get(self.hook)
        if levels is None:
            where = f"in {self.hook}" if self.hook else "outside the steps and epoch hooks"
            raise ValueError(
                f"self.log({name!r}) is not allowed {where}, as in Lightning; log from a "
                "step or an epoch hook, or call trainer.log_metrics() directly"
            )
        prog_bar, logger, on_step, on_epoch, reduce_fx, add_dataloader_idx = options
        on_step = levels.on_step if on_step is None else on_step
        on_epoch = levels.on_epoch if on_epoch is None else on_epoch
        options = (prog_bar, logger, on_step, on_epoch, reduce_fx, add_dataloader_idx)
        dataloader_idx = self.dataloader_idx if levels.per_batch else None
        key = (self.hook, name, dataloader_idx if add_dataloader_idx else None)
        number = isinstance(value, torch.Tensor) or isinstance(value, numbers.Number)
        if not number and not is_metric(value):
            use = "self.log_dict" if isinstance(value, dict) else "a number or a one-element tensor"
            raise ValueError(
                f"self.log({name!r}) got a {type(value).__name__}, which can't be logged; "
                f"use {use}, or a torchmetrics Metric"
            )
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            entry = new_entry(self.hook, name, options, levels, sync_dist, dataloader_idx)
            entries[key] = entry
        elif entry.options != options or entry.dataloader_idx != dataloader_idx:
            refuse_changed(self.hook, name, entry, options, dataloader_idx)
        return entry

    def _log_value(
        self,
        entry: LogEntry,
        name: str,
        value: torch.Tensor | float,
        batch_size: int | None,
        detach: bool,
    ) -> None:
        if not isinstance(value, torch.Tensor):
            value = torch.tensor(float(value))
        elif detach:
            value = value.detach()
        if value.ndim:
            if value.numel() != 1:
                raise ValueError(
                    f"self.log({name!r}) needs a single number, got shape "
                    f"{tuple(value.shape)}; reduce it first (e.g. .mean())"
                )
            value = value.reshape(())
        if entry.on_step:
            # Synced at once, as in Lightning; in training only: evaluation shards
            # unpadded, so the ranks may run different numbers of eval steps.
            synced = entry.sync_dist and self.stage == "train"
            entry.last = self._synced_step(entry, value) if synced else value
            entry.fresh = True
        if entry.on_epoch:
            if batch_size is None and entry.reduce_fx == "mean":
                if self._batch_size is None:  # once per batch, and only if a value needs it
                    self._batch_size = batch_size_of(self._batch)
                batch_size = self._batch_size
            entry.update(value, batch_size or 1)

    def _synced_step(self, entry: LogEntry, value: torch.Tensor) -> torch.Tensor:
        """A step value reduced across processes at once, as Lightning does with sync_dist."""
        if entry.reduce_fx != "mean":
            return self.sync(value, entry.reduce_fx)
        value = value if value.is_floating_point() else value.float()
        # The sum and the process count in one all-reduce.
        total, count = self.sync(torch.stack([value, torch.ones_like(value)]), "sum")
        return total / count

    def fold_steps(self) -> None:
        """Show the latest step values to callbacks, the progress bar and ``logged_metrics``.

        Called when they are read, not on every step: a fast loop shouldn't
        pay for bookkeeping nobody looks at. As in Lightning, callbacks see
        step values only from training.
        """
        training = self.stage == "train"
        for entry in self._entries.values():
            if not entry.fresh or entry.last is None:
                continue
            entry.fresh = False  # shown once: an epoch value shown later stays
            plain, step, _ = entry.keys
            if training:
                self.callback_metrics[plain] = entry.last
                self.callback_metrics[step] = entry.last
            if entry.prog_bar:
                self.progress_bar_metrics[step] = entry.last
            if entry.logger:
                self.logged_metrics[step] = entry.last

    def collect_step(self) -> dict[str, torch.Tensor]:
        """This step's ``on_step`` values, keyed for loggers."""
        self.fold_steps()
        return {
            entry.keys[1]: entry.last
            for entry in self._entries.values()
            if entry.on_step
            and entry.logger
            and entry.batch == self.batches
            and entry.last is not None
        }

    def collect_eval_step(self) -> tuple[dict[str, torch.Tensor], int]:
        """An evaluation batch's ``on_step`` values, and the step to log them at.

        Lightning logs them at a count of the batches this dataloader has
        run in this fit (or validate/test call), not at the global step.
        """
        counter = (self.stage, self.dataloader_idx)
        step = self._eval_steps.get(counter, 0)
        self._eval_steps[counter] = step + 1
        return self.collect_step(), step

    def show_epoch(self) -> None:
        """Show the stage's epoch values so far to callbacks, before its epoch-end hooks.

        In Lightning, ``callback_metrics`` read in ``on_validation_epoch_end``
        or ``on_train_epoch_end`` already hold this epoch's aggregates. They
        are computed here, on every rank at the same point (a synced value is
        a collective operation), not when a hook reads them: a hook that reads
        them on rank zero only must not leave the other ranks waiting.
        """
        self._epoch_values()

    def collect_epoch(self) -> dict[str, torch.Tensor]:
        """Reduce every ``on_epoch`` value of the stage, keyed for loggers.

        Metric objects are computed, then reset: the next epoch starts afresh.
        """
        logged = self._epoch_values()
        reset_metric_objects(self._entries.values())
        self.logged_metrics.update(logged)
        return logged

    def _epoch_values(self) -> dict[str, torch.Tensor]:
        """Reduce the ``on_epoch`` values; show them; return the ``logger=True`` ones."""
        self.fold_steps()  # the last steps' values first, as Lightning shows them per batch
        logged = {}
        for entry in self._entries.values():
            if not entry.on_epoch or (value := entry.reduce(self.sync)) is None:
                continue
            plain, _, epoch = entry.keys
            self.loader_of[epoch] = entry.dataloader_idx
            self.callback_metrics[plain] = value
            self.callback_metrics[epoch] = value
            if entry.prog_bar:
                self.progress_bar_metrics[epoch] = value
            if entry.logger:
                logged[epoch] = value
        return logged


def batch_size_of(batch: Any) -> int:
    """The length of the first tensor found in the batch (1 if there is none)."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.ndim else 1
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            if isinstance(item, torch.Tensor):  # the common case, without recursing
                return item.shape[0] if item.ndim else 1
            size = batch_size_of(item)
            if size != 1 or isinstance(item, torch.Tensor):
                return size
    return 1


def as_floats(metrics: dict[str, torch.Tensor]) -> dict[str, float]:
    """Tensors to Python floats, for loggers and the progress bar."""
    return {name: float(value) for name, value in metrics.items()}
