"""One name given to ``self.log``: Lightning's rules for it, and where its values add up.

:data:`LOGGING_HOOKS` says which hooks may log, with which ``on_step`` and
``on_epoch`` defaults (recorded from pytorch_lightning 2.6.6);
:func:`new_entry` checks a name's first call against Lightning's rules, and
:func:`refuse_changed` refuses a later call with other options. A
:class:`LogEntry` adds up the name's values over an epoch (a
batch-size-weighted mean, a sum, a maximum or a minimum), or holds the metric
object that keeps its own state. ``metrics.py`` keeps the entries of every
name, stage and dataloader, and hands their values out.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn

import torch

# all_reduce(tensor, op) for sync_dist; the identity on a single process.
SyncFn = Callable[[torch.Tensor, str], torch.Tensor]


class Levels(NamedTuple):
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
LOGGING_HOOKS: dict[str, Levels] = {
    **dict.fromkeys(_TRAIN_BATCH, Levels(on_step=True, on_epoch=False, per_batch=True)),
    **dict.fromkeys(_EVAL_BATCH, Levels(on_step=False, on_epoch=True, per_batch=True)),
    **dict.fromkeys(_EPOCH, Levels(on_step=False, on_epoch=True, per_batch=False)),
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


@dataclass
class LogEntry:
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
    fresh: bool = False  # `last` is not yet shown to callbacks (see metrics.Metrics.fold_steps)
    total: torch.Tensor | float | None = None  # weighted sum, or running max/min
    weight: float = 0.0  # sum of batch sizes that went into `total`
    batch: int = -1  # the Metrics.batches count when last logged

    def update(self, value: torch.Tensor, batch_size: int) -> None:
        self.weight += batch_size
        if value.is_cpu and self.reduce_fx in ("mean", "sum"):
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


def new_entry(
    hook: str,
    name: str,
    options: tuple[Any, ...],
    levels: Levels,
    sync_dist: bool,
    dataloader_idx: int | None,
) -> LogEntry:
    """Check a name's first call against Lightning's rules; its entry."""
    prog_bar, logger, on_step, on_epoch, reduce_fx, add_dataloader_idx = options
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
    return LogEntry(
        options, on_step, on_epoch, prog_bar, logger, reduction, sync_dist, dataloader_idx, keys
    )


def refuse_changed(
    hook: str, name: str, entry: LogEntry, options: tuple[Any, ...], dataloader_idx: int | None
) -> NoReturn:
    """A name logged again in the same hook with other options: Lightning refuses it."""
    if entry.dataloader_idx != dataloader_idx:
        raise ValueError(
            f"self.log({name!r}, add_dataloader_idx=False) in {hook} for dataloaders "
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
        f"self.log({name!r}) was called twice in {hook} with different options: "
        f"{changed}; log it with the same options, or under another name"
    )


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


def reset_metric_objects(entries: Any) -> None:
    """Reset each metric object logged in ``entries`` once (one may be logged twice)."""
    for metric in {id(e.metric): e.metric for e in entries if e.metric is not None}.values():
        metric.reset()
