"""``self.log`` with torchmetrics objects: a Lightning module ported by one import.

The same source — a classifier logging ``MulticlassAccuracy``,
``MeanSquaredError`` and a ``MetricCollection`` next to plain tensors — runs
under pytorch_lightning 2.6.6 and in a generated project, with only its
``LightningModule`` import changed; the logged values match to 1e-6. A second
test holds the engine's rules for *where* ``self.log`` may be called (and with
which ``on_step``/``on_epoch``) to Lightning's, hook by hook, by logging from
every hook of both. torchmetrics and pytorch-lightning are dev dependencies of
this repository only: the generated project recognises metric objects by
what they do.
"""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from conftest import ROOT, make_project, project_env
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")
pytest.importorskip("torchmetrics")

from lightning_oracle import MODULE_HOOKS  # noqa: E402 (needs pytorch_lightning)

PORTED = """
{import_line}
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MeanSquaredError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


class LitClassifier(LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
        self.train_acc = MulticlassAccuracy(num_classes=3, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=3, average="micro")
        self.val_mse = MeanSquaredError()
        self.val_scores = MetricCollection(
            {{"macro_acc": MulticlassAccuracy(3, average="macro"), "f1": MulticlassF1Score(3)}},
            prefix="val_",
        )
        self.test_acc = MulticlassAccuracy(num_classes=3, average="micro")
        self.seen_at_epoch_end = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.train_acc(logits, y)
        self.log("train_acc", self.train_acc, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train_loss", loss, on_epoch=True)
        self.log("max_logit", logits.max(), on_step=False, on_epoch=True, reduce_fx="max")
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.val_acc.update(logits, y)
        self.log("val_acc", self.val_acc, prog_bar=True)
        self.val_scores(logits, y)
        self.log_dict(self.val_scores)
        self.val_mse(logits.softmax(-1), F.one_hot(y, 3).float())
        self.log("val_mse", self.val_mse, on_step=True)
        self.log("val_loss", F.cross_entropy(logits, y), batch_size=len(y))

    def on_validation_epoch_end(self):
        metrics = self.trainer.callback_metrics  # this epoch's values already
        self.seen_at_epoch_end.append(
            {{name: float(value) for name, value in metrics.items() if name.startswith("val_")}}
        )

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.test_acc(self(x), y)
        self.log("test_acc", self.test_acc)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.3)
"""
LIGHTNING_IMPORT = "from pytorch_lightning import LightningModule"
ENGINE_IMPORT = "from port_exp.engine.module import Module as LightningModule"
EPOCHS, LOGGED_EVERY = 2, 1


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A freshly generated project's engine, imported from its src/."""
    project = make_project(
        tmp_path_factory.mktemp("port") / "port-exp", logger="none", callbacks=[]
    ).path
    sys.path.insert(0, str(project / "src"))
    try:
        yield (
            importlib.import_module("port_exp.engine.module"),
            importlib.import_module("port_exp.engine.trainer"),
            importlib.import_module("port_exp.engine.sampling"),
            importlib.import_module("port_exp.engine.metrics"),
        )
    finally:
        sys.path.remove(str(project / "src"))


def ported(import_line: str) -> type:
    """The Lightning module's class, compiled with ``import_line`` as its only difference."""
    namespace: dict[str, Any] = {}
    exec(compile(PORTED.format(import_line=import_line), "ported.py", "exec"), namespace)
    return namespace["LitClassifier"]


def loaders(sampling) -> tuple[DataLoader, DataLoader]:
    """38 training samples in batches of 8 (a short last one), 21 for validation and test."""
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(59, 6, generator=generator), torch.randint(3, (59,), generator=generator)
    train = TensorDataset(x[:38], y[:38])
    # The generated project's shuffling sampler; Lightning calls its set_epoch too.
    sampler = sampling.ResumableSampler(38, shuffle=True, seed=3)
    return DataLoader(train, 8, sampler=sampler), DataLoader(TensorDataset(x[38:], y[38:]), 8)


