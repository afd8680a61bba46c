"""The engine's side of the hook-sequence test: the oracle's scenarios, on a generated engine.

Run in a fresh process (the generated package must not meet another of the same
name)::

    python tests/helpers/engine_hooks.py <project>/src <package> <tmp> <scenario>...

It prints one JSON object: for each scenario (run one after another, each in
``<tmp>/<scenario>``), the recorded calls (``lightning_oracle.Call`` fields),
the callback_metrics snapshots and the error that ended it, if any. The
science (a linear regression, its data, its callbacks, the Trainer settings) is
tests/lightning_oracle.py's, written for the engine's classes; the recorder
wraps the same hook names on the receiving side and keeps the same key
arguments, so the two recordings compare as lists.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
sys.path.insert(0, sys.argv[1])

import lightning_oracle as oracle  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402, N812
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

package = sys.argv[2]
engine_hooks = importlib.import_module(f"{package}.engine.hooks")
engine_module = importlib.import_module(f"{package}.engine.module")
callbacks = importlib.import_module(f"{package}.engine.callbacks")
sampling = importlib.import_module(f"{package}.engine.sampling")
Trainer = importlib.import_module(f"{package}.engine.trainer").Trainer
Module, DataModule = engine_module.Module, engine_module.DataModule
Callback = engine_hooks.Callback


# ------------------------------------------------------------------------ the recorder


def recording(cls: type, owner: str, recorder: oracle.Recorder) -> type:
    """``cls`` with every hook Lightning's recorder wraps, wrapped the same way.

    A hook the class lacks is recorded on callbacks (Lightning's Callback has every
    hook); on the module and the DataModule a missing hook stays missing, so a hook
    the engine doesn't have shows up as a difference.
    """
    if issubclass(cls, Module):
        hooks, base, kind = oracle.MODULE_HOOKS, Module, "module"
    elif issubclass(cls, DataModule):
        hooks, base, kind = oracle.DATAMODULE_HOOKS, DataModule, "datamodule"
    else:
        hooks, base, kind = oracle.CALLBACK_HOOKS, Callback, "callback"
    wrapped = {}
    for name in hooks:
        if name in oracle.ONLY_IF_DEFINED[kind] and not oracle._defines(cls, name, base):
            continue
        method = getattr(cls, name, None)
        if method is None and kind == "callback":
            method = getattr(Callback, name, None)  # a plain class: Callback's no-op
        if callable(method):
            wrapped[name] = _recorded(name, method, owner, recorder)
    subclass = type(f"Recording{cls.__name__}", (cls,), wrapped)
    subclass.__qualname__ = subclass.__name__ = cls.__name__  # checkpoint state keys
    return subclass


def _recorded(name: str, method: Callable, owner: str, recorder: oracle.Recorder) -> Callable:
    signature = inspect.signature(method)

    @functools.wraps(method)
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(self, *args, **kwargs).arguments
        except TypeError:
            bound = {}
        trainer = bound.get("trainer") or getattr(self, "trainer", None) or recorder.trainer
        recorder.trainer = trainer
        epoch, step = oracle._clock(trainer)
        key = tuple(oracle._key_args(bound, trainer))
        recorder.calls.append(oracle.Call(owner, name, key, epoch, step, recorder.depth))
        if name in oracle.SNAPSHOT_HOOKS and trainer is not None:
            metrics = oracle.metrics_of(trainer)
            recorder.snapshots.append(oracle.Snapshot(owner, name, epoch, step, metrics))
        recorder.depth += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            recorder.depth -= 1

    return hook


# ---------------------------------------------------------------------- the science


def loader(samples: int, seed: int, resumable: bool = False) -> DataLoader:
    """The oracle's data; the train loader on ResumableSampler (resume needs it)."""
    plain = oracle.loader(samples, seed)
    if not resumable:
        return plain
    dataset: TensorDataset = plain.dataset
    sampler = sampling.ResumableSampler(len(dataset), shuffle=False)
    return DataLoader(dataset, batch_size=oracle.BATCH, sampler=sampler)


