"""A sampler whose order is a pure function of (seed, epoch), so resume is exact.

A resumed run must see the rest of the interrupted epoch in the same order as
an uninterrupted run would. ``RandomSampler`` draws its order from a global
generator, which resuming can't rewind; this sampler re-derives the epoch's
permutation from the seed and skips the samples already trained on, without
loading them.

Under DDP/FSDP each rank takes every ``world_size``-th index of the same
permutation (as ``DistributedSampler`` does), so the ranks' batches together
are the batch a single process would see with ``world_size`` times the batch
size.
"""

from __future__ import annotations

import math
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
        self.rank, self.world_size, self.pad = 0, 1, False

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s permutation for the next pass (as DistributedSampler)."""
        self.epoch = epoch

    def skip(self, samples: int) -> None:
        """Start the next pass after this rank's first ``samples`` samples."""
        self._start = samples

    def shard(self, rank: int, world_size: int, *, pad: bool) -> None:
        """Yield only ``rank``'s share of each pass.

        Args:
            rank: This process's rank.
            world_size: Number of processes.
            pad: Repeat the first indices so every rank gets the same count
                (training: every rank must take the same number of steps).
        """
        self.rank, self.world_size, self.pad = rank, world_size, pad

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.length, generator=generator)
        else:
            order = torch.arange(self.length)
        if self.world_size > 1:
            if self.pad:
                total = math.ceil(self.length / self.world_size) * self.world_size
                order = order.repeat(math.ceil(total / self.length))[:total]
            order = order[self.rank :: self.world_size]
        start, self._start = self._start, 0
        yield from order[start:].tolist()

    def __len__(self) -> int:
        if self.world_size == 1:
            return self.length
        if self.pad:
            return math.ceil(self.length / self.world_size)
        return len(range(self.rank, self.length, self.world_size))
