"""``self.log(..., sync_dist=True)`` across real processes with unequal batch counts.

Two gloo processes log a metric over different numbers of batches of different
sizes. The synced epoch value must be the mean over every sample of both ranks,
which is what the generated Metrics computes by reducing sums and counts before
dividing. (Lightning averages the per-rank means instead: its issue 21859.)
"""

from __future__ import annotations

import importlib
import socket
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import make_project

# rank -> [(value, batch_size), ...]: rank 0 sees 3 batches, rank 1 sees 1.
BATCHES = {0: [(1.0, 4), (2.0, 4), (3.0, 2)], 1: [(10.0, 3)]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _all_reduce(tensor: torch.Tensor, op: str) -> torch.Tensor:
    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
    tensor = tensor.clone()
    dist.all_reduce(tensor, op=ops[op])
    return tensor


def _rank(rank: int, port: int, src: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        sys.path.insert(0, src)
        metrics_lib = importlib.import_module("sync_exp.engine.metrics")
        metrics = metrics_lib.Metrics(sync=_all_reduce)
        metrics.start("validation")
        metrics.hook = "validation_step"
        for value, batch_size in BATCHES[rank]:
            metrics.new_batch(None)
            options = {"prog_bar": False, "logger": True, "on_step": None, "on_epoch": None}
            metrics.log(
                "val_loss",
                value,
                reduce_fx="mean",
                sync_dist=True,
                batch_size=batch_size,
                **options,
            )
            metrics.log(
                "val_max", value, reduce_fx="max", sync_dist=True, batch_size=batch_size, **options
            )
        epoch = metrics.collect_epoch()
        results[rank] = (float(epoch["val_loss"]), float(epoch["val_max"]))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built in")
def test_synced_epoch_mean_weights_every_sample_of_every_rank(tmp_path) -> None:
    project = make_project(tmp_path / "sync-exp", logger="none").path
    results = mp.Manager().dict()
    mp.spawn(_rank, args=(_free_port(), str(project / "src"), results), nprocs=2, join=True)
    samples = [(v, n) for batches in BATCHES.values() for v, n in batches]
    true_mean = sum(v * n for v, n in samples) / sum(n for _, n in samples)  # 40/13
    mean_of_means = (sum(v * n for v, n in BATCHES[0]) / 10 + 10.0) / 2  # Lightning: 5.9
    assert results[0] == results[1]  # every rank gets the same value
    assert results[0][0] == pytest.approx(true_mean)
    assert results[0][0] != pytest.approx(mean_of_means)
    assert results[0][1] == 10.0