class Loaders:
    def train_dataloader(self) -> DataLoader:
        return loader(16, seed=1, resumable=True)

    def val_dataloader(self) -> DataLoader:
        return loader(8, seed=2)

    def test_dataloader(self) -> DataLoader:
        return loader(8, seed=3)


class Regressor(Loaders, Module):
    def __init__(self, schedulers: bool = True) -> None:
        super().__init__()
        self.schedulers = schedulers
        self.net: nn.Module | None = None
        self.model_callbacks: list[Any] = []

    def configure_model(self) -> None:
        if self.net is None:
            torch.manual_seed(0)
            self.net = nn.Linear(3, 1)

    def prepare_data(self) -> None:
        pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, batch: Any) -> torch.Tensor:
        x, y = batch
        return F.mse_loss(self(x), y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.log("val_loss", self.loss(batch))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.log("test_loss", self.loss(batch))

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self(batch[0])

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        if not self.schedulers:
            return optimizer
        per_step = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.9)
        per_epoch = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
        return [optimizer], [{"scheduler": per_step, "interval": "step"}, per_epoch]

    def configure_callbacks(self) -> list[Any]:
        return self.model_callbacks


class WarmUp(Regressor):
    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure=None):
        scale = min(1.0, (self.trainer.global_step + 1) / 2)
        for group in optimizer.param_groups:
            group["lr"] = 0.1 * scale
        optimizer.step(closure=optimizer_closure)


class Lbfgs(Regressor):
    def configure_optimizers(self) -> Any:
        return torch.optim.LBFGS(self.parameters(), lr=0.5, max_iter=2)


