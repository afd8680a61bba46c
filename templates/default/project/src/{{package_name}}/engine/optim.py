"""Optimizers: what ``configure_optimizers`` returns, and manual optimization.

Two jobs, both as pytorch_lightning 2.6.6 does them (recorded by running it):

1. :func:`configure` turns every form ``configure_optimizers`` may return
   into a list of optimizers and a list of scheduler configs (plain dicts),
   refusing the forms Lightning refuses, with Lightning's messages.
2. With ``automatic_optimization = False`` the loop only calls
   ``training_step`` (:func:`manual_training_step`); the step backpropagates
   with ``self.manual_backward(loss)`` (:func:`manual_backward`) and steps
   the optimizers ``self.optimizers()`` returns (:class:`LoopOptimizer`),
   through the precision's loss scaler. Each ``step()`` counts one
   ``global_step``: two optimizers over 4 batches end at step 8.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch.amp.grad_scaler import OptState

from .errors import UsageError
from .strategy import NAME as STRATEGY

if TYPE_CHECKING:
    from .module import Module
    from .trainer import Trainer

# The forms configure_optimizers may return (in Lightning's words), for the error.
FORMS = (
    "an Optimizer, [Optimizer, ...], ([Optimizer, ...], [LRScheduler, ...]), "
    '{"optimizer": Optimizer, "lr_scheduler": LRScheduler or a config dict, '
    '"monitor": "metric"}, or a list of such dicts'
)
# The keys a scheduler config dict may hold (Lightning's LRSchedulerConfig).
SCHEDULER_KEYS = (
    "scheduler",
    "name",
    "interval",
    "frequency",
    "reduce_on_plateau",
    "monitor",
    "strict",
)
PLATEAU = torch.optim.lr_scheduler.ReduceLROnPlateau
TORCH_SCHEDULERS = (torch.optim.lr_scheduler.LRScheduler, PLATEAU)


class OptimizerConfigError(UsageError):
    """``configure_optimizers`` returned something the Trainer can't train with."""


# ================================================================ configure_optimizers


def configure(
    module: Module,
) -> tuple[list[torch.optim.Optimizer], list[dict[str, Any]]]:
    """Call ``configure_optimizers`` and normalise its result (any of Lightning's forms).

    Returns:
        The optimizers, and one config dict per scheduler with the keys of
        Lightning's ``LRSchedulerConfig``: ``scheduler``, ``name``,
        ``interval`` ("epoch" or "step"), ``frequency``,
        ``reduce_on_plateau``, ``monitor`` (None unless the scheduler reads a
        metric) and ``strict``.

    Raises:
        OptimizerConfigError: For a form Lightning refuses, with its message.
    """
    result = module.configure_optimizers()
    if result is None:
        warnings.warn(
            "`LightningModule.configure_optimizers` returned `None`, "
            "this fit will run with no optimizer",
            stacklevel=2,
        )
        result = NoOptimizer(module.device)
    optimizers, schedulers, monitor = _split(result)
    if module.automatic_optimization:
        configs = [_automatic_config(scheduler, monitor) for scheduler in schedulers]
    else:
        configs = [_manual_config(scheduler) for scheduler in schedulers]
    if module.automatic_optimization and len(optimizers) > 1:
        raise OptimizerConfigError(
            "Training with multiple optimizers is only supported with manual optimization. "
            "Set `self.automatic_optimization = False`, then access your optimizers in "
            "`training_step` with `opt1, opt2, ... = self.optimizers()`."
        )
    if STRATEGY == "deepspeed" and (len(optimizers) > 1 or len(configs) > 1):
        raise OptimizerConfigError(
            "DeepSpeed currently only supports single optimizer, single optional scheduler "
            f"(configure_optimizers returned {len(optimizers)} optimizers and {len(configs)} "
            "schedulers); return one of each, or use strategy=ddp or fsdp"
        )
    for config in configs:
        _check_scheduler(config["scheduler"], optimizers, module)
    return optimizers, configs


