"""Lightning's learning-rate finder, ported by the import change alone, against Lightning.

The same program runs under pytorch_lightning 2.6.6 and in a generated project:
``Tuner(trainer).lr_find(model, ...)`` records the same learning rates and
smoothed losses, stops early at the same step when the loss diverges, and puts
the weights and the loop back, so the ``fit`` that follows trains the same
weights from the same rate. The suggestion of a linear sweep is Lightning's; of
an exponential one, Lightning's rule on ``log10`` of the rates (the engine's one
deliberate difference: Lightning takes the slope against the rates themselves,
its issue 21141). It goes into the module's hyperparameters (or an attribute, or
a DataModule's), as Lightning's. The ``LearningRateFinder`` callback does the
same inside a fit, which then goes on with the suggested rate. The finder writes
nothing (Lightning: a temporary checkpoint it deletes), and refuses what
Lightning's refuses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from conftest import engine_of
from test_ports import both

pl = pytest.importorskip("pytorch_lightning")


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[str]:
    """A freshly generated default project (no logger); its engine's name."""
    with engine_of(tmp_path_factory.mktemp("tuner"), "tuner", ("module",)):
        yield "tuner_exp.engine"


MODEL = """
import os

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pytorch_lightning as pl
from pytorch_lightning.callbacks import LearningRateFinder
from pytorch_lightning.tuner import Tuner

generator = torch.Generator().manual_seed(0)
x = torch.randn(256, 8, generator=generator)
y = (x.sum(1, keepdim=True) > 0).float()
hooks = []


class Model(pl.LightningModule):
    def __init__(self, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.binary_cross_entropy_with_logits(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.binary_cross_entropy_with_logits(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)

    def on_train_start(self):
        hooks.append("on_train_start")

    def on_fit_start(self):
        hooks.append("on_fit_start")

    def teardown(self, stage):
        hooks.append("teardown")


def loader():
    return DataLoader(TensorDataset(x, y), batch_size=16)


model = Model()
"""

TUNER = """
before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
trainer = pl.Trainer(
    max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False, **SETTINGS
)
finder = Tuner(trainer).lr_find(model, loader(), loader(), **OPTIONS)
results, suggestion, optimal = finder.results, finder.suggestion(), finder._optimal_idx
found_lr, found_hooks, written = model.hparams.lr, list(hooks), sorted(os.listdir("."))
restored = all(torch.equal(before[name], t) for name, t in model.state_dict().items())
step_after, epoch_after = trainer.global_step, trainer.current_epoch
if FORCED_LR is not None:  # (the exponential sweeps: both fits from the same rate)
    model.hparams.lr = FORCED_LR
import matplotlib

matplotlib.use("Agg")
axes = finder.plot(suggest=True).axes[0]
plotted = [(line.get_xdata().tolist(), line.get_ydata().tolist()) for line in axes.lines]
scale = axes.get_xscale()
trainer.fit(model, loader())
fit_lr = trainer.optimizers[0].param_groups[0]["lr"]
trained = {name: tensor.clone() for name, tensor in model.state_dict().items()}
"""

# (Trainer settings, lr_find options): the default exponential sweep; a linear one
# that diverges and stops early; accumulation (a rate per window).
CASES = {
    "exponential": ({}, {"num_training": 40}),
    "linear-diverging": ({}, {"num_training": 40, "mode": "linear", "max_lr": 8.0}),
    "accumulating": ({"accumulate_grad_batches": 2}, {"num_training": 20, "min_lr": 1e-5}),
}


def program(settings: dict, options: dict, forced_lr: float | None = None) -> str:
    source = (MODEL + TUNER).replace("FORCED_LR", repr(forced_lr))
    return source.replace("**SETTINGS", f"**{settings!r}").replace("**OPTIONS", f"**{options!r}")


def on_log_rates(results: dict) -> int | None:
    """Lightning's suggestion rule, slopes against ``log10(lr)``: the index it picks."""
    finder = pl.tuner.lr_finder._LRFinder("linear", 1e-8, 1.0, len(results["lr"]))
    finder.results = {"lr": [math.log10(lr) for lr in results["lr"]], "loss": results["loss"]}
    finder.suggestion()
    return finder._optimal_idx


