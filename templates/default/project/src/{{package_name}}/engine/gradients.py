"""What the Module's optimizer API does to gradients, in either kind of optimization.

:func:`clip_gradients` is ``self.clip_gradients`` (Lightning's argument rules,
on true-sized gradients: :func:`unscale_once` under ``16-mixed``);
:func:`toggle` and :func:`untoggle` are ``toggle_optimizer`` and
``untoggle_optimizer`` (which parameters require gradients).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.amp.grad_scaler import OptState

from .errors import UsageError

if TYPE_CHECKING:
    from .module import Module
    from .trainer import Trainer


def unscale_once(scaler: Any, optimizer: Any) -> None:
    """Unscale ``optimizer``'s gradients unless done since the last step (clip_gradients did).

    GradScaler refuses a second ``unscale_`` before ``update()``; it records
    the first in its per-optimizer state, which is where we look.
    """
    state = scaler._per_optimizer_states.get(id(optimizer), {})
    if state.get("stage") is not OptState.UNSCALED:
        scaler.unscale_(optimizer)


def clip_gradients(
    trainer: Trainer,
    optimizer: Any,
    gradient_clip_val: float | None,
    gradient_clip_algorithm: str | None,
) -> None:
    """``self.clip_gradients``: Lightning's argument rules, on true-sized gradients."""
    cfg = trainer.config
    if gradient_clip_val is None:
        gradient_clip_val = cfg.gradient_clip_val or 0.0
    elif cfg.gradient_clip_val is not None and cfg.gradient_clip_val != gradient_clip_val:
        raise UsageError(
            f"You have set `Trainer(gradient_clip_val={cfg.gradient_clip_val!r})` and have "
            f"passed `clip_gradients(gradient_clip_val={gradient_clip_val!r})`. "
            "Please use only one of them."
        )
    if gradient_clip_algorithm is None:
        gradient_clip_algorithm = cfg.gradient_clip_algorithm or "norm"
    else:
        gradient_clip_algorithm = gradient_clip_algorithm.lower()
    if not isinstance(gradient_clip_val, (int, float)):
        raise TypeError(
            f"`gradient_clip_val` should be an int or a float. Got {gradient_clip_val!r}."
        )
    if gradient_clip_algorithm not in ("norm", "value"):
        raise UsageError(
            f"`gradient_clip_algorithm` {gradient_clip_algorithm!r} is invalid. "
            "Allowed algorithms: ['value', 'norm']."
        )
    if gradient_clip_val <= 0:
        return
    optimizer = getattr(optimizer, "optimizer", optimizer)
    # 16-mixed: clip true-sized gradients. (Lightning clips the scaled ones
    # here, which makes the threshold depend on the loss scale.)
    if (scaler := getattr(trainer.precision_plugin, "scaler", None)) is not None:
        unscale_once(scaler, optimizer)
    parameters = _parameters(optimizer)
    if gradient_clip_algorithm == "norm":
        torch.nn.utils.clip_grad_norm_(parameters, gradient_clip_val)
    else:
        torch.nn.utils.clip_grad_value_(parameters, gradient_clip_val)


def toggle(module: Module, optimizer: Any) -> None:
    """``toggle_optimizer``: only ``optimizer``'s parameters keep requiring gradients.

    Every parameter of the other optimizers stops requiring gradients; the
    previous settings are remembered (parameters frozen on purpose stay frozen)
    and :func:`untoggle` restores them.
    """
    previous: dict[torch.nn.Parameter, bool] = {}
    for other in module.trainer.optimizers:
        for parameter in _parameters(other):
            if parameter not in previous:
                previous[parameter] = parameter.requires_grad
                parameter.requires_grad = False
    for parameter in _parameters(optimizer):
        parameter.requires_grad = previous[parameter]
    module._toggled_requires_grad = previous


def untoggle(module: Module, optimizer: Any) -> None:
    """``untoggle_optimizer``: give the other optimizers' parameters their settings back."""
    optimizer = getattr(optimizer, "optimizer", optimizer)
    previous = getattr(module, "_toggled_requires_grad", {})
    for other in module.trainer.optimizers:
        if other is optimizer:
            continue
        for parameter in _parameters(other):
            if parameter in previous:
                parameter.requires_grad = previous[parameter]
    module._toggled_requires_grad = {}


def _parameters(optimizer: Any) -> list[torch.nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]
