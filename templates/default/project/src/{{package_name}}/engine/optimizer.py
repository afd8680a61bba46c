"""Automatic optimization's two objects: the closure and the optimizer that runs it.

As in Lightning, the module's ``optimizer_step(epoch, batch_idx, optimizer,
optimizer_closure)`` calls ``optimizer.step(closure=optimizer_closure)``; the
closure runs ``training_step``, ``optimizer_zero_grad`` and ``backward`` (and
their hooks), then ``on_before_optimizer_step`` and the clipping hooks. So an
override that changes the learning rate first (warm-up) works, and so do
optimizers that evaluate the closure several times (LBFGS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .errors import UsageError


class Closure:
    """One batch's training_step and backward; calling it returns the (divided) loss.

    Attributes:
        batch: The batch, on the device.
        batch_idx: Its index in the epoch.
        stepping: Whether an optimizer step follows (else gradients accumulate).
        outputs: What ``training_step`` returned, the last time the closure ran.
        calls: How many times it ran for this batch.
    """

    __slots__ = ("_run", "batch", "batch_idx", "stepping", "outputs", "calls")

    def __init__(self, run: Callable[[Closure], torch.Tensor]) -> None:
        self._run = run
        self.batch: Any = None
        self.batch_idx = 0
        self.stepping = False
        self.outputs: Any = None
        self.calls = 0

    def prepare(self, batch: Any, batch_idx: int, stepping: bool) -> Closure:
        """Point the closure at a new batch."""
        self.batch, self.batch_idx, self.stepping, self.calls = batch, batch_idx, stepping, 0
        return self

    def __call__(self) -> torch.Tensor:
        self.calls += 1
        return self._run(self)

    def check_ran(self) -> None:
        """After ``optimizer_step``: an override that never ran the closure trained on nothing."""
        if not self.calls:
            raise UsageError(
                "optimizer_step did not run the closure, so training_step never ran; call "
                "optimizer.step(closure=optimizer_closure) in your optimizer_step override"
            )


class LightningOptimizer:
    """The optimizer as ``optimizer_step`` receives it: ``step`` goes through the precision.

    Everything else (``param_groups``, ``state``, ``zero_grad``) is the wrapped
    torch optimizer's, so an override can change the learning rate in place.

    Args:
        optimizer: The torch optimizer.
        step: The Trainer's ``(optimizer, closure) -> loss`` (GradScaler, DeepSpeed, XLA).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, step: Callable[..., Any]) -> None:
        self._optimizer = optimizer
        self._step = step

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The wrapped torch optimizer."""
        return self._optimizer

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Run ``closure`` and apply the gradients."""
        return self._step(self._optimizer, closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the wrapped optimizer's gradients."""
        self._optimizer.zero_grad(set_to_none=set_to_none)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._optimizer, name)
