"""Lightning code ported to a generated project by changing only its imports.

Each port below is a Lightning 2.x program as a Lightning user writes it. It
runs twice in this process, each time in a fresh namespace and working folder:
as written, under pytorch_lightning 2.6.6, and after the one change a user
makes, ``pytorch_lightning`` → ``<package>.engine`` in the import lines (so
``import pytorch_lightning as pl`` becomes ``import my_exp.engine as pl`` and
``from pytorch_lightning.callbacks import ModelCheckpoint`` becomes
``from my_exp.engine.callbacks import ModelCheckpoint``). Every loss, learning
rate, metric and final weight must match to 1e-6.

The ports: the quick start's LitAutoEncoder (``Trainer.fit(model=...,
train_dataloaders=...)``, a plain DataLoader, ``load_from_checkpoint`` with the
encoder and decoder passed in); an ``optimizer_step`` override warming the
learning rate up; a LightningDataModule with ModelCheckpoint and EarlyStopping
monitoring ``val_loss``, then ``validate`` and ``test``; LBFGS, which runs the
closure several times per step. (Metric objects: tests/test_metric_objects.py.)
Where the two differ on purpose, the test says so next to the comparison.
pytorch-lightning is a dev dependency of this repository only.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import make_project

pl = pytest.importorskip("pytorch_lightning")

PACKAGE = "ports_exp"

QUICK_START = """
import torch
from torch import nn, optim, utils

import pytorch_lightning as pl

torch.manual_seed(0)
# define any number of nn.Modules (or use your current ones)
encoder = nn.Sequential(nn.Linear(28 * 28, 64), nn.ReLU(), nn.Linear(64, 3))
decoder = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 28 * 28))
losses = []


# define the LightningModule
class LitAutoEncoder(pl.LightningModule):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def training_step(self, batch, batch_idx):
        # training_step defines the train loop.
        # it is independent of forward
        x, _ = batch
        x = x.view(x.size(0), -1)
        z = self.encoder(x)
        x_hat = self.decoder(z)
        loss = nn.functional.mse_loss(x_hat, x)
        # Logging to TensorBoard (if installed) by default
        self.log("train_loss", loss)
        losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        optimizer = optim.Adam(self.parameters(), lr=1e-3)
        return optimizer


# init the autoencoder
autoencoder = LitAutoEncoder(encoder, decoder)

# setup data: MNIST's shapes (1x28x28 images, digit labels), without the download
dataset = utils.data.TensorDataset(torch.rand(48, 1, 28, 28), torch.randint(10, (48,)))
train_loader = utils.data.DataLoader(dataset, batch_size=8)

# train the model. The ModelCheckpoint is Lightning's default one, spelled out:
# the engine checkpoints only through the callbacks it is given.
trainer = pl.Trainer(
    limit_train_batches=4,
    max_epochs=2,
    callbacks=[pl.callbacks.ModelCheckpoint()],
    enable_progress_bar=False,
)
trainer.fit(model=autoencoder, train_dataloaders=train_loader)
trained = {name: value.clone() for name, value in autoencoder.state_dict().items()}

# load checkpoint, as a new session would: fresh encoder and decoder passed in
checkpoint = trainer.checkpoint_callback.best_model_path
encoder = nn.Sequential(nn.Linear(28 * 28, 64), nn.ReLU(), nn.Linear(64, 3))
decoder = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 28 * 28))
autoencoder = LitAutoEncoder.load_from_checkpoint(checkpoint, encoder=encoder, decoder=decoder)

# choose your trained nn.Module
encoder = autoencoder.encoder
encoder.eval()
embeddings = encoder(torch.rand(4, 28 * 28))
"""

WARM_UP = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pytorch_lightning import LightningModule, Trainer

WARM_UP_STEPS = 4
losses, lrs = [], []


class Regressor(LightningModule):
    def __init__(self, learning_rate=0.05, hidden=16):
        super().__init__()
        self.save_hyperparameters("learning_rate")
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(5, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.learning_rate, momentum=0.9)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure):
        # Warm the learning rate up over the first steps, without a scheduler.
        if self.trainer.global_step < WARM_UP_STEPS:
            scale = (self.trainer.global_step + 1) / WARM_UP_STEPS
            for group in optimizer.param_groups:
                group["lr"] = scale * self.hparams.learning_rate
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step(closure=optimizer_closure)


generator = torch.Generator().manual_seed(1)
x = torch.randn(44, 5, generator=generator)
y = x.sum(dim=1, keepdim=True).sin()
model = Regressor()
trainer = Trainer(
    max_epochs=2,
    accumulate_grad_batches=2,
    logger=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=4))
"""


DATA_MODULE = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint


