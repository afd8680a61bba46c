"""The generated loop against pytorch_lightning.Trainer: same numbers, to 1e-6.

Same model, data, seed and settings on CPU fp32 — gradient accumulation with a
partial last window, norm clipping, a per-step LR scheduler, validation every
epoch and a short last batch. Compared: every training loss, the logged epoch
metrics, and the final weights. Then, with a validation metric that goes up and
down: which epochs ModelCheckpoint(save_top_k=2) keeps (mode min and max), the
epoch EarlyStopping stops at (patience, min_delta), and the learning rate
ReduceLROnPlateau gives each epoch, with the weights still equal to 1e-6.
Last, with dropout and plain shuffling loaders (torch's global generator): the
same numbers under the sanity check, val_check_interval and overfit_batches,
and the same top-k checkpoints when validation doesn't end every epoch. And
what a training step hands on: the ``outputs`` callbacks get (the loss share,
detached), a batch skipped by returning None, a dict without a loss refused.
pytorch-lightning is a dev dependency of this repository only.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import pytest
import torch
from conftest import engine_of
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")

SAMPLES, BATCH = 38, 8  # 5 batches per epoch, the last one of 6 samples
SETTINGS = {"max_epochs": 3, "accumulate_grad_batches": 2, "gradient_clip_val": 0.5}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The engine of a freshly generated project, imported from its src/."""
    with engine_of(
        tmp_path_factory.mktemp("parity"), "parity", ("module", "trainer", "sampling"), callbacks=[]
    ) as modules:
        yield modules


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


