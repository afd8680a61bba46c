"""What pytorch_lightning 2.6.6 actually calls, recorded: the oracle for the engine's hooks.

Two recorders watch the same run:

- the **receiving side**: a LightningModule, LightningDataModule and Callbacks whose
  every public hook is wrapped (`recording`) to append a plain `Call` and then run
  the wrapped class's own method, so Lightning's behaviour is unchanged;
- the **dispatch side**: Lightning's single dispatch points in
  `pytorch_lightning.trainer.call` (`dispatch_recorded`), to prove that the
  receiving side misses nothing Lightning dispatches and to name the calls that
  bypass those points (the steps via the strategy, `backward` via the precision
  plugin, the module's `state_dict`).

Hooks whose mere definition changes what Lightning does (`configure_model`,
`prepare_data`, the `*_dataloader` methods, ...: `ONLY_IF_DEFINED`) are wrapped
only where the recorded class defines them itself.

Each scenario (`SCENARIOS`, run by `scenario`) trains a small deterministic
regression on the CPU; `scenario` returns its `Recording`. Regenerate the summary
document with `python tests/lightning_oracle.py > docs/lightning-hooks.md`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.core.hooks import CheckpointHooks, DataHooks, ModelHooks
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.utils.data import DataLoader, TensorDataset

LIGHTNING_VERSION = "2.6.6"  # the version these recordings and docs/lightning-hooks.md are of

Value = str | int | float | bool | None


class Call(NamedTuple):
    """One hook call as the receiving object saw it: plain values only, comparable as a tuple."""

    owner: str  # "module", "datamodule", "callback", "model_callback", "checkpoint"
    hook: str
    args: tuple[tuple[str, Value], ...]  # the key arguments, in signature order
    epoch: int  # trainer.current_epoch at the call
    step: int  # trainer.global_step at the call
    depth: int  # how many recorded calls were running around this one


class Snapshot(NamedTuple):
    """`trainer.callback_metrics` as a hook saw it on entry, before its own code ran."""

    owner: str
    hook: str
    epoch: int
    step: int
    metrics: tuple[tuple[str, float], ...]


def public_functions(*classes: type) -> tuple[str, ...]:
    """The public functions the classes define themselves, in definition order."""
    names: dict[str, None] = {}
    for cls in classes:
        for name, value in vars(cls).items():
            if not name.startswith("_") and inspect.isfunction(value):
                names[name] = None
    return tuple(names)


# The LightningModule's own methods (beyond the hook mixins) that the Trainer calls ...
MODULE_STEPS = (
    "training_step",
    "validation_step",
    "test_step",
    "predict_step",
    "configure_callbacks",
    "configure_optimizers",
    "optimizer_step",
    "optimizer_zero_grad",
    "lr_scheduler_step",
    "configure_gradient_clipping",
    "backward",
)
# ... the ones users call that lead into hooks (recorded to show the nesting) ...
MODULE_API = ("manual_backward", "clip_gradients", "toggle_optimizer", "untoggle_optimizer")
# ... and the rest, which are utilities, not hooks.
MODULE_UTILITIES = (
    "optimizers",
    "lr_schedulers",
    "print",
    "log",
    "log_dict",
    "all_gather",
    "forward",
    "toggled_optimizer",
    "freeze",
    "unfreeze",
    "to_onnx",
    "to_torchscript",
    "to_tensorrt",
)
MODULE_HOOKS = public_functions(ModelHooks, DataHooks, CheckpointHooks) + MODULE_STEPS + MODULE_API
# nn.Module's, called by the strategy when it saves and restores the weights.
MODULE_HOOKS += ("state_dict", "load_state_dict")
DATAMODULE_HOOKS = public_functions(DataHooks, pl.LightningDataModule)
CALLBACK_HOOKS = public_functions(pl.Callback)

DATALOADERS = ("train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader")
TRANSFERS = ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")
# Defining these changes what a trainer does: Lightning calls them, or picks their
# owner, only when `is_overridden`. Lightning's check sees through functools.wraps,
# but another implementation's may not, so the recorder wraps them only where the
# recorded class defines them itself: both sides then behave as without it.
ONLY_IF_DEFINED = {
    "module": frozenset(
        (
            "configure_model",  # called only when overridden
            "configure_sharded_model",  # deprecated; defining it with configure_model is an error
            "prepare_data",  # called only when overridden
            "on_validation_model_train",  # else Lightning restores each submodule's mode itself
            "on_test_model_train",
            "training_step",  # each step: no loop without it
            "validation_step",
            "test_step",
            "predict_step",
            "configure_optimizers",
            *DATALOADERS,  # a data source only when overridden
        )
    ),
    # A DataModule's transfer hooks win over the module's only when overridden.
    "datamodule": frozenset(("prepare_data", *DATALOADERS, *TRANSFERS)),
    # A callback that overrides state_dict counts as stateful (unique state_key).
    "callback": frozenset(("state_dict",)),
}
SNAPSHOT_HOOKS = frozenset(("on_train_epoch_end", "on_validation_epoch_end", "on_test_epoch_end"))


@dataclass
class Recorder:
    """The shared record of one run, both sides."""

    calls: list[Call] = field(default_factory=list)
    dispatched: list[tuple[str, str]] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    depth: int = 0
    trainer: Any = None  # the last one seen: a callback's state_dict() gets none


@dataclass(frozen=True)
class Recording:
    """What one scenario recorded, plus the trainer's counters at the end."""

    calls: tuple[Call, ...]
    dispatched: tuple[tuple[str, str], ...]
    snapshots: tuple[Snapshot, ...]
    global_step: int
    current_epoch: int
    warnings: tuple[str, ...]
    final_metrics: tuple[tuple[str, float], ...]  # trainer.callback_metrics at the end

    def hooks(self, owner: str | None = None) -> list[str]:
        """The hook names called, in order (on `owner` only, when given)."""
        return [c.hook for c in self.calls if owner in (None, c.owner)]

    def find(self, hook: str, owner: str = "module", **args: Value) -> list[int]:
        """Indexes of the calls of `hook` on `owner` whose key arguments include `args`."""
        return [
            i
            for i, c in enumerate(self.calls)
            if c.hook == hook and c.owner == owner and args.items() <= dict(c.args).items()
        ]


