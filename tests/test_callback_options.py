"""The callbacks' Lightning options, against pytorch_lightning 2.6.6.

Lightning code passes its callbacks' options: ``ModelCheckpoint(verbose=True,
auto_insert_metric_name=False, save_on_train_epoch_end=...)``,
``EarlyStopping(check_on_train_epoch_end=...)`` (and Lightning's rule when it
is None: after every validation when an epoch has several),
``LearningRateMonitor(log_momentum=True, log_weight_decay=True)`` with named
schedulers and parameter groups. Each runs here on both sides with a validation
metric scripted to go up and down, and must keep the same checkpoints, stop at
the same step, say the same and log the same rates.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from conftest import engine_of
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")

# val_loss of the n-th validation (the sanity check's is not counted).
CALLBACKS = ["model_checkpoint", "early_stopping", "lr_monitor"]
SCRIPT = [0.9, 0.7, 0.8, 0.75, 0.6, 0.65, 0.66, 0.67, 0.5, 0.55, 0.56, 0.57, 0.58, 0.59]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The engine of a freshly generated project, imported from its src/."""
    with engine_of(
        tmp_path_factory.mktemp("options"),
        "options",
        ("module", "trainer", "callbacks"),
        callbacks=CALLBACKS,
    ) as modules:
        yield modules


def loader(samples: int = 32) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, 2, generator=generator)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