class Steps:
    """Collects what reaches the loggers, as {(step, name): value}; the same for either side."""

    def __init__(self) -> None:
        self.logged: dict[tuple[int, str], float] = {}

    def add(self, metrics: dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            if name != "epoch":
                self.logged[(step, name)] = float(value)


def run_lightning(sampling, tmp_path: Path) -> tuple[Any, dict, dict, dict]:
    from pytorch_lightning.loggers import Logger

    steps = Steps()

    class Recording(Logger):
        name, version = "recording", 0

        def log_metrics(self, metrics, step=None) -> None:
            steps.add(metrics, step)

        def log_hyperparams(self, *args, **kwargs) -> None:
            pass

    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=EPOCHS,
        log_every_n_steps=LOGGED_EVERY,
        logger=Recording(),
        default_root_dir=str(tmp_path / "lightning"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    train, val = loaders(sampling)
    module = ported(LIGHTNING_IMPORT)()
    with _quiet():
        trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
        fitted = _floats(trainer.callback_metrics)
        logged = dict(steps.logged)  # what fit logged (the engine's test gets no logger)
        trainer.test(module, dataloaders=val, verbose=False)
    trainer.seen_at_epoch_end = module.seen_at_epoch_end
    return trainer, logged, fitted, _floats(trainer.callback_metrics)


def run_engine(engine, tmp_path: Path) -> tuple[Any, dict, dict, dict]:
    module_lib, trainer_lib, sampling, _ = engine
    steps = Steps()

    class Recording:
        def log_metrics(self, metrics, step) -> None:
            steps.add(metrics, step)

        def log_hyperparams(self, params) -> None:
            pass

        def finalize(self, status) -> None:
            pass

    class AddLogger:  # the project was made with logger=none: give it one to watch
        def on_fit_start(self, trainer, module) -> None:
            trainer.loggers.append(Recording())

    trainer = trainer_lib.Trainer(
        accelerator="cpu",
        devices=1,
        num_nodes=1,
        max_epochs=EPOCHS,
        log_every_n_steps=LOGGED_EVERY,
        logger=False,
        default_root_dir=str(tmp_path / "engine"),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[AddLogger()],
    )
    train, val = loaders(sampling)
    data = module_lib.DataModule()
    data.train_dataloader, data.val_dataloader, data.test_dataloader = (
        lambda: train,
        lambda: val,
        lambda: val,
    )
    module = ported(ENGINE_IMPORT)()
    trainer.fit(module, data)
    fitted = _floats(trainer.callback_metrics)
    logged = dict(steps.logged)
    trainer.test(module, data)
    trainer.seen_at_epoch_end = module.seen_at_epoch_end
    return trainer, logged, fitted, _floats(trainer.callback_metrics)


def _floats(metrics: dict) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}


class _quiet:  # noqa: N801 (a context manager used like a function)
    def __enter__(self) -> None:
        self.level = logging.getLogger("pytorch_lightning").level
        logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc) -> None:
        self.warnings.__exit__(*exc)
        logging.getLogger("pytorch_lightning").setLevel(self.level)


def test_a_module_logging_torchmetrics_objects_ports_by_one_import(engine, tmp_path) -> None:
    theirs, their_steps, their_fit, their_test = run_lightning(engine[2], tmp_path)
    ours, our_steps, our_fit, our_test = run_engine(engine, tmp_path)

    # What callbacks see after fit and after test: the same names and values.
    assert sorted(our_fit) == sorted(their_fit)
    assert our_fit == pytest.approx(their_fit, abs=1e-6)
    assert our_test == pytest.approx(their_test, abs=1e-6) and list(our_test) == ["test_acc"]
    assert "val_f1" in our_fit and "val_mse_epoch" in our_fit and "train_acc_step" in our_fit
    # Every value the loggers received, at the same step.
    assert sorted(our_steps) == sorted(their_steps)
    assert our_steps == pytest.approx(their_steps, abs=1e-6)
    assert our_steps[(0, "val_mse_step")] > 0  # eval on_step values reach the loggers
    # What on_validation_epoch_end read in callback_metrics: that epoch's values.
    assert len(ours.seen_at_epoch_end) == EPOCHS
    for our_epoch, their_epoch in zip(
        ours.seen_at_epoch_end, theirs.seen_at_epoch_end, strict=True
    ):
        assert sorted(our_epoch) == sorted(their_epoch)
        assert our_epoch == pytest.approx(their_epoch, abs=1e-6)
    # The progress bar's and the loggers' latest values.
    assert ours.progress_bar_metrics.keys() == theirs.progress_bar_metrics.keys()
    assert ours.logged_metrics.keys() == theirs.logged_metrics.keys()
    assert _floats(ours.logged_metrics) == pytest.approx(_floats(theirs.logged_metrics), abs=1e-6)


