"""The tensors inside a batch (or any collection), wherever they sit.

``apply_to_tensors`` walks the containers Lightning's ``apply_to_collection``
walks: lists, tuples, namedtuples, dicts and their subclasses (an
``OrderedDict`` stays one, a ``defaultdict`` keeps its factory), and dataclass
instances. Each container comes back as its own type around the changed
tensors; anything else (a string, a number, an object) comes back as it was.
Moving a batch to the device, putting it in the precision's dtype and
``self.all_gather`` all walk it this way.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import torch


def apply_to_tensors(
    value: Any, function: Callable[[Any], Any], kinds: type | tuple[type, ...] = torch.Tensor
) -> Any:
    """``value`` with ``function`` applied to each tensor in it, containers rebuilt.

    ``kinds``: what ``function`` is applied to instead of tensors (e.g. numbers too).
    """
    if isinstance(value, kinds):
        return function(value)
    if isinstance(value, (list, tuple)):
        items = [apply_to_tensors(item, function, kinds) for item in value]
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
            return type(value)(*items)
        return type(value)(items)
    if isinstance(value, Mapping):
        items = {key: apply_to_tensors(item, function, kinds) for key, item in value.items()}
        if isinstance(value, defaultdict):
            return type(value)(value.default_factory, items)
        return type(value)(items)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = copy.copy(value)
        for field in dataclasses.fields(value):
            item = apply_to_tensors(getattr(value, field.name), function, kinds)
            object.__setattr__(changed, field.name, item)  # a frozen dataclass too
        return changed
    return value


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with its tensors on ``device`` (see :func:`apply_to_tensors`)."""
    return apply_to_tensors(batch, lambda tensor: tensor.to(device, non_blocking=True))


def to_cpu(data: Any) -> Any:
    """``data`` with its tensors copied to the CPU (a blocking copy: safe to read at once)."""
    return apply_to_tensors(data, torch.Tensor.cpu)


def to_tensors(data: Any, device: torch.device) -> Any:
    """``data`` with its numbers and numpy arrays as tensors, all on ``device``.

    Lightning's conversions: a bool becomes uint8 (NCCL has no bool), an int
    int32, a float float32.
    """
    numpy = sys.modules.get("numpy")  # an array in ``data`` means numpy is imported
    kinds = (torch.Tensor, int, float) + ((numpy.ndarray,) if numpy is not None else ())
    return apply_to_tensors(data, lambda value: _as_tensor(value, device), kinds)


def _as_tensor(value: Any, device: torch.device) -> torch.Tensor:
    if isinstance(value, bool):
        return torch.tensor(value, dtype=torch.uint8, device=device)
    if isinstance(value, int):
        return torch.tensor(value, dtype=torch.int32, device=device)
    if isinstance(value, float):
        return torch.tensor(value, dtype=torch.float32, device=device)
    return torch.as_tensor(value).to(device)
