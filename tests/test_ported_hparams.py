"""Lightning's ``save_hyperparameters`` in all its forms, ported by the import change
alone, against Lightning.

The same program runs under pytorch_lightning 2.6.6 and in a generated project:
modules and a DataModule record their hyperparameters by argument names, from
one dict or ``argparse.Namespace`` argument, from a base class's ``__init__``
(which sees the subclass's arguments too), with ``ignore`` dropping what a base
class recorded, and from an empty dict. Each side records ``hparams``, trains
one epoch, saves a checkpoint, and rebuilds the object with
``load_from_checkpoint``: the same hyperparameters, the same checkpoint keys
(``hyper_parameters``, ``hparams_name`` and the DataModule's), the same
argument handed back to ``__init__``, and the same errors where Lightning
refuses.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from conftest import engine_of
from test_ports import both

PROGRAM = """
from argparse import Namespace

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pytorch_lightning as pl

given = {}  # what each __init__ received, by class


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(3, 2)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class ByNames(Net):
    def __init__(self, width=4, lr=0.1, note="unsaved"):
        super().__init__()
        self.save_hyperparameters("width", "lr")


class FromDict(Net):
    def __init__(self, config):
        super().__init__()
        given["FromDict"] = config
        self.save_hyperparameters(config)


class FromNamespace(Net):
    def __init__(self, args, scale=2.0):
        super().__init__()
        given["FromNamespace"] = args
        self.save_hyperparameters(args)


class Base(Net):
    def __init__(self, lr=0.1, **kwargs):
        super().__init__()
        self.save_hyperparameters()


class Child(Base):  # Base's call sees Child's arguments too
    def __init__(self, width=4, lr=0.2, depth=1):
        super().__init__(lr=lr, extra=depth * 10)


class Trimmed(Child):  # a subclass's ignore drops what the base recorded
    def __init__(self, width=4, lr=0.2, depth=1, seed=0):
        super().__init__(width, lr, depth)
        self.save_hyperparameters(ignore=["lr", "extra"])


class Empty(Net):
    def __init__(self, config=None):
        super().__init__()
        self.save_hyperparameters({})


class Data(pl.LightningDataModule):
    def __init__(self, args):
        super().__init__()
        self.save_hyperparameters(args)

    def train_dataloader(self):
        x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
        return DataLoader(TensorDataset(x), batch_size=self.hparams.batch_size)


built = {
    "ByNames": lambda: ByNames(width=6, note="x"),
    "FromDict": lambda: FromDict({"width": 5, "lr": 0.01, "names": ["a", "b"]}),
    "FromNamespace": lambda: FromNamespace(Namespace(width=3, optimizer="sgd")),
    "Child": lambda: Child(width=7, depth=2),
    "Trimmed": lambda: Trimmed(seed=3),
    "Empty": lambda: Empty(),
}
results = {}
for name, build in built.items():
    module = build()
    data = Data(Namespace(batch_size=4))
    recorded = (dict(module.hparams), dict(module.hparams_initial))
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data)
    trainer.save_checkpoint(f"{name}.ckpt")
    saved = torch.load(f"{name}.ckpt", weights_only=False)
    keys = {
        key: saved[key]
        for key in (
            "hyper_parameters",
            "hparams_name",
            "datamodule_hyper_parameters",
            "datamodule_hparams_name",
        )
        if saved.get(key)  # an empty one: Lightning writes none, the engine's format always
    }
    given.clear()
    loaded = type(module).load_from_checkpoint(f"{name}.ckpt")
    handed = {c: dict(vars(v)) if isinstance(v, Namespace) else dict(v) for c, v in given.items()}
    reloaded_data = Data.load_from_checkpoint(f"{name}.ckpt")
    results[name] = (
        recorded,
        keys,
        dict(loaded.hparams),
        handed,
        dict(reloaded_data.hparams),
    )

refused = []
for bad in (5, 0.5, "nope", [1, 2]):

    class Bad(Net):
        def __init__(self, width=4):
            super().__init__()
            self.save_hyperparameters(bad)

    try:
        Bad()
        refused.append(None)
    except Exception as error:
        refused.append(type(error).__name__)
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[str]:
    """A freshly generated default project (no logger); its engine's name."""
    with engine_of(tmp_path_factory.mktemp("hparams"), "hparams", ("module",)):
        yield "hparams_exp.engine"


@pytest.fixture(scope="module")
def sides(engine, tmp_path_factory) -> tuple[dict, dict]:
    """The program's namespace under Lightning, then in the generated project."""
    return both(PROGRAM, engine, tmp_path_factory.mktemp("sides"))


def test_save_hyperparameters_records_and_rebuilds_as_lightnings(sides) -> None:
    theirs, ours = sides
    assert set(ours["results"]) == set(theirs["results"])
    for name, result in theirs["results"].items():
        assert ours["results"][name] == result, name
    assert (
        ours["refused"]
        == theirs["refused"]
        == ["ValueError", "ValueError", "KeyError", "ValueError"]
    )


def test_what_lightning_expects_of_each_form(sides) -> None:
    """The recorded values themselves (so a change on both sides can't pass unseen)."""
    results = sides[1]["results"]
    assert results["ByNames"][0][0] == {"width": 6, "lr": 0.1}
    assert results["FromDict"][1]["hparams_name"] == "config"
    assert results["FromDict"][3] == {"FromDict": {"width": 5, "lr": 0.01, "names": ["a", "b"]}}
    assert results["FromNamespace"][2] == {"width": 3, "optimizer": "sgd"}
    assert results["Child"][0][0] == {"lr": 0.2, "extra": 20, "width": 7, "depth": 2}
    assert results["Trimmed"][0][0] == {"width": 4, "depth": 1, "seed": 3}
    assert results["Empty"][0][0] == {} and "hparams_name" not in results["Empty"][1]
    assert results["ByNames"][4] == {"batch_size": 4}
    assert results["ByNames"][1]["datamodule_hparams_name"] == "args"


def test_an_override_init_does_not_take_is_refused_in_one_line(engine, tmp_path) -> None:
    module = importlib.import_module(f"{engine}.module")
    trainer = importlib.import_module(f"{engine}.trainer")
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(module.Module):
        def __init__(self, width: int = 2) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(3, width)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    run = trainer.Trainer(max_epochs=1, logger=False, default_root_dir=tmp_path)
    run.fit(Tiny(), DataLoader(TensorDataset(torch.randn(4, 3)), batch_size=2))
    run.save_checkpoint(tmp_path / "tiny.ckpt")
    assert Tiny.load_from_checkpoint(tmp_path / "tiny.ckpt", width=2).hparams == {"width": 2}
    with pytest.raises(TypeError, match=r"'widht' is not an argument of Tiny.__init__"):
        Tiny.load_from_checkpoint(tmp_path / "tiny.ckpt", widht=3)
