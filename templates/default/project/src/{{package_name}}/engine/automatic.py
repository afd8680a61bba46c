"""Automatic optimization: one batch's forward, backward and optimizer step.

As in Lightning (its ``_AutomaticOptimization``), a stepping batch calls the
module's ``optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)``;
the optimizer runs the closure (LBFGS: several times), which runs
``training_step``, ``optimizer_zero_grad`` (a window's first batch) and
``backward``, then, before the optimizer applies the gradients, the checks and
hooks that see them. A batch that only accumulates gradients runs the closure
itself. The strategy and the precision do their part through their methods:
this file never names one.

The module's hooks around the step that it doesn't override (``optimizer_step``,
``optimizer_zero_grad``, ``backward``, ``configure_gradient_clipping``) have
Lightning's defaults; their work is done here without calling them, and hooks
nobody overrides are not called at all: every Python call in a step costs a
few percent on a small model (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, NoReturn

import torch

from . import gradients
from .errors import NonFiniteLossError, UsageError
from .hooks import nothing
from .optimizer import Closure, LightningOptimizer

if TYPE_CHECKING:
    from .trainer import Trainer


class AutomaticOptimization:
    """Runs a Trainer's batches of automatic optimization (built once per ``fit``).

    Attributes:
        optimizer: What the module's ``optimizer_step`` receives.
    """

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.closure = Closure(self._forward_backward)
        self.optimizer = LightningOptimizer(trainer.optimizers[0], self._optimizer_step)
        self._finite: Any = True  # this window's losses were finite (see _note_finite)
        self._warned_skip = False  # training_step returned None (see _skipped)
        self._on_cpu = trainer.device.type == "cpu"
        # Which of the module's hooks around the step keep Lightning's default.
        default = trainer.hooks.defaults
        self._default_step = "optimizer_step" in default
        self._default_zero_grad = "optimizer_zero_grad" in default
        self._default_backward = "backward" in default
        self._default_clip = {"configure_gradient_clipping", "clip_gradients"} <= default

    def run(self, batch: Any, batch_idx: int, stepping: bool) -> dict[str, Any]:
        """One batch; with ``stepping``, the optimizer step. Returns the step's outputs.

        ``on_train_batch_end`` gets a dict, as in Lightning: ``{"loss": ...}`` for a tensor.
        """
        trainer = self.trainer
        closure = self.closure.prepare(batch, batch_idx, stepping)
        if stepping:
            if self._default_step:  # what the module's optimizer_step would do
                self._optimizer_step(trainer.optimizers[0], closure)
            else:
                epoch = trainer.current_epoch
                trainer.hooks.optimizer_step(epoch, batch_idx, self.optimizer, closure)
            closure.check_ran()
        else:  # only accumulates: the gradients stay on this process until the window steps
            with trainer.strategy.no_sync(accumulating=True):
                closure()
        # As Lightning's: the window's share of the loss, off the graph (a list of
        # them keeps no graph alive), beside whatever else training_step returned.
        outputs, loss = closure.outputs, closure.loss
        if loss is None:  # training_step returned None: the batch was skipped
            return {}
        loss = loss.detach()
        return {**outputs, "loss": loss} if isinstance(outputs, dict) else {"loss": loss}

    def _forward_backward(self, closure: Closure) -> torch.Tensor:
        """The closure: training_step, zero_grad, backward; then what precedes the step.

        The loss is divided by the window size so that the summed gradients of
        an accumulation window equal one big batch's.
        """
        trainer = self.trainer
        hooks, strategy, optimizer = trainer.hooks, trainer.strategy, trainer.optimizers[0]
        accumulate, batch_idx = trainer.config.accumulate_grad_batches, closure.batch_idx
        first = batch_idx % accumulate == 0  # a window's first batch
        metrics = trainer.metrics
        outer, metrics.hook = metrics.hook, "training_step"
        with trainer.precision_plugin.autocast():  # a no-op at full precision
            outputs = trainer.steps.training_step(closure.batch, batch_idx)
        metrics.hook = outer
        closure.outputs = outputs
        loss = self._loss_of(outputs) if isinstance(outputs, dict) else outputs
        if first and not strategy.owns_optimizer_step:  # DeepSpeed zeroes in its step
            if hooks.on_before_zero_grad is not nothing:
                hooks.on_before_zero_grad(optimizer)
            if self._default_zero_grad:
                optimizer.zero_grad()
            else:
                hooks.optimizer_zero_grad(trainer.current_epoch, batch_idx, optimizer)
        if loss is None:  # Lightning's "skip this batch": no backward; a due step still runs
            self._skipped(first)
        else:
            self._note_finite(loss, first)
            if accumulate > 1:
                loss = loss / accumulate
            if hooks.on_before_backward is not nothing:
                hooks.on_before_backward(loss)
            if strategy.owns_optimizer_step:
                strategy.backward(loss)  # DeepSpeed scales, reduces and accumulates
            elif self._default_backward:
                trainer.precision_plugin.scale(loss).backward()
            else:
                hooks.backward(trainer.precision_plugin.scale(loss))
            if hooks.on_after_backward is not nothing:
                hooks.on_after_backward()
        closure.loss = loss
        if closure.stepping:
            self._before_optimizer_step(optimizer, batch_idx, skipped=loss is None)
        return loss

    @staticmethod
    def _loss_of(outputs: dict[str, Any]) -> Any:
        if "loss" not in outputs:
            raise UsageError(
                "training_step returned a dict without a 'loss' key; under automatic "
                "optimization it needs one (return None to skip the batch)"
            )
        return outputs["loss"]

    def _skipped(self, first: bool) -> None:
        """A batch whose training_step returned None, as Lightning skips it (with its warning)."""
        if self.trainer.strategy.owns_optimizer_step:
            raise UsageError(
                "training_step returned None; DeepSpeed can't skip a batch (nor can it "
                "in Lightning): return the loss, multiplied by 0 to ignore the batch"
            )
        if first:
            self._finite = True  # nothing to check in this batch
        if not self._warned_skip:
            self._warned_skip = True
            warnings.warn(
                "`training_step` returned `None`: the batch is skipped (no backward; a step "
                "due at it still applies what its window accumulated), as in Lightning",
                stacklevel=2,
            )

    def _before_optimizer_step(
        self, optimizer: torch.optim.Optimizer, batch_idx: int, skipped: bool = False
    ) -> None:
        """The window's losses were finite; true-sized, averaged gradients; hooks; clipping.

        ``skipped``: this batch returned None. A loss scaler then skips the step (as
        Lightning's), so the gradients are not unscaled for it either.
        """
        trainer = self.trainer
        hooks, cfg = trainer.hooks, trainer.config
        # One device sync per optimizer step, not per micro-batch; a joint decision:
        # with one rank's loss inf, every rank skips the step.
        if trainer.strategy.any(not bool(self._finite)):
            self._stop_non_finite(batch_idx)
        trainer.strategy.before_optimizer_step(optimizer)  # XLA averages the gradients
        if trainer.strategy.owns_optimizer_step:
            hooks.on_before_optimizer_step(optimizer)  # DeepSpeed clips in its step
            return
        if not skipped:
            trainer.precision_plugin.unscale_gradients(optimizer)
        if hooks.on_before_optimizer_step is not nothing:
            hooks.on_before_optimizer_step(optimizer)
        clip_val, algorithm = cfg.gradient_clip_val, cfg.gradient_clip_algorithm
        if not self._default_clip:
            hooks.configure_gradient_clipping(optimizer, clip_val, algorithm)
        elif clip_val:  # the default hook clips only when a value is set
            gradients.clip_gradients(trainer, optimizer, clip_val, algorithm)

    def _optimizer_step(self, optimizer: torch.optim.Optimizer, closure: Any) -> Any:
        """What ``optimizer.step(closure)`` does in ``optimizer_step``."""
        strategy = self.trainer.strategy
        if strategy.owns_optimizer_step:
            # DeepSpeed clips (gradient_clip_val is in its config), unscales,
            # steps and zeroes the gradients; the optimizer's learning rates are
            # the ones the schedulers set.
            loss = closure() if closure is not None else None
            strategy.optimizer_step()
            return loss
        return self.trainer.precision_plugin.optimizer_step(optimizer, closure)

    def _note_finite(self, loss: torch.Tensor, first: bool) -> None:
        # Whether the window's losses are all finite, checked before its step. A
        # CPU value is read at once (a tensor isfinite costs ~30 µs a step there);
        # on an accelerator it stays a tensor, so the device syncs only at the check.
        if self._on_cpu:
            finite: Any = math.isfinite(loss.item())
        else:
            finite = torch.isfinite(loss.detach())
        self._finite = finite if first else self._finite & finite

    def _stop_non_finite(self, batch_idx: int) -> NoReturn:
        trainer = self.trainer
        trainer.stopping_together = True
        raise NonFiniteLossError(
            f"the training loss is not finite at epoch {trainer.current_epoch}, "
            f"batch {batch_idx}, step {trainer.global_step}; the optimizer step was "
            "not applied and the last checkpoint was kept. Lower the learning rate, "
            "set --trainer.gradient_clip_val, or use precision=bf16-mixed"
        )
