"""What ``self.log`` does: Lightning's rules for where, when and how values are logged.

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
"""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

# all_reduce(tensor, op) for sync_dist; the identity on a single process.
SyncFn = Callable[[torch.Tensor, str], torch.Tensor]


class _Levels(NamedTuple):
    """Where a hook may log: its on_step/on_epoch defaults and whether it runs per batch."""

    on_step: bool
    on_epoch: bool
    per_batch: bool  # per-batch hooks may choose on_step and on_epoch; epoch hooks may not


# The hooks that may call self.log, as recorded from pytorch_lightning 2.6.6
# (tests/test_metric_objects.py checks each against it): every other hook
# refuses, e.g. on_fit_start, setup, configure_optimizers, predict_step.
_TRAIN_BATCH = (
    "training_step",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "optimizer_step",
    "configure_gradient_clipping",
    "clip_gradients",
    "on_before_zero_grad",
    "optimizer_zero_grad",
)
_EVAL_BATCH = tuple(
    hook
    for stage in ("validation", "test")
    for hook in (f"{stage}_step", f"on_{stage}_batch_start", f"on_{stage}_batch_end")
)
_EPOCH = (
    "on_train_start",
    "on_validation_start",
    "on_test_start",
    *(
        f"on_{stage}_epoch_{when}"
        for stage in ("train", "validation", "test")
        for when in ("start", "end")
    ),
)
LOGGING_HOOKS: dict[str, _Levels] = {
    **dict.fromkeys(_TRAIN_BATCH, _Levels(on_step=True, on_epoch=False, per_batch=True)),
    **dict.fromkeys(_EVAL_BATCH, _Levels(on_step=False, on_epoch=True, per_batch=True)),
    **dict.fromkeys(_EPOCH, _Levels(on_step=False, on_epoch=True, per_batch=False)),
}

# reduce_fx: Lightning's names (any case, "avg" for mean) and the functions it accepts.
_REDUCTIONS: dict[Any, str] = {
    "mean": "mean",
    "avg": "mean",
    "sum": "sum",
    "max": "max",
    "min": "min",
    torch.mean: "mean",
    torch.sum: "sum",
    builtins.sum: "sum",
    torch.max: "max",
    builtins.max: "max",
    torch.min: "min",
    builtins.min: "min",
}
DATALOADER_SUFFIX = "/dataloader_idx_{}"


def is_metric(value: Any) -> bool:
    """A metric object (torchmetrics ``Metric`` or ``MetricCollection``): it computes and resets."""
    return callable(getattr(value, "compute", None)) and callable(getattr(value, "reset", None))


def _no_sync(tensor: torch.Tensor, op: str) -> torch.Tensor:
    return tensor


