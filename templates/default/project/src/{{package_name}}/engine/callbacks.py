"""Callbacks: plain classes whose methods are named after Lightning's hooks.

No base class is needed. The Trainer calls ``callback.<hook>(trainer, module,
...)`` for every hook a callback defines: ``on_fit_start``,
``on_train_epoch_start``, ``on_train_batch_start(trainer, module, batch,
batch_idx)``, ``on_train_batch_end(trainer, module, outputs, batch,
batch_idx)``, ``on_train_epoch_end`` (after validation), ``on_validation_end``,
``on_fit_end``, ``on_exception(trainer, module, error)``, and
``state_dict``/``load_state_dict`` for what the callback keeps in checkpoints.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .module import Module
    from .trainer import Trainer


class ModelCheckpoint:
    """Save checkpoints during training, as Lightning's ModelCheckpoint does.

    Args:
        dirpath: Where to write; default ``<log_dir>/checkpoints``.
        filename: A template such as ``"{epoch}-{val_loss:.3f}"``; names in
            braces become ``name=value`` (Lightning's auto_insert_metric_name).
        monitor: Metric to rank checkpoints by; None keeps the latest ones.
        mode: ``"min"`` or ``"max"``: which values of ``monitor`` are better.
        save_top_k: Keep the best k (-1: all, 0: none but ``last.ckpt``).
        save_last: Also write ``last.ckpt`` every time a checkpoint is saved.
        every_n_epochs: Save at the end of every n-th epoch (0: never).
        every_n_train_steps: Save every n optimizer steps instead (0: off).
    """

    CHECKPOINT_NAME_LAST = "last"
    FILE_EXTENSION = ".ckpt"

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        mode: str = "min",
        save_top_k: int = 1,
        save_last: bool = True,
        every_n_epochs: int = 1,
        every_n_train_steps: int = 0,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"ModelCheckpoint(mode={mode!r}): use 'min' or 'max'")
        if save_top_k < -1:
            raise ValueError(f"ModelCheckpoint(save_top_k={save_top_k}): use -1 or more")
        self.dirpath = Path(dirpath) if dirpath else None
        self.filename = filename or "{epoch}-{step}"
        self.monitor = monitor
        self.mode = mode
        self.save_top_k = save_top_k
        self.save_last = save_last
        self.every_n_epochs = every_n_epochs
        self.every_n_train_steps = every_n_train_steps
        self.best_k_models: dict[str, float] = {}
        self.best_model_path = ""
        self.best_model_score: float | None = None
        self.last_model_path = ""
        self._last_saved_step = -1

    # ------------------------------------------------------------ hooks

    def on_fit_start(self, trainer: Trainer, module: Module) -> None:
        if self.dirpath is None:
            self.dirpath = trainer.log_dir / "checkpoints"

    def on_train_batch_end(
        self, trainer: Trainer, module: Module, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        n = self.every_n_train_steps
        if n and trainer.step_finished and trainer.global_step % n == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: Trainer, module: Module) -> None:
        # The Trainer calls this after the epoch's validation and scheduler
        # steps, so `monitor` can name a validation metric and the checkpoint
        # holds the epoch's final state.
        if self._epoch_due(trainer):
            self._save(trainer)

    def on_fit_end(self, trainer: Trainer, module: Module) -> None:
        # However the run ended, leave last.ckpt at the final state.
        if self.save_last and self._last_saved_step != trainer.global_step:
            self._save_last(trainer)

    def on_exception(self, trainer: Trainer, module: Module, error: BaseException) -> None:
        self.on_fit_end(trainer, module)

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "best_model_path": self.best_model_path,
            "best_model_score": self.best_model_score,
            "best_k_models": dict(self.best_k_models),
            "last_model_path": self.last_model_path,
            "dirpath": str(self.dirpath) if self.dirpath else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("monitor") != self.monitor:
            return  # a different metric: the old ranking means nothing here
        self.best_model_path = state["best_model_path"]
        self.best_model_score = state["best_model_score"]
        self.best_k_models = dict(state["best_k_models"])
        self.last_model_path = state["last_model_path"]

    # ------------------------------------------------------------ saving

    def _epoch_due(self, trainer: Trainer) -> bool:
        n = self.every_n_epochs
        return (
            bool(n)
            and not self.every_n_train_steps
            and ((trainer.current_epoch + 1) % n == 0 or trainer.should_stop)
        )

    def _save(self, trainer: Trainer) -> None:
        if self._last_saved_step == trainer.global_step:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if self.save_top_k != 0:
            self._save_top_k(trainer, metrics)
        if self.save_last:
            self._save_last(trainer)
        self._last_saved_step = trainer.global_step

    def _save_top_k(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        path = self._path(self.format_name(trainer, metrics))
        if self.monitor is None:
            # No metric to rank by: keep the most recent save_top_k checkpoints.
            score = float(trainer.global_step)
            better = True
        else:
            if self.monitor not in metrics:
                raise KeyError(
                    f"ModelCheckpoint(monitor={self.monitor!r}) found no such metric; "
                    f"logged metrics are {sorted(metrics)}"
                )
            score = metrics[self.monitor]
            if math.isnan(score):
                score = math.inf if self.mode == "min" else -math.inf
            better = self._better(score)
        if not better:
            return
        trainer.save_checkpoint(path)
        self.best_k_models[str(path)] = score
        if 0 < self.save_top_k < len(self.best_k_models):
            worst = self._worst()
            del self.best_k_models[worst]
            if worst != str(path):
                Path(worst).unlink(missing_ok=True)
        if self.monitor is None:
            self.best_model_path, self.best_model_score = str(path), None
        else:
            self.best_model_path = self._best()
            self.best_model_score = self.best_k_models[self.best_model_path]

    def _save_last(self, trainer: Trainer) -> None:
        path = self._path(self.CHECKPOINT_NAME_LAST)
        trainer.save_checkpoint(path)
        self.last_model_path = str(path)

    def _better(self, score: float) -> bool:
        if self.save_top_k == -1 or len(self.best_k_models) < self.save_top_k:
            return True
        worst = self.best_k_models[self._worst()]
        return score < worst if self.mode == "min" else score > worst

    def _worst(self) -> str:
        # Without a monitor the score is the step, so the oldest goes first.
        pick = max if self.mode == "min" and self.monitor is not None else min
        return pick(self.best_k_models, key=self.best_k_models.__getitem__)

    def _best(self) -> str:
        pick = min if self.mode == "min" else max
        return pick(self.best_k_models, key=self.best_k_models.__getitem__)

    def _path(self, name: str) -> Path:
        if self.dirpath is None:
            raise RuntimeError("ModelCheckpoint used before on_fit_start set dirpath")
        return self.dirpath / f"{name}{self.FILE_EXTENSION}"

    def format_name(self, trainer: Trainer, metrics: dict[str, float]) -> str:
        """Fill the filename template, Lightning style (``epoch=3-step=120``)."""
        values = {"epoch": trainer.current_epoch, "step": trainer.global_step, **metrics}

        def fill(match: re.Match[str]) -> str:
            name, spec = match.group(1), match.group(2) or ""
            if name not in values:
                raise KeyError(
                    f"ModelCheckpoint(filename={self.filename!r}) names {name!r}, "
                    f"which is not logged; logged metrics are {sorted(metrics)}"
                )
            return f"{name}={format(values[name], spec)}"

        return re.sub(r"\{([^{}:]+)(?::([^{}]*))?\}", fill, self.filename)


class LearningRateMonitor:
    """Log every optimizer's learning rate, as Lightning's LearningRateMonitor.

    Names follow Lightning: ``lr-Adam``, then ``lr-Adam/pg1``, ``lr-Adam/pg2``
    for several parameter groups, and ``lr-Adam-1`` for a second Adam.

    Args:
        logging_interval: ``"step"``, ``"epoch"``, or None to follow each
            scheduler's interval (``"epoch"`` when there is no scheduler).
    """

    def __init__(self, logging_interval: str | None = None) -> None:
        if logging_interval not in (None, "step", "epoch"):
            raise ValueError(
                f"LearningRateMonitor(logging_interval={logging_interval!r}): "
                "use 'step', 'epoch' or None"
            )
        self.logging_interval = logging_interval

    def _interval(self, trainer: Trainer) -> str:
        if self.logging_interval:
            return self.logging_interval
        steps = any(s["interval"] == "step" for s in trainer.lr_schedulers)
        return "step" if steps else "epoch"

    def on_train_batch_end(
        self, trainer: Trainer, module: Module, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.step_finished and trainer.logging_step and self._interval(trainer) == "step":
            trainer.log_metrics(self.learning_rates(trainer))

    def on_train_epoch_start(self, trainer: Trainer, module: Module) -> None:
        if self._interval(trainer) == "epoch":
            trainer.log_metrics(self.learning_rates(trainer))

    @staticmethod
    def learning_rates(trainer: Trainer) -> dict[str, float]:
        """The current learning rate of every parameter group, named as Lightning."""
        rates: dict[str, float] = {}
        seen: dict[str, int] = {}
        for optimizer in trainer.optimizers:
            name = f"lr-{type(optimizer).__name__}"
            count = seen.get(name, 0)
            seen[name] = count + 1
            if count:
                name = f"{name}-{count}"
            groups = optimizer.param_groups
            for index, group in enumerate(groups):
                key = f"{name}/pg{index + 1}" if len(groups) > 1 else name
                lr = group["lr"]
                rates[key] = float(lr.item() if isinstance(lr, torch.Tensor) else lr)
        return rates
