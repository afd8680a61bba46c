"""What the user sees: progress (a tqdm bar, or plain lines in a log) and a model summary."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

from torch import nn
from tqdm import tqdm

from .errors import ConfigError
from .hooks import Callback


class ProgressBar:
    """Progress per epoch (or evaluation run), with the ``prog_bar`` metrics.

    On a terminal, one tqdm bar, redrawn at most every ``refresh_seconds``:
    drawing and reading the metrics (a device sync) cost more than a fast
    training step, so a bar redrawn every step would slow training down.
    Anywhere else (a SLURM log, CI, ``> train.log``), where carriage-return redraws
    would pile up into one enormous line, plain lines instead: one every
    ``line_seconds`` and one when the run ends, e.g.
    ``Epoch 3: 120/500 batches, 45.2 it/s, train_loss=0.123``.

    Args:
        enabled: Show anything at all (rank zero only, ``enable_progress_bar``).
        refresh_seconds: A bar's redraw interval.
        interactive: Bars (True) or lines (False); None: bars when stderr is a terminal.
        line_seconds: The interval between plain lines.
    """

    def __init__(
        self,
        enabled: bool = True,
        refresh_seconds: float = 0.2,
        *,
        interactive: bool | None = None,
        line_seconds: float = 30.0,
    ) -> None:
        self.enabled = enabled
        self.refresh_seconds = refresh_seconds
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.line_seconds = line_seconds
        self.bar: tqdm | None = None
        self.line: _Line | None = None
        self._outer: _Line | None = None  # an epoch's line, while its validation runs
        self._drawn = 0.0

    @property
    def showing(self) -> bool:
        """Whether a run's progress is being shown (its metrics are worth reading)."""
        return self.bar is not None or self.line is not None

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        """Show a run of ``total`` batches (``initial`` already done).

        A bar still open closes; a line still open (an epoch's, when its
        validation starts) waits, and goes on when the new run closes.
        """
        if self.line is not None and self._outer is None:
            self._outer, self.line = self.line, None
        self.close()
        if not self.enabled:
            return
        if not self.interactive:
            self.line = _Line(description, total, initial)
            self._drawn = time.monotonic()
            return
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=description,
            dynamic_ncols=True,
            leave=True,
            file=sys.stderr,
        )

    def update(self, batch_idx: int, metrics: Callable[[], dict[str, float]] | None = None) -> None:
        """Advance to ``batch_idx + 1`` batches done; redraw (or print) now and then.

        ``metrics`` is called only when something is shown.
        """
        line = self.line
        if line is not None:
            line.done, line.latest = batch_idx + 1, metrics
        elif self.bar is None:
            return  # nothing shown
        interval = self.refresh_seconds if self.bar is not None else self.line_seconds
        if (now := time.monotonic()) - self._drawn < interval:
            return
        self._drawn = now
        values = metrics() if metrics else {}
        if line is not None:
            line.show(values)
            return
        self.bar.n = batch_idx + 1
        if values:
            self.bar.set_postfix(_formatted(values), refresh=False)
        self.bar.refresh()

    def close(self, metrics: dict[str, float] | None = None) -> None:
        """Show the final count and metrics, and end the run's progress."""
        if self.line is not None:
            line = self.line
            if line.total is not None and metrics is not None:  # the run's end
                line.done = line.total
            line.show(metrics or (line.latest() if line.latest else {}), final=True)
            self.line, self._outer = self._outer, None
        if self.bar is None:
            return
        if self.bar.total is not None:
            self.bar.n = self.bar.total
        if metrics:
            self.bar.set_postfix(_formatted(metrics), refresh=False)
        self.bar.close()
        self.bar = None


class TQDMProgressBar(Callback):
    """Lightning's progress-bar callback, for code ported from Lightning.

    The Trainer draws its own bar (:class:`ProgressBar`: redrawn at most every
    0.2 s, plain lines in a log file), so this only says whether to draw it:
    ``refresh_rate=0`` turns it off, as in Lightning; any other rate shows it
    (redrawn by time, not every ``refresh_rate`` batches). With
    ``Trainer(enable_progress_bar=False)``, or beside another one, it is an
    error, as in Lightning.
    """

    def __init__(self, refresh_rate: int = 1, process_position: int = 0, leave: bool = False):
        if refresh_rate < 0:
            raise ConfigError(f"{type(self).__name__}(refresh_rate={refresh_rate}): use 0 or more")
        self.refresh_rate = refresh_rate
        self.process_position = process_position
        self.leave = leave

    @property
    def is_enabled(self) -> bool:
        """Whether the bar is drawn (Lightning's property)."""
        return self.refresh_rate > 0

    @property
    def is_disabled(self) -> bool:
        """Whether the bar is off (Lightning's property)."""
        return not self.is_enabled