@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed/gloo"
)
def test_under_ddp_a_metric_object_syncs_itself_to_the_global_value(tmp_path) -> None:
    answers = {"project_name": "exp", "task": "tabular_regression", "logger": "none"}
    project = make_project(
        tmp_path / "exp", **answers, devices=2, strategy="ddp", callbacks=[]
    ).path
    driver = ROOT / "tests" / "helpers" / "metric_ranks.py"
    env = {**project_env(), "PYTHONPATH": str(project / "src")}
    runs = {
        "one": [sys.executable, str(driver)],
        "two": [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        + ["--nproc_per_node", "2", str(driver)],
    }
    metrics = {}
    for name, command in runs.items():
        out = tmp_path / name
        out.mkdir()
        devices = json.dumps({"devices": 1 if name == "one" else 2})
        result = subprocess.run(
            [*command, str(project / "src"), str(out), devices],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
        metrics[name] = [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]
    (one,), (zero, first) = metrics["one"], metrics["two"]
    # sync_dist on step values: the ranks' mean (or max) at once, on every rank.
    assert (one.pop("rank_mean"), one.pop("rank_max")) == (0.0, 0.0)
    assert (zero.pop("rank_mean"), zero.pop("rank_max")) == (0.5, 1.0)
    assert (first.pop("rank_mean"), first.pop("rank_max")) == (0.5, 1.0)
    # Each rank validated 7 or 6 of the 13 samples; every rank reports the
    # metrics of all 13, equal to one process's, and not summed again.
    assert zero == first
    assert zero == pytest.approx(one, abs=1e-6)
    assert sorted(one) == [
        "samples",
        "val_acc",
        "val_macro_acc",
        "val_mse",
        "val_ones",
        "val_ones_epoch",
    ]
    assert one["val_ones"] == 1.0
    assert one["samples"] == 13.0 and 0 < one["val_acc"] <= 1


# ------------------------------------------------------------ where self.log may be called

# Lightning hooks the matrix below leaves out: defining them changes what
# Lightning does (lightning_oracle.ONLY_IF_DEFINED), or they are methods users
# call, not hooks.
NOT_WRAPPED = {
    "configure_model",
    "configure_sharded_model",
    "prepare_data",
    "on_validation_model_train",
    "on_test_model_train",
    "train_dataloader",
    "val_dataloader",
    "test_dataloader",
    "predict_dataloader",
    "state_dict",
    "load_state_dict",
    "manual_backward",
    "clip_gradients",
    "toggle_optimizer",
    "untoggle_optimizer",
}
# What the engine calls today, at the least: the matrix must compare these.
ENGINE_CALLS = {
    "training_step",
    "validation_step",
    "test_step",
    "predict_step",
    "configure_optimizers",
    "on_fit_start",
    "on_fit_end",
    "on_train_epoch_start",
    "on_train_epoch_end",
    "on_validation_epoch_start",
    "on_validation_epoch_end",
    "on_test_epoch_start",
    "on_test_epoch_end",
}
OPTIONS = ({}, {"on_step": True}, {"on_epoch": False}, {"on_step": True, "on_epoch": True})


def logging_everywhere(base: type, options: dict[str, bool]) -> Any:
    """A module that calls ``self.log(f"x_{hook}", 1.0, **options)`` in every hook.

    Each hook first runs the base class's own (so the run goes on as without
    it); ``outcomes`` records, per hook, whether the log was taken or refused.
    """

    class Science(base):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)
            self.outcomes: dict[str, str] = {}

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def validation_step(self, batch, batch_idx):
            pass

        def test_step(self, batch, batch_idx):
            pass

        def predict_step(self, batch, batch_idx):
            return self.layer(batch[0])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Logging(Science):
        pass

    def logging(hook: str):
        def method(self, *args, **kwargs):
            own = getattr(super(Logging, self), hook, None)
            result = own(*args, **kwargs) if own is not None else None
            try:
                self.log(f"x_{hook}", 1.0, **options)
                outcome = "logged"
            except Exception as error:  # Lightning's MisconfigurationException, our ValueError
                outcome = f"refused ({type(error).__name__})"
            self.outcomes.setdefault(hook, outcome)
            return result

        return method

    for hook in set(MODULE_HOOKS) - NOT_WRAPPED:
        setattr(Logging, hook, logging(hook))
    return Logging()


def hook_data(sampling) -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, generator=generator)
    dataset = TensorDataset(x, x.sum(1, keepdim=True))
    sampler = sampling.ResumableSampler(8, shuffle=False)
    return DataLoader(dataset, 4, sampler=sampler), DataLoader(dataset, 4)


