"""Lightning's BasePredictionWriter and progress-bar callbacks, ported by the import
change alone, against Lightning.

The same program runs under pytorch_lightning 2.6.6 and in a generated project.
A writer subclass recording what it is handed gets the same predictions, batch
indices (the dataset's, in the sampler's order), batch_idx and dataloader_idx,
at every write interval, with one and with two predict loaders, and with a loader
whose indices can't be known (an iterable of batches: no indices, and a
warning, on both sides). ``TQDMProgressBar`` shows the bar or, at
``refresh_rate=0``, hides it, and the Trainer refuses what Lightning's refuses.
``return_predictions=False`` returns None and keeps the outputs only for a writer
that writes at the epoch's end. ``Callback`` and ``LambdaCallback`` import from the
callbacks and are called as Lightning's. ``enable_checkpointing`` adds Lightning's
default ModelCheckpoint, or (False) none, and then refuses one given, as Lightning's
Trainer does. ``ModelSummary``/``RichModelSummary`` list Lightning's layers at every
depth, replace the Trainer's own summary and refuse a depth Lightning refuses.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import engine_of
from test_ports import assert_same_weights, both, ported, run


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[str]:
    """A freshly generated default project (no logger); its engine's name."""
    with engine_of(tmp_path_factory.mktemp("writer"), "writer", ("module",)):
        yield "writer_exp.engine"


PROGRAM = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

written = []


class Writer(BasePredictionWriter):
    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ):
        written.append(("batch", prediction, list(batch_indices), batch_idx, dataloader_idx))

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        written.append(("epoch", predictions, batch_indices))


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(3, 2)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return self.layer(batch[0])


x = torch.randn(10, 3, generator=torch.Generator().manual_seed(1))
shuffled = DataLoader(TensorDataset(x), batch_size=3, sampler=[7, 2, 9, 0, 4, 1, 8, 3, 6, 5])
in_order = DataLoader(TensorDataset(x), batch_size=4)


class Batches:  # an iterable of batches, not a DataLoader: no batch sampler to read
    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