def scripted(base, optimizer=None):
    """Trains a linear layer; validation logs SCRIPT's next value as val_loss."""

    class Scripted(base):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(2, 1)
            self.validations = 0

        def training_step(self, batch, batch_idx):
            return nn.functional.mse_loss(self.layer(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", SCRIPT[self.validations % len(SCRIPT)])

        def on_validation_epoch_end(self) -> None:
            if not self.trainer.sanity_checking:
                self.validations += 1

        def configure_optimizers(self):
            if optimizer is not None:
                return optimizer(self)
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Scripted


def fit_both(
    engine,
    tmp_path,
    ours_callbacks,
    their_callbacks,
    module=scripted,
    lightning_logger=False,
    **settings,
):
    """The same fit on both sides; returns (ours, Lightning's) trainers."""
    settings = {
        "accelerator": "cpu",
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "max_epochs": 6,
        **settings,
    }
    ours = engine[1].Trainer(
        default_root_dir=str(tmp_path / "ours"), logger=False, callbacks=ours_callbacks, **settings
    )
    torch.manual_seed(0)  # the same initial weights on both sides
    ours.fit(module(engine[0].Module)(), loader(), loader(16))
    theirs = pl.Trainer(
        default_root_dir=str(tmp_path / "lightning"),
        logger=lightning_logger,
        callbacks=their_callbacks,
        **settings,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        theirs.fit(module(pl.LightningModule)(), loader(), loader(16))
    return ours, theirs


def kept(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.ckpt") if p.name != "last.ckpt")


@pytest.mark.parametrize("on_epoch_end", [None, True, False])
@pytest.mark.parametrize(
    "settings",
    [{"check_val_every_n_epoch": 2}, {"val_check_interval": 0.5}, {}, {"monitor": None}],
    ids=["every-2-epochs", "twice-an-epoch", "each-epoch", "no-monitor"],
)
def test_model_checkpoint_options_keep_and_say_what_lightning_does(
    engine, tmp_path, capsys, caplog, on_epoch_end, settings
) -> None:
    settings = dict(settings)
    options = {
        "monitor": settings.pop("monitor", "val_loss"),
        "save_top_k": 2,
        "filename": "e{epoch:02d}-s{step}-v{val_loss:.2f}",
        "auto_insert_metric_name": False,
        "save_on_train_epoch_end": on_epoch_end,
        "verbose": True,
    }
    if options["monitor"] is None:
        options["save_top_k"] = -1  # Lightning refuses any other k without a monitor
    ours_dir, their_dir = tmp_path / "o", tmp_path / "l"
    mine = engine[2].ModelCheckpoint(dirpath=ours_dir, save_last=False, **options)
    theirs = pl.callbacks.ModelCheckpoint(dirpath=their_dir, **options)
    with caplog.at_level(logging.INFO, logger="pytorch_lightning"):
        fit_both(engine, tmp_path, [mine], [theirs], **settings)
    assert kept(ours_dir) == kept(their_dir)
    assert kept(ours_dir)  # something was kept: the comparison says something
    their_score = None if theirs.best_model_score is None else float(theirs.best_model_score)
    assert (mine.best_model_score, Path(mine.best_model_path).name) == (
        pytest.approx(their_score),
        Path(theirs.best_model_path).name,
    )

    def said(text: str, folder: Path) -> list[str]:
        lines = [line for line in text.splitlines() if re.match(r"Epoch \d+, global step", line)]
        return [line.replace(str(folder), "<dir>") for line in lines]

    ours_said = said(capsys.readouterr().out, ours_dir)
    their_said = said("\n".join(r.getMessage() for r in caplog.records), their_dir)
    assert ours_said == their_said
    assert bool(ours_said) == (options["monitor"] is not None)  # Lightning: nothing without


@pytest.mark.parametrize("on_epoch_end", [None, True, False])
@pytest.mark.parametrize(
    "settings", [{"val_check_interval": 0.5}, {}], ids=["twice-an-epoch", "each-epoch"]
)
def test_early_stopping_checks_when_lightning_checks(
    engine, tmp_path, on_epoch_end, settings
) -> None:
    options = {"monitor": "val_loss", "patience": 2, "check_on_train_epoch_end": on_epoch_end}
    mine = engine[2].EarlyStopping(**options)
    theirs = pl.callbacks.EarlyStopping(**options)
    ours, lightning = fit_both(engine, tmp_path, [mine], [theirs], max_epochs=8, **settings)
    assert (mine.stopped_epoch, mine.wait_count, mine.best_score) == (
        theirs.stopped_epoch,
        theirs.wait_count,
        pytest.approx(float(theirs.best_score)),
    )
    assert (ours.current_epoch, ours.global_step) == (
        lightning.current_epoch,
        lightning.global_step,
    )
    assert mine.stopped_epoch  # it stopped: the comparison says something


def test_early_stopping_verbose_says_each_improvement(engine, tmp_path, capsys) -> None:
    mine = engine[2].EarlyStopping(monitor="val_loss", patience=2, verbose=True)
    fit_both(engine, tmp_path, [mine], [pl.callbacks.EarlyStopping(monitor="val_loss")])
    out = capsys.readouterr().out
    assert "EarlyStopping: val_loss improved; new best score: 0.900" in out
    assert "EarlyStopping: val_loss improved by 0.200; new best score: 0.700" in out


class Recorder:
    """A logger on either side: every learning-rate value it is sent, with its step."""

    def __init__(self) -> None:
        self.rates: list[tuple[int, str, float]] = []

    def log_metrics(self, metrics, step=None) -> None:
        for name, value in metrics.items():
            if name != "epoch":  # the engine adds it to each record; the rest are rates
                self.rates.append((step, name, round(float(value), 9)))

    def finalize(self, status: str) -> None:
        pass


class LightningRecorder(Recorder, pl.loggers.Logger):
    name, version = "recorder", 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


def two_groups(module):
    """Adam over two named parameter groups, with a named per-step scheduler and another."""
    groups = [
        {"params": [module.layer.weight], "name": "weights", "weight_decay": 0.01},
        {"params": [module.layer.bias], "name": "bias", "lr": 0.05},
    ]
    adam = torch.optim.Adam(groups, lr=0.1, betas=(0.8, 0.99))
    steps = torch.optim.lr_scheduler.StepLR(adam, 3, gamma=0.5)
    return {"optimizer": adam, "lr_scheduler": {"scheduler": steps, "interval": "step"}}


def one_unscheduled(module):
    return torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)


def named_epoch_scheduler(module):
    sgd = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.5, weight_decay=0.1)
    decay = torch.optim.lr_scheduler.ExponentialLR(sgd, 0.5)
    return {"optimizer": sgd, "lr_scheduler": {"scheduler": decay, "name": "my-rate"}}


@pytest.mark.parametrize("interval", [None, "step", "epoch"])
@pytest.mark.parametrize("optimizer", [two_groups, one_unscheduled, named_epoch_scheduler])
def test_learning_rate_monitor_logs_what_lightning_logs(
    engine, tmp_path, optimizer, interval
) -> None:
    options = {"logging_interval": interval, "log_momentum": True, "log_weight_decay": True}
    ours_log, their_log = Recorder(), LightningRecorder()
    seen: dict[str, list] = {"ours": [], "theirs": []}

    class Attach:  # the engine's loggers come from the project: add the recorder to them
        def on_fit_start(self, trainer, module) -> None:
            trainer.loggers.append(ours_log)

    class Seen:  # the rates in callback_metrics, after each batch
        side = "ours"

        def on_train_batch_end(self, trainer, *args) -> None:
            held = trainer.callback_metrics.items()
            rates = {k: round(float(v), 9) for k, v in held if k.startswith(("lr-", "my-"))}
            seen[self.side].append((trainer.global_step, rates))

    class SeenByLightning(Seen, pl.Callback):
        side = "theirs"

    fit_both(
        engine,
        tmp_path,
        [Attach(), engine[2].LearningRateMonitor(**options), Seen()],
        [pl.callbacks.LearningRateMonitor(**options), SeenByLightning()],
        module=lambda base: scripted(base, optimizer),
        max_epochs=2,
        log_every_n_steps=2,
        limit_val_batches=0,
        lightning_logger=their_log,
    )
    assert sorted(ours_log.rates) == sorted(their_log.rates)
    assert ours_log.rates
    # Lightning's monitor also puts them into trainer.callback_metrics.
    assert seen["ours"] == seen["theirs"]
    assert any(rates for _, rates in seen["ours"])


@pytest.mark.parametrize("interval", [timedelta(0), timedelta(hours=1)], ids=["0s", "1h"])
def test_train_time_interval_saves_when_lightnings_does(engine, tmp_path, interval) -> None:
    def callbacks(lib, folder: Path) -> list:
        options = {"save_top_k": -1, "train_time_interval": interval, "save_last": False}
        return [lib.ModelCheckpoint(dirpath=folder, **options)]

    ours, theirs = callbacks(engine[2], tmp_path / "o"), callbacks(pl.callbacks, tmp_path / "l")
    fit_both(engine, tmp_path, ours, theirs, max_epochs=2)
    assert kept(tmp_path / "o") == kept(tmp_path / "l")
    assert len(kept(tmp_path / "o")) == (0 if interval else 8)  # every step, or none
    assert ours[0].state_key == theirs[0].state_key
    for lib in (engine[2], pl.callbacks):  # one trigger only
        with pytest.raises(Exception, match="every_n_epochs=1"):
            lib.ModelCheckpoint(every_n_epochs=1, train_time_interval=interval)


def test_several_checkpoint_callbacks_keep_their_own_state_under_lightnings_keys(
    engine, tmp_path
) -> None:
    # Lightning keys each callback's state by its state_key (a ModelCheckpoint's
    # names its monitor and schedule): two ModelCheckpoints keep two states.
    def callbacks(lib, folder: Path) -> list:
        return [
            lib.ModelCheckpoint(dirpath=folder / "best", monitor="val_loss", save_last=True),
            lib.ModelCheckpoint(dirpath=folder / "every", save_top_k=-1, every_n_epochs=2),
            lib.EarlyStopping(monitor="val_loss", patience=5),
        ]

    ours, theirs = callbacks(engine[2], tmp_path / "o"), callbacks(pl.callbacks, tmp_path / "l")
    fit_both(engine, tmp_path, ours, theirs, max_epochs=4)
    saved = torch.load(tmp_path / "o" / "best" / "last.ckpt", weights_only=True)["callbacks"]
    theirs_saved = torch.load(tmp_path / "l" / "best" / "last.ckpt", weights_only=False)
    assert sorted(saved) == sorted(theirs_saved["callbacks"])
    assert len(saved) == 3

    resumed = callbacks(engine[2], tmp_path / "o")
    trainer = engine[1].Trainer(
        accelerator="cpu",
        default_root_dir=str(tmp_path / "ours"),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=4,
        callbacks=resumed,
    )
    # The last callback's last.ckpt: written after both saved at the last epoch.
    last = tmp_path / "o" / "every" / "last.ckpt"
    trainer.fit(scripted(engine[0].Module)(), loader(), loader(16), ckpt_path=str(last))
    for before, after in zip(ours[:2], resumed[:2], strict=True):
        assert (after.best_model_path, after.best_k_models) == (
            before.best_model_path,
            before.best_k_models,
        )
    assert ours[0].best_model_path != ours[1].best_model_path  # two states, not one twice


def test_save_weights_only_keeps_and_refuses_what_lightning_does(engine, tmp_path) -> None:
    # ModelCheckpoint(save_weights_only=True): the weights and the loop's position,
    # no optimizer, scheduler or callback state; the callbacks' on_save_checkpoint
    # isn't called, the module's is; a fit can't resume from one, an evaluation can.
    saves: dict[str, list[str]] = {"ours": [], "lightning": []}

    def recorded(side: str, base):
        class Recorded(scripted(base)):
            def on_save_checkpoint(self, checkpoint) -> None:
                saves[side].append("module")

        return Recorded

    package = engine[1].__name__.rsplit(".", 1)[0]  # the generated engine's

    def callbacks(lib, side: str, folder: Path) -> list:
        base = pl.Callback if side == "lightning" else sys.modules[f"{package}.hooks"].Callback

        class Watcher(base):
            def on_save_checkpoint(self, trainer, module, checkpoint) -> None:
                saves[side].append("callback")

        best = lib.ModelCheckpoint(
            dirpath=folder,
            monitor="val_loss",
            save_top_k=2,
            save_last=True,  # Lightning's default is None, ours True
            save_weights_only=True,
        )
        return [best, Watcher()]

    ours_folder, their_folder = tmp_path / "o", tmp_path / "l"
    ours_callbacks = callbacks(engine[2], "ours", ours_folder)
    their_callbacks = callbacks(pl.callbacks, "lightning", their_folder)
    modules = {"ours": recorded("ours", engine[0].Module)}
    modules["lightning"] = recorded("lightning", pl.LightningModule)

    def module(base):
        return modules["ours" if base is engine[0].Module else "lightning"]

    ours, theirs = fit_both(
        engine, tmp_path, ours_callbacks, their_callbacks, module=module, max_epochs=4
    )
    assert kept(ours_folder) == kept(their_folder) and len(kept(ours_folder)) == 2
    assert saves["ours"] == saves["lightning"] and set(saves["ours"]) == {"module"}

    for name in [*kept(ours_folder), "last.ckpt"]:
        mine = torch.load(ours_folder / name, weights_only=True)
        lightning = torch.load(their_folder / name, weights_only=False)
        for resume_only in ("optimizer_states", "lr_schedulers", "callbacks"):
            assert resume_only not in mine and resume_only not in lightning, name
        assert (mine["epoch"], mine["global_step"]) == (
            lightning["epoch"],
            lightning["global_step"],
        )
        assert mine["state_dict"].keys() == lightning["state_dict"].keys()
        for key, tensor in mine["state_dict"].items():
            torch.testing.assert_close(tensor, lightning["state_dict"][key], rtol=0, atol=1e-6)

    # An evaluation takes one, on both sides, to the same numbers.
    best = Path(ours_callbacks[0].best_model_path)
    assert best.name == Path(their_callbacks[0].best_model_path).name
    layer = {}
    for side, trainer, folder in (("ours", ours, ours_folder), ("lightning", theirs, their_folder)):
        evaluated = modules[side]()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.validate(evaluated, loader(16), ckpt_path=str(folder / best.name))
        layer[side] = evaluated.layer.weight.detach().clone()
    torch.testing.assert_close(layer["ours"], layer["lightning"], rtol=0, atol=1e-6)

    # A fit refuses to resume from one: Lightning's KeyError, our one line naming it.
    with pytest.raises(KeyError, match="save_weights_only"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.Trainer(
            default_root_dir=str(tmp_path / "lightning2"),
            logger=False,
            enable_progress_bar=False,
            max_epochs=5,
        ).fit(
            modules["lightning"](), loader(), loader(16), ckpt_path=str(their_folder / "last.ckpt")
        )
    refused = engine[1].Trainer(
        accelerator="cpu", default_root_dir=str(tmp_path / "ours2"), logger=False, max_epochs=5
    )
    last = ours_folder / "last.ckpt"
    errors = sys.modules[f"{package}.errors"]
    only = rf"^{re.escape(repr(str(last)))} holds the model's weights only"
    with pytest.raises(errors.CheckpointError, match=only):
        refused.fit(modules["ours"](), loader(), loader(16), ckpt_path=str(last))
    assert not (tmp_path / "ours2").exists()
