"""What the Trainer says about itself, against pytorch_lightning 2.6.6.

Lightning code branches on the Trainer's state: ``trainer.sanity_checking`` in a
callback, ``trainer.state.fn == "fit"``, ``trainer.training`` in a hook that
runs in several loops, ``trainer.interrupted`` after a crash. Here the same
module and callback record that state at every hook of fit (with its sanity
check and validation), validate, test, predict and a failing fit, on either
side; and ``should_stop`` set as an epoch starts ends the fit where Lightning
ends it. Then the sizes and parts Lightning code reads (``num_val_batches``,
``val_dataloaders``, ``lr_scheduler_configs``, ``precision``, ...).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import engine_of
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")

FLAGS = ("training", "validating", "testing", "predicting", "sanity_checking")
FLAGS += ("evaluating", "interrupted")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The engine of a freshly generated project, imported from its src/."""
    with engine_of(
        tmp_path_factory.mktemp("state"),
        "state",
        ("module", "trainer", "callbacks"),
        callbacks=["model_checkpoint", "early_stopping"],
    ) as modules:
        yield modules


def loader(samples: int = 16, batch: int = 8) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(samples, 2, generator=generator),
        torch.randn(samples, 1, generator=generator),
    )
    return DataLoader(TensorDataset(x, y), batch_size=batch)


def state_of(trainer) -> tuple:
    """The state a hook sees, as plain values."""
    state = trainer.state
    named = [None if v is None else str(v) for v in (state.fn, state.stage, state.status)]
    return (*named, *(getattr(trainer, flag) for flag in FLAGS))