listed = Batches([(x[:4],), (x[4:],)])
trainer = pl.Trainer(
    accelerator="cpu",
    callbacks=[Writer(INTERVAL)],
    logger=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
returned = trainer.predict(Net(), dataloaders=LOADERS)
"""


def flat(value):
    """Tensors to lists, all the way down, so two sides compare with ==."""
    if isinstance(value, torch.Tensor):
        return [round(v, 6) for v in value.flatten().tolist()]
    if isinstance(value, list | tuple):
        return [flat(v) for v in value]
    return value


@pytest.mark.parametrize("interval", ["batch", "epoch", "batch_and_epoch"])
@pytest.mark.parametrize("loaders", ["shuffled", "[shuffled, in_order]", "[in_order, listed]"])
def test_a_prediction_writer_gets_what_lightnings_gets(engine, tmp_path, interval, loaders):
    source = PROGRAM.replace("INTERVAL", repr(interval)).replace("LOADERS", loaders)
    theirs, ours = both(source, engine, tmp_path)
    assert flat(ours["written"]) == flat(theirs["written"])
    assert flat(ours["returned"]) == flat(theirs["returned"])
    kinds = {entry[0] for entry in ours["written"]}
    assert kinds == {"batch_and_epoch": {"batch", "epoch"}}.get(interval, {interval})
    if loaders == "shuffled" and interval != "epoch":  # the dataset's, in the sampler's order
        indices = [entry[2] for entry in ours["written"] if entry[0] == "batch"]
        assert indices == [[7, 2, 9], [0, 4, 1], [8, 3, 6], [5]]


@pytest.mark.parametrize("interval", ["batch", "epoch", "batch_and_epoch"])
def test_return_predictions_false_returns_none_and_still_feeds_an_epoch_writer(
    engine, tmp_path, interval
):
    # Lightning keeps the outputs only for a writer that writes at the epoch's end.
    call = "trainer.predict(Net(), dataloaders=LOADERS)"
    source = PROGRAM.replace(call, "trainer.predict(Net(), LOADERS, return_predictions=False)")
    source = source.replace("INTERVAL", repr(interval)).replace("LOADERS", "shuffled")
    theirs, ours = both(source, engine, tmp_path)
    assert ours["returned"] is theirs["returned"] is None
    assert flat(ours["written"]) == flat(theirs["written"])
    epoch = [entry for entry in ours["written"] if entry[0] == "epoch"]
    assert [len(entry[1]) for entry in epoch] == ([] if interval == "batch" else [4])
    kept = ours["trainer"].predict_loop.outputs  # a batch writer needs none kept
    assert [len(outputs) for outputs in kept] == [0 if interval == "batch" else 4]


def test_a_loader_without_indices_warns_and_a_wrong_interval_is_refused(engine) -> None:
    writer = importlib.import_module(f"{engine}.prediction_writer")
    batches = [(torch.zeros(2, 3),)]
    with pytest.warns(UserWarning, match="Couldn't infer the batch indices .*`list`"):
        assert writer.recording(batches) is batches
    callbacks = importlib.import_module(f"{engine}.callbacks")
    assert callbacks.BasePredictionWriter is writer.BasePredictionWriter
    with pytest.raises(
        Exception, match="write_interval='step'.*'batch', 'epoch', 'batch_and_epoch'"
    ):
        callbacks.BasePredictionWriter("step")


# A module that trains, for the programs below (each adds its callbacks' import).
TRAINING = """
import os

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pytorch_lightning as pl


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
"""

BARS = (
    TRAINING
    + """
from pytorch_lightning.callbacks import TQDMProgressBar

refused = []
for case, (bars, enabled) in enumerate([(1, False), (2, True)]):  # the bar off; two bars
    try:
        pl.Trainer(enable_progress_bar=enabled, callbacks=[TQDMProgressBar()] * bars, logger=False)
    except Exception:
        refused.append(case)
bar = BAR
trainer = pl.Trainer(max_epochs=1, callbacks=[bar], logger=False, enable_model_summary=False)
trainer.fit(Net(), DataLoader(TensorDataset(torch.randn(8, 3)), batch_size=4))
"""
)


@pytest.mark.parametrize("bar", ["TQDMProgressBar()", "TQDMProgressBar(refresh_rate=0)"])
def test_a_progress_bar_callback_shows_or_hides_the_bar_as_lightnings(
    engine, tmp_path, capfd, bar
) -> None:
    source = BARS.replace("BAR", bar)
    shown = {}
    for side, program in (("lightning", source), ("engine", ported(source, engine))):
        namespace = run(program, tmp_path / side)
        out, err = capfd.readouterr()
        shown[side] = "Epoch 0" in out + err
        assert namespace["refused"] == [0, 1], side
        assert namespace["bar"].is_disabled == (bar.endswith("=0)")), side
    assert shown["engine"] == shown["lightning"] == (not bar.endswith("=0)"))


def test_a_rich_progress_bar_needs_no_rich_and_draws_the_same_bar(engine) -> None:
    callbacks = importlib.import_module(f"{engine}.callbacks")
    rich = callbacks.RichProgressBar(refresh_rate=0, theme=object())
    assert isinstance(rich, callbacks.TQDMProgressBar) and rich.is_disabled


LAMBDAS = (
    TRAINING
    + """
from pytorch_lightning.callbacks import Callback, LambdaCallback

calls = []


class Counting(Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        calls.append(("counting", trainer.current_epoch))


def on_batch(trainer, module, outputs, batch, batch_idx):
    calls.append(("batch", batch_idx, round(outputs["loss"].item(), 6)))


lambdas = LambdaCallback(
    on_train_batch_end=on_batch,
    on_train_epoch_end=lambda trainer, module: calls.append(("epoch", trainer.current_epoch)),
    on_fit_end=lambda trainer, module: calls.append(("fit_end", trainer.global_step)),
    on_validation_end=None,
)
trainer = pl.Trainer(
    max_epochs=2,
    callbacks=[lambdas, Counting()],
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
torch.manual_seed(0)
trainer.fit(Net(), DataLoader(TensorDataset(torch.randn(8, 3)), batch_size=4))
try:
    LambdaCallback(on_train_batch_ends=print)
except TypeError as error:
    refused = str(error)
"""
)


def test_a_lambda_callback_and_a_callback_subclass_port_as_lightnings(engine, tmp_path) -> None:
    # `from pytorch_lightning.callbacks import Callback, LambdaCallback` ports.
    theirs, ours = both(LAMBDAS, engine, tmp_path)
    assert len(ours["calls"]) == 2 * (2 + 2) + 1
    assert ours["calls"] == theirs["calls"]
    assert "on_train_batch_ends" in ours["refused"] and "on_train_batch_ends" in theirs["refused"]


def test_a_lambda_callback_takes_lightnings_hooks(engine) -> None:
    import inspect

    import pytorch_lightning as pl

    lightnings = list(inspect.signature(pl.callbacks.LambdaCallback.__init__).parameters)[1:]
    callbacks = importlib.import_module(f"{engine}.callbacks")
    made = callbacks.LambdaCallback(**dict.fromkeys(lightnings, print))
    assert all(getattr(made, name) is print for name in lightnings)
    assert sorted(importlib.import_module(f"{engine}.lambda_callback").CALLBACK_HOOKS) == sorted(
        lightnings
    )


CHECKPOINTING = (
    TRAINING
    + """
from pytorch_lightning.callbacks import ModelCheckpoint


def fit(folder, **options):
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        default_root_dir=folder,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )
    trainer.fit(Net(), DataLoader(TensorDataset(torch.randn(8, 3)), batch_size=4))
    written = sorted(f for _, _, files in os.walk(folder) for f in files if f.endswith(".ckpt"))
    return trainer.checkpoint_callback, written


default, default_written = fit("default")
best = os.path.basename(default.best_model_path)
off, off_written = fit("off", enable_checkpointing=False)
refused = []
for callback in (ModelCheckpoint(), ModelCheckpoint(dirpath="elsewhere")):
    try:
        pl.Trainer(enable_checkpointing=False, callbacks=[callback], logger=False)
    except Exception:
        refused.append(True)
"""
)


def test_enable_checkpointing_adds_or_refuses_a_model_checkpoint_as_lightnings(
    engine, tmp_path
) -> None:
    theirs, ours = both(CHECKPOINTING, engine, tmp_path)
    for side in (theirs, ours):
        assert type(side["default"]).__name__ == "ModelCheckpoint"
        assert side["best"] == "epoch=1-step=4.ckpt"
        assert side["off"] is None and side["off_written"] == []
        assert side["refused"] == [True, True]
    assert theirs["default_written"] == ["epoch=1-step=4.ckpt"]
    # The engine's ModelCheckpoint writes last.ckpt too by default (save_last=True).
    assert ours["default_written"] == ["epoch=1-step=4.ckpt", "last.ckpt"]


SUMMARIES = (
    TRAINING
    + """
from pytorch_lightning.callbacks import ModelSummary


class Nested(Net):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 3)))
        self.head = nn.Linear(3, 1)
        self.head.weight.requires_grad_(False)