class Gan(Module):
    """The oracle's manual-optimization module (runs once the engine has manual optimization)."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        torch.manual_seed(0)
        self.generator = nn.Linear(3, 3)
        self.discriminator = nn.Linear(3, 1)

    training_step = oracle.Gan.training_step
    configure_optimizers = oracle.Gan.configure_optimizers

    def train_dataloader(self) -> DataLoader:
        return loader(16, seed=1, resumable=True)


class ModeKeeper(Regressor):
    def on_validation_model_train(self) -> None:
        super().on_validation_model_train()


class Failing(Regressor):
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if batch_idx == 1:
            raise RuntimeError("training_step failed on purpose")
        return super().training_step(batch, batch_idx)


class Data(Loaders, DataModule):
    def __init__(self) -> None:
        super().__init__()
        self.setups = 0

    def prepare_data(self) -> None:
        pass

    def setup(self, stage: str) -> None:
        self.setups += 1

    def state_dict(self) -> dict[str, int]:
        return {"setups": self.setups}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.setups = state_dict["setups"]


class Transferring(Data):
    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int):
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch


class Counter(Callback):
    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1

    def state_dict(self) -> dict[str, int]:
        return {"batches": self.batches}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.batches = state_dict["batches"]


class Probe(Callback):
    """Stateless, returned by configure_callbacks."""


# ------------------------------------------------------------------------ scenarios


def make_trainer(tmp: Path, callbacks: list[Any], **settings: Any) -> Any:
    defaults = {
        "accelerator": "cpu",
        "devices": 1,
        "num_nodes": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": any(type(c).__name__ == "ModelCheckpoint" for c in callbacks),
        "default_root_dir": str(tmp),
        "max_epochs": 1,
        "num_sanity_val_steps": 0,
    }
    return Trainer(callbacks=callbacks, **{**defaults, **settings})


def fit_setup(tmp: Path, rec: oracle.Recorder | None, **settings: Any) -> tuple[Any, Any, Any]:
    def make(cls: type, owner: str) -> type:
        return cls if rec is None else recording(cls, owner, rec)

    torch.manual_seed(0)
    module = make(Regressor, "module")()
    module.model_callbacks = [make(Probe, "model_callback")()]
    checkpoint = make(callbacks.ModelCheckpoint, "checkpoint")(
        dirpath=tmp / "checkpoints", monitor="val_loss", save_top_k=-1, save_last=False
    )
    fit_settings = {
        "max_epochs": 2,
        "accumulate_grad_batches": 2,
        "gradient_clip_val": 0.5,
        "val_check_interval": 2,
        "num_sanity_val_steps": 1,
    }
    trainer = make_trainer(
        tmp, [make(Counter, "callback")(), checkpoint], **{**fit_settings, **settings}
    )
    return trainer, module, make(Data, "datamodule")()


def _counted(tmp: Path, rec: oracle.Recorder, **settings: Any) -> Any:
    return make_trainer(tmp, [recording(Counter, "callback", rec)()], **settings)


def fit(tmp: Path, rec: oracle.Recorder) -> Any:
    trainer, module, data = fit_setup(tmp, rec)
    trainer.fit(module, datamodule=data)
    return trainer


def validate(tmp: Path, rec: oracle.Recorder) -> Any:
    trainer = _counted(tmp, rec)
    module, data = recording(Regressor, "module", rec)(), recording(Data, "datamodule", rec)()
    trainer.validate(module, datamodule=data)
    return trainer


def test(tmp: Path, rec: oracle.Recorder) -> Any:
    trainer = _counted(tmp, rec)
    trainer.test(recording(Regressor, "module", rec)())
    return trainer


def predict(tmp: Path, rec: oracle.Recorder) -> Any:
    trainer = _counted(tmp, rec)
    trainer.predict(recording(Regressor, "module", rec)(), dataloaders=loader(8, seed=4))
    return trainer


def resume(tmp: Path, rec: oracle.Recorder) -> Any:
    first, module, data = fit_setup(tmp / "first", None, max_steps=1)
    first.fit(module, datamodule=data)
    trainer, module, data = fit_setup(tmp, rec)
    trainer.fit(module, datamodule=data, ckpt_path=tmp / "first" / oracle.MID_EPOCH)
    return trainer


def manual(tmp: Path, rec: oracle.Recorder) -> Any:
    trainer = _counted(tmp, rec)
    trainer.fit(recording(Gan, "module", rec)())
    return trainer


def warmup(tmp: Path, rec: oracle.Recorder) -> Any:
    trainer = _counted(tmp, rec, accumulate_grad_batches=2, limit_val_batches=0)
    trainer.fit(recording(WarmUp, "module", rec)(schedulers=False))
    return trainer


def lbfgs(tmp: Path, rec: oracle.Recorder) -> Any:
    trainer = _counted(tmp, rec, limit_train_batches=2, limit_val_batches=0)
    trainer.fit(recording(Lbfgs, "module", rec)(schedulers=False))
    return trainer


def multi_val(tmp: Path, rec: oracle.Recorder) -> Any:
    trainer = _counted(tmp, rec)
    loaders = [loader(8, seed=2), loader(4, seed=5)]
    trainer.validate(recording(Regressor, "module", rec)(), loaders)
    return trainer


def overrides(tmp: Path, rec: oracle.Recorder) -> Any:
    trainer = _counted(tmp, rec)
    module = recording(ModeKeeper, "module", rec)()
    data = recording(Transferring, "datamodule", rec)()
    trainer.validate(module, datamodule=data)
    return trainer


def exception(tmp: Path, rec: oracle.Recorder) -> Any:
    trainer = _counted(tmp, rec, limit_val_batches=0)
    module, data = recording(Failing, "module", rec)(), recording(Data, "datamodule", rec)()
    with contextlib.suppress(RuntimeError):
        trainer.fit(module, datamodule=data)
    return trainer


SCENARIOS = {
    f.__name__: f
    for f in (fit, validate, test, predict, resume, manual, warmup, lbfgs, multi_val)
    + (overrides, exception)
}


def record(name: str, tmp: Path) -> dict[str, Any]:
    """One scenario's calls, snapshots and error (it is recorded as far as it got)."""
    recorder = oracle.Recorder()
    error = None
    try:
        SCENARIOS[name](tmp, recorder)
    except Exception as failed:
        error = f"{type(failed).__name__}: {failed}"
    return {
        "calls": [list(c) for c in recorder.calls],
        "snapshots": [list(s) for s in recorder.snapshots],
        "error": error,
    }


def main() -> None:
    tmp, names = Path(sys.argv[3]), sys.argv[4:]
    with contextlib.redirect_stdout(sys.stderr):  # the engine's prints aren't the answer
        results = {name: record(name, tmp / name) for name in names}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