@pytest.mark.parametrize("case", CASES)
def test_lr_find_records_suggests_and_restores_as_lightnings(engine, tmp_path, case) -> None:
    theirs, _ = both(program(*CASES[case]), engine, tmp_path / "first")
    exponential = CASES[case][1].get("mode", "exponential") == "exponential"
    expected = on_log_rates(theirs["results"]) if exponential else theirs["optimal"]
    # Both fits after the sweep from the engine's rate (Lightning's own, when linear).
    forced = theirs["results"]["lr"][expected] if exponential else None
    theirs, ours = both(program(*CASES[case], forced), engine, tmp_path)
    assert len(ours["results"]["lr"]) == len(theirs["results"]["lr"])
    assert ours["results"]["lr"] == pytest.approx(theirs["results"]["lr"], rel=1e-9)
    assert ours["results"]["loss"] == pytest.approx(theirs["results"]["loss"], abs=1e-6)
    assert ours["optimal"] == expected is not None
    if exponential:  # Lightning's own pick is among the tiny rates, ours where the loss falls
        assert theirs["optimal"] < expected
    suggested = theirs["results"]["lr"][expected]
    assert ours["suggestion"] == ours["found_lr"] == pytest.approx(suggested, rel=1e-9)
    assert ours["fit_lr"] == theirs["fit_lr"] == pytest.approx(suggested, rel=1e-9)
    # The sweep is undone: weights, step and epoch are where they were, nothing written.
    assert ours["restored"] and theirs["restored"]
    assert ours["step_after"] == theirs["step_after"] == 0
    assert ours["epoch_after"] == theirs["epoch_after"] == 0
    assert ours["written"] == theirs["written"] == []
    # The plot: the same curve, and the suggestion as a point on it.
    assert ours["scale"] == theirs["scale"] == ("log" if exponential else "linear")
    (x, y), point = ours["plotted"][0], ours["plotted"][1]
    assert x == pytest.approx(theirs["plotted"][0][0], rel=1e-9)
    assert y == pytest.approx(theirs["plotted"][0][1], abs=1e-6)
    assert point == ([pytest.approx(suggested)], [pytest.approx(y[expected])])
    # The module's own hooks ran in the sweep's fit as in Lightning's (no on_fit_start).
    assert ours["found_hooks"] == theirs["found_hooks"] == ["on_train_start", "teardown"]
    # The fit after it trains with the suggested rate, to the same weights.
    for name, tensor in ours["trained"].items():
        assert torch.allclose(tensor, theirs["trained"][name], atol=1e-6), name
    if case == "linear-diverging":
        assert len(theirs["results"]["lr"]) < 40  # it did stop early


IN_A_FIT = """
finder = LearningRateFinder(num_training_steps=30, mode="linear", max_lr=0.5)
trainer = pl.Trainer(
    max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
    callbacks=[finder],
)
trainer.fit(model, loader())
results, found_lr = finder.optimal_lr.results, model.hparams.lr
used_lr = trainer.optimizers[0].param_groups[0]["lr"]
steps = trainer.global_step
trained = {name: tensor.clone() for name, tensor in model.state_dict().items()}
"""


def test_the_callback_finds_the_rate_and_the_fit_goes_on_with_it_as_lightnings(
    engine, tmp_path
) -> None:
    theirs, ours = both(MODEL + IN_A_FIT, engine, tmp_path)
    assert len(ours["results"]["lr"]) == len(theirs["results"]["lr"]) == 30
    assert ours["results"]["loss"] == pytest.approx(theirs["results"]["loss"], abs=1e-6)
    assert ours["found_lr"] == ours["used_lr"] == pytest.approx(theirs["used_lr"], rel=1e-9)
    assert theirs["found_lr"] == theirs["used_lr"] != 0.01
    # The sweep's steps don't count: the fit trains its own 2 epochs of 16 batches.
    assert ours["steps"] == theirs["steps"] == 32
    assert ours["hooks"] == theirs["hooks"]
    for name, tensor in ours["trained"].items():
        assert torch.allclose(tensor, theirs["trained"][name], atol=1e-6), name


WHERE = """
class Data(pl.LightningDataModule):
    def __init__(self):
        super().__init__()
        self.lr = 0.5  # a DataModule's attribute of the name is set too, as Lightning's

    def train_dataloader(self):
        return loader()


class Plain(Model):
    def __init__(self):
        super().__init__()
        self.learning_rate = 0.01  # an attribute, not a hyperparameter

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.learning_rate)

    def train_dataloader(self):  # the module's own loader, when none is passed
        return loader()


plain, data = Plain(), Data()
trainer = pl.Trainer(max_epochs=3, logger=False, enable_progress_bar=False)
finder = Tuner(trainer).lr_find(plain, num_training=30, mode="linear", attr_name="learning_rate")
as_attribute = (finder.suggestion(), plain.learning_rate, plain.hparams.lr)
trainer = pl.Trainer(max_epochs=3, logger=False, enable_progress_bar=False)
finder = Tuner(trainer).lr_find(
    model, datamodule=data, num_training=30, mode="linear", attr_name="lr"
)
in_datamodule = (finder.suggestion(), model.hparams.lr, data.lr)
"""