# ---------------------------------------------------------------- the receiving side


def _defines(cls: type, name: str, base: type) -> bool:
    """Whether `cls` or a class between it and `base` defines `name` itself."""
    mro = cls.__mro__
    stop = mro.index(base) if base in mro else len(mro)
    return any(name in vars(k) for k in mro[:stop])


def recording(cls: type, owner: str, recorder: Recorder) -> type:
    """A subclass of `cls` whose hooks record each call into `recorder`, then run `cls`'s own.

    Args:
        cls: A LightningModule, LightningDataModule or Callback subclass.
        owner: The name its calls are recorded under.
        recorder: Where they go.
    """
    if issubclass(cls, pl.LightningModule):
        hooks, base, kind = MODULE_HOOKS, pl.LightningModule, "module"
    elif issubclass(cls, pl.LightningDataModule):
        hooks, base, kind = DATAMODULE_HOOKS, pl.LightningDataModule, "datamodule"
    else:
        hooks, base, kind = CALLBACK_HOOKS, pl.Callback, "callback"
    wrapped = {
        name: _recorded(name, getattr(cls, name), owner, recorder)
        for name in hooks
        if name not in ONLY_IF_DEFINED[kind] or _defines(cls, name, base)
    }
    subclass = type(f"Recording{cls.__name__}", (cls,), wrapped)
    # Lightning keys checkpointed state by __qualname__ (callbacks, DataModule): keep the
    # wrapped class's, so recorded and unrecorded runs read each other's checkpoints.
    subclass.__qualname__ = cls.__qualname__
    return subclass


def _recorded(name: str, method: Callable, owner: str, recorder: Recorder) -> Callable:
    """`method` (hook `name`), recording each call before running it."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs).arguments
        trainer = bound.get("trainer") or _trainer_of(self) or recorder.trainer
        recorder.trainer = trainer
        epoch, step = _clock(trainer)
        key = tuple(_key_args(bound, trainer))
        recorder.calls.append(Call(owner, name, key, epoch, step, recorder.depth))
        if name in SNAPSHOT_HOOKS and trainer is not None:
            recorder.snapshots.append(Snapshot(owner, name, epoch, step, metrics_of(trainer)))
        recorder.depth += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            recorder.depth -= 1

    return hook


def metrics_of(trainer: Any) -> tuple[tuple[str, float], ...]:
    """`trainer.callback_metrics`, sorted, as plain floats."""
    return tuple(sorted((k, float(v)) for k, v in trainer.callback_metrics.items()))


def _trainer_of(obj: Any) -> Any:
    # LightningModule.trainer raises when detached; its `_trainer` doesn't.
    return getattr(obj, "_trainer", None) or getattr(obj, "trainer", None)


def _clock(trainer: Any) -> tuple[int, int]:
    if trainer is None:
        return -1, -1
    return int(trainer.current_epoch), int(trainer.global_step)


def _key_args(bound: Mapping[str, Any], trainer: Any) -> Iterator[tuple[str, Value]]:
    """The arguments worth comparing, as plain values; tensors and dicts are left out."""
    for name, value in bound.items():
        if name in ("batch_idx", "dataloader_idx", "epoch"):
            yield name, int(value)
        elif name == "stage":  # a str enum: "fit", "validate", ...
            yield name, str(getattr(value, "value", value))
        elif name == "optimizer":
            yield name, _optimizer_index(trainer, value)
        elif name == "optimizer_closure":
            yield "closure", callable(value)
        elif name in ("gradient_clip_val", "metric"):
            yield name, None if value is None else float(value)
        elif name == "gradient_clip_algorithm":
            yield name, None if value is None else str(getattr(value, "value", value))
        elif name in ("scheduler", "exception"):
            yield name, type(value).__name__
        elif name == "outputs":
            yield name, _shape(value)
        elif name == "device":
            yield name, str(value)


def _optimizer_index(trainer: Any, optimizer: Any) -> Value:
    """The optimizer's position in `trainer.optimizers` (LightningOptimizer unwrapped)."""
    target = getattr(optimizer, "_optimizer", optimizer)
    for i, candidate in enumerate(getattr(trainer, "optimizers", ())):
        if getattr(candidate, "_optimizer", candidate) is target:
            return i
    return type(target).__name__