def fit_ours(engine, module, tmp_path, callbacks=(), **settings):
    """Fit ``module`` in the generated loop on ``data()``; returns the Trainer."""
    module_lib, trainer_lib, sampling = engine
    trainer = trainer_lib.Trainer(
        accelerator="cpu",
        default_root_dir=str(tmp_path / "ours"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=any(type(c).__name__ == "ModelCheckpoint" for c in callbacks),
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
        **settings,
    )
    train, val = data(sampling)
    datamodule = module_lib.DataModule()
    datamodule.train_dataloader = lambda: train
    datamodule.val_dataloader = lambda: val
    trainer.fit(module, datamodule)
    return trainer


def fit_lightning(sampling, module, tmp_path, callbacks=(), **settings):
    """Fit ``module`` in pytorch_lightning on the same ``data()``; returns the Trainer."""
    lightning = pl.Trainer(
        accelerator="cpu",
        devices=1,
        default_root_dir=str(tmp_path / "lightning"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks),
        logger=False,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
        **settings,
    )
    train, val = data(sampling)
    lightning.fit(module, train_dataloaders=train, val_dataloaders=val)
    return lightning


def assert_same_weights(ours: nn.Module, theirs: nn.Module) -> None:
    for (name, a), (_, b) in zip(
        ours.state_dict().items(), theirs.state_dict().items(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6), name


def test_training_matches_lightning_to_1e6(engine, tmp_path) -> None:
    ours = science(engine[0].Module)()
    trainer = fit_ours(engine, ours, tmp_path, **SETTINGS)
    theirs = science(pl.LightningModule)()
    lightning = fit_lightning(engine[2], theirs, tmp_path, **SETTINGS)

    # Every micro-batch loss, in order: same data order, same updates.
    assert len(ours.losses) == len(theirs.losses) == 15
    assert ours.losses == pytest.approx(theirs.losses, abs=1e-6)
    # The optimizer stepped as often: windows of 2, the last (single) batch too.
    assert trainer.global_step == lightning.global_step == 9
    # Epoch metrics: batch-size-weighted means over a short last batch.
    for name in ("train_loss_epoch", "val_loss", "val_acc"):
        ours_value = float(trainer.callback_metrics[name])
        assert ours_value == pytest.approx(float(lightning.callback_metrics[name]), abs=1e-6), name
    assert_same_weights(ours, theirs)


# ---------------------------------------------------------------- callbacks and schedulers
#
# ModelCheckpoint's top-k, EarlyStopping and ReduceLROnPlateau decide from a
# validation metric. `val_metric` is the validation loss, scaled down, plus a
# fixed offset per epoch that goes up and down: the decisions (which epochs
# rank best, when patience runs out, when the learning rate drops) are
# non-trivial, and the two loops make them from the same numbers.

OFFSETS = (0.50, 0.30, 0.40, 0.10, 0.08, 0.35, 0.02, 0.20, 0.06, 0.30)


@pytest.fixture(scope="module")
def callback_engine(tmp_path_factory):
    """A generated engine with ModelCheckpoint and EarlyStopping, imported from its src/."""
    modules = ("module", "trainer", "sampling", "callbacks")
    callbacks = ["model_checkpoint", "early_stopping"]
    with engine_of(
        tmp_path_factory.mktemp("parity"), "parity_cb", modules, callbacks=callbacks
    ) as m:
        yield m


def oscillating(base, plateau: dict | None = None):
    """The science above, with an up-and-down ``val_metric`` and an optional plateau scheduler."""

    class Oscillating(science(base)):
        def __init__(self) -> None:
            super().__init__()
            self.lrs: list[float] = []  # the learning rate each epoch trains with

        def training_step(self, batch, batch_idx):
            if batch_idx == 0:
                self.lrs.append(self.optimizer.param_groups[0]["lr"])
            return super().training_step(batch, batch_idx)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("val_metric", 0.01 * loss + OFFSETS[self.current_epoch])

        def configure_optimizers(self):
            self.optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            if plateau is None:
                return self.optimizer
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, **plateau)
            return {
                "optimizer": self.optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": "val_metric"},
            }

    return Oscillating


def fit_both(engine, tmp_path, ours_callbacks, their_callbacks, plateau=None, max_epochs=8):
    """Fit the oscillating module in the generated loop and in Lightning; both modules."""
    ours = oscillating(engine[0].Module, plateau)()
    trainer = fit_ours(engine[:3], ours, tmp_path, ours_callbacks, max_epochs=max_epochs)
    theirs = oscillating(pl.LightningModule, plateau)()
    lightning = fit_lightning(engine[2], theirs, tmp_path, their_callbacks, max_epochs=max_epochs)
    assert trainer.global_step == lightning.global_step
    assert_same_weights(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("mode", ["min", "max"])
def test_save_top_k_keeps_the_same_epochs_as_lightning(callback_engine, tmp_path, mode) -> None:
    options = {"monitor": "val_metric", "mode": mode, "save_top_k": 2, "filename": "{epoch}"}
    ours = callback_engine[3].ModelCheckpoint(dirpath=tmp_path / "ours_ckpt", **options)
    theirs = pl.callbacks.ModelCheckpoint(
        dirpath=tmp_path / "their_ckpt", save_last=True, **options
    )
    fit_both(callback_engine, tmp_path, [ours], [theirs])

    def kept(folder):
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))

    expected = {"min": ["epoch=4.ckpt", "epoch=6.ckpt"], "max": ["epoch=0.ckpt", "epoch=2.ckpt"]}
    assert kept(tmp_path / "their_ckpt") == sorted([*expected[mode], "last.ckpt"])
    assert kept(tmp_path / "ours_ckpt") == kept(tmp_path / "their_ckpt")
    assert Path(ours.best_model_path).name == Path(theirs.best_model_path).name
    assert ours.best_model_score == pytest.approx(float(theirs.best_model_score), abs=1e-6)
    ours_ranking = {Path(k).name: v for k, v in ours.best_k_models.items()}
    their_ranking = {Path(k).name: float(v) for k, v in theirs.best_k_models.items()}
    assert ours_ranking == pytest.approx(their_ranking, abs=1e-6)