def fit(summary, **options):
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, callbacks=[summary], **options
    )
    trainer.fit(Nested(), DataLoader(TensorDataset(torch.randn(4, 3)), batch_size=4))


refused = []
for depth in (-2, 1.5):
    try:
        fit(ModelSummary(max_depth=depth))
    except ValueError:
        refused.append(depth)
"""
)


def _listed(table: str) -> list[tuple[str, str, str]]:
    """The (name, type, params) rows of an engine summary table."""
    rows = re.findall(r"^  \d+ +(\S+) +(\S+) +(\S+(?: [KMB])?)$", table, flags=re.MULTILINE)
    return [tuple(row) for row in rows]


@pytest.mark.parametrize("depth", [0, 1, 2, 3, -1])
def test_a_model_summary_lists_the_layers_lightnings_lists(engine, depth) -> None:
    from pytorch_lightning.utilities.model_summary import ModelSummary as Theirs

    progress = importlib.import_module(f"{engine}.progress")
    model = run(SUMMARIES, Path(tempfile.mkdtemp()) / "nested")["Nested"]()
    theirs = Theirs(model, max_depth=depth)
    expected = zip(theirs.layer_names, theirs.layer_types, theirs.param_nums, strict=True)
    listed = _listed(progress.summarize(model, depth, max_rows=None))
    assert listed == [(name, kind, progress._human(count)) for name, kind, count in expected]
    assert len(listed) == {0: 0, 1: 3, 2: 6, 3: 7, -1: 7}[depth]


def test_a_model_summary_callback_replaces_the_default_and_refuses_as_lightnings(
    engine, tmp_path, capsys, monkeypatch
) -> None:
    theirs, ours = both(SUMMARIES, engine, tmp_path)
    assert ours["refused"] == theirs["refused"] == [-2, 1.5]
    namespace = run(ported(SUMMARIES, engine), tmp_path / "shown")
    capsys.readouterr()
    callbacks = importlib.import_module(f"{engine}.callbacks")
    monkeypatch.chdir(tmp_path)  # where the fits write
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        namespace["fit"](callbacks.ModelSummary(max_depth=2))  # instead of the default
        # Lightning's needs rich, which its tests here don't have: the engine's alone.
        namespace["fit"](callbacks.RichModelSummary(max_depth=0))  # none at all
        namespace["fit"](callbacks.ModelSummary(), enable_model_summary=False)  # still shown
    tables = printed.getvalue().split("total params")
    assert [len(_listed(table)) for table in tables] == [6, 3, 0]


TIMER = (
    TRAINING
    + """