def _shape(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, Mapping):
        return "dict(" + ",".join(sorted(map(str, value))) + ")"
    return type(value).__name__


# ----------------------------------------------------------------- the dispatch side

# pytorch_lightning.trainer.call's dispatch points: every caller reaches them as
# `call.<name>`, so replacing the module attribute sees every call.
_DISPATCHERS = {
    "_call_lightning_module_hook": ("module", None),
    "_call_lightning_datamodule_hook": ("datamodule", None),
    "_call_callback_hooks": ("callbacks", None),
    "_call_strategy_hook": ("strategy", None),
    "_call_callbacks_state_dict": ("callbacks", "state_dict"),
    "_call_callbacks_on_save_checkpoint": ("callbacks", "on_save_checkpoint"),
    "_call_callbacks_on_load_checkpoint": ("callbacks", "on_load_checkpoint"),
    "_call_callbacks_load_state_dict": ("callbacks", "load_state_dict"),
}


@contextlib.contextmanager
def dispatch_recorded(recorder: Recorder) -> Iterator[None]:
    """Record `(target, hook)` at each of Lightning's dispatch points while inside."""
    from pytorch_lightning.trainer import call

    originals = {name: getattr(call, name) for name in _DISPATCHERS}
    for name, (target, hook) in _DISPATCHERS.items():
        setattr(call, name, _dispatching(originals[name], target, hook, recorder))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(call, name, original)


def _dispatching(original: Callable, target: str, hook: str | None, rec: Recorder) -> Callable:
    @functools.wraps(original)
    def dispatch(trainer: Any, *args: Any, **kwargs: Any) -> Any:
        rec.dispatched.append((target, hook or args[0]))
        return original(trainer, *args, **kwargs)

    return dispatch


# ---------------------------------------------------------------------- the science

BATCH = 4
WEIGHTS = torch.tensor([[1.0], [-2.0], [0.5]])


def loader(samples: int, seed: int) -> DataLoader:
    """A fixed regression data set, `samples // BATCH` batches, not shuffled."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 3, generator=generator)
    y = x @ WEIGHTS + 0.1 * torch.randn(samples, 1, generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=BATCH)


class Loaders:
    """The data sets, for the module's own *_dataloader methods and for the DataModule's."""

    def train_dataloader(self) -> DataLoader:
        return loader(16, seed=1)

    def val_dataloader(self) -> DataLoader:
        return loader(8, seed=2)

    def test_dataloader(self) -> DataLoader:
        return loader(8, seed=3)


class Regressor(Loaders, pl.LightningModule):
    """A linear regression, built in configure_model as Lightning documents for deferred init."""

    def __init__(self, schedulers: bool = True) -> None:
        super().__init__()
        self.schedulers = schedulers
        self.net: nn.Module | None = None
        self.model_callbacks: list[pl.Callback] = []

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

    def configure_callbacks(self) -> list[pl.Callback]:
        return self.model_callbacks


class WarmUp(Regressor):
    """LR warm-up by overriding optimizer_step, as Lightning's docs show."""

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure=None):
        scale = min(1.0, (self.trainer.global_step + 1) / 2)
        for group in optimizer.param_groups:
            group["lr"] = 0.1 * scale
        optimizer.step(closure=optimizer_closure)


class Lbfgs(Regressor):
    """A closure optimizer: LBFGS evaluates the closure several times per step."""

    def configure_optimizers(self) -> Any:
        return torch.optim.LBFGS(self.parameters(), lr=0.5, max_iter=2)


class Gan(pl.LightningModule):
    """Manual optimization with two optimizers, GAN-shaped."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        torch.manual_seed(0)
        self.generator = nn.Linear(3, 3)
        self.discriminator = nn.Linear(3, 1)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x, _ = batch
        opt_g, opt_d = self.optimizers()
        with self.toggled_optimizer(opt_g):
            loss_g = -self.discriminator(self.generator(x)).mean()
            opt_g.zero_grad()
            self.manual_backward(loss_g)
            opt_g.step()
        self.toggle_optimizer(opt_d)
        fake = self.generator(x).detach()
        loss_d = self.discriminator(fake).mean() - self.discriminator(x).mean()
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        self.clip_gradients(opt_d, gradient_clip_val=1.0)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        self.lr_schedulers().step()
        self.log_dict({"g_loss": loss_g, "d_loss": loss_d}, on_step=True, on_epoch=True)

    def configure_optimizers(self) -> Any:
        opt_g = torch.optim.SGD(self.generator.parameters(), lr=0.01)
        opt_d = torch.optim.SGD(self.discriminator.parameters(), lr=0.01)
        return [opt_g, opt_d], [torch.optim.lr_scheduler.StepLR(opt_g, step_size=1)]

    def train_dataloader(self) -> DataLoader:
        return loader(16, seed=1)


class ModeKeeper(Regressor):
    """Overrides on_validation_model_train, so Lightning calls it instead of restoring modes."""

    def on_validation_model_train(self) -> None:
        super().on_validation_model_train()


class Failing(Regressor):
    """training_step raises at batch 1."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if batch_idx == 1:
            raise RuntimeError("training_step failed on purpose")
        return super().training_step(batch, batch_idx)


