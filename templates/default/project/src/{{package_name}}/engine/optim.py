"""What ``configure_optimizers`` returns, as the loop uses it.

:func:`configure` turns every form ``configure_optimizers`` may return into a
list of optimizers and a list of scheduler configs (plain dicts), refusing the
forms pytorch_lightning 2.6.6 refuses, with its messages (recorded by running
it); :func:`step_schedulers` steps the ones that are due, as Lightning
does. Manual optimization is in ``manual.py``, the optimizer wrapper the module
sees in ``optimizer.py``, clipping and toggling in ``gradients.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from .errors import ConfigError, UsageError
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


def step_schedulers(trainer: Trainer, interval: str, plateau: bool | None = None) -> None:
    """Step the ``interval`` schedulers that are due (``plateau``: only those, or none).

    "step" schedulers count optimizer steps, "epoch" ones finished epochs; a
    monitored one (ReduceLROnPlateau) gets its metric's latest value.
    """
    if not trainer.module.automatic_optimization:
        return  # manual optimization: training_step steps them, as in Lightning
    count = trainer.global_step if interval == "step" else trainer.current_epoch + 1
    for scheduler in trainer.lr_schedulers:
        if scheduler["interval"] != interval or count % scheduler["frequency"]:
            continue
        if plateau is not None and plateau != (scheduler["monitor"] is not None):
            continue
        value = None
        if scheduler["monitor"] is not None:
            value = _monitored(trainer, scheduler["monitor"])
        trainer.hooks.lr_scheduler_step(scheduler["scheduler"], value)


def _monitored(trainer: Trainer, monitor: str) -> float:
    metrics = trainer.callback_metrics
    if monitor not in metrics:
        off = " (validation is off: trainer.limit_val_batches=0)"
        raise ConfigError(
            f"lr_scheduler monitor={monitor!r} is not a logged metric"
            f"{off if trainer.config.limit_val_batches == 0 else ''}; "
            f"logged metrics are {sorted(metrics)}"
        )
    return float(metrics[monitor])


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
        f"configure_optimizers returned {short(result)}: unknown configuration for model "
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


def short(value: Any) -> str:
    """``value`` in one short line: its shape for containers, its type for other objects."""
    if isinstance(value, (list, tuple)):
        inner = ", ".join(short(item) for item in value[:4]) + (", ..." if len(value) > 4 else "")
        return (
            f"[{inner}]"
            if isinstance(value, list)
            else f"({inner}{',' if len(value) == 1 else ''})"
        )
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {short(item)}" for key, item in value.items()) + "}"
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
