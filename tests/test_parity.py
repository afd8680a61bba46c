"""The generated loop against pytorch_lightning.Trainer: same numbers, to 1e-6.

Same model, data, seed and settings on CPU fp32 — gradient accumulation with a
partial last window, norm clipping, a per-step LR scheduler, validation every
epoch and a short last batch. Compared: every training loss, the logged epoch
metrics, and the final weights. pytorch-lightning is a dev dependency of this
repository only.
"""

from __future__ import annotations

import importlib
import sys

import pytest
import torch
from conftest import make_project
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")

SAMPLES, BATCH = 38, 8  # 5 batches per epoch, the last one of 6 samples
SETTINGS = {"max_epochs": 3, "accumulate_grad_batches": 2, "gradient_clip_val": 0.5}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The engine of a freshly generated project, imported from its src/."""
    project = make_project(
        tmp_path_factory.mktemp("parity") / "parity-exp", logger="none", callbacks=[]
    ).path
    sys.path.insert(0, str(project / "src"))
    try:
        yield (
            importlib.import_module("parity_exp.engine.module"),
            importlib.import_module("parity_exp.engine.trainer"),
            importlib.import_module("parity_exp.engine.sampling"),
        )
    finally:
        sys.path.remove(str(project / "src"))


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


def data(sampling) -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(SAMPLES, 6, generator=generator)
    y = torch.randint(3, (SAMPLES,), generator=generator)
    dataset = TensorDataset(x, y)
    # The generated project's sampler: shuffled per epoch from a seed. Lightning
    # calls its set_epoch too, so both loops see the same order.
    sampler = sampling.ResumableSampler(SAMPLES, shuffle=True, seed=3)
    return DataLoader(dataset, BATCH, sampler=sampler), DataLoader(dataset, BATCH)


def science(base):
    """The same science on either base class: ours or LightningModule."""

    class Classifier(base):
        def __init__(self) -> None:
            super().__init__()
            self.net = network()
            self.losses: list[float] = []

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.losses.append(loss.item())
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            self.log("val_loss", nn.functional.cross_entropy(logits, y))
            self.log("val_acc", (logits.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.5, momentum=0.9)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 / (1 + s))
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
            }

    return Classifier


def test_training_matches_lightning_to_1e6(engine, tmp_path) -> None:
    module_lib, trainer_lib, sampling = engine

    ours = science(module_lib.Module)()
    trainer = trainer_lib.Trainer(
        accelerator="cpu",
        default_root_dir=str(tmp_path / "ours"),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **SETTINGS,
    )
    train, val = data(sampling)
    datamodule = module_lib.DataModule()
    datamodule.train_dataloader = lambda: train
    datamodule.val_dataloader = lambda: val
    trainer.fit(ours, datamodule)

    theirs = science(pl.LightningModule)()
    lightning = pl.Trainer(
        accelerator="cpu",
        devices=1,
        default_root_dir=str(tmp_path / "lightning"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        num_sanity_val_steps=0,
        **SETTINGS,
    )
    train, val = data(sampling)
    lightning.fit(theirs, train_dataloaders=train, val_dataloaders=val)

    # Every micro-batch loss, in order: same data order, same updates.
    assert len(ours.losses) == len(theirs.losses) == 15
    assert ours.losses == pytest.approx(theirs.losses, abs=1e-6)
    # The optimizer stepped as often: windows of 2, the last (single) batch too.
    assert trainer.global_step == lightning.global_step == 9
    # Epoch metrics: batch-size-weighted means over a short last batch.
    for name in ("train_loss_epoch", "val_loss", "val_acc"):
        ours_value = float(trainer.callback_metrics[name])
        assert ours_value == pytest.approx(float(lightning.callback_metrics[name]), abs=1e-6), name
    for (name, a), (_, b) in zip(
        ours.state_dict().items(), theirs.state_dict().items(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6), name