class Data(Loaders, pl.LightningDataModule):
    """A stateful DataModule: its state_dict is saved in checkpoints."""

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
    """Overrides the batch-transfer hooks, which then win over the module's."""

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int):
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch


class Counter(pl.Callback):
    """A stateful user callback."""

    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1

    def state_dict(self) -> dict[str, int]:
        return {"batches": self.batches}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.batches = state_dict["batches"]


class Probe(pl.Callback):
    """A stateless callback, returned by the module's configure_callbacks."""


# ------------------------------------------------------------------------ scenarios


def make_trainer(tmp: Path, callbacks: list[pl.Callback], **settings: Any) -> pl.Trainer:
    defaults = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": any(isinstance(c, ModelCheckpoint) for c in callbacks),
        "default_root_dir": tmp,
        "max_epochs": 1,
        "num_sanity_val_steps": 0,
    }
    return pl.Trainer(callbacks=callbacks, **{**defaults, **settings})


@contextlib.contextmanager
def quiet(caught: list[str]) -> Iterator[None]:
    """Collect warnings (first lines) into `caught`; silence Lightning's info logging."""
    lightning_log = logging.getLogger("pytorch_lightning")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            yield
        for w in seen:
            if issubclass(w.category, DeprecationWarning | FutureWarning):
                continue  # the libraries' own deprecations, not Lightning's behaviour
            line = str(w.message).strip().splitlines()[0]
            if line not in caught:
                caught.append(line)
    finally:
        lightning_log.setLevel(level)


def record(action: Callable[[Recorder], pl.Trainer], tmp: Path) -> Recording:
    """Run `action` with both recorders on; what it recorded, warnings with `tmp` as <tmp>."""
    recorder, caught = Recorder(), []
    with quiet(caught), dispatch_recorded(recorder):
        trainer = action(recorder)
    return Recording(
        tuple(recorder.calls),
        tuple(recorder.dispatched),
        tuple(recorder.snapshots),
        trainer.global_step,
        trainer.current_epoch,
        tuple(line.replace(str(tmp), "<tmp>") for line in caught),
        metrics_of(trainer),
    )


def fit_setup(tmp: Path, rec: Recorder | None, **settings: Any) -> tuple[pl.Trainer, Any, Any]:
    """Scenario a's set-up: a module, a DataModule and three kinds of callbacks.

    Args:
        tmp: Where checkpoints go.
        rec: The recorder; None for the same classes unrecorded.
        **settings: Trainer settings over scenario a's.
    """

    def make(cls: type, owner: str) -> type:
        return cls if rec is None else recording(cls, owner, rec)

    torch.manual_seed(0)
    module = make(Regressor, "module")()
    module.model_callbacks = [make(Probe, "model_callback")()]
    checkpoint = make(ModelCheckpoint, "checkpoint")(
        dirpath=tmp / "checkpoints", monitor="val_loss", save_top_k=-1
    )
    callbacks = [make(Counter, "callback")(), checkpoint]
    fit_settings = {
        "max_epochs": 2,
        "accumulate_grad_batches": 2,
        "gradient_clip_val": 0.5,
        "val_check_interval": 2,
        "num_sanity_val_steps": 1,
    }
    trainer = make_trainer(tmp, callbacks, **{**fit_settings, **settings})
    return trainer, module, make(Data, "datamodule")()


def _counted(tmp: Path, rec: Recorder, **settings: Any) -> pl.Trainer:
    """A Trainer with one recorded stateful callback."""
    return make_trainer(tmp, [recording(Counter, "callback", rec)()], **settings)


def fit(tmp: Path, rec: Recorder) -> pl.Trainer:
    """a. fit: 2 epochs of 4 batches, accumulate 2, clip 0.5, validation every 2 batches, a 1-batch
    sanity check, a per-step and a per-epoch scheduler, ModelCheckpoint(monitor="val_loss",
    save_top_k=-1), a stateful Trainer callback and one from configure_callbacks, a DataModule."""
    trainer, module, data = fit_setup(tmp, rec)
    trainer.fit(module, datamodule=data)
    return trainer


def validate(tmp: Path, rec: Recorder) -> pl.Trainer:
    """b. validate(model, datamodule=...)."""
    trainer = _counted(tmp, rec)
    module, data = recording(Regressor, "module", rec)(), recording(Data, "datamodule", rec)()
    trainer.validate(module, datamodule=data, verbose=False)
    return trainer


def test(tmp: Path, rec: Recorder) -> pl.Trainer:
    """c. test(model): the module's own test_dataloader."""
    trainer = _counted(tmp, rec)
    trainer.test(recording(Regressor, "module", rec)(), verbose=False)
    return trainer


