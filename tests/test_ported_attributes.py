"""What Lightning code reads off ``self.trainer`` and asks of ``self.all_gather``,
ported by the import change alone, against Lightning.

The same program runs under pytorch_lightning 2.6.6 and in a generated project.
A module records the Trainer's option attributes (``log_every_n_steps``,
``limit_val_batches``, ``num_sanity_val_steps``, ...), ``is_last_batch``,
``model``, ``node_rank``, ``received_sigterm`` and ``estimated_stepping_batches``
before the fit, at each training batch and after it, under four sets of options
(the defaults; clipping, limits and intervals; ``fast_dev_run``;
``overfit_batches``); what ``self.all_gather`` returns in one process for a
nested collection of tensors, numbers and a numpy array; and the module's
``dtype`` and ``example_input_array``. Both sides must record the same.
(``tests/test_distributed.py`` checks ``all_gather`` under DDP, two processes.)
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
import torch
from conftest import engine_of
from test_ported_callbacks import TRAINING
from test_ports import both


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[str]:
    """A freshly generated default project (no logger); its engine's name."""
    with engine_of(tmp_path_factory.mktemp("attributes"), "attributes", ("module",)):
        yield "attributes_exp.engine"


PROGRAM = """
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pytorch_lightning as pl

OPTIONS = [
    "check_val_every_n_epoch", "log_every_n_steps", "min_epochs", "num_nodes",
    "gradient_clip_val", "gradient_clip_algorithm", "limit_train_batches",
    "limit_val_batches", "limit_test_batches", "limit_predict_batches",
    "val_check_interval", "num_sanity_val_steps", "overfit_batches", "fast_dev_run",
    "node_rank", "received_sigterm", "is_last_batch", "estimated_stepping_batches",
    "min_steps", "enable_validation", "ckpt_path", "device_ids", "scaler",
]
records = []


def record(when, trainer):
    seen = {name: getattr(trainer, name) for name in OPTIONS}
    seen["model"] = "module" if trainer.model is trainer.lightning_module else trainer.model
    records.append((run, when, seen))


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        record(f"batch {batch_idx}", self.trainer)
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.layer(batch[0]).pow(2).mean())

    def on_train_end(self):
        numbers = [4, 0.5, True, np.arange(2)]
        gathered = self.all_gather({"x": torch.arange(3.0), "n": numbers, "s": "kept"})
        records.append((run, "all_gather", gathered))
        module = {"dtype": self.dtype, "example": self.example_input_array, "on_gpu": self.on_gpu}
        records.append((run, "module", module))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


loader = DataLoader(TensorDataset(torch.randn(12, 3)), batch_size=4)
RUNS = [
    {},
    {
        "gradient_clip_val": 1.0,
        "gradient_clip_algorithm": "norm",
        "limit_train_batches": 2,
        "limit_val_batches": 0.5,
        "val_check_interval": 1,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 5,
        "min_epochs": 1,
        "check_val_every_n_epoch": 2,
        "max_epochs": 2,
    },
    {"fast_dev_run": True},
    {"overfit_batches": 2},
]
for run, options in enumerate(RUNS):
    options = {"max_epochs": 1, **options}
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir="runs",
        **options,
    )
    record("before", trainer)
    trainer.fit(Net(), loader, loader)
    record("after", trainer)
net = Net()
net.example_input_array = torch.zeros(2, 3)
records.append((None, "double", {"dtype": net.double().dtype, "example": net.example_input_array}))
"""


# The named differences (docs/porting.md), by run: an unset gradient_clip_algorithm
# reads "norm" here (Lightning: None); an unset min_epochs reads 0 before the fit
# (Lightning: None until the fit starts); fast_dev_run logs every step here
# (Lightning keeps log_every_n_steps and swaps the loggers for a dummy).
DIFFERENCES = {
    "gradient_clip_algorithm": ({0, 2, 3}, None, "norm"),
    "min_epochs": ({0, 2, 3}, None, 0),
    "log_every_n_steps": ({2}, 50, 1),
}


def _comparable(records: list, side: int) -> list:
    """The records without the named differences, after checking each reads as named."""
    kept = []
    for run, when, seen in records:
        if when not in ("all_gather", "module", "double"):  # the Trainer's attributes
            seen = dict(seen)
            for name, (runs, *values) in DIFFERENCES.items():
                if run in runs and (name != "min_epochs" or when == "before"):
                    assert seen.pop(name) == values[side], (run, when, name)
        kept.append((run, when, seen))
    return kept