import time
from datetime import timedelta

from pytorch_lightning.callbacks import Timer

clock = [0.0]  # the time: each training step takes one second of it, nothing else


class Slow(Net):
    def training_step(self, batch, batch_idx):
        clock[0] += 1.0
        return super().training_step(batch, batch_idx)


def fit(timer, epochs=3):
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    clock[0] = 0.0
    trainer.fit(Slow(), DataLoader(TensorDataset(torch.randn(8, 3)), batch_size=2))
    return trainer.global_step, timer.time_elapsed(), timer.time_remaining(), timer.state_dict()


real, time.monotonic = time.monotonic, lambda: clock[0]
try:
    by_step = fit(Timer(duration="00:00:00:05"))
    by_epoch = fit(Timer(duration={"seconds": 5}, interval="epoch"))
    spent = Timer(duration=timedelta(seconds=2))
    spent.load_state_dict({"time_elapsed": {"train": 3.0}})  # as a resumed run's
    resumed = fit(spent)
    unlimited = fit(Timer())
finally:
    time.monotonic = real

refused = []
for options in ({"duration": "12:00:00"}, {"duration": "1:2:3:4"}, {"interval": "batch"}):
    try:
        Timer(**options)
    except Exception:
        refused.append(options)
try:
    Timer().time_elapsed("training")
except ValueError:
    refused.append("training")
"""
)


def test_a_timer_stops_training_and_times_it_as_lightnings(engine, tmp_path) -> None:
    theirs, ours = both(TIMER, engine, tmp_path)
    for name in ("by_step", "by_epoch", "resumed", "unlimited"):
        assert ours[name] == theirs[name], name
    # 4 steps an epoch: stopped after the step, or the epoch, that reached 5 s.
    assert [theirs[name][0] for name in ("by_step", "by_epoch", "resumed", "unlimited")] == [
        5,
        8,
        0,
        12,
    ]
    assert theirs["resumed"][1] == 3.0  # the resumed run's time counts
    assert ours["refused"] == theirs["refused"] and len(theirs["refused"]) == 4


ACCUMULATION = (
    TRAINING
    + """
from pytorch_lightning.callbacks import GradientAccumulationScheduler, LambdaCallback

x = torch.randn(12, 3, generator=torch.Generator().manual_seed(3))  # 6 batches an epoch


def fit(callbacks, manual=False, **options):
    torch.manual_seed(0)
    model = Net()
    model.automatic_optimization = not manual
    seen = []
    noted = LambdaCallback(on_train_epoch_end=lambda t, m: seen.append(t.accumulate_grad_batches))
    trainer = pl.Trainer(
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[*callbacks, noted],
        **options,
    )
    trainer.fit(model, DataLoader(TensorDataset(x), batch_size=2))
    return trainer.global_step, seen, {k: v.clone() for k, v in model.state_dict().items()}


step, factors, trained = fit([GradientAccumulationScheduler({1: 2, 2: 4})])
refused = []
for options in ({"accumulate_grad_batches": 2}, {"manual": True}):
    try:
        fit([GradientAccumulationScheduler({1: 2})], **options)
    except Exception:
        refused.append(options)
for scheduling in ({}, {-1: 2}, {0: 0}, {1: 1.5}):
    try:
        GradientAccumulationScheduler(scheduling)
    except Exception:
        refused.append(scheduling)