def predict(tmp: Path, rec: Recorder) -> pl.Trainer:
    """d. predict(model, dataloaders=...): a DataLoader passed in."""
    trainer = _counted(tmp, rec)
    trainer.predict(recording(Regressor, "module", rec)(), dataloaders=loader(8, seed=4))
    return trainer


MID_EPOCH = Path("checkpoints", "epoch=0-step=1.ckpt")


def _mid_epoch_checkpoint(tmp: Path) -> None:
    """Resume's first run, unrecorded: scenario a's set-up stopped by max_steps=1."""
    trainer, module, data = fit_setup(tmp, None, max_steps=1)
    trainer.fit(module, datamodule=data)
    if not (tmp / MID_EPOCH).is_file():
        raise FileNotFoundError(f"the first run wrote no {tmp / MID_EPOCH}")


def resume(tmp: Path, rec: Recorder) -> pl.Trainer:
    """e. resume: scenario a's set-up run first with max_steps=1 (its checkpoint: after the
    mid-epoch validation at step 1), then fit again from it with ckpt_path: this second run."""
    trainer, module, data = fit_setup(tmp, rec)
    trainer.fit(module, datamodule=data, ckpt_path=tmp / MID_EPOCH)
    return trainer


def manual(tmp: Path, rec: Recorder) -> pl.Trainer:
    """f. manual optimization, two optimizers (GAN-like), one scheduler, 1 epoch of 4 batches."""
    trainer = _counted(tmp, rec)
    trainer.fit(recording(Gan, "module", rec)())
    return trainer


def warmup(tmp: Path, rec: Recorder) -> pl.Trainer:
    """g1. optimizer_step overridden for LR warm-up; 4 batches, accumulate 2, no validation."""
    trainer = _counted(tmp, rec, accumulate_grad_batches=2, limit_val_batches=0)
    trainer.fit(recording(WarmUp, "module", rec)(schedulers=False))
    return trainer


def lbfgs(tmp: Path, rec: Recorder) -> pl.Trainer:
    """g2. LBFGS(max_iter=2), a closure optimizer; 2 batches, no validation."""
    trainer = _counted(tmp, rec, limit_train_batches=2, limit_val_batches=0)
    trainer.fit(recording(Lbfgs, "module", rec)(schedulers=False))
    return trainer


def multi_val(tmp: Path, rec: Recorder) -> pl.Trainer:
    """h. validate with two dataloaders (2 and 1 batches): dataloader_idx and metric suffixes."""
    trainer = _counted(tmp, rec)
    loaders = [loader(8, seed=2), loader(4, seed=5)]
    trainer.validate(recording(Regressor, "module", rec)(), loaders, verbose=False)
    return trainer


def overrides(tmp: Path, rec: Recorder) -> pl.Trainer:
    """i. validate with hooks that run only when overridden: the module's
    on_validation_model_train, the DataModule's three batch-transfer hooks."""
    trainer = _counted(tmp, rec)
    module = recording(ModeKeeper, "module", rec)()
    data = recording(Transferring, "datamodule", rec)()
    trainer.validate(module, datamodule=data, verbose=False)
    return trainer


def exception(tmp: Path, rec: Recorder) -> pl.Trainer:
    """j. fit whose training_step raises at batch 1 (the RuntimeError is caught)."""
    trainer = _counted(tmp, rec, limit_val_batches=0)
    module, data = recording(Failing, "module", rec)(), recording(Data, "datamodule", rec)()
    with contextlib.suppress(RuntimeError):
        trainer.fit(module, datamodule=data)
    return trainer


SCENARIOS: dict[str, Callable[[Path, Recorder], pl.Trainer]] = {
    "fit": fit,
    "validate": validate,
    "test": test,
    "predict": predict,
    "resume": resume,
    "manual": manual,
    "warmup": warmup,
    "lbfgs": lbfgs,
    "multi_val": multi_val,
    "overrides": overrides,
    "exception": exception,
}
BEFORE = {"resume": _mid_epoch_checkpoint}  # unrecorded preparation


def scenario(name: str, tmp: Path) -> Recording:
    """Scenario `name`, run in the empty directory `tmp` with both recorders on."""
    if name in BEFORE:
        with quiet([]):
            BEFORE[name](tmp)
    return record(functools.partial(SCENARIOS[name], tmp), tmp)


def record_all() -> dict[str, Recording]:
    """Every scenario, each in its own temporary directory."""
    results = {}
    for name in SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp:
            results[name] = scenario(name, Path(tmp))
    return results


# ------------------------------------------------------------------------ the document

# Module methods Lightning reaches without `_call_lightning_module_hook`.
BYPASSING = {
    "training_step": "via the strategy (`_call_strategy_hook`)",
    "validation_step": "via the strategy",
    "test_step": "via the strategy",
    "predict_step": "via the strategy",
    "backward": "via the strategy and the precision plugin",
    "state_dict": "via the strategy, when a checkpoint is saved",
    "load_state_dict": "via the strategy, when a checkpoint is restored",
    "clip_gradients": "from the default configure_gradient_clipping, or the user",
    "manual_backward": "the user",
    "toggle_optimizer": "the user (or `toggled_optimizer`)",
    "untoggle_optimizer": "the user (or `toggled_optimizer`)",
}


