"""Run under torchrun (or alone): validate with torchmetrics objects, save each rank's metrics.

    python metric_ranks.py SRC OUT '{"devices": 2}'

SRC is a generated project's ``src`` folder (package ``exp``), OUT a folder
for ``rank<r>.json``: ``trainer.callback_metrics`` as that rank sees it after
fit. The 13 validation samples split 7/6 over two ranks (3 and 2 batches), so
only a metric that syncs its state (not its per-rank values) gives the
one-process value.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MeanSquaredError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy


def main() -> None:
    source, out, raw = sys.argv[1:4]
    options = json.loads(raw)
    sys.path.insert(0, source)
    from exp.engine.module import DataModule, Module
    from exp.engine.sampling import ResumableSampler
    from exp.engine.strategy import Strategy
    from exp.engine.trainer import Trainer

    class Classifier(Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Linear(6, 3)
            self.val_acc = MulticlassAccuracy(3, average="micro")
            self.val_mse = MeanSquaredError()
            self.val_scores = MetricCollection(
                {"macro_acc": MulticlassAccuracy(3, average="macro")}, prefix="val_"
            )

        def training_step(self, batch, batch_idx):
            x, y = batch
            # Step values with sync_dist are reduced at once, as in Lightning.
            rank = float(self.trainer.strategy.rank)
            self.log("rank_mean", rank, sync_dist=True)
            self.log("rank_max", rank, sync_dist=True, reduce_fx="max")
            return F.cross_entropy(self.net(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            logits = self.net(x)
            self.val_acc(logits, y)
            # sync_dist is for tensors: a metric syncs itself (summing its synced
            # value again would double it).
            self.log("val_acc", self.val_acc, sync_dist=True, reduce_fx="sum")
            self.val_mse.update(logits.softmax(-1), F.one_hot(y, 3).float())
            self.log("val_mse", self.val_mse)
            self.val_scores.update(logits, y)
            self.log_dict(self.val_scores)
            self.log("samples", float(len(y)), reduce_fx="sum", sync_dist=True)
            # The ranks run 3 and 2 validation batches: a step value synced at
            # once would leave one rank waiting for the other.
            self.log("val_ones", 1.0, on_step=True, sync_dist=True)

        def configure_optimizers(self):
            # lr=0: the weights stay as initialised, so one process and two
            # validate the same model whatever their batches.
            return torch.optim.SGD(self.parameters(), lr=0.0)

    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(29, 6, generator=generator), torch.randint(3, (29,), generator=generator)

    class Data(DataModule):
        def train_dataloader(self):
            sampler = ResumableSampler(16, shuffle=False)
            return DataLoader(TensorDataset(x[:16], y[:16]), 4, sampler=sampler)

        def val_dataloader(self):
            sampler = ResumableSampler(13, shuffle=False)
            return DataLoader(TensorDataset(x[16:], y[16:]), 3, sampler=sampler)

    trainer = Trainer(
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        num_sanity_val_steps=0,
        max_epochs=1,
        default_root_dir=str(Path(out) / "runs"),
        strategy=Strategy(),
        **options,
    )
    try:
        trainer.fit(Classifier(), Data())
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        (Path(out) / f"rank{trainer.strategy.rank}.json").write_text(json.dumps(metrics))
    finally:
        trainer.teardown()


if __name__ == "__main__":
    main()