@dataclass
class _Entry:
    """One logged name, from one hook (and dataloader), within one stage."""

    options: tuple[Any, ...]  # what it was first logged with: a later call must match
    on_step: bool
    on_epoch: bool
    prog_bar: bool
    logger: bool
    reduce_fx: str
    sync_dist: bool
    dataloader_idx: int | None
    keys: tuple[str, str, str]  # (plain, step, epoch) names, suffixed per dataloader
    metric: Any = None  # a metric object: it holds the state, not this entry
    last: torch.Tensor | None = None  # the most recent step value
    fresh: bool = False  # `last` is not yet shown to callbacks (see Metrics.fold_steps)
    total: torch.Tensor | float | None = None  # weighted sum, or running max/min
    weight: float = 0.0  # sum of batch sizes that went into `total`
    batch: int = -1  # the Metrics.batches count when last logged

    def update(self, value: torch.Tensor, batch_size: int) -> None:
        self.weight += batch_size
        if self.reduce_fx in ("mean", "sum") and value.device.type == "cpu":
            # A CPU sum is kept in a Python float (float64): reading the value
            # is free there, and an in-place tensor add costs ~8 µs a step.
            number = value.item() * (batch_size if self.reduce_fx == "mean" else 1)
            self.total = number if self.total is None else self.total + number
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

    def reduce(self, sync: SyncFn) -> torch.Tensor | None:
        """The epoch value: the metric object's ``compute()``, or the reduced steps."""
        if self.metric is not None:
            return _computed(self.metric, self.keys[0])
        total = self.total
        if total is None:
            return None
        if not isinstance(total, torch.Tensor):
            total = torch.tensor(total, dtype=torch.float64)
        if self.reduce_fx == "mean":
            weight = torch.tensor(self.weight, dtype=total.dtype, device=total.device)
            if self.sync_dist:
                total, weight = sync(total, "sum"), sync(weight, "sum")
            return total / weight
        return sync(total, self.reduce_fx) if self.sync_dist else total


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
        self._stages: dict[str, dict[tuple[str, str, int | None], _Entry]] = {}
        self._batch: Any = None
        self._batch_size: int | None = None
        self.dataloader_idx: int | None = None  # None: the stage has one dataloader
        self._eval_steps: dict[tuple[str, int | None], int] = {}
        self.batches = 0  # batches seen: tells this step's values from older ones

    def reset(self) -> None:
        """A new run (fit, validate, test): forget every value, as Lightning does."""
        self.hook = ""  # no hook yet: self.log is refused until the Trainer names one
        for entries in self._stages.values():
            _reset_metric_objects(entries.values())
        self._stages = {}
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
        self.dataloader_idx = None

    def switch(self, stage: str) -> None:
        """Go back to ``stage`` (after a validation inside a training epoch)."""
        self.stage = stage
        self.dataloader_idx = None

    @property
    def _entries(self) -> dict[tuple[str, str, int | None], _Entry]:
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
        levels = LOGGING_HOOKS.get(self.hook)
        if levels is None:
            where = f"in {self.hook}" if self.hook else "outside the steps and epoch hooks"
            raise ValueError(
                f"self.log({name!r}) is not allowed {where}, as in Lightning; log from a "
                "step or an epoch hook, or call trainer.log_metrics() directly"
            )
        on_step = levels.on_step if on_step is None else on_step
        on_epoch = levels.on_epoch if on_epoch is None else on_epoch
        dataloader_idx = self.dataloader_idx if levels.per_batch else None
        key = (self.hook, name, dataloader_idx if add_dataloader_idx else None)
        options = (prog_bar, logger, on_step, on_epoch, reduce_fx, add_dataloader_idx)
        number = isinstance(value, torch.Tensor) or isinstance(value, numbers.Number)
        if not number and not is_metric(value):
            use = "self.log_dict" if isinstance(value, dict) else "a number or a one-element tensor"
            raise ValueError(
                f"self.log({name!r}) got a {type(value).__name__}, which can't be logged; "
                f"use {use}, or a torchmetrics Metric"
            )
        entry = self._entries.get(key)
        if entry is None:
            entry = self._new_entry(name, options, levels, sync_dist, dataloader_idx)
            self._entries[key] = entry
        elif entry.options != options or entry.dataloader_idx != dataloader_idx:
            self._refuse_changed(name, entry, options, dataloader_idx)
        entry.batch = self.batches
        if number:
            self._log_value(entry, name, value, batch_size, detach)
        else:
            entry.metric = value
            cache = getattr(value, "_forward_cache", None)  # what its forward() returned
            entry.last = cache.detach() if isinstance(cache, torch.Tensor) else None
            entry.fresh = True

    def _log_value(
        self,
        entry: _Entry,
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
                batch_size = self._inferred_batch_size()
            entry.update(value, batch_size or 1)

    def _synced_step(self, entry: _Entry, value: torch.Tensor) -> torch.Tensor:
        """A step value reduced across processes at once, as Lightning does with sync_dist."""
        if entry.reduce_fx != "mean":
            return self.sync(value, entry.reduce_fx)
        value = value if value.is_floating_point() else value.float()
        # The sum and the process count in one all-reduce.
        total, count = self.sync(torch.stack([value, torch.ones_like(value)]), "sum")
        return total / count

    def _new_entry(
        self,
        name: str,
        options: tuple[Any, ...],
        levels: _Levels,
        sync_dist: bool,
        dataloader_idx: int | None,
    ) -> _Entry:
        """Check a name's first call against Lightning's rules; its entry."""
        prog_bar, logger, on_step, on_epoch, reduce_fx, add_dataloader_idx = options
        hook = self.hook
        if not levels.per_batch and (on_step or not on_epoch):
            option = "on_step=True" if on_step else "on_epoch=False"
            raise ValueError(
                f"self.log({name!r}, {option}) is not allowed in {hook}: it runs once per "
                "epoch, so its values are epoch values; leave on_step and on_epoch unset"
            )
        if not on_step and not on_epoch:
            raise ValueError(
                f"self.log({name!r}, on_step=False, on_epoch=False) logs nothing; "
                "set one of them to True"
            )
        reduction = _REDUCTIONS.get(reduce_fx.lower() if isinstance(reduce_fx, str) else reduce_fx)
        if reduction is None:
            raise ValueError(
                f"self.log({name!r}, reduce_fx={reduce_fx!r}): use 'mean', 'sum', 'max' or "
                "'min' (as in Lightning); for another reduction log a torchmetrics Metric"
            )
        if add_dataloader_idx and "/dataloader_idx_" in name:
            raise ValueError(
                f"self.log({name!r}): '/dataloader_idx_N' is added to names for you; "
                "log the plain name, or pass add_dataloader_idx=False"
            )
        suffix = ""
        if add_dataloader_idx and dataloader_idx is not None:
            suffix = DATALOADER_SUFFIX.format(dataloader_idx)
        forked = on_step and on_epoch
        keys = (
            name + suffix,
            f"{name}_step{suffix}" if forked else name + suffix,
            f"{name}_epoch{suffix}" if forked else name + suffix,
        )
        return _Entry(
            options, on_step, on_epoch, prog_bar, logger, reduction, sync_dist, dataloader_idx, keys
        )

    def _refuse_changed(
        self, name: str, entry: _Entry, options: tuple[Any, ...], dataloader_idx: int | None
    ) -> None:
        """A name logged again in the same hook with other options: Lightning refuses it."""
        if entry.dataloader_idx != dataloader_idx:
            raise ValueError(
                f"self.log({name!r}, add_dataloader_idx=False) in {self.hook} for dataloaders "
                f"{entry.dataloader_idx} and {dataloader_idx} would mix their values; give "
                "each dataloader its own name"
            )
        labels = ("prog_bar", "logger", "on_step", "on_epoch", "reduce_fx", "add_dataloader_idx")
        changed = ", ".join(
            f"{label}={new!r} (was {old!r})"
            for label, old, new in zip(labels, entry.options, options, strict=True)
            if old != new
        )
        raise ValueError(
            f"self.log({name!r}) was called twice in {self.hook} with different options: "
            f"{changed}; log it with the same options, or under another name"
        )

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
        _reset_metric_objects(self._entries.values())
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

    def _inferred_batch_size(self) -> int:
        if self._batch_size is None:
            self._batch_size = batch_size_of(self._batch)
        return self._batch_size


def _computed(metric: Any, name: str) -> torch.Tensor:
    """A metric object's epoch value; its ``compute()`` syncs it across processes."""
    value = metric.compute()
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        found = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(
            f"self.log({name!r}): the metric's compute() gave {found}, not a single number; "
            "log a metric that computes one value (e.g. average='micro'), or log_dict its parts"
        )
    return value.detach().reshape(())


def _reset_metric_objects(entries: Any) -> None:
    """Reset each metric object logged in ``entries`` once (one may be logged twice)."""
    for metric in {id(e.metric): e.metric for e in entries if e.metric is not None}.values():
        metric.reset()


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
