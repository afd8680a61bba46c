"""Lightning's learning-rate finder: ``Tuner(trainer).lr_find(model)``, and its callback.

A learning-rate range test: train for ``num_training`` steps while the
learning rate grows from ``min_lr`` to ``max_lr`` (exponentially or linearly),
record the loss (smoothed) at each, stop early once it diverges, then put back
everything the test changed: the weights, the optimizer and schedulers, the
loop's position, the random generators. ``LRFinder.suggestion()`` is the rate
where the loss falls fastest; with ``update_attr`` (the default) it becomes the
module's ``lr`` or ``learning_rate`` (an attribute or a saved hyperparameter),
so the next ``fit`` builds its optimizer with it, as in Lightning 2.6.6::

    tuner = Tuner(trainer)
    finder = tuner.lr_find(model, datamodule=data)
    finder.plot(suggest=True)  # needs matplotlib (this project's "plot" extra)
    trainer.fit(model, datamodule=data)

The test runs the fit's own loop (``Trainer._train``) with only its recorder
as a callback: no logger, no checkpoint, no run folder. Differences from
Lightning: an exponential sweep's suggestion takes the slope against
``log10(lr)`` (see :meth:`LRFinder.suggestion`); it keeps its snapshot in
memory, not in a temporary checkpoint file; a non-finite loss ends it
(Lightning's goes on recording nan, which its suggestion leaves out too);
DeepSpeed, whose engine owns the optimizer, is refused.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from .attributes import TrainerFn, running
from .errors import NonFiniteLossError, UsageError
from .hooks import Hooks
from .metrics import Metrics
from .module import DataModule
from .optim import _config
from .progress import ProgressBar
from .rng import restore_rng_states, rng_states

if TYPE_CHECKING:
    from .module import Module
    from .trainer import Trainer

MODES = ("linear", "exponential")


class LRFinder:
    """What a search found (Lightning's ``_LRFinder``).

    Attributes:
        results: ``{"lr": [...], "loss": [...]}``, one entry per optimizer step
            (the loss smoothed, as Lightning's).
    """

    def __init__(self, mode: str, lr_min: float, lr_max: float, num_training: int) -> None:
        self.mode, self.lr_min, self.lr_max, self.num_training = mode, lr_min, lr_max, num_training
        self.results: dict[str, list[float]] = {"lr": [], "loss": []}
        self._optimal_idx: int | None = None

    def suggestion(self, skip_begin: int = 10, skip_end: int = 1) -> float | None:
        """The rate where the loss falls fastest, leaving out the first ``skip_begin`` and
        last ``skip_end`` points and any non-finite loss; None (with a warning) when fewer
        than two points are left.

        The slope is taken against the rates as they were spaced: ``log10(lr)`` for
        an exponential sweep, ``lr`` for a linear one. Lightning 2.6.6 takes it
        against ``lr`` in both modes, so on an exponential sweep its steepest slope
        is almost always among the tiny rates, where the points are closest (its
        issue 21141); linear sweeps get Lightning's suggestion.
        """
        end = len(self.results["loss"]) - skip_end
        kept = [
            i for i in range(skip_begin, end) if math.isfinite(self.results["loss"][i])
        ]  # the same points as Lightning's slices and mask
        if len(kept) < 2:
            warnings.warn(
                "Failed to compute suggestion for learning rate because there are not enough "
                "points. Increase the loop iteration limits or the size of your "
                "dataset/dataloader.",
                stacklevel=2,
            )
            self._optimal_idx = None
            return None
        # float32, as Lightning's: the same slopes, so the same argmin (linear mode).
        losses = torch.tensor([self.results["loss"][i] for i in kept])
        rates = torch.tensor([self.results["lr"][i] for i in kept])
        if self.mode == "exponential":
            rates = torch.log10(rates)
        slopes = torch.gradient(losses, spacing=[rates])[0]
        self._optimal_idx = kept[int(torch.argmin(slopes))]
        return self.results["lr"][self._optimal_idx]

    def plot(self, suggest: bool = False, show: bool = False, ax: Any = None) -> Any:
        """The loss against the learning rate (a log axis for ``exponential``); with
        ``suggest``, the suggestion as a red point. Returns the figure."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise UsageError(
                "LRFinder.plot needs matplotlib: pip install -e '.[plot]' (or pip install "
                "matplotlib)"
            ) from None
        figure = ax.figure if ax is not None else None
        if ax is None:
            figure, ax = plt.subplots()
        ax.plot(self.results["lr"], self.results["loss"])
        if self.mode == "exponential":
            ax.set_xscale("log")
        ax.set_xlabel("Learning rate")
        ax.set_ylabel("Loss")
        if suggest and self.suggestion() is not None and self._optimal_idx:
            best = self._optimal_idx
            point = self.results["lr"][best], self.results["loss"][best]
            ax.plot(*point, markersize=10, marker="o", color="red")
        if show:
            plt.show()
        return figure


class LearningRateFinder:
    """Lightning's callback: the range test at ``on_fit_start``, then the fit goes on
    with the suggested rate (or call :meth:`lr_find` from another hook).

    Args:
        min_lr: The first learning rate tried.
        max_lr: The last.
        num_training_steps: Optimizer steps (rates tried).
        mode: ``"exponential"`` or ``"linear"`` growth.
        early_stop_threshold: Stop once the smoothed loss exceeds this many times
            the best so far (None: never).
        update_attr: Set the module's learning-rate attribute to the suggestion.
        attr_name: That attribute's name (default: ``lr`` or ``learning_rate``,
            on the module, its hparams or the DataModule).
    """

    SUPPORTED_MODES = MODES

    def __init__(
        self,
        min_lr: float = 1e-8,
        max_lr: float = 1,
        num_training_steps: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        update_attr: bool = True,
        attr_name: str = "",
    ) -> None:
        mode = mode.lower()
        if mode not in MODES:
            raise ValueError(f"`mode` should be either of {MODES}")
        self._options = {
            "min_lr": min_lr,
            "max_lr": max_lr,
            "num_training": num_training_steps,
            "mode": mode,
            "early_stop_threshold": early_stop_threshold,
            "update_attr": update_attr,
            "attr_name": attr_name,
        }
        self.optimal_lr: LRFinder | None = None

    def lr_find(self, trainer: Trainer, pl_module: Module) -> None:
        """Run the range test now; its result is ``self.optimal_lr``."""
        self.optimal_lr = lr_find(trainer, pl_module, **self._options)

    def on_fit_start(self, trainer: Trainer, pl_module: Module) -> None:
        self.lr_find(trainer, pl_module)


class Tuner:
    """Lightning's ``Tuner``: ``lr_find`` (``scale_batch_size`` is not in this engine)."""

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer

    def lr_find(
        self,
        model: Module,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        dataloaders: Any = None,
        datamodule: DataModule | None = None,
        method: str = "fit",
        min_lr: float = 1e-8,
        max_lr: float = 1,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        update_attr: bool = True,
        attr_name: str = "",
    ) -> LRFinder | None:
        """Set the fit up as ``fit`` does, run the range test, tear down: nothing is
        trained or written. Returns what it found (None under ``fast_dev_run``)."""
        if method != "fit":
            raise UsageError("method='fit' is the only valid configuration to run lr finder.")
        if dataloaders is not None:
            raise UsageError(
                "In tuner with method='fit', `dataloaders` argument should be None, please "
                "consider setting `train_dataloaders` and `val_dataloaders` instead."
            )
        if any(isinstance(cb, LearningRateFinder) for cb in self._trainer.callbacks):
            raise ValueError(
                "Trainer is already configured with a `LearningRateFinder` callback. Please "
                "remove it if you want to use the Tuner."
            )
        finder = LearningRateFinder(
            min_lr, max_lr, num_training, mode, early_stop_threshold, update_attr, attr_name
        )
        _tune(self._trainer, finder, model, train_dataloaders, val_dataloaders, datamodule)
        return finder.optimal_lr

    def scale_batch_size(self, *args: Any, **kwargs: Any) -> None:
        """Not in this engine: say so, and what to do instead."""
        raise UsageError(
            "Tuner.scale_batch_size is not in this engine: set the batch size in the "
            "DataModule (e.g. --data.batch_size) and try a few, or sweep it (docs/sweeps.md)"
        )


@running(TrainerFn.FITTING)
def _tune(
    trainer: Trainer,
    finder: LearningRateFinder,
    model: Module,
    train_dataloaders: Any,
    val_dataloaders: Any,
    datamodule: DataModule | None,
) -> None:
    """Lightning's tuning fit: its set-up, the search, its teardown; no run folder."""
    trainer.should_stop = False
    trainer._setup()
    module = trainer._prepare_fit(model, train_dataloaders, val_dataloaders, datamodule)
    finder.lr_find(trainer, module)
    trainer.hooks.teardown("fit")
    trainer.strategy.barrier()


def lr_find(
    trainer: Trainer,
    module: Module,
    *,
    min_lr: float = 1e-8,
    max_lr: float = 1,
    num_training: int = 100,
    mode: str = "exponential",
    early_stop_threshold: float | None = 4.0,
    update_attr: bool = False,
    attr_name: str = "",
) -> LRFinder | None:
    """The range test on a fit that is set up (optimizers built, loaders known)."""
    if trainer.config.fast_dev_run:
        message = "Skipping learning rate finder since `fast_dev_run` is enabled."
        warnings.warn(message, stacklevel=2)
        return None
    if update_attr:
        attr_name = _lr_attribute(module, trainer.datamodule, attr_name)
    if len(trainer.optimizers) != 1:
        raise UsageError(
            f"configure_optimizers returned {len(trainer.optimizers)} optimizers; the "
            "learning rate finder works with one"
        )
    if trainer.strategy.owns_optimizer_step:
        raise UsageError(
            "the learning rate finder can't run under DeepSpeed here (its engine owns the "
            "optimizer); find the rate with strategy=ddp, then train with DeepSpeed"
        )
    finder = LRFinder(mode, min_lr, max_lr, num_training)
    recorder = _Recorder(num_training, early_stop_threshold, trainer.progress.enabled)
    saved = _Snapshot(trainer, module)
    try:
        with _isolated_rng():
            _prepare(trainer, module, recorder, finder)
            try:
                trainer._train(trainer.train_loader, trainer.val_loaders)
            except NonFiniteLossError:
                recorder.losses.append(math.nan)  # the step was not taken: the test ends here
        recorder.close()
        results = {"lr": recorder.lrs[: len(recorder.losses)], "loss": recorder.losses}
        finder.results = trainer.strategy.broadcast(results)  # rank zero's, as Lightning's
    finally:
        saved.restore()
    if update_attr:
        rate = finder.suggestion()
        if rate is not None:
            _set_lr_attribute(module, trainer.datamodule, attr_name, rate)
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = rate
    return finder


def _prepare(trainer: Trainer, module: Module, recorder: _Recorder, finder: LRFinder) -> None:
    """The fit, changed for the test: the sweep's scheduler, the recorder alone, no logger."""
    (optimizer,) = trainer.optimizers
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = finder.lr_min
    sweep = _Sweep(optimizer, finder.lr_max, finder.num_training, finder.mode == "exponential")
    recorder.sweep = sweep
    trainer.lr_schedulers = [_config(sweep, interval="step")]
    trainer.callbacks = [recorder]
    trainer.metrics = Metrics(sync=trainer.strategy.reduce)
    trainer.hooks = Hooks(trainer, module, trainer.datamodule, [recorder])
    trainer.loggers = []
    trainer.progress = ProgressBar(False)
    trainer.max_seconds = None
    trainer.should_stop = False
    trainer.loop = dataclasses.replace(trainer.loop)
    trainer.config = dataclasses.replace(
        trainer.config,
        max_steps=trainer.global_step + finder.num_training,
        limit_val_batches=finder.num_training,
    )


class _Snapshot:
    """What the test changes, kept in memory and put back (Lightning: a checkpoint file)."""

    NAMES = (
        "config callbacks hooks loggers progress metrics loop lr_schedulers "
        "max_seconds should_stop stopping_together is_last_batch"
    ).split()

    def __init__(self, trainer: Trainer, module: Module) -> None:
        self.trainer, self.module = trainer, module
        self.attributes = {name: getattr(trainer, name) for name in self.NAMES}
        with torch.no_grad():
            tensors = [*module.parameters(), *module.buffers()]
            self.tensors = [(tensor, tensor.detach().clone()) for tensor in tensors]
        self.optimizers = [copy.deepcopy(o.state_dict()) for o in trainer.optimizers]
        schedulers = [config["scheduler"] for config in trainer.lr_schedulers]
        self.schedulers = [copy.deepcopy(scheduler.state_dict()) for scheduler in schedulers]
        self.precision = copy.deepcopy(trainer.precision_plugin.state_dict())
        self.loaded_from = module.loaded_from
        datamodule = trainer.datamodule
        self.datamodule = copy.deepcopy(datamodule.state_dict()) if datamodule else None

    def restore(self) -> None:
        trainer = self.trainer
        for name, value in self.attributes.items():
            setattr(trainer, name, value)
        with torch.no_grad():
            for tensor, saved in self.tensors:
                tensor.copy_(saved)
        for optimizer, state in zip(trainer.optimizers, self.optimizers, strict=True):
            optimizer.load_state_dict(state)
        for config, state in zip(trainer.lr_schedulers, self.schedulers, strict=True):
            config["scheduler"].load_state_dict(state)
        trainer.precision_plugin.load_state_dict(self.precision)
        if self.module.loaded_from is not self.loaded_from:
            self.module.loaded_from = self.loaded_from
        if self.datamodule:  # an empty state isn't loaded (Lightning's restore, too)
            trainer.datamodule.load_state_dict(self.datamodule)


class _isolated_rng:  # noqa: N801  (a context manager, named as Lightning's isolate_rng)
    """Every random generator's state, put back on the way out."""

    def __enter__(self) -> None:
        self.states = rng_states()

    def __exit__(self, *exc: Any) -> None:
        restore_rng_states(self.states)


class _Sweep(LRScheduler):
    """From the optimizer's rate to ``end_lr`` over ``steps`` steps (Lightning's schedule:
    the first step at the start rate, step ``i`` at fraction ``(i + 1) / steps``)."""

    def __init__(self, optimizer: Any, end_lr: float, steps: int, exponential: bool) -> None:
        self.end_lr, self.steps, self.exponential = end_lr, steps, exponential
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        if self.last_epoch <= 0:
            return list(self.base_lrs)
        fraction = (self.last_epoch + 1) / self.steps
        if self.exponential:
            return [base * (self.end_lr / base) ** fraction for base in self.base_lrs]
        return [base + fraction * (self.end_lr - base) for base in self.base_lrs]


class _Recorder:
    """The test's only callback: the rate each step used and its smoothed loss.

    The loss is an exponential moving average (``beta``), corrected for its
    start as Lightning corrects it (by ``1 - beta ** (global_step + 1)``); the
    test stops once it exceeds ``early_stop_threshold`` times the best so far.
    """

    def __init__(self, steps: int, early_stop_threshold: float | None, bar: bool) -> None:
        self.steps, self.threshold, self.beta = steps, early_stop_threshold, 0.98
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.average = self.best = 0.0
        self.sweep: _Sweep | None = None
        self.bar = ProgressBar(bar)

    def on_train_batch_start(self, trainer: Trainer, module: Module, batch: Any, i: int) -> None:
        if (i + 1) % trainer.accumulate_grad_batches:
            return  # only the batches that end a window step (Lightning's test)
        if not self.lrs:
            self.bar.start("Finding best initial lr", self.steps)
        self.lrs.append(self.sweep.get_last_lr()[0])

    def on_train_batch_end(
        self, trainer: Trainer, module: Module, outputs: Any, batch: Any, i: int
    ) -> None:
        if (i + 1) % trainer.accumulate_grad_batches:
            return
        if not outputs:  # a skipped batch
            self.losses.append(math.nan)
            return
        self.bar.update(len(self.losses))
        loss = outputs if isinstance(outputs, torch.Tensor) else outputs["loss"]
        step = trainer.global_step
        self.average = self.beta * self.average + (1 - self.beta) * loss.item()
        smoothed = self.average / (1 - self.beta ** (step + 1))
        diverged = self.threshold is not None and step > 1 and smoothed > self.threshold * self.best
        trainer.should_stop = trainer.strategy.broadcast(trainer.should_stop or diverged)
        if smoothed < self.best or step == 1:
            self.best = smoothed
        self.losses.append(smoothed)

    def close(self) -> None:
        self.bar.close()


def _holders(module: Module, datamodule: DataModule | None, name: str) -> list[Any]:
    """Where ``name`` lives: the module, its hparams, the DataModule (Lightning's order)."""
    holders: list[Any] = []
    if hasattr(module, name):
        holders.append(module)
    if name in getattr(module, "hparams", {}):
        holders.append(module.hparams)
    if datamodule is not None and hasattr(datamodule, name):
        holders.append(datamodule)
    return holders


def _lr_attribute(module: Module, datamodule: DataModule | None, name: str) -> str:
    if name:
        if not _holders(module, datamodule, name):
            raise AttributeError(
                f"The attribute name for the learning rate was set to {name}, but could not "
                "find this as a field in `model` or `model.hparams`."
            )
        return name
    for candidate in ("lr", "learning_rate"):
        if _holders(module, datamodule, candidate):
            return candidate
    raise AttributeError(
        "When using the learning rate finder, either `model` or `model.hparams` should have "
        "one of these fields: ('lr', 'learning_rate'). If your model has a different name "
        "for the learning rate, set it with `.lr_find(attr_name=...)`."
    )


def _set_lr_attribute(module: Module, datamodule: Any, name: str, rate: float) -> None:
    for holder in _holders(module, datamodule, name):
        if isinstance(holder, dict):
            holder[name] = rate
        else:
            setattr(holder, name, rate)