def unreceived(recording: Recording) -> list[str]:
    """What Lightning dispatched that the receiving side missed: empty when the recorder is whole.

    The module's and the DataModule's dispatched hooks must be exactly their received
    calls, in order, less `BYPASSING`; each hook dispatched to the callbacks must reach a
    recorded callback (a dispatch reaches all of them, or only some: monitoring_callbacks).
    """
    problems = []
    for target, bypassing in (("module", BYPASSING), ("datamodule", {})):
        sent = [hook for to, hook in recording.dispatched if to == target]
        got = [c.hook for c in recording.calls if c.owner == target and c.hook not in bypassing]
        if sent != got:
            pairs = enumerate(zip(sent, got, strict=False))
            at = next((i for i, (a, b) in pairs if a != b), min(len(sent), len(got)))
            problems.append(
                f"{target} call {at}: dispatched {sent[at : at + 1]}, got {got[at : at + 1]}"
            )
    to_callbacks = {hook for to, hook in recording.dispatched if to == "callbacks"}
    at_callbacks = {c.hook for c in recording.calls if c.owner not in ("module", "datamodule")}
    problems += [
        f"callbacks: dispatched {h}, got none" for h in sorted(to_callbacks - at_callbacks)
    ]
    return problems


def counts(recording: Recording) -> dict[str, int]:
    """Calls and distinct hooks, on every owner and on the module alone."""
    module = [c for c in recording.calls if c.owner == "module"]
    return {
        "calls": len(recording.calls),
        "hooks": len({(c.owner, c.hook) for c in recording.calls}),
        "module calls": len(module),
        "module hooks": len({c.hook for c in module}),
    }


def merged(calls: tuple[Call, ...]) -> Iterator[tuple[Call, list[str]]]:
    """Runs of one hook with the same arguments, clock and depth, with their owners in order."""
    group: list[Call] = []
    for call in calls:
        if group and call[1:] != group[0][1:]:
            yield group[0], [c.owner for c in group]
            group = []
        group.append(call)
    if group:
        yield group[0], [c.owner for c in group]


def _signature(call: Call) -> str:
    return f"{call.hook}(" + ", ".join(f"{k}={v}" for k, v in call.args) + ")"


def _sequence(recording: Recording) -> list[str]:
    lines = []
    for call, owners in merged(recording.calls):
        text = f"e{call.epoch} s{call.step}  " + "  " * call.depth + _signature(call)
        lines.append(f"{text:<76} {', '.join(owners)}".rstrip())
    return lines


def _hook_table(recordings: dict[str, Recording]) -> list[str]:
    rows: dict[str, dict[str, Any]] = {}
    for name, recording in recordings.items():
        for call, owners in merged(recording.calls):
            row = rows.setdefault(call.hook, {"on": [], "args": {}, "calls": {}})
            if owners not in row["on"]:
                row["on"].append(owners)
            row["args"].update(dict.fromkeys(k for k, _ in call.args))
            row["calls"][name] = row["calls"].get(name, 0) + len(owners)
    lines = ["| hook | on (in order) | key arguments | calls per scenario |", "|---|---|---|---|"]
    for hook, row in rows.items():
        on = " / ".join(" → ".join(owners) for owners in _widest(row["on"]))
        per = ", ".join(f"{n} {k}" for n, k in row["calls"].items())
        lines.append(f"| `{hook}` | {on} | {', '.join(row['args'])} | {per} |")
    return lines


def _widest(orders: list[list[str]]) -> list[list[str]]:
    """The owner orders seen, in order, less those whose owners a longer one already shows."""
    kept: list[list[str]] = []
    for order in sorted(orders, key=len, reverse=True):
        if not any(set(order) <= set(wider) for wider in kept):
            kept.append(order)
    return [order for order in orders if order in kept]


def _never_called(recordings: dict[str, Recording]) -> list[str]:
    called = {(c.owner, c.hook) for r in recordings.values() for c in r.calls}
    kinds = {"module": MODULE_HOOKS, "datamodule": DATAMODULE_HOOKS, "callback": CALLBACK_HOOKS}
    return [
        f"- {owner}: " + (", ".join(f"`{h}`" for h in hooks if (owner, h) not in called) or "none")
        for owner, hooks in kinds.items()
    ]


