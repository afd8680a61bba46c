"""A sampler whose order is a pure function of (seed, epoch), so resume is exact.

A resumed run must see the rest of the interrupted epoch in the same order as
an uninterrupted run would. ``RandomSampler`` draws its order from a global
generator, which resuming can't rewind; this sampler re-derives the epoch's
permutation from the seed and skips the samples already trained on, without
loading them.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Shuffles each epoch differently but reproducibly; can start mid-epoch.

    Args:
        length: Number of samples in the dataset.
        shuffle: Shuffle (training) or keep the dataset's order (evaluation).
        seed: Base seed of the per-epoch permutation.
    """

    def __init__(self, length: int, *, shuffle: bool = True, seed: int = 0) -> None:
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self._start = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s permutation for the next pass (as DistributedSampler)."""
        self.epoch = epoch

    def skip(self, samples: int) -> None:
        """Start the next pass after the first ``samples`` samples."""
        self._start = samples

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.length, generator=generator)
        else:
            order = torch.arange(self.length)
        start, self._start = self._start, 0
        yield from order[start:].tolist()

    def __len__(self) -> int:
        return self.length
