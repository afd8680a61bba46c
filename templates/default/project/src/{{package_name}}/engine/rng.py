"""Seeds and random-generator state: what makes runs repeatable and resumable."""

from __future__ import annotations

import os
import random
import warnings
from typing import Any

import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy (if installed) and torch on every device.

    Args:
        seed: The seed (LightningCLI's ``--seed_everything``).
    """
    random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too
    try:
        import numpy as np
    except ImportError:
        pass
    else:
        np.random.seed(seed % 2**32)


def set_torch_flags(deterministic: bool, benchmark: bool | None) -> None:
    """``Trainer(deterministic=..., benchmark=...)``, set as Lightning sets them."""
    if deterministic:
        use_deterministic_algorithms()  # and cuDNN's benchmark off, unless asked for
    if benchmark is not None:
        if benchmark and deterministic:
            warnings.warn(
                "deterministic=True with benchmark=True: torch ignores "
                "torch.backends.cudnn.deterministic when cuDNN benchmarks",
                stacklevel=3,
            )
        torch.backends.cudnn.benchmark = benchmark


def use_deterministic_algorithms() -> None:
    """Ask torch for deterministic kernels (``trainer.deterministic``).

    Slower on GPUs, and the few CUDA ops without a deterministic kernel then
    raise instead of silently varying from run to run.
    """
    # cuBLAS needs this workspace setting to be deterministic.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def rng_states() -> dict[str, Any]:
    """Every random generator's state, as tensors and primitives."""
    states: dict[str, Any] = {
        "python": _python_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np
    except ImportError:
        return states
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states["numpy"] = {
        "keys": torch.from_numpy(keys.astype("int64")),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Undo :func:`rng_states`.

    The states may arrive on the training device (a checkpoint loaded with
    ``map_location="cuda"``); generators take their state as CPU byte tensors.
    """
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in states["cuda"]])
    if "numpy" in states:
        import numpy as np

        numpy_state = states["numpy"]
        np.random.set_state(
            (
                "MT19937",
                numpy_state["keys"].cpu().numpy().astype("uint32"),
                numpy_state["pos"],
                numpy_state["has_gauss"],
                numpy_state["cached_gaussian"],
            )
        )


def _python_state() -> tuple[int, list[int], float | None]:
    version, internal, gauss = random.getstate()
    return version, list(internal), gauss
