"""What the user sees: a tqdm progress bar and a one-screen model summary."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from torch import nn
from tqdm import tqdm


class ProgressBar:
    """One tqdm bar per epoch (or evaluation run), showing ``prog_bar`` metrics.

    The bar is redrawn at most every ``refresh_seconds``: drawing and reading
    the metrics (a device sync) cost more than a fast training step, so a bar
    redrawn every step would slow training down.
    """

    def __init__(self, enabled: bool = True, refresh_seconds: float = 0.2) -> None:
        self.enabled = enabled
        self.refresh_seconds = refresh_seconds
        self.bar: tqdm | None = None
        self._drawn = 0.0

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        """Open a bar for ``total`` batches (``initial`` already done)."""
        self.close()
        if self.enabled:
            self.bar = tqdm(
                total=total,
                initial=initial,
                desc=description,
                dynamic_ncols=True,
                leave=True,
                file=sys.stderr,
            )

    def update(self, batch_idx: int, metrics: Callable[[], dict[str, float]] | None = None) -> None:
        """Advance to ``batch_idx + 1`` batches done; redraw now and then.

        ``metrics`` is called only when the bar is redrawn.
        """
        if self.bar is None or (now := time.monotonic()) - self._drawn < self.refresh_seconds:
            return
        self._drawn = now
        self.bar.n = batch_idx + 1
        if metrics and (metrics := metrics()):
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
        self.bar.refresh()

    def close(self, metrics: dict[str, float] | None = None) -> None:
        """Show the final count and metrics, and close the bar."""
        if self.bar is None:
            return
        if self.bar.total is not None:
            self.bar.n = self.bar.total
        if metrics:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
        self.bar.close()
        self.bar = None


def summarize(module: nn.Module, max_rows: int = 12) -> str:
    """A one-screen table of the top-level layers and parameter counts."""
    rows = []
    for name, child in module.named_children():
        count = sum(_numel(p) for p in child.parameters())
        rows.append((name, type(child).__name__, count))
    total = sum(_numel(p) for p in module.parameters())
    trainable = sum(_numel(p) for p in module.parameters() if p.requires_grad)
    size_mb = sum(_numel(p) * p.element_size() for p in module.parameters()) / 2**20
    lines = [f"  {'':<3}{'Name':<20}{'Type':<24}{'Params':>12}"]
    for index, (name, kind, count) in enumerate(rows[:max_rows]):
        lines.append(f"  {index:<3}{name:<20}{kind:<24}{_human(count):>12}")
    if len(rows) > max_rows:
        lines.append(f"  ... and {len(rows) - max_rows} more")
    lines += [
        f"  {_human(trainable)} trainable params",
        f"  {_human(total - trainable)} non-trainable params",
        f"  {_human(total)} total params ({size_mb:.2f} MB)",
    ]
    return "\n".join(lines)


def _numel(parameter: nn.Parameter) -> int:
    # DeepSpeed ZeRO-3 leaves an empty placeholder here and records the full size.
    return getattr(parameter, "ds_numel", parameter.numel())


def _human(count: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return str(count)


def print_results(stage: str, metrics: dict[str, float]) -> None:
    """The stage's metrics as a two-column table (rank zero prints it)."""
    width = max([len(name) for name in metrics] + [12])
    print(f"\n{stage.capitalize() + ' metric':<{width}}  Value")
    print("-" * (width + 14))
    for name, value in metrics.items():
        print(
            f"{name:<{width}}  {value:.6g}" if math.isfinite(value) else f"{name:<{width}}  {value}"
        )
    print()
