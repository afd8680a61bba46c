"""What Lightning code reads off ``self.trainer``: the run's sizes, ranks, parts and state.

Views of the Trainer's own state, with Lightning 2.x's names and values
(``estimated_stepping_batches`` for a OneCycleLR in ``configure_optimizers``,
``is_global_zero`` before writing a file, ``trainer.sanity_checking`` in a
callback, ...), and ``trainer.state``: which function runs (``fn``), which
loop inside it (``stage``) and how it ended (``status``), set as Lightning
sets them.
"""

from __future__ import annotations

import functools
import math
import signal
import types
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch

from . import loaders as data
from .hooks import overrides
from .module import Module
from .options import is_a
from .precision import NAME as PRECISION


class TrainerFn(str, Enum):
    """The Trainer function running: ``fit``, ``validate``, ``test`` or ``predict``.

    As Lightning's, each value equals its string: ``trainer.state.fn == "fit"``.
    """

    FITTING = "fit"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"


class RunningStage(str, Enum):
    """The loop running inside it (fit runs training, the sanity check and validation)."""

    TRAINING = "train"
    SANITY_CHECKING = "sanity_check"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"

    @property
    def evaluating(self) -> bool:
        return self in (self.VALIDATING, self.TESTING, self.SANITY_CHECKING)


class TrainerStatus(str, Enum):
    """Where the last function is: initializing (none yet), running, finished, interrupted."""

    INITIALIZING = "initializing"
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"

    @property
    def stopped(self) -> bool:
        return self in (self.FINISHED, self.INTERRUPTED)


@dataclass
class TrainerState:
    """``trainer.state``, as Lightning's."""

    status: TrainerStatus = TrainerStatus.INITIALIZING
    fn: TrainerFn | None = None
    stage: RunningStage | None = None

    @property
    def finished(self) -> bool:
        return self.status is TrainerStatus.FINISHED

    @property
    def stopped(self) -> bool:
        return self.status.stopped


def running(fn: TrainerFn) -> Callable[[Callable], Callable]:
    """Decorate a Trainer function: ``state`` running it, then finished or interrupted.

    An error (or Ctrl-C, SIGTERM) leaves the status "interrupted", as
    Lightning's; either way no stage runs afterwards.
    """

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def run(trainer: Any, *args: Any, **kwargs: Any) -> Any:
            state = trainer.state
            state.fn, state.status = fn, TrainerStatus.RUNNING
            trainer.ckpt_path = None  # the run's, once resolved (state.py)
            state.stage = RunningStage.TRAINING if fn is TrainerFn.FITTING else RunningStage(fn)
            try:
                result = method(trainer, *args, **kwargs)
            except BaseException:
                state.status = TrainerStatus.INTERRUPTED
                raise
            finally:
                state.stage = None
            state.status = TrainerStatus.FINISHED
            return result

        return run

    return decorate


class _Stage:
    """A flag that is True while ``trainer.state.stage`` is its stage (Lightning's setter:
    True enters the stage, False leaves it only if it is the one running)."""

    def __init__(self, stage: RunningStage) -> None:
        self.stage = stage

    def __get__(self, trainer: Any, owner: type | None = None) -> Any:
        return self if trainer is None else trainer.state.stage is self.stage

    def __set__(self, trainer: Any, on: bool) -> None:
        if on:
            trainer.state.stage = self.stage
        elif trainer.state.stage is self.stage:
            trainer.state.stage = None


