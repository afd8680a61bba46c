"""Does a checkpoint fit this model? Refuse another model's checkpoint before loading it.

A checkpoint records the full shape of every weight (``shapes``), so a
checkpoint of another task, or of the same model built with other sizes, is
refused with the option to change, before any weight is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError


def shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    """The full shape of every tensor in ``module``'s state dict.

    Sharded tensors report their full shape (FSDP's DTensors do;
    DeepSpeed ZeRO-3 keeps it in ``ds_shape``).
    """
    return {
        name: list(getattr(tensor, "ds_shape", tensor.shape))
        # nn.Module's own state_dict, not an override: one state_dict hook per save.
        for name, tensor in torch.nn.Module.state_dict(module, keep_vars=True).items()
        if isinstance(tensor, torch.Tensor)
    }


def check_fits(
    path: str | Path, checkpoint: dict[str, Any], module: torch.nn.Module, strict: bool = True
) -> None:
    """Refuse a checkpoint of another model (other weights, or other sizes) before loading it.

    ``strict=False`` (``load_from_checkpoint``'s): weights only one side has are
    allowed; the ones both have must have the same shapes.
    """
    saved = checkpoint.get("shapes")
    if saved is None and isinstance(checkpoint.get("state_dict"), dict):
        state = checkpoint["state_dict"]
        saved = {k: list(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    if saved is None:
        return  # a folder written before shapes were recorded: the strategy checks
    ours = shapes(module)
    missing, unexpected = sorted(ours.keys() - saved.keys()), sorted(saved.keys() - ours.keys())
    if (missing or unexpected) and strict:
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds another model's weights (it lacks "
            f"{_few(missing)}; it has {_few(unexpected)}, which this model lacks): was it "
            "written by another project or task?"
        )
    differ = [name for name in ours if name in saved and list(saved[name]) != ours[name]]
    if differ:
        name = differ[0]
        raise CheckpointError(
            f"checkpoint {str(path)!r} was trained with other model sizes: {name} is "
            f"{saved[name]} there, {ours[name]} here; "
            + _hparams_hint(checkpoint.get("hyper_parameters"), getattr(module, "hparams", {}))
        )


def _few(names: list[str]) -> str:
    if not names:
        return "nothing"
    shown = ", ".join(map(repr, names[:3]))
    return f"{shown} and {len(names) - 3} more" if len(names) > 3 else shown


def _hparams_hint(saved: Any, ours: dict[str, Any]) -> str:
    """Which model options to pass to build the model the checkpoint was trained as."""
    if not isinstance(saved, dict):
        return "build the model with the options it was trained with"
    differ = {k: v for k, v in saved.items() if k in ours and ours[k] != v}
    if not differ:
        return "build the model with the options it was trained with"
    options = ", ".join(f"{k}={v!r} (here {ours[k]!r})" for k, v in differ.items())
    flags = " ".join(f"--model.{k} {v}" for k, v in differ.items())
    return f"it was trained with {options}: pass {flags}"