def test_the_suggestion_goes_where_lightning_puts_it(engine, tmp_path) -> None:
    theirs, ours = both(MODEL + WHERE, engine, tmp_path)
    for name in ("as_attribute", "in_datamodule"):
        assert ours[name] == pytest.approx(theirs[name], rel=1e-9), name
    suggested, attribute, hparam = theirs["as_attribute"]
    assert suggested == attribute != hparam == 0.01  # the attribute named, not hparams.lr
    assert len(set(theirs["in_datamodule"])) == 1  # hparams.lr and the DataModule's lr


REFUSALS = """
outcomes = {}


def attempt(name, call):
    try:
        outcomes[name] = ("returned", call())
    except Exception as error:
        outcomes[name] = (type(error).__name__, str(error))


def tuner(**options):
    return Tuner(pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, **options))


class NoRate(Model):
    def __init__(self):
        super().__init__()
        del self.hparams["lr"]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Two(Model):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def configure_optimizers(self):
        first, last = self.net[0].parameters(), self.net[2].parameters()
        return [torch.optim.SGD(first), torch.optim.SGD(last)]


attempt("method", lambda: tuner().lr_find(Model(), loader(), method="validate"))
attempt("dataloaders", lambda: tuner().lr_find(Model(), loader(), dataloaders=loader()))
attempt("twice", lambda: tuner(callbacks=[LearningRateFinder()]).lr_find(Model(), loader()))
attempt("mode", lambda: tuner().lr_find(Model(), loader(), mode="cosine"))
attempt("no rate", lambda: tuner().lr_find(NoRate(), loader()))
attempt("no such attribute", lambda: tuner().lr_find(Model(), loader(), attr_name="step_size"))
attempt("two optimizers", lambda: tuner().lr_find(Two(), loader()))
attempt("fast_dev_run", lambda: tuner(fast_dev_run=True).lr_find(Model(), loader()))
"""

# Lightning's MisconfigurationException is the engine's UsageError (one line, exit 1).
SAME_TYPE = {"MisconfigurationException": "UsageError"}


def test_lr_find_refuses_what_lightnings_refuses(engine, tmp_path) -> None:
    theirs, ours = both(MODEL + REFUSALS, engine, tmp_path)
    assert ours["outcomes"].keys() == theirs["outcomes"].keys()
    for name, (kind, message) in theirs["outcomes"].items():
        our_kind, our_message = ours["outcomes"][name]
        assert our_kind == SAME_TYPE.get(kind, kind), name
        if name == "two optimizers":  # the same refusal, in the engine's words
            assert "returned 2" in message and "returned 2 optimizers" in our_message
        elif kind == "returned":
            assert our_message == message, name
        else:  # Lightning's words (its "callback.Please" gets its space here)
            assert our_message.replace(" ", "") == message.replace(" ", ""), name
    assert theirs["outcomes"]["fast_dev_run"] == ("returned", None)


NON_FINITE = """
class Exploding(Model):
    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y * 100)


exploding = Exploding()
before = {name: tensor.clone() for name, tensor in exploding.state_dict().items()}
trainer = pl.Trainer(max_epochs=4, logger=False, enable_progress_bar=False)
finder = Tuner(trainer).lr_find(
    exploding, loader(), num_training=60, max_lr=1e8, early_stop_threshold=None
)
results, suggestion = finder.results, finder.suggestion()
restored = all(torch.equal(before[name], t) for name, t in exploding.state_dict().items())
"""


def test_a_non_finite_loss_ends_the_sweep_with_lightnings_suggestion(engine, tmp_path) -> None:
    """Lightning goes on to num_training recording nan; the engine's loop stops at a
    non-finite loss (before applying it), so the sweep ends there. The suggestion leaves
    non-finite losses out on both sides."""
    theirs, ours = both(MODEL + NON_FINITE, engine, tmp_path)
    finite = [loss for loss in theirs["results"]["loss"] if math.isfinite(loss)]
    assert len(theirs["results"]["loss"]) == 60 > len(finite) + 1
    assert ours["results"]["loss"][:-1] == pytest.approx(finite, rel=1e-6)
    assert math.isnan(ours["results"]["loss"][-1])
    assert ours["results"]["lr"] == pytest.approx(theirs["results"]["lr"][: len(finite) + 1])
    expected = on_log_rates(theirs["results"])  # (non-finite losses left out, as Lightning)
    assert ours["suggestion"] == pytest.approx(theirs["results"]["lr"][expected], rel=1e-9)
    assert ours["restored"] and theirs["restored"]