def _split(result: Any) -> tuple[list[Any], list[Any], str | None]:
    """Optimizers, schedulers (objects or config dicts) and the top-level monitor."""
    if _is_optimizer(result):
        return [result], [], None
    # ([optimizers], [schedulers]) or ([optimizers], scheduler): the first must be a list.
    if (
        isinstance(result, (list, tuple))
        and len(result) == 2
        and isinstance(result[0], list)
        and all(_is_optimizer(o) for o in result[0])
    ):
        optimizers, schedulers = result
        return (
            list(optimizers),
            list(schedulers) if isinstance(schedulers, list) else [schedulers],
            None,
        )
    if isinstance(result, dict):
        _check_optimizer_dict(result)
        schedulers = [result["lr_scheduler"]] if "lr_scheduler" in result else []
        return [result["optimizer"]], schedulers, result.get("monitor")
    if isinstance(result, (list, tuple)) and result and all(isinstance(d, dict) for d in result):
        for entry in result:
            _check_optimizer_dict(entry)
        # As Lightning: each scheduler becomes a config dict, and the dicts'
        # "monitor" keys are not read (a ReduceLROnPlateau then needs its own).
        schedulers = [
            dict(d["lr_scheduler"])
            if isinstance(d["lr_scheduler"], dict)
            else {"scheduler": d["lr_scheduler"]}
            for d in result
            if "lr_scheduler" in d
        ]
        return [d["optimizer"] for d in result], schedulers, None
    if isinstance(result, (list, tuple)) and result and all(_is_optimizer(o) for o in result):
        return list(result), [], None
    raise OptimizerConfigError(
        f"configure_optimizers returned {_short(result)}: unknown configuration for model "
        f"optimizers; return one of {FORMS}"
    )


def _check_optimizer_dict(entry: dict[str, Any]) -> None:
    if "optimizer" not in entry:
        raise OptimizerConfigError(
            f"configure_optimizers returned a dict without an 'optimizer' key "
            f"(keys {sorted(map(str, entry))}); add one: {FORMS}"
        )
    if extra := set(entry) - {"optimizer", "lr_scheduler", "monitor"}:
        warnings.warn(
            f"Found unsupported keys in the optimizer configuration: {extra}",
            RuntimeWarning,
            stacklevel=4,
        )


def _automatic_config(scheduler: Any, monitor: str | None) -> dict[str, Any]:
    """A scheduler (or its config dict) as the loop steps it for automatic optimization."""
    if not isinstance(scheduler, dict):
        plateau = isinstance(scheduler, PLATEAU)
        if plateau and monitor is None:
            raise OptimizerConfigError(
                "`configure_optimizers` must include a monitor when a `ReduceLROnPlateau` "
                'scheduler is used. For example: {"optimizer": optimizer, "lr_scheduler": '
                'scheduler, "monitor": "metric_to_track"}'
            )
        return _config(scheduler, reduce_on_plateau=plateau, monitor=monitor if plateau else None)
    config = _known_keys(scheduler)
    if "interval" in config and config["interval"] not in ("step", "epoch"):
        raise OptimizerConfigError(
            'The "interval" key in lr scheduler dict must be "step" or "epoch" but is '
            f"{config['interval']!r}"
        )
    plateau = config.pop("reduce_on_plateau", isinstance(config["scheduler"], PLATEAU))
    if plateau and config.get("monitor") is None:
        raise OptimizerConfigError(
            "The lr scheduler dict must include a monitor when a `ReduceLROnPlateau` scheduler "
            'is used. For example: {"optimizer": optimizer, "lr_scheduler": {"scheduler": '
            'scheduler, "monitor": "your_loss"}}'
        )
    if isinstance(config["scheduler"], torch.optim.lr_scheduler.OneCycleLR) and (
        config.get("interval", "epoch") == "epoch"
    ):
        warnings.warn(
            "A `OneCycleLR` scheduler is using 'interval': 'epoch'. "
            "Are you sure you didn't mean 'interval': 'step'?",
            RuntimeWarning,
            stacklevel=4,
        )
    if not plateau:
        config["monitor"] = None  # stepped without a value, as Lightning does
    return _config(**config, reduce_on_plateau=plateau)


def _manual_config(scheduler: Any) -> dict[str, Any]:
    """A scheduler config under manual optimization: the user steps it, so no checks."""
    if not isinstance(scheduler, dict):
        return _config(scheduler)
    config = _known_keys(scheduler)
    if ignored := [key for key in scheduler if key in ("reduce_on_plateau", "monitor", "strict")]:
        warnings.warn(
            f"The lr scheduler dict contains the key(s) {ignored}, but the keys will be ignored. "
            "You need to call `lr_scheduler.step()` manually in manual optimization.",
            RuntimeWarning,
            stacklevel=4,
        )
    return _config(**{k: v for k, v in config.items() if k not in ignored})