def _scenario(name: str, recording: Recording) -> list[str]:
    doc = inspect.getdoc(SCENARIOS[name]) or ""
    numbers = counts(recording)
    lines = [
        f"### {name}",
        "",
        " ".join(doc.split()),
        "",
        f"{numbers['calls']} calls of {numbers['hooks']} distinct (owner, hook) pairs; on the "
        f"module {numbers['module calls']} calls of {numbers['module hooks']} hooks. "
        f"At the end: global_step {recording.global_step}, current_epoch "
        f"{recording.current_epoch}.",
        "",
    ]
    snapshots = [s for s in recording.snapshots if s.owner == "module"]
    if snapshots:
        lines.append("`trainer.callback_metrics` as the module's hook sees it on entry:")
        lines.append("")
        for snap in snapshots:
            keys = ", ".join(k for k, _ in snap.metrics) or "(empty)"
            lines.append(f"- `{snap.hook}` (epoch {snap.epoch}, step {snap.step}): {keys}")
        lines.append("")
    if recording.warnings:
        lines.append("Lightning warned: " + " / ".join(f"“{w}”" for w in recording.warnings))
        lines.append("")
    lines += ["<details><summary>the sequence</summary>", "", "```text"]
    lines += _sequence(recording)
    return [*lines, "```", "", "</details>", ""]


def markdown(recordings: dict[str, Recording]) -> str:
    """The summary document, docs/lightning-hooks.md, from the scenarios' recordings."""
    table = ["| scenario | calls | distinct hooks | module calls | module hooks | global_step |"]
    table.append("|---|---|---|---|---|---|")
    for name, recording in recordings.items():
        n = counts(recording)
        table.append(
            f"| {name} | {n['calls']} | {n['hooks']} | {n['module calls']} "
            f"| {n['module hooks']} | {recording.global_step} |"
        )
    bypass = [f"- `{hook}`: {how}" for hook, how in BYPASSING.items()]
    parts = [
        HEADER.format(version=pl.__version__),
        "\n".join(table),
        RULES,
        "## Every hook called\n\n" + "\n".join(_hook_table(recordings)),
        "## Defined by Lightning but not called in these scenarios\n\n"
        + "\n".join(_never_called(recordings)),
        "## Calls that bypass the dispatch points\n\n"
        "The module methods Lightning calls without `_call_lightning_module_hook` "
        "(the receiving side records them; the dispatch side does not see them):\n\n"
        + "\n".join(bypass),
        "## The scenarios\n\n"
        + "\n".join(line for name, rec in recordings.items() for line in _scenario(name, rec)),
    ]
    return "\n\n".join(part.strip("\n") for part in parts) + "\n"


HEADER = """\
# Lightning's hook sequence, recorded (draft)

What pytorch_lightning {version} calls on a LightningModule, a LightningDataModule and
Callbacks, recorded from live runs on the CPU by `tests/lightning_oracle.py` (on the
receiving side: every hook wrapped, each call appended to a list; cross-checked against
Lightning's dispatch points). **Generated, do not edit:** regenerate with

    python tests/lightning_oracle.py > docs/lightning-hooks.md

`tests/test_lightning_oracle.py` pins the facts below against the live run and fails
when this file is out of date.

Owners: `module` (the LightningModule), `datamodule`, `callback` (a stateful Trainer
callback), `model_callback` (returned by `configure_callbacks`), `checkpoint` (a
ModelCheckpoint). In the sequences, `eE sS` is `current_epoch` and `global_step` at
the call, indentation is nesting (a call made while another recorded call runs), and
a line lists every owner that received the call, in order.

## Counts
"""