def recording(base, callback_base, seen: list):
    """A module and a callback recording the trainer's state at each hook they define."""

    def record(name):
        def hook(self, *args, **kwargs):
            trainer = self.trainer if hasattr(self, "trainer") else args[0]
            seen.append((name, *state_of(trainer)))

        return hook

    class Recorded(base):
        def __init__(self, fail: bool = False) -> None:
            super().__init__()
            self.layer, self.fail = nn.Linear(2, 1), fail

        def training_step(self, batch, batch_idx):
            seen.append(("training_step", *state_of(self.trainer)))
            if self.fail:
                raise RuntimeError("a failing step")
            return nn.functional.mse_loss(self.layer(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            seen.append(("validation_step", *state_of(self.trainer)))
            self.log("v", 1.0)

        def test_step(self, batch, batch_idx):
            seen.append(("test_step", *state_of(self.trainer)))

        def predict_step(self, batch, batch_idx):
            seen.append(("predict_step", *state_of(self.trainer)))
            return batch_idx

        def configure_optimizers(self):
            seen.append(("configure_optimizers", *state_of(self.trainer)))
            return torch.optim.SGD(self.parameters(), lr=0.1)

    module_hooks = ["setup", "on_fit_start", "on_train_start", "on_train_epoch_start"]
    module_hooks += ["on_validation_start", "on_validation_epoch_end", "on_validation_end"]
    module_hooks += ["on_train_epoch_end", "on_train_end", "on_fit_end", "teardown"]
    module_hooks += ["on_test_start", "on_test_end", "on_predict_start", "on_exception"]
    for name in module_hooks:
        setattr(Recorded, name, record(name))

    class Callback(callback_base):
        pass

    for name in ("on_sanity_check_start", "on_sanity_check_end", "on_exception", "teardown"):
        setattr(Callback, name, record(f"callback.{name}"))
    return Recorded, Callback


def run_everything(make_trainer, module_class, seen: list) -> None:
    """fit, test, validate and predict on one Trainer, then a fit that fails on another."""
    trainer = make_trainer()
    seen.append(("before fit", *state_of(trainer)))
    trainer.fit(module_class(), loader(), loader())
    seen.append(("after fit", *state_of(trainer)))
    trainer.test(module_class(), loader())
    seen.append(("after test", *state_of(trainer)))
    trainer.validate(module_class(), loader())
    trainer.predict(module_class(), loader())
    seen.append(("after predict", *state_of(trainer)))
    failing = make_trainer()
    with pytest.raises(RuntimeError, match="a failing step"):
        failing.fit(module_class(fail=True), loader(), loader())
    seen.append(("after the failed fit", *state_of(failing)))


def quiet(**settings) -> dict:
    return {
        "accelerator": "cpu",
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        **settings,
    }


def test_the_trainer_state_in_every_hook_is_lightnings(engine, tmp_path) -> None:
    ours: list = []
    module, callback = recording(engine[0].Module, object, ours)
    settings = quiet(max_epochs=1, num_sanity_val_steps=1, default_root_dir=str(tmp_path / "o"))
    settings["enable_checkpointing"] = False  # both sides: no ModelCheckpoint added
    run_everything(lambda: engine[1].Trainer(callbacks=[callback()], **settings), module, ours)

    theirs: list = []
    module, callback = recording(pl.LightningModule, pl.Callback, theirs)
    settings = {**settings, "default_root_dir": str(tmp_path / "l")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_everything(lambda: pl.Trainer(callbacks=[callback()], **settings), module, theirs)

    assert ours == theirs
    # What the comparison covers: every stage, and the sanity check's own hooks.
    stages = {"TRAINING", "SANITY_CHECKING", "VALIDATING", "TESTING", "PREDICTING"}
    assert {entry[2] for entry in theirs} >= {f"RunningStage.{stage}" for stage in stages}
    sanity_end = (
        "callback.on_sanity_check_end",
        "TrainerFn.FITTING",
        "RunningStage.SANITY_CHECKING",
    )
    assert sanity_end in {entry[:3] for entry in theirs}


def stopping(base, seen: list, at_epoch: int):
    """Sets ``trainer.should_stop`` in ``on_train_epoch_start`` of ``at_epoch``."""

    class Stopping(base):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            seen.append(("training_step", self.current_epoch, self.global_step))
            return nn.functional.mse_loss(self.layer(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            seen.append(("validation_step", self.current_epoch, self.global_step))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def on_train_epoch_start(self) -> None:
            if self.current_epoch == at_epoch:
                self.trainer.should_stop = True

        def on_train_epoch_end(self) -> None:
            seen.append(("on_train_epoch_end", self.current_epoch, self.global_step))

    return Stopping


@pytest.mark.parametrize(
    ("at_epoch", "min_epochs"), [(0, 0), (1, 0), (1, 1), (1, 2)], ids=lambda v: str(v)
)
def test_should_stop_as_an_epoch_starts_trains_none_of_it_as_lightning(
    engine, tmp_path, at_epoch, min_epochs
) -> None:
    settings = quiet(max_epochs=4, min_epochs=min_epochs, num_sanity_val_steps=0)
    settings["enable_checkpointing"] = False
    ours: list = []
    trainer = engine[1].Trainer(default_root_dir=str(tmp_path / "o"), **settings)
    trainer.fit(stopping(engine[0].Module, ours, at_epoch)(), loader(), loader())
    ours.append(("end", trainer.current_epoch, trainer.global_step))

    theirs: list = []
    lightning = pl.Trainer(default_root_dir=str(tmp_path / "l"), **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lightning.fit(stopping(pl.LightningModule, theirs, at_epoch)(), loader(), loader())
    theirs.append(("end", lightning.current_epoch, lightning.global_step))
    assert ours == theirs


def reading(base, read: dict):
    """Reads what Lightning code reads off the trainer, in on_train_start and on_test_start."""

    class Reading(base):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return nn.functional.mse_loss(self.layer(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            self.log("val_loss", nn.functional.mse_loss(self.layer(batch[0]), batch[1]))

        def test_step(self, batch, batch_idx):
            pass

        def predict_step(self, batch, batch_idx):
            return batch_idx

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "name": "s"}}

        def on_train_start(self) -> None:
            trainer = self.trainer
            config = trainer.lr_scheduler_configs[0]
            read["fit"] = {
                "num_val_batches": trainer.num_val_batches,
                "num_sanity_val_batches": trainer.num_sanity_val_batches,
                "train": len(trainer.train_dataloader),
                "val": [len(v) for v in trainer.val_dataloaders],
                "scheduler": (type(config.scheduler).__name__, config.name, config.interval),
                "scheduler fields": (config.frequency, config.monitor, config.strict),
                "precision": trainer.precision,
                "callbacks": [
                    type(trainer.checkpoint_callback).__name__,
                    [type(c).__name__ for c in trainer.checkpoint_callbacks],
                    type(trainer.early_stopping_callback).__name__,
                    len(trainer.early_stopping_callbacks),
                ],
            }

        def on_test_start(self) -> None:
            trainer = self.trainer
            read["test"] = (trainer.num_test_batches, len(trainer.test_dataloaders))

        def on_validation_start(self) -> None:
            if self.trainer.state.fn == "validate":
                read["validate"] = (self.trainer.num_val_batches, len(self.trainer.val_dataloaders))

        def on_predict_start(self) -> None:
            trainer = self.trainer
            read["predict"] = (trainer.num_predict_batches, len(trainer.predict_dataloaders))

    return Reading


def exercise(trainer, module) -> None:
    val = [loader(16, 8), loader(24, 8)]
    trainer.fit(module, loader(40, 8), val)
    trainer.validate(module, loader(24, 8))
    trainer.test(module, loader(32, 8))
    trainer.predict(module, loader(8, 4))


def test_the_sizes_and_parts_lightning_code_reads_are_lightnings(engine, tmp_path) -> None:
    settings = quiet(max_epochs=1, num_sanity_val_steps=2, limit_val_batches=2)
    settings.update(limit_test_batches=0.5, limit_predict_batches=1)
    _, trainer_lib, callbacks = engine

    ours: dict = {}
    stop = [
        callbacks.ModelCheckpoint(),
        callbacks.EarlyStopping(monitor="val_loss/dataloader_idx_0"),
    ]
    trainer = trainer_lib.Trainer(default_root_dir=str(tmp_path / "o"), callbacks=stop, **settings)
    exercise(trainer, reading(engine[0].Module, ours)())

    theirs: dict = {}
    stop = [
        pl.callbacks.ModelCheckpoint(),
        pl.callbacks.EarlyStopping(monitor="val_loss/dataloader_idx_0"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lightning = pl.Trainer(default_root_dir=str(tmp_path / "l"), callbacks=stop, **settings)
        exercise(lightning, reading(pl.LightningModule, theirs)())

    assert ours == theirs
    assert ours["fit"]["num_val_batches"] == [2, 2]  # what the comparison covers
    assert ours["test"] == ([2], 4)