def lightning_outcomes(sampling, options, tmp_path) -> tuple[dict, list[set]]:
    module = logging_everywhere(pl.LightningModule, options)
    train, val = hook_data(sampling)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        default_root_dir=str(tmp_path / "lightning"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    names = []
    with _quiet():
        trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
        names.append(set(trainer.callback_metrics))
        trainer.test(module, dataloaders=val, verbose=False)
        names.append(set(trainer.callback_metrics))
        trainer.predict(module, dataloaders=val)
    return module.outcomes, names


def engine_outcomes(engine, options, tmp_path) -> tuple[dict, list[set]]:
    module_lib, trainer_lib, sampling, _ = engine
    module = logging_everywhere(module_lib.Module, options)
    train, val = hook_data(sampling)
    data = module_lib.DataModule()
    data.train_dataloader = lambda: train
    data.val_dataloader = data.test_dataloader = data.predict_dataloader = lambda: val
    trainer = trainer_lib.Trainer(
        accelerator="cpu",
        devices=1,
        num_nodes=1,
        max_epochs=1,
        logger=False,
        default_root_dir=str(tmp_path / "engine"),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    names = []
    trainer.fit(module, data)
    names.append(set(trainer.callback_metrics))
    trainer.test(module, data)
    names.append(set(trainer.callback_metrics))
    trainer.predict(module, data)
    return module.outcomes, names


@pytest.mark.parametrize("options", OPTIONS, ids=lambda options: str(options) or "defaults")
def test_every_hook_logs_or_refuses_as_lightnings(engine, tmp_path, options) -> None:
    theirs, their_names = lightning_outcomes(engine[2], options, tmp_path)
    ours, our_names = engine_outcomes(engine, options, tmp_path)
    assert ENGINE_CALLS <= set(ours)
    # Hooks the engine doesn't call yet are left out (the hook-sequence test
    # covers which hooks it calls); every one it calls must agree.
    compared = set(ours) & set(theirs)
    assert {h: ours[h].split()[0] for h in compared} == {h: theirs[h].split()[0] for h in compared}
    # And the names callbacks see after fit and after test (x_<hook>, _step, _epoch).
    for our_run, their_run in zip(our_names, their_names, strict=True):
        assert our_run == {name for name in their_run if _hook_of(name) in compared}
    # The engine's table, for every hook Lightning called, the ones the engine
    # doesn't call yet included.
    table = {hook: _table_outcome(engine[3], hook, options) for hook in theirs}
    assert table == {hook: outcome.split()[0] for hook, outcome in theirs.items()}


def _table_outcome(metrics_lib, hook: str, options: dict[str, bool]) -> str:
    """Whether the engine's Metrics takes a log from ``hook`` with ``options``."""
    metrics = metrics_lib.Metrics()
    metrics.hook = hook
    metrics.new_batch(None)
    try:
        metrics.log(
            "x",
            1.0,
            prog_bar=False,
            logger=True,
            on_step=options.get("on_step"),
            on_epoch=options.get("on_epoch"),
            reduce_fx="mean",
            sync_dist=False,
            batch_size=None,
        )
    except ValueError:
        return "refused"
    return "logged"


def _hook_of(name: str) -> str:
    """``x_training_step_epoch`` -> ``training_step``."""
    hook = name.removeprefix("x_")
    for suffix in ("_step", "_epoch"):
        if hook.endswith(suffix) and hook.removesuffix(suffix) in MODULE_HOOKS:
            return hook.removesuffix(suffix)
    return hook


RESULTS_MODULE = """
{import_line}
import torch


class TwoLoaderModule(LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))
        if dataloader_idx == 1:
            self.log("only_second", 2.0 + batch_idx, add_dataloader_idx=False)

    def on_validation_epoch_end(self):
        self.log("after", 7.0)

    def test_step(self, batch, batch_idx):
        self.log("test_loss", torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1]))
"""


def _results_module(import_line: str) -> type:
    namespace: dict[str, Any] = {}
    exec(compile(RESULTS_MODULE.format(import_line=import_line), "results.py", "exec"), namespace)
    return namespace["TwoLoaderModule"]


def test_validate_and_test_return_a_dict_per_dataloader_as_lightning(engine, tmp_path) -> None:
    module_lib, trainer_lib, sampling, _ = engine
    _, val = hook_data(sampling)
    torch.manual_seed(0)
    theirs_module = _results_module("from pytorch_lightning import LightningModule")()
    torch.manual_seed(0)
    ours_module = _results_module(f"from {module_lib.__name__} import Module as LightningModule")()
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path / "lightning"),
    )
    with _quiet():
        theirs = [
            trainer.validate(theirs_module, [val, val], verbose=False),
            trainer.validate(theirs_module, val, verbose=False),
            trainer.test(theirs_module, val, verbose=False),
        ]
    ours_trainer = trainer_lib.Trainer(
        accelerator="cpu",
        devices=1,
        num_nodes=1,
        logger=False,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path / "engine"),
    )
    ours = [
        ours_trainer.validate(ours_module, [val, val]),
        ours_trainer.validate(ours_module, val),
        ours_trainer.test(ours_module, val),
    ]
    assert [[sorted(d) for d in run] for run in ours] == [
        [sorted(d) for d in run] for run in theirs
    ]
    for our_run, their_run in zip(ours, theirs, strict=True):
        for our_dict, their_dict in zip(our_run, their_run, strict=True):
            assert our_dict == pytest.approx(their_dict, abs=1e-6)