"""
)


def test_a_gradient_accumulation_schedule_trains_as_lightnings(engine, tmp_path) -> None:
    theirs, ours = both(ACCUMULATION, engine, tmp_path)
    # 6 batches an epoch: 6 steps, then windows of 2 (3 steps), then of 4 and a short 2.
    assert ours["step"] == theirs["step"] == 11
    assert ours["factors"] == theirs["factors"] == [1, 2, 4]
    assert_same_weights(ours["trained"], theirs["trained"])
    assert ours["refused"] == theirs["refused"] and len(theirs["refused"]) == 6


def test_a_gradient_accumulation_schedule_resumes_mid_epoch_exactly(engine, tmp_path) -> None:
    # Stopped in the middle of epoch 1 (6 steps, then 2 windows of 2) and resumed:
    # the resumed run accumulates epoch 1's 2 from its first batch on.
    namespace = run(ported(ACCUMULATION.split("step, factors")[0], engine), tmp_path / "setup")
    callbacks = importlib.import_module(f"{engine}.callbacks")
    sampling = importlib.import_module(f"{engine}.sampling")
    dataset = torch.utils.data.TensorDataset(namespace["x"])

    def fit(root, **options):
        torch.manual_seed(0)
        model = namespace["Net"]()
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=2, sampler=sampling.ResumableSampler(12, shuffle=True, seed=0)
        )
        checkpoint = callbacks.ModelCheckpoint(dirpath=root, save_last=True)
        schedule = callbacks.GradientAccumulationScheduler({1: 2, 2: 4})
        trainer = namespace["pl"].Trainer(
            max_epochs=3,
            logger=False,
            default_root_dir=root,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[schedule, checkpoint],
            **{k: v for k, v in options.items() if k != "ckpt_path"},
        )
        trainer.fit(model, loader, ckpt_path=options.get("ckpt_path"))
        return trainer.global_step, model.layer.weight.detach().clone()

    with contextlib.redirect_stdout(io.StringIO()):
        straight = fit(tmp_path / "straight")
        assert fit(tmp_path / "stopped", max_steps=8)[0] == 8
        resumed = fit(tmp_path / "stopped", ckpt_path=tmp_path / "stopped" / "last.ckpt")
    assert resumed[0] == straight[0] == 11
    assert torch.equal(resumed[1], straight[1])


FINETUNING = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pytorch_lightning as pl
from pytorch_lightning.callbacks import (
    BackboneFinetuning,
    BaseFinetuning,
    LambdaCallback,
    ModelCheckpoint,
)

x = torch.randn(16, 4, generator=torch.Generator().manual_seed(3))  # 4 batches an epoch
y = torch.randn(16, 2, generator=torch.Generator().manual_seed(4))


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(
            nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), nn.LayerNorm(8)
        )
        self.head = nn.Linear(8, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.head(self.backbone(x)), y)

    def configure_optimizers(self):
        trainable = filter(lambda p: p.requires_grad, self.parameters())
        return torch.optim.SGD(trainable, lr=0.1, momentum=0.9)


class FirstLayerLater(BaseFinetuning):  # freezes only the first layer, and BatchNorm
    def freeze_before_training(self, module):
        self.freeze([module.backbone[0], module.backbone[1]], train_bn=False)

    def finetune_function(self, module, epoch, optimizer):
        if epoch == 1:
            self.unfreeze_and_add_param_group(module.backbone[:2], optimizer, train_bn=False)


def loader():
    return DataLoader(TensorDataset(x, y), batch_size=4)


def fit(finetuning, root, epochs=5, ckpt_path=None, **options):
    torch.manual_seed(0)
    model = Net()
    seen = []

    def note(trainer, module):
        groups = trainer.optimizers[0].param_groups
        trains = [p.requires_grad for p in module.parameters()]
        tracks = module.backbone[1].track_running_stats
        seen.append(([g["lr"] for g in groups], [len(g["params"]) for g in groups], trains, tracks))

    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[
            finetuning,
            LambdaCallback(on_train_epoch_end=note),
            ModelCheckpoint(root, save_last=True),
        ],
        **options,
    )
    trainer.fit(model, loader(), ckpt_path=ckpt_path)
    return seen, {k: v.clone() for k, v in model.state_dict().items()}, trainer.global_step


CASES = {
    "backbone": lambda: BackboneFinetuning(2, lambda epoch: 1.5),
    "aligned": lambda: BackboneFinetuning(
        1, lambda epoch: 3.0, backbone_initial_lr=0.02, train_bn=False
    ),
    "subclass": FirstLayerLater,
}
runs = {name: fit(make(), f"runs/{name}") for name, make in CASES.items()}

# Stopped after the backbone's unfreezing (epoch 2's end), resumed to 5 epochs.
fit(BackboneFinetuning(2, lambda epoch: 1.5), "stopped", epochs=3)
resumed = fit(BackboneFinetuning(2, lambda epoch: 1.5), "stopped", ckpt_path="stopped/last.ckpt")

refused = []
class NoBackbone(Net):
    def __init__(self):
        super().__init__()
        self.features = self.backbone
        del self.backbone

try:
    pl.Trainer(max_epochs=1, logger=False, callbacks=[BackboneFinetuning(0)]).fit(
        NoBackbone(), DataLoader(TensorDataset(x, y), batch_size=4)
    )
except Exception as error:
    refused.append(type(error).__name__)
"""