class RandomData(pl.LightningDataModule):
    def __init__(self, batch_size=8):
        super().__init__()
        self.save_hyperparameters()

    def prepare_data(self):
        # Once, before setup: where a real DataModule downloads. Here: one file.
        generator = torch.Generator().manual_seed(1)
        x = torch.randn(72, 6, generator=generator)
        y = (x[:, :3].sum(dim=1) > 0).long() + (x[:, 3] > 1).long()
        torch.save((x, y), "data.pt")

    def setup(self, stage):
        x, y = torch.load("data.pt")
        split = torch.Generator().manual_seed(2)
        self.train, self.val, self.test = random_split(TensorDataset(x, y), [40, 16, 16], split)

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.hparams.batch_size)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.hparams.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.hparams.batch_size)


class Classifier(pl.LightningModule):
    def __init__(self, lr=0.3):
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)

    def evaluate(self, batch, stage):
        x, y = batch
        logits = self(x)
        self.log(f"{stage}_loss", nn.functional.cross_entropy(logits, y), prog_bar=True)
        self.log(f"{stage}_acc", (logits.argmax(dim=1) == y).float().mean())

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self.evaluate(batch, "test")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


data = RandomData()
model = Classifier()
checkpoint = ModelCheckpoint(monitor="val_loss", filename="{epoch}-{val_loss:.4f}")
early_stopping = EarlyStopping(monitor="val_loss", patience=2, min_delta=0.01)
trainer = pl.Trainer(
    max_epochs=20,
    callbacks=[checkpoint, early_stopping],
    logger=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
trainer.fit(model, datamodule=data)
fitted = {name: float(value) for name, value in trainer.callback_metrics.items()}
last_weights = {name: value.clone() for name, value in model.state_dict().items()}
validated = trainer.validate(model, datamodule=data, verbose=False)
tested = trainer.test(model, datamodule=data, ckpt_path="best", verbose=False)
best_weights = {name: value.clone() for name, value in model.state_dict().items()}
saved = torch.load(checkpoint.best_model_path, weights_only=False)["datamodule_hyper_parameters"]
reloaded = RandomData.load_from_checkpoint(checkpoint.best_model_path, batch_size=4)
"""

LBFGS = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pytorch_lightning import LightningModule, Trainer

losses = []


class Curve(LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, 12), nn.Tanh(), nn.Linear(12, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        losses.append(loss.item())  # once per evaluation of the closure
        return loss

    def configure_optimizers(self):
        return torch.optim.LBFGS(self.parameters(), lr=0.5, max_iter=5, history_size=4)


generator = torch.Generator().manual_seed(1)
x = torch.rand(32, 2, generator=generator) * 4 - 2
y = (x[:, :1] * x[:, 1:]).tanh()
model = Curve()
trainer = Trainer(
    max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False
)
trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=16))
"""


@contextmanager
def quiet() -> Iterator[None]:
    """Lightning's tips and warnings, and the engine's notes, kept out of the test output."""
    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning.pytorch")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> str:
    """A freshly generated project with ModelCheckpoint and EarlyStopping; its engine's name."""
    project = make_project(
        tmp_path_factory.mktemp("ports") / "ports-exp",
        logger="none",
        callbacks=["model_checkpoint", "early_stopping"],
    ).path
    sys.path.insert(0, str(project / "src"))
    try:
        importlib.import_module(f"{PACKAGE}.engine")
        yield f"{PACKAGE}.engine"
    finally:
        sys.path.remove(str(project / "src"))


def ported(source: str, engine: str) -> str:
    """The user's one change: ``pytorch_lightning`` becomes the engine, in import lines only."""
    lines = source.splitlines()
    changed = [line.replace("pytorch_lightning", engine) for line in lines]
    for before, after in zip(lines, changed, strict=True):
        assert before == after or before.startswith(("import ", "from ")), before
    assert changed != lines
    return "\n".join(changed)


def run(source: str, folder: Path) -> dict[str, Any]:
    """Run a program in a fresh namespace with ``folder`` as its working directory."""
    folder.mkdir(parents=True)
    namespace: dict[str, Any] = {"__name__": "__port__"}
    here = Path.cwd()
    os.chdir(folder)
    try:
        with quiet():
            exec(compile(source, str(folder / "port.py"), "exec"), namespace)
    finally:
        os.chdir(here)
    return namespace


def both(source: str, engine: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The program's namespace under Lightning, then after the port."""
    return run(source, tmp_path / "lightning"), run(ported(source, engine), tmp_path / "engine")


def assert_same_weights(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    assert list(ours) == list(theirs)
    for name, value in ours.items():
        assert torch.allclose(value, theirs[name], atol=1e-6), name


# What Lightning's warning about nn.Module arguments in hparams asks for.
IGNORING = QUICK_START.replace(
    "        super().__init__()\n        self.encoder",
    '        super().__init__()\n        self.save_hyperparameters(ignore=["encoder", "decoder"])'
    "\n        self.encoder",
)


@pytest.mark.parametrize("source", [QUICK_START, IGNORING], ids=["as-written", "ignore-hparams"])
def test_quick_start_autoencoder(engine, tmp_path, source) -> None:
    theirs, ours = both(source, engine, tmp_path)
    assert ours["autoencoder"].hparams == theirs["autoencoder"].hparams == {}
    assert len(ours["losses"]) == len(theirs["losses"]) == 8  # 4 batches, 2 epochs
    assert ours["losses"] == pytest.approx(theirs["losses"], abs=1e-6)
    assert_same_weights(ours["trained"], theirs["trained"])
    # The checkpoint: the same file name, in each one's run folder.
    folders = {"lightning": "lightning_logs/version_0", "engine": "runs/version_0"}
    for side, namespace in (("lightning", theirs), ("engine", ours)):
        # Lightning's path is absolute; the engine's is relative to the working folder.
        path = tmp_path / side / namespace["checkpoint"]
        assert path == tmp_path / side / folders[side] / "checkpoints" / "epoch=1-step=8.ckpt"
    # Loaded into fresh layers, the weights are the trained ones.
    for namespace in (theirs, ours):
        assert_same_weights(namespace["autoencoder"].state_dict(), namespace["trained"])
    assert torch.allclose(ours["embeddings"], theirs["embeddings"], atol=1e-6)


def test_optimizer_step_override_warms_the_learning_rate_up(engine, tmp_path) -> None:
    theirs, ours = both(WARM_UP, engine, tmp_path)
    # 11 batches per epoch in windows of 2: 6 steps (the last window short).
    assert ours["lrs"] == pytest.approx(theirs["lrs"], abs=1e-12)
    assert theirs["lrs"][:5] == pytest.approx([0.0125, 0.025, 0.0375, 0.05, 0.05])
    assert len(ours["losses"]) == len(theirs["losses"]) == 22
    assert ours["losses"] == pytest.approx(theirs["losses"], abs=1e-6)
    assert ours["trainer"].global_step == theirs["trainer"].global_step == 12
    assert ours["model"].hparams == theirs["model"].hparams == {"learning_rate": 0.05}
    assert_same_weights(ours["model"].state_dict(), theirs["model"].state_dict())


def test_datamodule_with_checkpoint_and_early_stopping_then_validate_and_test(
    engine, tmp_path
) -> None:
    theirs, ours = both(DATA_MODULE, engine, tmp_path)
    # The DataModule's save_hyperparameters: in hparams, in the checkpoint, and
    # back through its load_from_checkpoint, with an override.
    assert ours["data"].hparams == theirs["data"].hparams == {"batch_size": 8}
    assert ours["saved"] == theirs["saved"] == {"batch_size": 8}
    assert ours["reloaded"].hparams == theirs["reloaded"].hparams == {"batch_size": 4}
    # EarlyStopping stops both at the same epoch, well before max_epochs.
    assert ours["trainer"].current_epoch == theirs["trainer"].current_epoch < 20
    assert ours["trainer"].global_step == theirs["trainer"].global_step
    assert ours["fitted"].keys() == theirs["fitted"].keys()
    for name, value in theirs["fitted"].items():
        assert ours["fitted"][name] == pytest.approx(value, abs=1e-6), name
    assert_same_weights(ours["last_weights"], theirs["last_weights"])
    # The best checkpoint: the same epoch, file name and score.
    best = ours["checkpoint"], theirs["checkpoint"]
    assert Path(best[0].best_model_path).name == Path(best[1].best_model_path).name
    assert float(best[0].best_model_score) == pytest.approx(float(best[1].best_model_score))
    # test(ckpt_path="best") ran on the best epoch's weights.
    assert_same_weights(ours["best_weights"], theirs["best_weights"])
    # validate and test return one dict per dataloader.
    for stage in ("validated", "tested"):
        (expected,) = theirs[stage]
        (result,) = ours[stage]
        assert result.keys() == expected.keys()
        for name, value in expected.items():
            assert result[name] == pytest.approx(value, abs=1e-6), name


def test_lbfgs_runs_the_closure_as_lightning_does(engine, tmp_path) -> None:
    theirs, ours = both(LBFGS, engine, tmp_path)
    # LBFGS evaluates the closure several times per step: every evaluation's loss.
    assert len(ours["losses"]) == len(theirs["losses"]) > 2 * 3
    assert ours["losses"] == pytest.approx(theirs["losses"], abs=1e-6)
    assert ours["trainer"].global_step == theirs["trainer"].global_step == 6
    assert_same_weights(ours["model"].state_dict(), theirs["model"].state_dict())