RULES = """\
## Rules found

Each rule is seen in the recordings and pinned by a test, except the parts marked
(source): read in Lightning's code, not exercised here.

*Set-up.* `configure_callbacks` runs first (its callbacks join the Trainer's, after
them; ModelCheckpoints are moved last; (source) a returned callback replaces a Trainer
callback of the same type), then `prepare_data` (DataModule,
then module; each only when overridden), `setup(stage)` (DataModule, callbacks, module),
`configure_model` (only when overridden), the checkpoint restore when `ckpt_path` is
given, `configure_optimizers` (fit only), `on_fit_start`. `stage` is "fit", "validate",
"test" or "predict". `teardown(stage)` (DataModule, callbacks, module) runs last, after
`on_fit_end`.

*Callbacks first.* For every hook that both get, the callbacks (in list order) run before
the module, except `on_train_epoch_end`: other callbacks, then the module, then the
"monitoring" callbacks (ModelCheckpoint, EarlyStopping), so these see what the module
logs there. The DataModule's `setup`/`teardown` run before the callbacks'.

*Sanity check.* `on_sanity_check_start`/`_end` are callback-only hooks around an
ordinary validation run of `num_sanity_val_steps` batches (all validation hooks fire),
after `on_fit_start` and before `train_dataloader` and `on_train_start`. It is skipped
when resuming.

*A training batch (automatic optimization).* The batch-transfer hooks
(`on_before_batch_transfer`, `transfer_batch_to_device`, `on_after_batch_transfer`) run
before `on_train_batch_start`. Lightning builds a closure: `training_step`, then, on the
first batch of each accumulation window, `on_before_zero_grad` and
`optimizer_zero_grad` (after `training_step`, before backward), then
`on_before_backward`, `backward`, `on_after_backward`. An accumulation-only batch calls
the closure directly: no `optimizer_step`. A stepping batch calls
`optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)`, whose default
`optimizer.step(closure=...)` runs the closure, then `on_before_optimizer_step`,
`configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)`
(always, with `None` when no clipping is set) and from it `clip_gradients`; all of it is
inside `optimizer_step`. `global_step` counts optimizer steps and has already grown when
`lr_scheduler_step` runs for `interval="step"` schedulers (after a stepping batch) and
for `interval="epoch"` ones (after the epoch's last batch, before its
`on_train_batch_end` and before the end-of-epoch validation). Then
`on_train_batch_end(outputs={"loss"}, ...)`, then validation if due, preceded by
`on_validation_model_zero_grad` when the batch stepped ((source): not after an
accumulation-only batch). (source) `on_train_batch_start` returning -1 ends the epoch.

*Closure optimizers.* LBFGS evaluates the closure several times within one
`optimizer_step`; each evaluation runs `training_step`, the zero-grad hooks, backward,
`on_before_optimizer_step` and the clipping hooks. Overriding `optimizer_step` (LR
warm-up) changes nothing else: it still receives the closure and must call
`optimizer.step(closure=optimizer_closure)` for `training_step` to run.

*Validation.* `on_validation_model_eval`, `on_validation_start`,
`on_validation_epoch_start`, per batch the transfer hooks, `on_validation_batch_start`,
`validation_step`, `on_validation_batch_end(outputs)`, then `on_validation_epoch_end`,
`on_validation_end`, and `on_validation_model_train` only when overridden (otherwise
Lightning restores each submodule's mode itself). ModelCheckpoint saves inside its
`on_validation_end` (mid-epoch too), so before the module's: module `state_dict`,
callbacks' `state_dict` (stateful ones), DataModule `state_dict`, every callback's
`on_save_checkpoint`, module `on_save_checkpoint`. `dataloader_idx` reaches the batch
hooks and steps only when there are several dataloaders; `on_validation_epoch_end` runs
once after all of them, and metrics get the `/dataloader_idx_N` suffix. Test and predict
are the same shape (`on_predict_model_eval`; no `*_model_train` for predict).

*Epoch end.* `on_train_epoch_end` runs after the epoch's last validation. `current_epoch`
grows after it: `on_train_end` and `on_fit_end` see `max_epochs`.

*`callback_metrics`.* On entry to `on_validation_epoch_end` it already holds this run's
aggregate of what `validation_step` logged (the sanity check's too; reset after it). On
entry to `on_train_epoch_end` it holds the `*_epoch` aggregates of what `training_step`
logged and the latest validation values; during the epoch the bare name of an
`on_step=True, on_epoch=True` metric holds the step value.

*Resume (`ckpt_path`).* After `configure_model`: module `on_load_checkpoint`, module
`load_state_dict`, DataModule `load_state_dict`, every callback's `on_load_checkpoint`,
then `load_state_dict` of the callbacks with saved state; then `configure_optimizers`.
From a mid-epoch checkpoint: no sanity check, both dataloaders requested before
`on_train_start`, no `on_train_epoch_start` for the resumed epoch, `batch_idx` continues
where the checkpoint stopped, and a plain DataLoader starts again from its first batch
(Lightning warns).

*Manual optimization.* No `optimizer_step`, `optimizer_zero_grad`, `on_before_zero_grad`,
`configure_gradient_clipping` or `lr_scheduler_step` calls. `manual_backward` runs
`on_before_backward`, `backward`, `on_after_backward`; each `optimizer.step()` runs
`on_before_optimizer_step`; `zero_grad()` runs no hook. `global_step` counts every
optimizer step: two optimizers over 4 batches end at 8. `on_train_batch_end` gets
`outputs={}` when `training_step` returns None.

*Only when overridden.* `configure_model`, `prepare_data`, `on_validation_model_train`,
`on_test_model_train`, the `*_dataloader` methods (a source only when overridden; a
DataModule or dataloaders passed to the Trainer win over the module's), and the
DataModule's batch-transfer hooks (they then replace the module's, which are no longer
called). A callback's state is saved only when its `state_dict` is non-empty, and only
those get `load_state_dict`; every callback gets `on_load_checkpoint`.

*What overriding changes* (source: Lightning's `is_overridden` checks). Besides the
hooks above: overriding `lr_scheduler_step` lets automatic optimization take schedulers
that aren't torch LRSchedulers (else a MisconfigurationException); overriding
`optimizer_step` or `optimizer_zero_grad` makes GradientAccumulationScheduler warn that
they run once per optimizer step, not per batch; under DeepSpeed an overridden
`backward` is ignored and an overridden `configure_gradient_clipping` doesn't clip (both
with a warning); defining both `configure_model` and the deprecated
`configure_sharded_model` is an error; a step method that isn't overridden disables its
loop (no `validation_step`: no validation, no sanity check). Lightning's check sees
through `functools.wraps`, so the recorder's wrappers alone change nothing.

*Exceptions.* An exception in `fit` calls `on_exception` on the callbacks, then the
DataModule (the LightningModule has no such hook), and no `teardown`, `on_train_end` or
`on_fit_end`.
"""


if __name__ == "__main__":
    sys.stdout.write(markdown(record_all()))
