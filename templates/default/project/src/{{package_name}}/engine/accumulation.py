"""Lightning's ``GradientAccumulationScheduler``: accumulate more batches in later epochs.

    GradientAccumulationScheduler(scheduling={0: 1, 4: 2, 8: 4})

From epoch 4 on, each optimizer step sums the gradients of 2 batches; from
epoch 8 on, of 4 (epochs before the first key accumulate 1). The callback
sets ``trainer.accumulate_grad_batches`` as each epoch starts, and as
training starts, for a run resumed in the middle of an epoch. As in
Lightning, it can't be combined with ``Trainer(accumulate_grad_batches=...)``,
manual optimization or DeepSpeed (whose accumulation is fixed when it starts).
"""

from __future__ import annotations

import warnings
from typing import Any

from .errors import ConfigError
from .hooks import Callback


class GradientAccumulationScheduler(Callback):
    """Batches per optimizer step by epoch: ``scheduling={first_epoch: batches, ...}``."""

    def __init__(self, scheduling: dict[int, int]) -> None:
        if not scheduling:
            raise TypeError("GradientAccumulationScheduler(scheduling={}): give {epoch: batches}")
        if any(not isinstance(epoch, int) or epoch < 0 for epoch in scheduling):
            raise ConfigError(
                f"GradientAccumulationScheduler: epochs {list(scheduling)} must be ints of 0 "
                "or more"
            )
        if any(not isinstance(batches, int) or batches < 1 for batches in scheduling.values()):
            raise ConfigError(
                "GradientAccumulationScheduler: batches per step "
                f"{list(scheduling.values())} must be ints of 1 or more"
            )
        self.scheduling = {0: 1, **scheduling}  # before the first epoch given: 1
        self.epochs = sorted(self.scheduling)

    def going_to_accumulate_grad_batches(self) -> bool:
        """Whether any epoch accumulates more than one batch."""
        return any(batches > 1 for batches in self.scheduling.values())

    def get_accumulate_grad_batches(self, epoch: int) -> int:
        """The batches per optimizer step in ``epoch``."""
        return self.scheduling[max(first for first in self.epochs if first <= epoch)]

    def on_train_start(self, trainer: Any, module: Any) -> None:
        """Refuse what Lightning refuses; set the factor of the epoch training starts in."""
        if not module.automatic_optimization:
            raise ConfigError(
                "GradientAccumulationScheduler needs automatic optimization; drop the callback "
                "or accumulate in your training_step"
            )
        if trainer.strategy.owns_optimizer_step:
            raise ConfigError(
                "GradientAccumulationScheduler: DeepSpeed fixes accumulate_grad_batches when it "
                "starts; drop the callback or set Trainer(accumulate_grad_batches=...)"
            )
        if trainer.config.accumulate_grad_batches != 1:
            raise ConfigError(
                f"Trainer(accumulate_grad_batches={trainer.config.accumulate_grad_batches}) and "
                "a GradientAccumulationScheduler: keep one of the two"
            )
        overridden = {"optimizer_step", "optimizer_zero_grad"} - trainer.hooks.defaults
        if overridden and self.going_to_accumulate_grad_batches():
            warnings.warn(
                f"with gradient accumulation, your {' and '.join(sorted(overridden))} run once "
                "per optimizer step, not per batch (as in Lightning)",
                stacklevel=2,
            )
        self._set(trainer)

    def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
        self._set(trainer)

    def _set(self, trainer: Any) -> None:
        trainer.accumulate_grad_batches = self.get_accumulate_grad_batches(trainer.current_epoch)
