"""What Lightning code reads off ``self.trainer``: the run's sizes, ranks and parts.

Read-only views of the Trainer's own state, with Lightning 2.x's names and
values (``estimated_stepping_batches`` for a OneCycleLR in
``configure_optimizers``, ``is_global_zero`` before writing a file, ...).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from . import loaders as data

if TYPE_CHECKING:
    from .module import Module


class LightningAttributes:
    """A Trainer mixin: Lightning's read-only attributes."""

    config: Any
    strategy: Any
    loggers: list[Any]
    module: Module | None
    train_loader: Any

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
        """Batches per optimizer step."""
        return self.config.accumulate_grad_batches

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
    def default_root_dir(self) -> str:
        """Where the runs' folders go."""
        return str(self.config.default_root_dir)