def test_finetuning_callbacks_unfreeze_and_train_as_lightnings(engine, tmp_path) -> None:
    theirs, ours = both(FINETUNING, engine, tmp_path)
    for name in ("backbone", "aligned", "subclass"):
        (seen, trained, steps), (their_seen, their_trained, their_steps) = (
            ours["runs"][name],
            theirs["runs"][name],
        )
        assert steps == their_steps == 20
        assert len(seen) == len(their_seen) == 5
        for epoch, (mine, lightning) in enumerate(zip(seen, their_seen, strict=True)):
            lrs, sizes, trains, tracks = mine
            assert lrs == pytest.approx(lightning[0], rel=1e-12), (name, epoch)
            assert (sizes, trains, tracks) == lightning[1:], (name, epoch)
        assert_same_weights(trained, their_trained)
    # The groups each case added: the backbone's (from epoch 2; 1), the first two layers'.
    assert [len(s[0]) for s in ours["runs"]["backbone"][0]] == [1, 1, 2, 2, 2]
    lrs = [s[0][-1] for s in ours["runs"]["aligned"][0]]
    assert lrs[1:] == pytest.approx([0.02, 0.06, 0.1, 0.1])  # x3 a epoch, up to the head's
    assert ours["refused"] and theirs["refused"]  # no backbone attribute


def test_a_finetuning_run_resumes_as_the_unbroken_one_lightning_refreezes(engine, tmp_path) -> None:
    theirs, ours = both(FINETUNING, engine, tmp_path)
    straight, resumed = ours["runs"]["backbone"], ours["resumed"]
    assert resumed[2] == straight[2] == 20
    assert resumed[0] == straight[0][3:]  # the epochs after the stop: rates, groups, flags
    for name, value in straight[1].items():
        assert torch.equal(resumed[1][name], value), name
    # Lightning 2.6.6 (its issue 21901): the backbone comes back frozen and stops learning.
    their_straight, their_resumed = theirs["runs"]["backbone"], theirs["resumed"]
    first_layer = slice(0, 2)  # backbone.0's weight and bias
    assert all(their_straight[0][3][2]) and not any(their_resumed[0][0][2][first_layer])
    weight = "backbone.0.weight"
    assert not torch.equal(their_resumed[1][weight], their_straight[1][weight])

    # Stopped in the middle of epoch 3 (step 14), on a loader that can skip to a batch.
    mid = _stopped_and_resumed(ours, engine, tmp_path / "mid", ours["CASES"]["backbone"], 14)
    assert mid[1][0] == mid[0][0][3:] == straight[0][3:]
    for name, value in straight[1].items():
        assert torch.equal(mid[1][1][name], value), name


def _stopped_and_resumed(namespace: dict, engine: str, folder: Path, make, step: int) -> tuple:
    """The program's ``fit(make(), ...)`` unbroken, and stopped at ``step`` then resumed,
    on the program's data in a loader that can skip to a batch; the two results."""
    sampling = importlib.import_module(f"{engine}.sampling")
    x, y = namespace["x"], namespace["y"]
    dataset = torch.utils.data.TensorDataset(x, y)
    namespace["loader"] = lambda: torch.utils.data.DataLoader(
        dataset, batch_size=4, sampler=sampling.ResumableSampler(len(x), shuffle=False)
    )
    fit = namespace["fit"]
    folder.mkdir()
    with contextlib.chdir(folder), contextlib.redirect_stdout(io.StringIO()):
        straight = fit(make(), "straight")
        fit(make(), "stopped", max_steps=step)
        return straight, fit(make(), "stopped", ckpt_path="stopped/last.ckpt")


