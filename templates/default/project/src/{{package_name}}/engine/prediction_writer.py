"""Lightning's BasePredictionWriter: predictions written as they come, with their indices.

A subclass writes each batch's predictions (``write_on_batch_end``) or the
whole run's at its end (``write_on_epoch_end``), with the dataset indices of
the samples in them. Under DDP each rank writes its own share, and the indices
put the shares back together. The Trainer records the indices of a predict
``DataLoader``'s batches (its batch sampler, wrapped: ``recording``) when such
a writer is among its callbacks; ``trainer.predict_loop`` holds them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from torch.utils.data import DataLoader

from .errors import ConfigError
from .hooks import Callback
from .loaders import rebuilt

if TYPE_CHECKING:
    from .module import Module
    from .trainer import Trainer

INTERVALS = ("batch", "epoch", "batch_and_epoch")


class BasePredictionWriter(Callback):
    """Override ``write_on_batch_end``, ``write_on_epoch_end`` or both.

    Args:
        write_interval: ``"batch"``: each batch's predictions as they come;
            ``"epoch"``: all of them at the end of the run; or ``"batch_and_epoch"``.
    """

    def __init__(self, write_interval: str = "batch") -> None:
        if write_interval not in INTERVALS:
            raise ConfigError(
                f"BasePredictionWriter(write_interval={write_interval!r}): use one of "
                f"{', '.join(map(repr, INTERVALS))}"
            )
        self.interval = write_interval

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: Module,
        prediction: Any,
        batch_indices: list[int],
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Write one batch's ``prediction``; ``batch_indices`` are its samples' dataset indices."""
        raise NotImplementedError

    def write_on_epoch_end(
        self,
        trainer: Trainer,
        pl_module: Module,
        predictions: list[Any],
        batch_indices: list[list[list[int]]],
    ) -> None:
        """Write every prediction: a list of batches (a list per dataloader when there are
        several) and, per dataloader, each batch's dataset indices."""
        raise NotImplementedError

    def on_predict_batch_end(
        self,
        trainer: Trainer,
        pl_module: Module,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.interval != "epoch":
            indices = trainer.predict_loop.current_batch_indices
            self.write_on_batch_end(
                trainer, pl_module, outputs, indices, batch, batch_idx, dataloader_idx
            )

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        if self.interval != "batch":
            loop = trainer.predict_loop
            self.write_on_epoch_end(trainer, pl_module, loop.predictions, loop.epoch_batch_indices)


class PredictLoop:
    """What prediction writers read: ``trainer.predict_loop``, as Lightning's."""

    def __init__(self) -> None:
        self.current_batch_indices: list[int] = []  # this batch's dataset indices
        self.epoch_batch_indices: list[list[list[int]]] = []  # dataloaders x batches x samples
        self.outputs: list[list[Any]] = []  # dataloaders x batches

    @property
    def predictions(self) -> list[Any]:
        """The step outputs so far: a list, or a list per dataloader when there are several."""
        return self.outputs[0] if len(self.outputs) == 1 else self.outputs

    def start(self, outputs: list[list[Any]]) -> None:
        """A predict run begins; ``outputs`` is where it collects each loader's step outputs."""
        self.current_batch_indices = []
        self.epoch_batch_indices = [[] for _ in outputs]
        self.outputs = outputs

    def new_batch(self, loader: Any, dataloader_idx: int, batch_idx: int) -> None:
        """Take the indices of ``loader``'s batch ``batch_idx``.

        A loader ``recording`` couldn't wrap adds none, as in Lightning (its
        warning said so).
        """
        seen = getattr(getattr(loader, "batch_sampler", None), "seen", None)
        if seen is not None:
            self.current_batch_indices = seen[batch_idx]
            self.epoch_batch_indices[dataloader_idx].append(seen[batch_idx])


def writes_predictions(callbacks: list[Any]) -> bool:
    """Whether a prediction writer is among ``callbacks`` (then indices are recorded)."""
    return any(isinstance(callback, BasePredictionWriter) for callback in callbacks)


def keeps_predictions(callbacks: list[Any], return_predictions: bool | None) -> bool:
    """Whether predict keeps each step's output: to return it (unless
    ``return_predictions=False``), or for a writer that writes at the epoch's end."""
    if return_predictions is not False:
        return True
    return any(
        isinstance(callback, BasePredictionWriter) and callback.interval != "batch"
        for callback in callbacks
    )


def recording(loader: Any) -> Any:
    """``loader`` rebuilt to remember each batch's dataset indices (Lightning's wrapper).

    A ``DataLoader`` that batches (``batch_size`` or a ``batch_sampler``) gets its
    batch sampler wrapped; anything else is returned as it is, with a warning
    that the writer's ``batch_indices`` will be empty, as Lightning warns.
    """
    batch_sampler = getattr(loader, "batch_sampler", None)
    if not isinstance(loader, DataLoader) or batch_sampler is None:
        warnings.warn(
            f"Couldn't infer the batch indices fetched from your dataloader: "
            f"`{type(loader).__name__}` (prediction writers get empty batch_indices)",
            stacklevel=3,
        )
        return loader
    return rebuilt(loader, batch_sampler=_Recorded(batch_sampler))


class _Recorded:
    """A batch sampler that remembers the indices of each batch it gives, this pass."""

    def __init__(self, batch_sampler: Any) -> None:
        self.batch_sampler = batch_sampler  # its sampler already sharded, as the loader's was
        self.seen: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        self.seen = []
        for indices in self.batch_sampler:
            self.seen.append(list(indices))
            yield indices

    def __len__(self) -> int:
        return len(self.batch_sampler)