class RichProgressBar(TQDMProgressBar):
    """Lightning's rich bar, for ported code: the Trainer's own bar, as
    :class:`TQDMProgressBar` (no ``rich`` needed; ``theme`` and ``console_kwargs``
    are accepted and not used)."""

    def __init__(
        self,
        refresh_rate: int = 1,
        leave: bool = False,
        theme: Any = None,
        console_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(refresh_rate, leave=leave)


def shows_progress(enabled: bool, callbacks: list[Any]) -> bool:
    """``enable_progress_bar``, less a ported bar callback's ``refresh_rate=0``.

    Raises ConfigError, as Lightning, for a bar callback with the bar off, or two of them.
    """
    bars = [callback for callback in callbacks if isinstance(callback, TQDMProgressBar)]
    if len(bars) > 1:
        names = ", ".join(type(bar).__name__ for bar in bars)
        raise ConfigError(f"the callbacks hold {len(bars)} progress bars ({names}); keep one")
    if bars and not enabled:
        raise ConfigError(
            f"Trainer(enable_progress_bar=False) and a {type(bars[0]).__name__} among the "
            "callbacks: drop one of the two"
        )
    return enabled and not (bars and bars[0].is_disabled)


class _Line:
    """A run's progress as plain lines (see :class:`ProgressBar`)."""

    def __init__(self, description: str, total: int | None, initial: int) -> None:
        self.description, self.total = description, total
        self.done = self.initial = initial
        self.started = time.monotonic()
        self.latest: Callable[[], dict[str, float]] | None = None  # the metrics, when asked

    def show(self, metrics: dict[str, float], final: bool = False) -> None:
        seconds = time.monotonic() - self.started
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        parts = [f"{self.description}: {count} batches"]
        if final:
            parts[0] += f" in {seconds:.1f} s"
        if seconds > 0 and self.done > self.initial:
            parts.append(f"{(self.done - self.initial) / seconds:.1f} it/s")
        parts += [f"{name}={value}" for name, value in _formatted(metrics).items()]
        print(", ".join(parts), file=sys.stderr, flush=True)


def _formatted(metrics: dict[str, float]) -> dict[str, str]:
    return {name: f"{value:.4g}" for name, value in metrics.items()}


class ModelSummary(Callback):
    """Lightning's summary callback: the layers to ``max_depth`` when fitting starts.

    ``max_depth=1`` lists the module's children, ``2`` their children too
    (``net.0``), ``-1`` every layer, ``0`` nothing. Among the callbacks, it
    replaces the Trainer's own one-screen summary (``enable_model_summary``),
    as in Lightning; ``summarize_kwargs`` are accepted and not used.
    """

    def __init__(self, max_depth: int = 1, **summarize_kwargs: Any) -> None:
        self._max_depth = max_depth
        self._summarize_kwargs = summarize_kwargs

    def on_fit_start(self, trainer: Any, module: nn.Module) -> None:
        if self._max_depth and trainer.is_global_zero:
            print(summarize(module, self._max_depth, max_rows=None))


class RichModelSummary(ModelSummary):
    """Lightning's rich summary, for ported code: :class:`ModelSummary`'s table (no ``rich``)."""


def shows_summary(enabled: bool, callbacks: list[Any]) -> bool:
    """Whether the Trainer prints its own summary: ``enable_model_summary`` and no ModelSummary."""
    return enabled and not any(isinstance(callback, ModelSummary) for callback in callbacks)


def summarize(module: nn.Module, max_depth: int = 1, max_rows: int | None = 12) -> str:
    """A table of the layers to ``max_depth`` (as Lightning's), with parameter counts.

    Raises ValueError, as Lightning, for a ``max_depth`` other than -1, 0 or more.
    """
    if not isinstance(max_depth, int) or max_depth < -1:
        raise ValueError(f"ModelSummary(max_depth={max_depth!r}): use -1, 0 or a positive depth")
    rows = []
    for name, child in _layers(module, max_depth):
        count = sum(_numel(p) for p in child.parameters())
        rows.append((name, type(child).__name__, count))
    total = sum(_numel(p) for p in module.parameters())
    trainable = sum(_numel(p) for p in module.parameters() if p.requires_grad)
    size_mb = sum(_numel(p) * p.element_size() for p in module.parameters()) / 2**20
    width = max([len(name) + 2 for name, _, _ in rows] + [20])
    lines = [f"  {'':<3}{'Name':<{width}}{'Type':<24}{'Params':>12}"]
    shown = rows if max_rows is None else rows[:max_rows]
    for index, (name, kind, count) in enumerate(shown):
        lines.append(f"  {index:<3}{name:<{width}}{kind:<24}{_human(count):>12}")
    if len(shown) < len(rows):
        lines.append(f"  ... and {len(rows) - len(shown)} more")
    lines += [
        f"  {_human(trainable)} trainable params",
        f"  {_human(total - trainable)} non-trainable params",
        f"  {_human(total)} total params ({size_mb:.2f} MB)",
    ]
    return "\n".join(lines)


def _layers(module: nn.Module, max_depth: int) -> list[tuple[str, nn.Module]]:
    """The named layers a summary lists: children (depth 1), deeper ones to ``max_depth``."""
    if max_depth == 0:
        return []
    if max_depth == 1:
        return list(module.named_children())
    deeper = list(module.named_modules())[1:]  # not the module itself
    return [(n, m) for n, m in deeper if max_depth < 0 or n.count(".") < max_depth]


def _numel(parameter: nn.Parameter) -> int:
    # DeepSpeed ZeRO-3 leaves an empty placeholder here and records the full size.
    return getattr(parameter, "ds_numel", parameter.numel())


def _human(count: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return str(count)


def print_results(stage: str, metrics: dict[str, float]) -> None:
    """The stage's metrics as a two-column table (rank zero prints it); none: nothing."""
    if not metrics:
        return  # as Lightning: no empty table
    width = max([len(name) for name in metrics] + [12])
    print(f"\n{stage.capitalize() + ' metric':<{width}}  Value")
    print("-" * (width + 14))
    for name, value in metrics.items():
        print(
            f"{name:<{width}}  {value:.6g}" if math.isfinite(value) else f"{name:<{width}}  {value}"
        )
    print()