@pytest.mark.parametrize(
    ("patience", "min_delta", "stopped"),
    # Patience 1 runs out at the first worse epoch; patience 2 only at epoch 8; with
    # min_delta, epoch 4's small improvement (0.10 -> 0.08) counts as none: epoch 5.
    [(1, 0.0, 2), (2, 0.0, 8), (2, 0.05, 5), (3, 0.1, 6)],
)
def test_early_stopping_stops_at_the_same_epoch_as_lightning(
    callback_engine, tmp_path, patience, min_delta, stopped
) -> None:
    options = {"monitor": "val_metric", "patience": patience, "min_delta": min_delta}
    ours = callback_engine[3].EarlyStopping(**options)
    theirs = pl.callbacks.EarlyStopping(**options)
    ours_module, their_module = fit_both(callback_engine, tmp_path, [ours], [theirs], max_epochs=10)
    assert theirs.stopped_epoch == stopped  # the case each parameter set exercises
    assert ours.stopped_epoch == theirs.stopped_epoch
    assert ours.wait_count == theirs.wait_count
    assert ours.best_score == pytest.approx(float(theirs.best_score), abs=1e-6)
    assert len(ours_module.lrs) == len(their_module.lrs) == stopped + 1  # epochs trained


@pytest.mark.parametrize(
    "plateau",
    [
        {"mode": "min", "factor": 0.5, "patience": 0},  # drops after every worse epoch
        {"mode": "min", "factor": 0.5, "patience": 1, "threshold": 0.5},  # a relative threshold
        # An absolute threshold, and a cooldown during which a new best still counts.
        {"factor": 0.1, "patience": 1, "cooldown": 1, "threshold": 0.05, "threshold_mode": "abs"},
    ],
)
def test_reduce_lr_on_plateau_gives_the_same_rates_as_lightning(
    callback_engine, tmp_path, plateau
) -> None:
    ours, theirs = fit_both(callback_engine, tmp_path, [], [], plateau=plateau, max_epochs=10)
    assert len(set(theirs.lrs)) > 2, theirs.lrs  # the rate dropped more than once
    assert ours.lrs == pytest.approx(theirs.lrs, abs=1e-12)
    assert ours.optimizer.param_groups[0]["lr"] == theirs.optimizer.param_groups[0]["lr"]


# ---------------------------------------------------------------- the global random stream
#
# A plain DataLoader(shuffle=True) shuffles from torch's global generator,
# dropout draws from it, and every DataLoader iteration takes a seed from it:
# after the same seed, the loop must draw from it when Lightning does, or the
# data order and the dropout masks (so every number) differ from the first step.


def noisy(base):
    """Dropout, and the global step of each validation run (the sanity check's left out)."""

    class Noisy(base):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.3), nn.Linear(16, 3))
            self.losses: list[float] = []
            self.validated_at: list[int] = []

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            self.losses.append(loss.item())
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

        def on_validation_epoch_start(self) -> None:
            if not self.trainer.sanity_checking:
                self.validated_at.append(self.trainer.global_step)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Noisy


def shuffled_loaders() -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(SAMPLES, 6, generator=generator)
    y = torch.randint(3, (SAMPLES,), generator=generator)
    dataset = TensorDataset(x, y)
    return DataLoader(dataset, BATCH, shuffle=True), DataLoader(dataset, BATCH, shuffle=True)


@pytest.mark.parametrize(
    "settings",
    [
        {"num_sanity_val_steps": 2},  # the sanity check draws nothing training sees
        {"val_check_interval": 3},  # validates after batch 3 of 5, not also after 5
        {"val_check_interval": 0.5},  # after batches 2 and 4
        {"overfit_batches": 2},  # the same two batches, in order, every epoch
    ],
    ids=lambda settings: "-".join(f"{k}={v}" for k, v in settings.items()),
)
def test_the_global_random_stream_is_drawn_as_lightning_draws_it(
    engine, tmp_path, settings
) -> None:
    options = {
        "accelerator": "cpu",
        "max_epochs": 2,
        "num_sanity_val_steps": 0,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **settings,
    }
    ours = noisy(engine[0].Module)()
    trainer = engine[1].Trainer(
        default_root_dir=str(tmp_path / "ours"), enable_checkpointing=False, **options
    )
    torch.manual_seed(7)
    train, val = shuffled_loaders()
    trainer.fit(ours, train_dataloaders=train, val_dataloaders=val)

    theirs = noisy(pl.LightningModule)()
    lightning = pl.Trainer(
        default_root_dir=str(tmp_path / "lightning"),
        logger=False,
        enable_checkpointing=False,
        **options,
    )
    torch.manual_seed(7)
    train, val = shuffled_loaders()
    lightning.fit(theirs, train_dataloaders=train, val_dataloaders=val)

    assert ours.validated_at == theirs.validated_at
    assert ours.losses == pytest.approx(theirs.losses, abs=1e-6)
    assert trainer.global_step == lightning.global_step
    assert_same_weights(ours, theirs)


