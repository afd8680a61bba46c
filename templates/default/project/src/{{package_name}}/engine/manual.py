"""Manual optimization (``automatic_optimization = False``), as Lightning 2.6.6 does it.

The loop only calls ``training_step`` (:func:`manual_training_step`); the
step backpropagates with ``self.manual_backward(loss)`` (:func:`manual_backward`)
and steps the optimizers ``self.optimizers()`` returns (:func:`handles`: each a
``LightningOptimizer`` whose ``step()`` runs :func:`_step`), through the
precision's loss scaler. Each ``step()`` counts one ``global_step``: two
optimizers over 4 batches end at step 8. :func:`check_manual` refuses, before
anything runs, the options Lightning refuses with manual optimization.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from .errors import UsageError
from .gradients import unscale_once
from .optimizer import LightningOptimizer
from .strategy import NAME as STRATEGY

if TYPE_CHECKING:
    from .module import Module
    from .trainer import Trainer


def check_manual(trainer: Trainer, module: Module) -> None:
    """Lightning's refusals for manual optimization, before anything runs."""
    if module.automatic_optimization:
        return
    if STRATEGY in ("fsdp", "deepspeed"):
        # Both shard or own the gradients inside their forward and step; a
        # training_step that backpropagates and steps by itself is not wired
        # through them here.
        raise UsageError(
            f"manual optimization (automatic_optimization = False) is not supported with "
            f"strategy={STRATEGY!r} in this project; use strategy ddp "
            "(scaffold update -d strategy=ddp) or automatic optimization"
        )
    cfg = trainer.config
    if cfg.gradient_clip_val is not None and cfg.gradient_clip_val > 0:
        raise UsageError(
            "Automatic gradient clipping is not supported for manual optimization. Remove "
            f"`Trainer(gradient_clip_val={cfg.gradient_clip_val!r})` (--trainer.gradient_clip_val) "
            "or switch to automatic optimization; clip in training_step with self.clip_gradients"
        )
    if cfg.accumulate_grad_batches != 1:
        raise UsageError(
            "Automatic gradient accumulation is not supported for manual optimization. Remove "
            f"`Trainer(accumulate_grad_batches={cfg.accumulate_grad_batches!r})` "
            "(--trainer.accumulate_grad_batches) or switch to automatic optimization"
        )


def manual_training_step(trainer: Trainer, batch: Any, batch_idx: int) -> dict[str, Any]:
    """Run ``training_step`` alone: it backpropagates and steps the optimizers itself.

    Returns:
        What ``on_train_batch_end`` receives, as in Lightning: ``{}`` for
        None, ``{"loss": loss}`` for a tensor, a copy of a dict; the loss detached.
    """
    # DDP's own gradient sync expects one backward per forward; manual_backward
    # averages the gradients itself after each backward instead (see there).
    trainer.metrics.hook = "training_step"  # where self.log is
    with trainer.strategy.no_sync(STRATEGY == "ddp"), trainer.precision_plugin.autocast():
        output = trainer.steps.training_step(batch, batch_idx)
    if output is None:
        return {}
    if isinstance(output, torch.Tensor):
        return {"loss": output.detach()}
    if isinstance(output, dict):
        output = dict(output)
        if isinstance(output.get("loss"), torch.Tensor):
            output["loss"] = output["loss"].detach()
        return output
    raise UsageError(
        "In manual optimization, `training_step` must either return a Tensor or have no "
        f"return (it returned a {type(output).__name__})"
    )


def manual_backward(trainer: Trainer, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
    """``self.manual_backward``: backward through the precision's loss scaler, with the hooks."""
    module = trainer.module
    # 16-mixed: the loss is scaled here and the gradients unscaled at the step.
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is not None:
        loss = scaler.scale(loss)
    trainer.hooks.on_before_backward(loss)
    if hasattr(module, "backward"):
        module.backward(loss, *args, **kwargs)  # the overridable hook
    else:
        loss.backward(*args, **kwargs)
    if STRATEGY == "ddp":
        _average_gradients(trainer, module)
    trainer.hooks.on_after_backward()


def _average_gradients(trainer: Trainer, module: torch.nn.Module) -> None:
    """Average this backward's gradients over the ranks, as DDP would have.

    DDP's reducer syncs once per forward and needs every parameter to get a
    gradient; a GAN backpropagates twice per training_step, each time through
    part of the model. Averaging every gradient after each backward is the
    same arithmetic (an average of sums is the sum of averages), on any subset.
    """
    world = trainer.strategy.world_size
    if world == 1:
        return
    grads = [p.grad for p in module.parameters() if p.requires_grad and p.grad is not None]
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for grad in grads:
        by_dtype.setdefault(grad.dtype, []).append(grad)
    for group in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in group])  # one collective per dtype
        flat = trainer.strategy.reduce(flat, "sum") / world
        for grad, synced in zip(group, flat.split([g.numel() for g in group]), strict=True):
            grad.copy_(synced.view_as(grad))


def handles(trainer: Trainer) -> list[LightningOptimizer]:
    """What ``self.optimizers()`` returns: the trainer's optimizers, stepped as below.

    The same objects on every call (until the optimizers change).
    """
    cached = getattr(trainer, "_loop_optimizers", [])
    if [h.optimizer for h in cached] != trainer.optimizers:
        step = partial(_manual_step, trainer)
        cached = [LightningOptimizer(optimizer, step) for optimizer in trainer.optimizers]
        trainer._loop_optimizers = cached
    return cached


def _manual_step(
    trainer: Trainer, optimizer: Any, closure: Callable[[], Any], **kwargs: Any
) -> Any:
    """A handle's ``step()``: the step below; XLA's traced step; one ``global_step``."""
    output = _step(trainer, optimizer, closure, **kwargs)
    trainer.strategy.after_optimizer_step()  # XLA: run the step traced so far
    if not trainer.module.automatic_optimization:
        trainer.loop.global_step += 1  # the automatic loop counts its own steps
    return output


def _step(trainer: Trainer, optimizer: Any, closure: Callable[[], Any], **kwargs: Any) -> Any:
    """One optimizer step through the precision, in Lightning's order of events.

    The closure runs first (it may backpropagate), then the gradients are made
    true-sized (16-mixed) and averaged (XLA), then the
    ``on_before_optimizer_step`` hooks see them, then the optimizer steps.
    """

    def after_closure() -> None:
        trainer.strategy.before_optimizer_step(optimizer)  # XLA: average the gradients
        trainer.hooks.on_before_optimizer_step(optimizer)

    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is None:

        def evaluate() -> Any:
            result = closure()
            after_closure()
            return result

        # The optimizer calls the closure itself, as often as it needs (LBFGS).
        return optimizer.step(closure=evaluate, **kwargs)
    # A loss scaler can't step with a closure: run it once, unscale, then step
    # (skipped if a gradient is inf/nan) and adapt the scale.
    result = closure()
    unscale_once(scaler, optimizer)
    after_closure()
    scaler.step(optimizer, **kwargs)
    scaler.update()
    return result
