"""Lightning's ``Timer`` callback: stop training after a duration, and time each stage.

    Timer(duration="00:12:00:00")              # DD:HH:MM:SS
    Timer(duration=timedelta(hours=12), interval="epoch")
    Timer(duration={"days": 2})                # timedelta's keywords

Training stops once the time spent training reaches ``duration``: checked after
each training batch (``interval="step"``) or epoch (``"epoch"``), and when the fit
starts, so a resumed run whose time is already spent stops at once (the time
trained so far is in the checkpoint). Every process stops together. The
stages' clocks are read with ``time_elapsed(stage)``, ``time_remaining``,
``start_time`` and ``end_time``, ``stage`` being one of Lightning's names:
"train", "sanity_check", "validate", "test", "predict". ``Trainer(max_time=...)``
stops the same way without a callback.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .errors import ConfigError
from .hooks import Callback

STAGES = ("train", "sanity_check", "validate", "test", "predict")  # Lightning's RunningStage


def _stamp(table: str, stage: str) -> Callable[[Any, Any, Any], None]:
    """A hook that notes the time in the Timer's ``table`` ("_start_time" or "_end_time")."""

    def hook(timer: Any, trainer: Any, module: Any) -> None:
        getattr(timer, table)[stage] = time.monotonic()

    return hook


class Timer(Callback):
    """Stops training after ``duration`` (None: never) and times the stages."""

    def __init__(
        self,
        duration: str | timedelta | dict[str, int] | None = None,
        interval: str = "step",
        verbose: bool = True,
    ) -> None:
        if isinstance(duration, str):
            parts = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", duration.strip())
            if parts is None:
                raise ConfigError(
                    f"Timer(duration={duration!r}): use DD:HH:MM:SS, e.g. 00:12:00:00"
                )
            days, hours, minutes, seconds = map(int, parts.groups())
            duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        elif isinstance(duration, dict):
            duration = timedelta(**duration)
        if interval not in ("step", "epoch"):
            raise ConfigError(f"Timer(interval={interval!r}): use 'step' or 'epoch'")
        self._duration = None if duration is None else duration.total_seconds()
        self._interval = interval
        self._verbose = verbose
        self._start_time: dict[str, float | None] = dict.fromkeys(STAGES)
        self._end_time: dict[str, float | None] = dict.fromkeys(STAGES)
        self._offset = 0.0  # training time of the runs this one resumed

    def start_time(self, stage: str = "train") -> float | None:
        """When ``stage`` last started (``time.monotonic()``), or None."""
        return self._start_time[_checked(stage)]

    def end_time(self, stage: str = "train") -> float | None:
        """When ``stage`` last ended, or None."""
        return self._end_time[_checked(stage)]

    def time_elapsed(self, stage: str = "train") -> float:
        """Seconds spent in ``stage`` (training: with the resumed runs' time)."""
        start, end = self.start_time(stage), self.end_time(stage)
        offset = self._offset if stage == "train" else 0.0
        if start is None:
            return offset
        return (time.monotonic() if end is None else end) - start + offset

    def time_remaining(self, stage: str = "train") -> float | None:
        """Seconds left of ``duration`` (None without one)."""
        return None if self._duration is None else self._duration - self.time_elapsed(stage)

    # When each stage starts and ends (Lightning times these three).
    on_train_start = _stamp("_start_time", "train")
    on_train_end = _stamp("_end_time", "train")
    on_validation_start = _stamp("_start_time", "validate")
    on_validation_end = _stamp("_end_time", "validate")
    on_test_start = _stamp("_start_time", "test")
    on_test_end = _stamp("_end_time", "test")

    def on_fit_start(self, trainer: Any, module: Any) -> None:
        if self._duration is not None:  # a resumed run may have no time left
            self._check_time_remaining(trainer)

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if self._interval == "step" and self._duration is not None:
            self._check_time_remaining(trainer)

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        if self._interval == "epoch" and self._duration is not None:
            self._check_time_remaining(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"time_elapsed": {stage: self.time_elapsed(stage) for stage in STAGES}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._offset = state_dict.get("time_elapsed", {}).get("train", 0.0)

    def _check_time_remaining(self, trainer: Any) -> None:
        # A joint decision: every process stops, or none.
        stop = trainer.strategy.any(self.time_elapsed() >= self._duration)
        trainer.should_stop = trainer.should_stop or stop
        if stop and self._verbose and trainer.is_global_zero:
            elapsed = timedelta(seconds=int(self.time_elapsed()))
            print(
                f"Time limit reached. Elapsed time is {elapsed}. Signaling Trainer to stop.",
                file=sys.stderr,
            )


def _checked(stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"Timer: unknown stage {stage!r}; use one of {', '.join(STAGES)}")
    return stage