@pytest.mark.parametrize(
    "settings",
    [{"val_check_interval": 3}, {"val_check_interval": 0.5}, {"check_val_every_n_epoch": 2}],
    ids=lambda settings: "-".join(f"{k}={v}" for k, v in settings.items()),
)
def test_save_top_k_ranks_only_validated_states_as_lightning(
    callback_engine, tmp_path, settings
) -> None:
    # A checkpoint is ranked by a validation of its own state: not at an
    # epoch's end that no validation follows (it would carry an older score).
    options = {"monitor": "val_loss", "save_top_k": 3, "filename": "{epoch}-{step}"}
    ours = callback_engine[3].ModelCheckpoint(dirpath=tmp_path / "ours_ckpt", **options)
    theirs = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "their_ckpt", **options)
    common = {"accelerator": "cpu", "max_epochs": 4, "num_sanity_val_steps": 0, **settings}
    quiet = {"enable_progress_bar": False, "enable_model_summary": False}
    trainer = callback_engine[1].Trainer(
        default_root_dir=str(tmp_path / "ours"), callbacks=[ours], **common, **quiet
    )
    torch.manual_seed(7)
    trainer.fit(noisy(callback_engine[0].Module)(), *shuffled_loaders())
    lightning = pl.Trainer(
        default_root_dir=str(tmp_path / "lightning"),
        logger=False,
        callbacks=[theirs],
        **common,
        **quiet,
    )
    torch.manual_seed(7)
    lightning.fit(noisy(pl.LightningModule)(), *shuffled_loaders())

    def ranking(callback):
        return {Path(k).name: float(v) for k, v in callback.best_k_models.items()}

    assert ranking(ours) == pytest.approx(ranking(theirs), abs=1e-6)

    def kept(folder):  # without our folder lock and last.ckpt (saved every epoch: docs/engine.md)
        return sorted(p.name for p in folder.iterdir() if p.name not in (".lock", "last.ckpt"))

    assert kept(tmp_path / "ours_ckpt") == kept(tmp_path / "their_ckpt")


@pytest.mark.parametrize("loaders", [1, 2])
def test_predict_returns_what_lightning_returns(engine, tmp_path, loaders) -> None:
    # One loader: a list of the step outputs; several: a list of them per loader.
    def predictor(base):
        class Predictor(science(base)):
            def predict_step(self, batch, batch_idx, dataloader_idx=0):
                return dataloader_idx, batch_idx, self(batch[0]).argmax(1)

        return Predictor

    def inputs() -> list[DataLoader]:
        return [DataLoader(TensorDataset(torch.randn(12 + 4 * i, 6)), 8) for i in range(loaders)]

    quiet = {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False}
    ours = engine[1].Trainer(default_root_dir=str(tmp_path / "ours"), **quiet)
    torch.manual_seed(5)
    predicted = ours.predict(predictor(engine[0].Module)(), dataloaders=inputs())
    lightning = pl.Trainer(default_root_dir=str(tmp_path / "pl"), logger=False, **quiet)
    torch.manual_seed(5)
    expected = lightning.predict(predictor(pl.LightningModule)(), dataloaders=inputs())

    def plain(outputs):
        if outputs and isinstance(outputs[0], list):
            return [plain(o) for o in outputs]
        return [(i, b, p.tolist()) for i, b, p in outputs]

    assert plain(predicted) == plain(expected)
    assert isinstance(expected[0], list) == (loaders == 2)  # the form this case checks