class _Option:
    """A Trainer option under its Lightning name, read-only: ``trainer.log_every_n_steps``.

    The value the run uses (after ``fast_dev_run`` and ``overfit_batches`` set theirs).
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, trainer: Any, owner: type | None = None) -> Any:
        return self if trainer is None else getattr(trainer.config, self.name)

    def __set__(self, trainer: Any, value: Any) -> None:
        raise AttributeError(
            f"trainer.{self.name} is read-only here; pass it as Trainer({self.name}=...)"
        )


class LightningAttributes:
    """A Trainer mixin: Lightning's attributes, read-only but for the stage flags and
    ``accumulate_grad_batches`` (which GradientAccumulationScheduler sets)."""

    config: Any
    state: TrainerState
    ckpt_path: str | None = None  # the checkpoint the last run loaded, resolved
    strategy: Any
    loggers: list[Any]
    module: Module | None
    train_loader: Any
    val_loaders: list[Any]
    eval_loaders: dict[str, list[Any]]
    callbacks: list[Any]
    lr_schedulers: list[dict[str, Any]]
    metrics: Any
    loop: Any
    stop_signal: int | None

    training = _Stage(RunningStage.TRAINING)
    sanity_checking = _Stage(RunningStage.SANITY_CHECKING)
    validating = _Stage(RunningStage.VALIDATING)
    testing = _Stage(RunningStage.TESTING)
    predicting = _Stage(RunningStage.PREDICTING)

    check_val_every_n_epoch = _Option()
    log_every_n_steps = _Option()
    min_epochs = _Option()
    min_steps = _Option()
    num_nodes = _Option()
    gradient_clip_val = _Option()
    gradient_clip_algorithm = _Option()  # "norm" when unset (Lightning's reads None then)
    limit_train_batches = _Option()
    limit_val_batches = _Option()
    limit_test_batches = _Option()
    limit_predict_batches = _Option()
    val_check_interval = _Option()
    num_sanity_val_steps = _Option()
    overfit_batches = _Option()
    fast_dev_run = _Option()

    @property
    def evaluating(self) -> bool:
        """Whether a validation, test or the sanity check is running."""
        return self.state.stage is not None and self.state.stage.evaluating

    @property
    def interrupted(self) -> bool:
        """Whether the last function ended by an error or a stop."""
        return self.state.status is TrainerStatus.INTERRUPTED

    @property
    def fitting(self) -> bool:
        """Whether the last function called is ``fit`` (running or ended)."""
        return self.state.fn is TrainerFn.FITTING

    @property
    def current_epoch(self) -> int:
        """The epoch running now, from 0 (Lightning's; read-only)."""
        return self.loop.epoch

    @property
    def global_step(self) -> int:
        """Optimizer steps taken, across resumes (Lightning's; read-only)."""
        return self.loop.global_step

    @property
    def callback_metrics(self) -> dict[str, torch.Tensor]:
        """The latest value of every logged metric (what callbacks monitor)."""
        self.metrics.fold_steps()
        return self.metrics.callback_metrics

    @property
    def logged_metrics(self) -> dict[str, torch.Tensor]:
        """The latest value sent (or due) to the loggers under each name."""
        self.metrics.fold_steps()
        return self.metrics.logged_metrics

    @property
    def progress_bar_metrics(self) -> dict[str, torch.Tensor]:
        """The latest ``prog_bar=True`` values."""
        self.metrics.fold_steps()
        return self.metrics.progress_bar_metrics

    @property
    def max_epochs(self) -> int:
        """Epochs to train (-1: no limit); unset, 1000 or (with ``max_steps``) no limit."""
        if self.config.max_epochs is not None:
            return self.config.max_epochs
        return -1 if self.config.max_steps != -1 else 1000

    @property
    def max_steps(self) -> int:
        """Optimizer steps to train (-1: no limit)."""
        return self.config.max_steps

    @property
    def accumulate_grad_batches(self) -> int:
        """Batches per optimizer step (GradientAccumulationScheduler sets it each epoch)."""
        return self.config.accumulate_grad_batches

    @accumulate_grad_batches.setter
    def accumulate_grad_batches(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"trainer.accumulate_grad_batches={value!r}: use an int of 1 or more")
        self.config.accumulate_grad_batches = value

    @property
    def num_training_batches(self) -> int | float:
        """This rank's training batches per epoch (inf before ``fit`` has its loader)."""
        if self.train_loader is None:
            return math.inf
        total = len(self.train_loader)
        return data.limit(self.config.limit_train_batches, total, "limit_train_batches")

    @property
    def estimated_stepping_batches(self) -> int | float:
        """Optimizer steps the whole fit will take, as Lightning estimates them."""
        max_steps = self.config.max_steps
        if self.max_epochs == -1:
            return math.inf if max_steps == -1 else max_steps
        if self.num_training_batches == math.inf:  # no loader yet: as Lightning's
            return max_steps
        per_epoch = math.ceil(self.num_training_batches / self.config.accumulate_grad_batches)
        steps = per_epoch * max(self.max_epochs, 1)
        return steps if max_steps == -1 else min(steps, max_steps)

    @property
    def is_global_zero(self) -> bool:
        """Whether this process is rank zero of all (the one that writes files)."""
        return self.strategy.is_global_zero

    @property
    def global_rank(self) -> int:
        """This process's rank among all."""
        return self.strategy.rank

    @property
    def local_rank(self) -> int:
        """This process's rank on its machine."""
        return self.strategy.local_rank

    @property
    def world_size(self) -> int:
        """Processes in the run."""
        return self.strategy.world_size

    @property
    def node_rank(self) -> int:
        """This machine's rank among the machines (torchrun gives each the same count)."""
        return (self.strategy.rank - self.strategy.local_rank) // self.config.devices

    @property
    def num_devices(self) -> int:
        """Devices (processes) per machine."""
        return self.config.devices

    @property
    def logger(self) -> Any:
        """The first experiment logger, or None."""
        return self.loggers[0] if self.loggers else None

    @property
    def lightning_module(self) -> Module | None:
        """The module being run."""
        return self.module

    @property
    def model(self) -> Any:
        """The module as the strategy wraps it (DDP's, DeepSpeed's), else the module."""
        wrapped = getattr(self.strategy, "model", None)
        return wrapped if wrapped is not None else self.module

    @property
    def received_sigterm(self) -> bool:
        """Whether SIGTERM asked this run to stop (it stops after the current step)."""
        return self.stop_signal == signal.SIGTERM

    @property
    def enable_validation(self) -> bool:
        """Whether fitting validates: validation loaders, a ``validation_step``, batches."""
        stepped = self.module is not None and overrides(self.module, "validation_step", Module)
        return bool(self.val_loaders) and stepped

    @property
    def device_ids(self) -> list[int]:
        """This node's device indices (Lightning's; ``[0]`` on one device or the CPU)."""
        return list(range(self.config.devices))

    @property
    def scaler(self) -> Any:
        """16-mixed's ``GradScaler``; None at other precisions."""
        return getattr(self.precision_plugin, "scaler", None)

    def print(self, *args: Any, **kwargs: Any) -> None:
        """``print`` on global rank zero only."""
        if self.is_global_zero:
            print(*args, **kwargs)

    @property
    def default_root_dir(self) -> str:
        """Where the runs' folders go."""
        return str(self.config.default_root_dir)

    @property
    def precision(self) -> str:
        """The precision's name, e.g. "32-true" (the object: ``precision_plugin``)."""
        return PRECISION

    @property
    def train_dataloader(self) -> Any:
        """The loader ``fit`` trains on (None before it has one)."""
        return self.train_loader

    @property
    def val_dataloaders(self) -> Any:
        """The validation loader(s) of ``fit`` or ``validate``: one, a list, or None."""
        if self.state.fn is TrainerFn.VALIDATING:
            return _one_or_list(self.eval_loaders.get("val"))
        return _one_or_list(self.val_loaders)

    @property
    def test_dataloaders(self) -> Any:
        """The loader(s) of the last ``test``: one, a list, or None."""
        return _one_or_list(self.eval_loaders.get("test"))

    @property
    def predict_dataloaders(self) -> Any:
        """The loader(s) of the last ``predict``: one, a list, or None."""
        return _one_or_list(self.eval_loaders.get("predict"))

    @property
    def num_val_batches(self) -> list[int | float]:
        """Batches per validation loader, after ``limit_val_batches``."""
        validating = self.state.fn is TrainerFn.VALIDATING
        loaders = self.eval_loaders.get("val", []) if validating else self.val_loaders
        return self._num_batches("val", loaders)

    @property
    def num_sanity_val_batches(self) -> list[int | float]:
        """Batches per validation loader in the sanity check."""
        steps = self.config.num_sanity_val_steps
        steps = math.inf if steps == -1 else steps
        return [min(steps, n) for n in self._num_batches("val", self.val_loaders)]

    @property
    def num_test_batches(self) -> list[int | float]:
        """Batches per test loader, after ``limit_test_batches``."""
        return self._num_batches("test", self.eval_loaders.get("test", []))

    @property
    def num_predict_batches(self) -> list[int | float]:
        """Batches per predict loader, after ``limit_predict_batches``."""
        return self._num_batches("predict", self.eval_loaders.get("predict", []))

    def _num_batches(self, kind: str, loaders: list[Any]) -> list[int | float]:
        name = f"limit_{kind}_batches"
        return [data.limit(getattr(self.config, name), len(loader), name) for loader in loaders]

    @property
    def lr_scheduler_configs(self) -> list[Any]:
        """Each scheduler's config, with the fields of Lightning's ``LRSchedulerConfig``."""
        return [types.SimpleNamespace(**config) for config in self.lr_schedulers]

    @property
    def checkpoint_callbacks(self) -> list[Any]:
        """The ModelCheckpoint callbacks (and subclasses), in order."""
        return [cb for cb in self.callbacks if is_a(cb, "ModelCheckpoint")]

    @property
    def early_stopping_callback(self) -> Any:
        """The first EarlyStopping callback, or None."""
        return next(iter(self.early_stopping_callbacks), None)

    @property
    def early_stopping_callbacks(self) -> list[Any]:
        """The EarlyStopping callbacks (and subclasses), in order."""
        return [cb for cb in self.callbacks if is_a(cb, "EarlyStopping")]


def _one_or_list(loaders: list[Any] | None) -> Any:
    """As Lightning returns loaders: the one, or the list of several; None for none."""
    if not loaders:
        return None
    return loaders[0] if len(loaders) == 1 else loaders
