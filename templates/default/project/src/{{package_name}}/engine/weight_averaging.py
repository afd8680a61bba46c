"""Lightning's ``WeightAveraging`` and ``EMAWeightAveraging``: validate and keep averaged weights.

    EMAWeightAveraging(decay=0.999)  # an exponential moving average, updated every step

A copy of the module (``torch.optim.swa_utils.AveragedModel``) averages its
weights as training goes. Validation runs on the average (the two are swapped
for it and back), and training ends with the average in the module.
Checkpoints hold the average as ``state_dict`` (what ``load_from_checkpoint``,
``test --ckpt_path best`` and ``export`` use), the weights being trained as
``current_model_state``, and the average's count as ``averaging_state``; a
resumed run continues both exactly. ``WeightAveraging(avg_fn=...)``
with ``should_update(step_idx, epoch_idx)`` overridden averages on any
schedule; by default, an equal-weight average after every step.

As in Lightning, the copy is the whole model on one device: FSDP and DeepSpeed,
which shard it, are refused.
"""

from __future__ import annotations

import warnings
from copy import deepcopy
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn

from .errors import ConfigError
from .hooks import Callback, overrides
from .module import Module
from .strategy import NAME as STRATEGY


class WeightAveraging(Callback):
    """Keep an average of the module's weights (``AveragedModel``) and validate with it.

    Args:
        device: Where the average lives (default: the device the module trains on).
        use_buffers: Average the buffers too (BatchNorm's statistics).
        **kwargs: For ``AveragedModel`` (``avg_fn``, ``multi_avg_fn``).
    """

    def __init__(
        self,
        device: torch.device | str | int | None = None,
        use_buffers: bool = True,
        **kwargs: Any,
    ) -> None:
        self._device = torch.device(device) if isinstance(device, str) else device
        self._use_buffers = use_buffers
        self._kwargs = kwargs
        self._average_model: AveragedModel | None = None
        self._trained: dict[str, torch.Tensor] | None = None  # the weights, once training ended
        self._latest_update_step = 0
        self._latest_update_epoch = -1

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        """Whether to average after this step (``step_idx``) or epoch (``epoch_idx``)."""
        return step_idx is not None

    def setup(self, trainer: Any, module: nn.Module, stage: str) -> None:
        """Make the average, a copy of the module, when fitting starts."""
        if stage != "fit":
            return
        if STRATEGY in ("fsdp", "deepspeed"):
            raise ConfigError(
                f"{type(self).__name__} keeps a whole copy of the model, which {STRATEGY} "
                "shards; use strategy=ddp, or drop the callback"
            )
        if overrides(module, "configure_model", Module):
            warnings.warn(
                f"{type(self).__name__}: configure_model is called now, so the average copies "
                "the layers it makes (the model is not sharded)",
                stacklevel=2,
            )
            module.configure_model()
        # Lightning's default is the module's device at setup, the CPU until the
        # strategy moves it: every update would copy the weights there. The
        # engine's is the device the module trains on.
        device = self._device if self._device is not None else trainer.device
        self._trained = None
        self._average_model = AveragedModel(
            module, device=device, use_buffers=self._use_buffers, **self._kwargs
        )

    def on_train_batch_end(
        self, trainer: Any, module: nn.Module, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Average after an optimizer step that ``should_update``."""
        step = trainer.global_step
        if step > self._latest_update_step and self.should_update(step_idx=step - 1):
            self._average_model.update_parameters(module)
            self._latest_update_step = step

    def on_train_epoch_end(self, trainer: Any, module: nn.Module) -> None:
        """Average after an epoch that ``should_update``."""
        epoch = trainer.current_epoch
        if epoch > self._latest_update_epoch and self.should_update(epoch_idx=epoch):
            self._average_model.update_parameters(module)
            self._latest_update_epoch = epoch

    def on_train_end(self, trainer: Any, module: nn.Module) -> None:
        """Training ends with the average in the module.

        The weights trained are kept for a checkpoint written after this (the
        engine's ``last.ckpt`` at ``on_fit_end``), so a resumed run continues them.
        """
        self._trained = {k: v.detach().clone() for k, v in module.state_dict().items()}
        for average, current in _pairs(self._average_model.module, module):
            current.data.copy_(average.data)

    def on_validation_epoch_start(self, trainer: Any, module: nn.Module) -> None:
        """Validate the average: swap it into the module."""
        if self._average_model is not None:
            self._swap(module)

    def on_validation_epoch_end(self, trainer: Any, module: nn.Module) -> None:
        """Swap the weights being trained back."""
        if self._average_model is not None:
            self._swap(module)

    def state_dict(self) -> dict[str, Any]:
        """The last step averaged (the average itself is in the checkpoint's weights)."""
        return {"latest_update_step": self._latest_update_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from the saved step."""
        self._latest_update_step = state_dict["latest_update_step"]

    def on_save_checkpoint(self, trainer: Any, module: nn.Module, checkpoint: dict) -> None:
        """The average as ``state_dict``; the weights being trained as ``current_model_state``."""
        if self._average_model is None:  # outside fit: the module's weights, as they are
            return
        averaged = self._average_model.state_dict()
        trained = self._trained if self._trained is not None else checkpoint["state_dict"]
        checkpoint["current_model_state"] = trained
        checkpoint["state_dict"] = {
            name.removeprefix("module."): value
            for name, value in averaged.items()
            if name.startswith("module.")
        }
        checkpoint["averaging_state"] = {
            name: value for name, value in averaged.items() if not name.startswith("module.")
        }

    def on_load_checkpoint(self, trainer: Any, module: nn.Module, checkpoint: dict) -> None:
        """Restore the average and the weights being trained (resuming a fit)."""
        if self._average_model is None:
            return  # validate/test/predict: the module has the average, as saved
        if "current_model_state" in checkpoint and "averaging_state" in checkpoint:
            state = {f"module.{name}": value for name, value in checkpoint["state_dict"].items()}
            self._average_model.load_state_dict({**state, **checkpoint["averaging_state"]})
            module.load_state_dict(checkpoint["current_model_state"])
        else:
            warnings.warn(
                f"{type(self).__name__}: this checkpoint was not written with weight averaging; "
                "the average starts from its weights",
                stacklevel=2,
            )
            self._average_model.module.load_state_dict(
                deepcopy(checkpoint["state_dict"]), strict=False
            )

    def _swap(self, module: nn.Module) -> None:
        for average, current in _pairs(self._average_model.module, module):
            kept = average.data.clone()
            average.data.copy_(current.data)
            current.data.copy_(kept)


class EMAWeightAveraging(WeightAveraging):
    """An exponential moving average: ``average = decay * average + (1 - decay) * weights``.

    Args:
        decay: The weight of the average at each update.
        update_every_n_steps: Average every n optimizer steps (0: never by step).
        update_starting_at_step: The first step averaged (None: from the start).
        update_starting_at_epoch: Average at the end of each epoch from this one on
            (None: never by epoch).
    """

    def __init__(
        self,
        device: torch.device | str | int | None = None,
        use_buffers: bool = True,
        decay: float = 0.999,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(device, use_buffers, avg_fn=get_ema_avg_fn(decay=decay), **kwargs)
        self.update_every_n_steps = update_every_n_steps
        self.update_starting_at_step = update_starting_at_step
        self.update_starting_at_epoch = update_starting_at_epoch

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        """By step: every ``update_every_n_steps`` from the first; by epoch: from the first."""
        if step_idx is not None:
            first = self.update_starting_at_step
            every = self.update_every_n_steps
            if (first is None or step_idx >= first) and every > 0 and step_idx % every == 0:
                return True
        first_epoch = self.update_starting_at_epoch
        return epoch_idx is not None and first_epoch is not None and epoch_idx >= first_epoch


def _pairs(average: nn.Module, module: nn.Module) -> Any:
    """Matching tensors of the average's copy and the module: parameters, then buffers."""
    return zip(
        [*average.parameters(), *average.buffers()],
        [*module.parameters(), *module.buffers()],
        strict=True,
    )
