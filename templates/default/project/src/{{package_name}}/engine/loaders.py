"""Where each stage's batches come from, and how many of them it runs.

As in Lightning: loaders passed to ``fit``/``validate``/``test``/``predict``
win, then the DataModule's ``*_dataloader()``, then the module's own (only when
it defines them). Any iterable with a length works; a sampler with
``shard``/``skip``/``set_epoch`` (``sampling.ResumableSampler``) adds
distributed sharding and exact mid-epoch resume.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler

from .errors import ConfigError, UsageError
from .sampling import ResumableSampler

STAGE_OF = {"train": "fit", "val": "validate", "test": "test", "predict": "predict"}


def request(kind: str, passed: Any, module: Any, datamodule: Any) -> list[Any]:
    """The ``kind`` ("train", "val", "test", "predict") loaders, as a list (empty: none).

    Args:
        kind: Which loaders.
        passed: What the caller passed (a loader, a list of them, or None).
        module: The Module (its ``<kind>_dataloader`` counts when it defines one).
        datamodule: The DataModule, or None.
    """
    name = f"{kind}_dataloader"
    if passed is None and datamodule is not None:
        passed = getattr(datamodule, name)()
    elif passed is None and callable(getattr(module, name, None)):
        passed = getattr(module, name)()
    if passed is None:
        return []
    return list(passed) if isinstance(passed, list | tuple) else [passed]


def missing(kind: str) -> UsageError:
    """The error for a stage with no data."""
    stage = STAGE_OF[kind]
    argument = "train_dataloaders" if kind == "train" else "dataloaders"
    return UsageError(
        f"{stage} has no {kind} data: pass {argument}=..., a datamodule with "
        f"{kind}_dataloader(), or define {kind}_dataloader() in the module"
    )


def limit(limit: int | float, length: int, name: str) -> int:
    """Lightning's limit_*_batches: an int is a count, a float a fraction."""
    if isinstance(limit, float):
        count = int(length * limit)
        if limit > 0 and count == 0:
            raise ConfigError(f"trainer.{name}={limit} of {length} batches is 0 batches; raise it")
        return count
    return min(limit, length)


def position(loader: DataLoader, epoch: int, batches_done: int, *, shuffle: bool = True) -> None:
    """Give the sampler this epoch's order, skipping batches already trained on."""
    sampler = getattr(loader, "sampler", None)
    if not shuffle and hasattr(sampler, "shuffle"):
        sampler.shuffle = False  # overfit_batches: the same batches every epoch
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    if batches_done:
        if not hasattr(sampler, "skip"):
            raise UsageError(
                f"can't resume mid-epoch (epoch {epoch}, batch {batches_done}): the train "
                "loader can't skip to a batch; build it on engine.sampling.ResumableSampler, "
                "or resume from an end-of-epoch checkpoint"
            )
        sampler.skip(batches_done * loader.batch_size)


# What a rebuilt DataLoader keeps of the original (those this torch version has).
_KEPT = (
    "num_workers",
    "collate_fn",
    "pin_memory",
    "drop_last",
    "timeout",
    "worker_init_fn",
    "multiprocessing_context",
    "generator",
    "prefetch_factor",
    "persistent_workers",
    "pin_memory_device",
    "in_order",
)


def distributable(loader: Any, strategy: Any) -> Any:
    """``loader`` ready to shard over the strategy's ranks, as Lightning's use_distributed_sampler.

    A plain ``DataLoader`` over a shuffling or sequential sampler (what
    ``DataLoader(dataset, shuffle=...)`` builds) is rebuilt on a
    :class:`ResumableSampler` with the same order rule: each rank then takes its
    share, and a mid-epoch resume is exact. Lightning's DistributedSampler draws
    the same permutation (``seed + epoch``). Anything else is returned as it is:
    a loader whose sampler shards already, or one this can't rebuild faithfully
    (the caller says so). Every rank must call it (the seed is rank zero's).
    """
    if strategy.world_size == 1:
        return loader
    # Every rank must draw the same permutation: rank zero's seed, for all of them.
    seed = strategy.broadcast(torch.initial_seed() % 2**32)
    if type(loader) is not DataLoader:
        return loader
    sampler = loader.sampler
    shuffle = type(sampler) is RandomSampler
    if shuffle and (sampler.replacement or sampler.num_samples != len(sampler.data_source)):
        return loader  # draws with replacement, or a different count: not a permutation
    if not shuffle and type(sampler) is not SequentialSampler:
        return loader
    if loader.batch_size is None:  # a batch_sampler of the user's own
        return loader
    sampler = ResumableSampler(len(loader.dataset), shuffle=shuffle, seed=seed)
    return rebuilt(loader, sampler=sampler)


def unshuffled(loader: Any) -> Any:
    """``loader`` in its dataset's order (overfit_batches), as Lightning turns shuffling off.

    A plain ``DataLoader(dataset, shuffle=True)`` is rebuilt over a
    SequentialSampler; a ResumableSampler keeps its order when positioned;
    anything else is returned as it is.
    """
    if type(loader) is DataLoader and type(loader.sampler) is RandomSampler:
        if loader.batch_size is not None:  # not a batch_sampler of the user's own
            return rebuilt(loader, sampler=SequentialSampler(loader.dataset))
    return loader


def rebuilt(loader: DataLoader, **sampling: Any) -> DataLoader:
    """``loader`` with another ``sampler`` (its batch size kept) or ``batch_sampler``
    (which holds the batch size and ``drop_last``), everything else kept."""
    skipped = {"drop_last"} if "batch_sampler" in sampling else set()
    if not skipped:
        sampling = {"batch_size": loader.batch_size, **sampling}
    kept = {n: getattr(loader, n) for n in _KEPT if n not in skipped and hasattr(loader, n)}
    return DataLoader(loader.dataset, **sampling, **kept)