def _known_keys(scheduler: dict[str, Any]) -> dict[str, Any]:
    if extra := set(scheduler) - set(SCHEDULER_KEYS):
        warnings.warn(
            f"Found unsupported keys in the lr scheduler dict: {extra}. "
            "HINT: remove them from the output of `configure_optimizers`.",
            RuntimeWarning,
            stacklevel=5,
        )
    if "scheduler" not in scheduler:
        raise OptimizerConfigError(
            'The lr scheduler dict must have the key "scheduler" with its item being an lr '
            f"scheduler (got the keys {sorted(map(str, scheduler))})"
        )
    return {key: value for key, value in scheduler.items() if key in SCHEDULER_KEYS}


def _config(
    scheduler: Any,
    name: str | None = None,
    interval: str = "epoch",
    frequency: int = 1,
    reduce_on_plateau: bool = False,
    monitor: str | None = None,
    strict: bool = True,
) -> dict[str, Any]:
    """Lightning's LRSchedulerConfig, as the plain dict the loop and checkpoints use."""
    return {
        "scheduler": scheduler,
        "name": name,
        "interval": interval,
        "frequency": frequency,
        "reduce_on_plateau": reduce_on_plateau,
        "monitor": monitor,
        "strict": strict,
    }


def _check_scheduler(scheduler: Any, optimizers: list[Any], module: Module) -> None:
    """Lightning's checks: resumable, stepped by the loop or by you, of one of these optimizers."""
    name = type(scheduler).__name__
    if not (hasattr(scheduler, "state_dict") and hasattr(scheduler, "load_state_dict")):
        raise OptimizerConfigError(
            f"The provided lr scheduler `{name}` is invalid. "
            "It should have `state_dict` and `load_state_dict` methods defined."
        )
    if (
        module.automatic_optimization
        and not isinstance(scheduler, TORCH_SCHEDULERS)
        and not _overridden(module, "lr_scheduler_step")
    ):
        raise OptimizerConfigError(
            f"The provided lr scheduler `{name}` doesn't follow PyTorch's LRScheduler API. "
            "You should override the `LightningModule.lr_scheduler_step` hook with your own "
            "logic if you are using a custom LR scheduler."
        )
    if not any(getattr(scheduler, "optimizer", None) is o for o in optimizers):
        raise OptimizerConfigError(
            f"Some schedulers are attached with an optimizer that wasn't returned from "
            f"`configure_optimizers` (the {name})."
        )


def _is_optimizer(value: Any) -> bool:
    """Lightning's ``Optimizable``: anything shaped like a torch optimizer."""
    return isinstance(value, torch.optim.Optimizer) or all(
        hasattr(value, attribute)
        for attribute in ("step", "zero_grad", "param_groups", "state_dict", "load_state_dict")
    )


def _overridden(module: Module, name: str) -> bool:
    from .module import Module

    return getattr(type(module), name, None) is not getattr(Module, name, None)