AVERAGING = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pytorch_lightning as pl
from pytorch_lightning.callbacks import (
    EMAWeightAveraging,
    LambdaCallback,
    ModelCheckpoint,
    WeightAveraging,
)

x = torch.randn(24, 4, generator=torch.Generator().manual_seed(3))  # 6 batches an epoch
y = torch.randn(24, 2, generator=torch.Generator().manual_seed(4))


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.layers(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.layers(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class FromEpochOne(WeightAveraging):  # an equal-weight average of the epochs' ends
    def should_update(self, step_idx=None, epoch_idx=None):
        return epoch_idx is not None and epoch_idx >= 1


def loader():
    return DataLoader(TensorDataset(x, y), batch_size=4)


def fit(averaging, root, epochs=3, ckpt_path=None, **options):
    torch.manual_seed(0)
    model = Net()
    seen = []
    note = LambdaCallback(
        on_validation_end=lambda t, m: seen.append(float(t.callback_metrics["val_loss"]))
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[averaging, note, ModelCheckpoint(root, save_last=True)],
        **options,
    )
    trainer.fit(model, loader(), loader(), ckpt_path=ckpt_path)
    saved = torch.load(f"{root}/last.ckpt", weights_only=True)
    kept = {k: saved[k] for k in ("state_dict", "current_model_state", "averaging_state")}
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    return seen, trained, kept, trainer.global_step


CASES = {
    "ema": lambda: EMAWeightAveraging(decay=0.9),
    "ema_later": lambda: EMAWeightAveraging(
        decay=0.5, update_every_n_steps=2, update_starting_at_step=3, use_buffers=False
    ),
    "epochs": FromEpochOne,
}
runs = {name: fit(make(), f"runs/{name}") for name, make in CASES.items()}
"""


def _same_tensors(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    for name, value in ours.items():
        torch.testing.assert_close(value, theirs[name], rtol=0, atol=1e-6, msg=name)


def test_weight_averaging_validates_saves_and_ends_with_the_average_as_lightnings(
    engine, tmp_path
) -> None:
    theirs, ours = both(AVERAGING, engine, tmp_path)
    for name in ("ema", "ema_later", "epochs"):
        (seen, trained, kept, steps), (their_seen, their_trained, their_kept, their_steps) = (
            ours["runs"][name],
            theirs["runs"][name],
        )
        assert steps == their_steps == 18
        assert seen == pytest.approx(their_seen, abs=1e-6), name  # validated on the average
        assert len(seen) == 4  # the sanity check, then 3 epochs
        assert_same_weights(trained, their_trained)
        for part in ("state_dict", "current_model_state", "averaging_state"):
            _same_tensors(kept[part], their_kept[part])
        # The module ends with the average: the last checkpoint's average, not its weights.
        _same_tensors(trained, kept["state_dict"])
        assert any(not torch.equal(v, kept["current_model_state"][k]) for k, v in trained.items())
    assert ours["runs"]["epochs"][2]["averaging_state"]["n_averaged"] == 2  # epochs 1 and 2
    assert ours["runs"]["ema_later"][2]["averaging_state"]["n_averaged"] == 7  # steps 4, 6, .., 16


def test_weight_averaging_resumes_mid_epoch_exactly(engine, tmp_path) -> None:
    namespace = run(ported(AVERAGING.split("runs = ")[0], engine), tmp_path / "setup")
    ema = namespace["CASES"]["ema"]
    straight, resumed = _stopped_and_resumed(namespace, engine, tmp_path / "mid", ema, 8)
    assert resumed[3] == straight[3] == 18
    assert resumed[0] == straight[0][-2:]  # epochs 1 and 2 validated on the same average
    for name, value in straight[1].items():
        assert torch.equal(resumed[1][name], value), name
    for part in ("state_dict", "current_model_state", "averaging_state"):
        for name, value in straight[2][part].items():
            assert torch.equal(resumed[2][part][name], value), (part, name)