def test_trainer_attributes_and_all_gather_read_as_lightnings(engine, tmp_path) -> None:
    theirs, ours = both(PROGRAM, engine, tmp_path)
    lightning, engine_records = _comparable(theirs["records"], 0), _comparable(ours["records"], 1)
    # 3 + 2 * 2 + 1 + 2 batches, a record before and after each run, all_gather and the
    # module's dtype at each end, then a module cast to float64.
    assert len(engine_records) == len(lightning) == 27
    for mine, lightnings in zip(engine_records, lightning, strict=True):
        assert mine[:2] == lightnings[:2]
        if mine[1] == "double":
            assert mine[2]["dtype"] == lightnings[2]["dtype"] == torch.float64
            assert torch.equal(mine[2]["example"], lightnings[2]["example"])
            continue
        if mine[1] != "all_gather":
            assert mine == lightnings
            continue
        gathered, expected = mine[2], lightnings[2]
        assert gathered.keys() == expected.keys()
        assert gathered["s"] == expected["s"] == "kept"
        assert gathered["x"].tolist() == expected["x"].tolist() == [0.0, 1.0, 2.0]
        numbers = [(n.dtype, n.tolist()) for n in gathered["n"]]
        assert numbers == [(n.dtype, n.tolist()) for n in expected["n"]]
        assert type(gathered["n"]) is type(expected["n"]) is list


def test_the_trainers_functions_take_lightnings_arguments_in_lightnings_order(engine) -> None:
    # Positional calls port too: trainer.test(model, loader, "best").
    import inspect

    import pytorch_lightning as pl

    trainer = importlib.import_module(f"{engine}.trainer").Trainer
    for name in ("fit", "validate", "test", "predict"):
        theirs = list(inspect.signature(getattr(pl.Trainer, name)).parameters)
        ours = list(inspect.signature(getattr(trainer, name)).parameters)
        # weights_only (Lightning 2.6): the engine always loads weights only.
        assert ours == [p for p in theirs if p != "weights_only"], name


CKPT_PATH = (
    TRAINING
    + """

class Validated(Net):
    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.layer(batch[0]).pow(2).mean())


loader = DataLoader(TensorDataset(torch.randn(8, 3)), batch_size=4)
options = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
first = pl.Trainer(max_epochs=1, default_root_dir="first", **options)
first.fit(Validated(), loader, loader)
saved = first.checkpoint_callback.best_model_path
seen = {"first": first.ckpt_path}
trainer = pl.Trainer(max_epochs=2, default_root_dir="second", **options)
trainer.fit(Validated(), loader, loader, ckpt_path=saved)
seen["resumed"] = trainer.ckpt_path
trainer.validate(Validated(), loader, verbose=False)
seen["validate"] = trainer.ckpt_path
trainer.validate(Validated(), loader, ckpt_path=saved, verbose=False)
seen["validate_path"] = trainer.ckpt_path
trainer.print("printed", "by rank zero")
"""
)


def test_ckpt_path_and_print_as_lightnings(engine, tmp_path, capsys) -> None:
    theirs, ours = both(CKPT_PATH, engine, tmp_path)
    for side, namespace in (("lightning", theirs), ("engine", ours)):
        seen, saved = namespace["seen"], tmp_path / side / namespace["saved"]
        assert seen["first"] is None and seen["validate"] is None, side
        for run in ("resumed", "validate_path"):  # the checkpoint given, resolved
            assert (tmp_path / side / seen[run]).resolve() == saved.resolve(), (side, run)
    assert capsys.readouterr().out.count("printed by rank zero") == 2


ADAPTER = (
    TRAINING
    + """

class Adapter(pl.LightningModule):  # checkpoints hold only what trains, as with adapters
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Linear(3, 4).requires_grad_(False)
        self.head = nn.Linear(4, 1)
        self.strict_loading = False

    def training_step(self, batch, batch_idx):
        return self.head(self.backbone(batch[0])).pow(2).mean()

    def on_save_checkpoint(self, checkpoint):
        state = checkpoint["state_dict"]
        checkpoint["state_dict"] = {k: v for k, v in state.items() if k.startswith("head.")}

    def configure_optimizers(self):
        return torch.optim.SGD(self.head.parameters(), lr=0.1)


x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
loader = DataLoader(TensorDataset(x), batch_size=4)
options = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
first = pl.Trainer(max_epochs=1, default_root_dir="first", **options)
first.fit(Adapter(), loader)
saved = first.checkpoint_callback.best_model_path
resumed = Adapter()
pl.Trainer(max_epochs=2, default_root_dir="second", **options).fit(resumed, loader, ckpt_path=saved)
loaded = Adapter.load_from_checkpoint(saved)
refused = []
for strict in (True, None):
    try:
        (Net if strict is None else Adapter).load_from_checkpoint(saved, strict=strict)
    except Exception as error:
        refused.append(type(error).__name__)
"""
)


def test_strict_loading_false_resumes_and_loads_a_partial_checkpoint_as_lightnings(
    engine, tmp_path
) -> None:
    theirs, ours = both(ADAPTER, engine, tmp_path)
    for name in ("resumed", "loaded"):
        mine, lightnings = ours[name].state_dict(), theirs[name].state_dict()
        assert mine.keys() == lightnings.keys()
        for key, value in mine.items():
            torch.testing.assert_close(value, lightnings[key], rtol=0, atol=1e-6, msg=key)
    # strict=True against the module's False; a module that needs every weight.
    assert ours["refused"] == ["ValueError", "CheckpointError"]
    assert theirs["refused"] == ["ValueError", "RuntimeError"]