def test_evaluating_without_a_model_uses_the_fitted_one_as_lightning(
    callback_engine, tmp_path
) -> None:
    # trainer.validate/test/predict(dataloaders=...) after fit: the fitted module at
    # its best checkpoint (with a warning); without a ModelCheckpoint that is an
    # error, and on a Trainer that never ran a module, a TypeError.
    def evaluator(base):
        class Evaluated(noisy(base)):
            def test_step(self, batch, batch_idx):
                self.log("test_loss", nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

            def predict_step(self, batch, batch_idx):
                return self.net(batch[0]).argmax(1)

        return Evaluated

    quiet = {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False}
    quiet.update(max_epochs=2, num_sanity_val_steps=0)
    results = {}
    for side, trainer_of, base in (
        ("ours", callback_engine[1].Trainer, callback_engine[0].Module),
        ("lightning", lambda **o: pl.Trainer(logger=False, **o), pl.LightningModule),
    ):
        root = tmp_path / side
        with pytest.raises(TypeError, match=r"test\(\)"):
            trainer_of(default_root_dir=str(root / "fresh"), **quiet).test()
        bare = trainer_of(default_root_dir=str(root / "bare"), enable_checkpointing=False, **quiet)
        bare.fit(evaluator(base)(), *shuffled_loaders())
        with pytest.raises(Exception, match="best"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bare.test(dataloaders=shuffled_loaders()[1])
        trainer = trainer_of(default_root_dir=str(root), **quiet)  # ModelCheckpoint() added
        torch.manual_seed(7)
        trainer.fit(evaluator(base)(), *shuffled_loaders())
        unshuffled = DataLoader(shuffled_loaders()[1].dataset, BATCH)
        with pytest.warns(UserWarning, match="best"):
            validated = trainer.validate(dataloaders=unshuffled, verbose=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tested = trainer.test(dataloaders=unshuffled, verbose=False)
            predicted = [p.tolist() for p in trainer.predict(dataloaders=unshuffled)]
        results[side] = validated, tested, predicted
    ours, theirs = results["ours"], results["lightning"]
    for stage in (0, 1):  # validate, test: one dict of metrics for the one loader
        assert [set(d) for d in ours[stage]] == [set(d) for d in theirs[stage]] != [set()]
        assert ours[stage][0] == pytest.approx(theirs[stage][0], abs=1e-6)
    assert ours[2] == theirs[2]  # predict


def test_load_from_checkpoint_calls_on_load_checkpoint_and_takes_strict_as_lightning(
    engine, tmp_path
) -> None:
    # on_load_checkpoint sees the checkpoint before its weights load (here it
    # renames them); strict=False loads what both have and keeps the rest.
    def renamed(base):
        class Renamed(science(base)):
            def __init__(self) -> None:
                super().__init__()
                self.body = self.net  # the same layers, under another name
                del self.net

            def forward(self, x):
                return self.body(x)

            def on_load_checkpoint(self, checkpoint) -> None:
                self.seen_epoch = checkpoint["epoch"]
                weights = checkpoint["state_dict"]
                checkpoint["state_dict"] = {
                    k.replace("net.", "body.", 1): weights[k] for k in weights
                }

        return Renamed

    def wider(base):
        class Wider(science(base)):
            def __init__(self) -> None:
                super().__init__()
                self.extra = nn.Linear(2, 2)

        return Wider

    ours_fitted = science(engine[0].Module)()
    trainer = fit_ours(engine, ours_fitted, tmp_path, max_epochs=1)
    trainer.save_checkpoint(tmp_path / "ours.ckpt")
    their_fitted = science(pl.LightningModule)()
    lightning = fit_lightning(engine[2], their_fitted, tmp_path, max_epochs=1)
    lightning.save_checkpoint(tmp_path / "theirs.ckpt")
    cases = [(engine[0].Module, ours_fitted, "ours"), (pl.LightningModule, their_fitted, "theirs")]
    for base, fitted, name in cases:
        loaded = renamed(base).load_from_checkpoint(tmp_path / f"{name}.ckpt")
        assert isinstance(loaded.seen_epoch, int), name  # the hook ran, on the checkpoint
        assert_same_weights(loaded.body, fitted.net)
        with pytest.raises(Exception, match="extra"):  # a weight the checkpoint lacks
            wider(base).load_from_checkpoint(tmp_path / f"{name}.ckpt")
        with pytest.warns(UserWarning, match="extra"):
            partial = wider(base).load_from_checkpoint(tmp_path / f"{name}.ckpt", strict=False)
        assert_same_weights(partial.net, fitted.net)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_epochs": 3, "accumulate_grad_batches": 2},  # 5 batches: 3 steps an epoch
        {"max_epochs": None, "max_steps": 4},
        {"max_epochs": 2, "max_steps": 50, "limit_train_batches": 0.5},
    ],
    ids=lambda settings: "-".join(f"{k}={v}" for k, v in settings.items()),
)
def test_what_lightning_code_reads_off_the_trainer_is_lightnings(
    engine, tmp_path, settings, capsys
) -> None:
    # e.g. OneCycleLR(total_steps=self.trainer.estimated_stepping_batches).
    def reader(base):
        class Reader(science(base)):
            def configure_optimizers(self):
                trainer = self.trainer
                self.read = {
                    name: getattr(trainer, name)
                    for name in (
                        "estimated_stepping_batches",
                        "max_epochs",
                        "max_steps",
                        "accumulate_grad_batches",
                        "is_global_zero",
                        "global_rank",
                        "local_rank",
                        "world_size",
                        "logger",
                    )
                }
                self.read["module"] = trainer.lightning_module is self
                self.read["ranks"] = (self.global_rank, self.local_rank, self.logger, self.loggers)
                return super().configure_optimizers()

            def on_train_start(self) -> None:
                self.read["num_training_batches"] = self.trainer.num_training_batches
                self.print("rank zero prints", end="; ")

        return Reader

    ours = reader(engine[0].Module)()
    fit_ours(engine, ours, tmp_path, **settings)
    theirs = reader(pl.LightningModule)()
    fit_lightning(engine[2], theirs, tmp_path, **settings)
    assert ours.read == theirs.read
    assert capsys.readouterr().out.count("rank zero prints; ") == 2  # self.print, in both


def test_freeze_and_unfreeze_are_lightnings(engine) -> None:
    for module in (science(engine[0].Module)(), science(pl.LightningModule)()):
        module.freeze()
        assert not module.training and not any(p.requires_grad for p in module.parameters())
        module.unfreeze()
        assert module.training and all(p.requires_grad for p in module.parameters())


def test_lightnings_auto_choices_are_this_projects_own(engine, tmp_path) -> None:
    # What Lightning programs pass; the project's hardware and strategy are its answers.
    auto = {"accelerator": "auto", "devices": "auto", "strategy": "auto"}
    trainer = engine[1].Trainer(default_root_dir=str(tmp_path), **auto)
    default = engine[1].Trainer(default_root_dir=str(tmp_path))
    assert trainer.config.accelerator == default.config.accelerator
    assert trainer.config.devices == default.config.devices
    assert type(trainer.strategy) is type(default.strategy)
    with pytest.raises(Exception, match=r"strategy='ddp'.*scaffold update -d strategy="):
        engine[1].Trainer(default_root_dir=str(tmp_path), strategy="ddp")
    pl.Trainer(default_root_dir=str(tmp_path), logger=False, **auto)  # Lightning takes them too


# Lightning's precision inputs and the names it gives them (on the CPU it turns
# 16 and "16-mixed" into bf16-mixed: those are left out).
PRECISION_INPUTS = [32, "32", "32-true", "bf16", "bf16-mixed", 64, "64", "64-true", "16-true"]


@pytest.mark.parametrize("given", PRECISION_INPUTS)
def test_lightnings_precision_names_this_projects_or_is_refused(engine, tmp_path, given) -> None:
    # The project's precision (32-true here) was an answer; Lightning's names of it pass.
    theirs = pl.Trainer(default_root_dir=str(tmp_path), logger=False, precision=given).precision
    if theirs == engine[1].Trainer(default_root_dir=str(tmp_path)).precision:
        trainer = engine[1].Trainer(default_root_dir=str(tmp_path), precision=given)
        assert trainer.precision == theirs
    else:
        with pytest.raises(Exception, match=rf"scaffold update -d precision={theirs}$"):
            engine[1].Trainer(default_root_dir=str(tmp_path), precision=given)


def test_a_precision_lightning_refuses_is_refused(engine, tmp_path) -> None:
    with pytest.raises(ValueError, match="'fp32' is invalid"):
        pl.Trainer(default_root_dir=str(tmp_path), logger=False, precision="fp32")
    with pytest.raises(ValueError, match=r"precision='fp32'\): use one of 32-true, 16-mixed"):
        engine[1].Trainer(default_root_dir=str(tmp_path), precision="fp32")


class _StopAtEpochEnd:
    def on_train_epoch_end(self, trainer, module):
        trainer.should_stop = True  # as EarlyStopping would, every epoch


@pytest.mark.parametrize(
    "minimum", [{}, {"min_steps": 7}, {"min_steps": 12}, {"min_epochs": 2, "min_steps": 3}]
)
def test_a_stop_request_waits_for_min_steps_as_lightnings(engine, tmp_path, minimum) -> None:
    # 5 batches an epoch: a stop asked at each epoch's end stops at the step that
    # reaches min_steps (within an epoch), or at the end of min_epochs.
    ours = science(engine[0].Module)()
    stop = type("Stop", (_StopAtEpochEnd, pl.Callback), {})
    ours_trainer = fit_ours(engine, ours, tmp_path, [_StopAtEpochEnd()], max_epochs=5, **minimum)
    theirs = science(pl.LightningModule)()
    their_trainer = fit_lightning(engine[2], theirs, tmp_path, [stop()], max_epochs=5, **minimum)
    expected = {(): 5, ("min_steps",): max(minimum.get("min_steps", 0), 5)}
    assert ours_trainer.global_step == their_trainer.global_step
    if tuple(minimum) in expected:
        assert their_trainer.global_step == expected[tuple(minimum)]
    assert ours_trainer.min_steps == their_trainer.min_steps == minimum.get("min_steps")
    assert ours.losses == pytest.approx(theirs.losses, abs=1e-6)
    assert_same_weights(ours, theirs)


@pytest.mark.parametrize("inference_mode", [True, False])
def test_evaluation_runs_under_inference_mode_or_no_grad_as_lightnings(
    engine, tmp_path, inference_mode
) -> None:
    def recording(base):
        class Recorded(science(base)):
            def validation_step(self, batch, batch_idx):
                seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
                return super().validation_step(batch, batch_idx)

        return Recorded()

    _, val = data(engine[2])
    seen: list[tuple[bool, bool]] = []
    options = {"default_root_dir": str(tmp_path), "inference_mode": inference_mode}
    engine[1].Trainer(**options).validate(recording(engine[0].Module), val, verbose=False)
    ours, seen = seen, []
    lightning = pl.Trainer(logger=False, enable_progress_bar=False, **options)
    lightning.validate(recording(pl.LightningModule), val, verbose=False)
    assert ours == seen == [(inference_mode, False)] * 5


@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("benchmark", [None, True, False])
def test_benchmark_sets_cudnn_as_lightnings(engine, tmp_path, deterministic, benchmark) -> None:
    options = {"deterministic": deterministic, "benchmark": benchmark}
    before = torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled()
    try:
        found = []
        for make in (engine[1].Trainer, functools.partial(pl.Trainer, logger=False)):
            torch.backends.cudnn.benchmark = True  # a session that turned it on
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                make(default_root_dir=str(tmp_path), **options)
            warned = any("benchmark=True" in str(w.message) for w in caught)
            found.append((torch.backends.cudnn.benchmark, warned))
        assert found[0] == found[1]
    finally:
        torch.backends.cudnn.benchmark = before[0]
        torch.use_deterministic_algorithms(before[1])


class Outputs:
    """Records what on_train_batch_end receives as ``outputs``."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"]
        self.seen.append((sorted(outputs), loss.item(), loss.requires_grad, outputs.get("size")))


@pytest.mark.parametrize("returns", ["tensor", "dict"])
def test_on_train_batch_end_gets_the_loss_share_detached_as_lightnings(
    engine, tmp_path, returns
) -> None:
    """Under accumulation, Lightning hands callbacks the loss divided by the window size,
    detached from the graph (a list of them keeps no graph alive), beside what else
    training_step returned."""

    def with_outputs(base):
        class Returning(science(base)):
            def training_step(self, batch, batch_idx):
                loss = super().training_step(batch, batch_idx)
                return loss if returns == "tensor" else {"loss": loss, "size": len(batch[0])}

        return Returning

    recorders = Outputs(), type("LightningOutputs", (Outputs, pl.Callback), {})()
    ours = with_outputs(engine[0].Module)()
    fit_ours(engine, ours, tmp_path, callbacks=[recorders[0]], **SETTINGS)
    theirs = with_outputs(pl.LightningModule)()
    fit_lightning(engine[2], theirs, tmp_path, callbacks=[recorders[1]], **SETTINGS)

    seen, expected = recorders[0].seen, recorders[1].seen
    assert len(seen) == len(expected) == 15
    for (keys, value, grad, size), (their_keys, their_value, their_grad, their_size) in zip(
        seen, expected, strict=True
    ):
        assert (keys, grad, size) == (their_keys, their_grad, their_size)
        assert value == pytest.approx(their_value, abs=1e-6)
    # The share, not the loss: half of what training_step computed.
    assert expected[0][1] == pytest.approx(theirs.losses[0] / 2, abs=1e-6)


class SkippedOutputs(Outputs):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seen.append({key: float(value) for key, value in outputs.items()})


@pytest.mark.parametrize("accumulate", [1, 2])
def test_a_training_step_returning_none_skips_its_batch_as_lightnings(
    engine, tmp_path, accumulate
) -> None:
    """Lightning's documented "return None to skip a batch": no backward for it; a step
    due at that batch still runs (with what the window accumulated), and callbacks get
    ``{}`` as its outputs."""

    def skipping(base):
        class Skipping(science(base)):
            def training_step(self, batch, batch_idx):
                loss = super().training_step(batch, batch_idx)
                return None if batch_idx in (1, 2) else loss

        return Skipping

    recorders = SkippedOutputs(), type("LightningSkipped", (SkippedOutputs, pl.Callback), {})()
    settings = {**SETTINGS, "accumulate_grad_batches": accumulate}
    ours = skipping(engine[0].Module)()
    with pytest.warns(UserWarning, match="returned `None`"):  # Lightning's too (once a process)
        trainer = fit_ours(engine, ours, tmp_path, callbacks=[recorders[0]], **settings)
    theirs = skipping(pl.LightningModule)()
    lightning = fit_lightning(engine[2], theirs, tmp_path, callbacks=[recorders[1]], **settings)

    assert trainer.global_step == lightning.global_step == (15 if accumulate == 1 else 9)
    assert [sorted(seen) for seen in recorders[0].seen] == [
        sorted(seen) for seen in recorders[1].seen
    ]
    assert recorders[0].seen[1] == {}
    assert ours.losses == pytest.approx(theirs.losses, abs=1e-6)
    assert_same_weights(ours, theirs)


def test_a_dict_without_a_loss_is_refused_as_lightnings(engine, tmp_path) -> None:
    def lossless(base):
        class Lossless(science(base)):
            def training_step(self, batch, batch_idx):
                return {"value": super().training_step(batch, batch_idx)}

        return Lossless

    with pytest.raises(engine[1].UsageError, match="without a 'loss' key"):
        fit_ours(engine, lossless(engine[0].Module)(), tmp_path, **SETTINGS)
    refusal = pl.utilities.exceptions.MisconfigurationException
    with pytest.raises(refusal, match="the 'loss' key needs to be present"):
        fit_lightning(engine[2], lossless(pl.LightningModule)(), tmp_path, **SETTINGS)