def _short(value: Any) -> str:
    """``value`` in one short line: its shape for containers, its type for other objects."""
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_short(item) for item in value[:4]) + (", ..." if len(value) > 4 else "")
        return (
            f"[{inner}]"
            if isinstance(value, list)
            else f"({inner}{',' if len(value) == 1 else ''})"
        )
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {_short(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (str, int, float, bool, type(None))):
        text = repr(value)
        return f"{text[:40]}..." if len(text) > 40 else text
    return type(value).__name__


class NoOptimizer(torch.optim.Optimizer):
    """Stands in when ``configure_optimizers`` returns None: steps change nothing.

    As Lightning's: the loop still runs ``training_step`` and backward and
    counts steps; the weights stay as they are.
    """

    def __init__(self, device: torch.device) -> None:
        placeholder = torch.zeros(1, device=device, requires_grad=True)
        placeholder.grad = torch.zeros_like(placeholder)  # a loss scaler checks one gradient
        super().__init__([placeholder], {})

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        return closure() if closure is not None else None

    def zero_grad(self, set_to_none: bool = True) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass


# ================================================================ manual optimization


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
    with trainer.strategy.no_sync(STRATEGY == "ddp"), trainer.precision.autocast():
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
    scaler = getattr(trainer.precision, "scaler", None)
    if scaler is not None:
        loss = scaler.scale(loss)
    call_hook(trainer, "on_before_backward", loss)
    if hasattr(module, "backward"):
        module.backward(loss, *args, **kwargs)  # the overridable hook
    else:
        loss.backward(*args, **kwargs)
    if STRATEGY == "ddp":
        _average_gradients(trainer, module)
    call_hook(trainer, "on_after_backward")


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


class LoopOptimizer:
    """What ``self.optimizers()`` returns: the optimizer, stepped the loop's way.

    ``step()`` unscales the gradients (16-mixed), calls the
    ``on_before_optimizer_step`` hooks, steps through the precision's scaler
    and counts one ``global_step`` under manual optimization. Everything else
    (``zero_grad``, ``param_groups``, ``state_dict``, ...) is the optimizer's;
    ``isinstance(handle, torch.optim.SGD)`` holds for an SGD, as in Lightning.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, trainer: Trainer) -> None:
        self._optimizer = optimizer
        self._trainer = trainer
        # Be an instance of the optimizer's class too, so isinstance checks
        # pass; attributes the class reads come from the optimizer (__getattr__).
        self.__class__ = type(
            f"Loop{type(optimizer).__name__}", (LoopOptimizer, type(optimizer)), {}
        )

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimizer ``configure_optimizers`` returned."""
        return self._optimizer

    def __getattr__(self, name: str) -> Any:
        if name == "_optimizer":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self._optimizer, name)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of this optimizer's parameters."""
        self._optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state."""
        return self._optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the optimizer's state."""
        self._optimizer.load_state_dict(state_dict)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add parameters to the optimizer."""
        self._optimizer.add_param_group(param_group)

    def step(self, closure: Callable[[], Any] | None = None, **kwargs: Any) -> Any:
        """Apply the gradients (running ``closure`` first, as often as the optimizer asks)."""
        if closure is not None and not callable(closure):
            raise UsageError(
                f"When `optimizer.step(closure)` is called, the closure should be callable, "
                f"not {_short(closure)}"
            )
        trainer = self._trainer
        output = _step(trainer, self._optimizer, closure or _nothing, **kwargs)
        if after := getattr(trainer.strategy, "after_step", None):
            after()  # XLA: run the step traced so far
        if not trainer.module.automatic_optimization:
            trainer.global_step += 1  # the automatic loop counts its own steps
        return output


def _step(trainer: Trainer, optimizer: Any, closure: Callable[[], Any], **kwargs: Any) -> Any:
    """One optimizer step through the precision, in Lightning's order of events.

    The closure runs first (it may backpropagate), then the gradients are made
    true-sized (16-mixed) and averaged (XLA), then the
    ``on_before_optimizer_step`` hooks see them, then the optimizer steps.
    """

    def after_closure() -> None:
        if before := getattr(trainer.strategy, "before_step", None):
            before(optimizer)  # XLA: average the gradients over the cores
        call_hook(trainer, "on_before_optimizer_step", optimizer)

    scaler = getattr(trainer.precision, "scaler", None)
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


def _nothing() -> None:
    return None


def unscale_once(scaler: Any, optimizer: Any) -> None:
    """Unscale ``optimizer``'s gradients unless done since the last step (clip_gradients did).

    GradScaler refuses a second ``unscale_`` before ``update()``; it records
    the first in its per-optimizer state, which is where we look.
    """
    state = scaler._per_optimizer_states.get(id(optimizer), {})
    if state.get("stage") is not OptState.UNSCALED:
        scaler.unscale_(optimizer)


def handles(trainer: Trainer) -> list[LoopOptimizer]:
    """The trainer's optimizers as :class:`LoopOptimizer` (the same objects on every call)."""
    cached = getattr(trainer, "_loop_optimizers", [])
    if [h.optimizer for h in cached] != trainer.optimizers:
        cached = [LoopOptimizer(optimizer, trainer) for optimizer in trainer.optimizers]
        trainer._loop_optimizers = cached
    return cached


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
    if (scaler := getattr(trainer.precision, "scaler", None)) is not None:
        unscale_once(scaler, optimizer)
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    if gradient_clip_algorithm == "norm":
        torch.nn.utils.clip_grad_norm_(parameters, gradient_clip_val)
    else:
        torch.nn.utils.clip_grad_value_(parameters, gradient_clip_val)


# ================================================================ toggling


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


# ================================================================ hooks


def call_hook(trainer: Trainer, name: str, *args: Any) -> None:
    """Call hook ``name`` on the callbacks, then the module (Lightning's order), where defined."""
    metrics = trainer.metrics
    hook, metrics.hook = metrics.hook, name  # what self.log in the hook is logged as
    try:
        for callback in trainer.callbacks:
            if (method := getattr(callback, name, None)) is not None:
                method(trainer, trainer.module, *args)
        if (method := getattr(trainer.module, name, None)) is not None:
            method(*args)
    finally:
        metrics.hook = hook
