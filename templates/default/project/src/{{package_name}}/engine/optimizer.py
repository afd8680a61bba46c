"""The optimizer the module sees, and the closure automatic optimization steps with.

:class:`LightningOptimizer` is the one wrapper, as in Lightning: what
``optimizer_step`` receives and what ``self.optimizers()`` returns. Its
``step()`` goes the loop's way (through the precision's loss scaler, DeepSpeed
or XLA); everything else is the wrapped optimizer's.

As in Lightning, the module's ``optimizer_step(epoch, batch_idx, optimizer,
optimizer_closure)`` calls ``optimizer.step(closure=optimizer_closure)``; the
closure (:class:`Closure`) runs ``training_step``, ``optimizer_zero_grad`` and
``backward`` (and their hooks), then ``on_before_optimizer_step`` and the
clipping hooks. So an override that changes the learning rate first (warm-up)
works, and so do optimizers that evaluate the closure several times (LBFGS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import optimizer as torch_optimizer

from .errors import UsageError
from .optim import short


class Closure:
    """One batch's training_step and backward; calling it returns the (divided) loss.

    Attributes:
        batch: The batch, on the device.
        batch_idx: Its index in the epoch.
        stepping: Whether an optimizer step follows (else gradients accumulate).
        outputs: What ``training_step`` returned, the last time the closure ran.
        loss: Its loss as backward got it: divided by the accumulation window.
        calls: How many times it ran for this batch.
    """

    __slots__ = ("_run", "batch", "batch_idx", "stepping", "outputs", "loss", "calls")

    def __init__(self, run: Callable[[Closure], torch.Tensor]) -> None:
        self._run = run
        self.batch: Any = None
        self.batch_idx = 0
        self.stepping = False
        self.outputs: Any = None
        self.loss: Any = None
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
    """The optimizer as the module gets it: ``step()`` goes the loop's way.

    ``step`` is what applying the gradients means where the wrapper is used:
    automatic optimization's step through the precision (or DeepSpeed), or
    manual optimization's, which also runs ``on_before_optimizer_step`` and
    counts ``global_step`` (``manual.py``). Everything else (``zero_grad``,
    ``param_groups``, ``state_dict``, ...) is the wrapped optimizer's, so an
    override can change the learning rate in place, and
    ``isinstance(optimizer, torch.optim.SGD)`` holds for an SGD, as in Lightning.

    Args:
        optimizer: The torch optimizer ``configure_optimizers`` returned.
        step: ``(optimizer, closure, **kwargs) -> loss``; ``closure`` is callable.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, step: Callable[..., Any]) -> None:
        self._optimizer = optimizer
        self._step = step
        # Be an instance of the optimizer's class too, so isinstance checks
        # pass; attributes the class reads come from the optimizer (__getattr__).
        self.__class__ = type(
            f"Lightning{type(optimizer).__name__}", (LightningOptimizer, type(optimizer)), {}
        )

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The wrapped torch optimizer."""
        return self._optimizer

    def __getattr__(self, name: str) -> Any:
        if name in ("_optimizer", "_step"):  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self._optimizer, name)

    def step(self, closure: Callable[[], Any] | None = None, **kwargs: Any) -> Any:
        """Apply the gradients (running ``closure`` first, as often as the optimizer asks)."""
        if closure is None:
            closure = _nothing
        elif not callable(closure):
            raise UsageError(
                f"When `optimizer.step(closure)` is called, the closure should be callable, "
                f"not {short(closure)}"
            )
        return self._step(self._optimizer, closure, **kwargs)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of the wrapped optimizer's parameters."""
        self._optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state."""
        return self._optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the wrapped optimizer's state."""
        self._optimizer.load_state_dict(state_dict)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add parameters to the wrapped optimizer."""
        self._optimizer.add_param_group(param_group)


def run_step(optimizer: torch.optim.Optimizer, closure: Callable[[], Any]) -> Any:
    """``optimizer.step(closure=closure)``, in fewer calls where that is the same work.

    Every torch.optim optimizer but LBFGS begins its ``step`` by running the
    closure once, and then only returns its loss. When no step hook is
    registered to see the call, the closure runs first and ``step()`` after:
    about 1.5% of a small model's step (docs/benchmarks.md). Any other
    optimizer (LBFGS, a ``step`` of your own) gets the closure.
    """
    kind = type(optimizer)
    first = _closure_first.get(kind)
    if first is None:  # once per class: which class's step it runs (a subclass may keep torch's)
        owner = next((c for c in kind.__mro__ if "step" in vars(c)), None)
        first = _closure_first[kind] = owner in _CLOSURE_FIRST
    if first and not (
        optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or _GLOBAL_STEP_HOOKS[0]
        or _GLOBAL_STEP_HOOKS[1]
    ):
        loss = closure()
        optimizer.step()
        return loss
    return optimizer.step(closure=closure)


# torch.optim's optimizers whose step() runs the closure first, once, checked
# against torch's source (a torch version without one leaves it out), and the
# hooks every optimizer's step() calls (a torch without them: always the closure).
_CLOSURE_FIRST = {
    getattr(torch.optim, name, None)
    for name in "SGD Adam AdamW Adagrad Adadelta Adamax ASGD NAdam RAdam RMSprop Rprop "
    "SparseAdam Adafactor Muon".split()
} - {None}
_closure_first: dict[type, bool] = {}
_GLOBAL_STEP_HOOKS = [
    getattr(torch_optimizer, f"_global_optimizer_{when}_hooks", [None]) for when in ("pre", "post")
]


def _nothing() -> None:
    return None
