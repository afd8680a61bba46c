"""Base classes for the science: a LightningModule-style Module and a DataModule.

They carry Lightning's hook names and ``self.log`` semantics and nothing else;
the loop that calls them is ``trainer.py``. Subclass them in ``module.py`` and
``data.py``.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from . import batches, gradients, manual
from . import checkpoint as ckpt
from .errors import UsageError
from .hooks import DataHooks, ModuleHooks
from .hparams import Hyperparameters, rebuild
from .log_entry import is_metric

if TYPE_CHECKING:
    from .trainer import Trainer


class Module(Hyperparameters, ModuleHooks, nn.Module):
    """A ``torch.nn.Module`` with LightningModule's hooks.

    Override ``training_step`` and ``configure_optimizers``; the other hooks
    (``hooks.ModuleHooks``: Lightning's, with its defaults) are optional. The
    Trainer sets ``self.trainer``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._trainer: weakref.ref[Trainer] | None = None
        self.loaded_from: ckpt.Source | None = None  # the checkpoint the weights came from
        # (None again once a fit trains them)

    @property
    def trainer(self) -> Trainer | None:
        """The Trainer running this module, or None outside one."""
        return self._trainer() if self._trainer is not None else None

    @trainer.setter
    def trainer(self, trainer: Trainer | None) -> None:
        # A weak reference: copying the module (SWA, EMA) must not copy the Trainer.
        self._trainer = weakref.ref(trainer) if trainer is not None else None

    # ------------------------------------------------------------ state

    @property
    def device(self) -> torch.device:
        """The device the module's parameters live on."""
        for tensor in self.parameters():
            return tensor.device
        return torch.device("cpu")

    @property
    def on_gpu(self) -> bool:
        """Whether the module is on a CUDA device."""
        return self.device.type == "cuda"

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point parameters' dtype (the default dtype when there are none)."""
        for tensor in self.parameters():
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.get_default_dtype()

    @property
    def example_input_array(self) -> Any:
        """An example input for ``forward``, as Lightning's (None until one is set)."""
        return self.__dict__.get("_example_input_array")

    @example_input_array.setter
    def example_input_array(self, example: Any) -> None:
        self.__dict__["_example_input_array"] = example

    @property
    def current_epoch(self) -> int:
        """The epoch being trained (0-based); 0 outside a Trainer."""
        return self.trainer.current_epoch if self.trainer else 0

    @property
    def global_step(self) -> int:
        """Optimizer steps taken so far; 0 outside a Trainer."""
        return self.trainer.global_step if self.trainer else 0

    @property
    def global_rank(self) -> int:
        """This process's rank among all; 0 outside a Trainer."""
        return self.trainer.global_rank if self.trainer else 0

    @property
    def local_rank(self) -> int:
        """This process's rank on its machine; 0 outside a Trainer."""
        return self.trainer.local_rank if self.trainer else 0

    @property
    def logger(self) -> Any:
        """The Trainer's first experiment logger, or None."""
        return self.trainer.logger if self.trainer else None

    @property
    def loggers(self) -> list[Any]:
        """The Trainer's experiment loggers."""
        return self.trainer.loggers if self.trainer else []

    def print(self, *args: Any, **kwargs: Any) -> None:
        """``print``, on rank zero only (as Lightning's)."""
        if self.global_rank == 0:
            print(*args, **kwargs)

    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any:
        """Every rank's ``data``, stacked on a new first dimension (one row per rank).

        ``data``: a tensor, a number, or a collection of them (numbers become
        tensors on this module's device); each tensor must have the same shape on
        every rank, and every rank must call it, as in Lightning. In one process
        the tensors come back as they are. ``sync_grads``: gradients flow back
        through the gather to each rank's own part.
        """
        gather = self._attached("all_gather").strategy.all_gather
        tensors = batches.to_tensors(data, self.device)
        return batches.apply_to_tensors(tensors, lambda t: gather(t, group, sync_grads))

    def freeze(self) -> None:
        """No gradients for any parameter, and eval mode (as Lightning's)."""
        for parameter in self.parameters():
            parameter.requires_grad = False
        self.eval()

    def unfreeze(self) -> None:
        """Gradients for every parameter again, and train mode."""
        for parameter in self.parameters():
            parameter.requires_grad = True
        self.train()

    @classmethod
    def load_from_checkpoint(
        cls,
        path: str | Path,
        map_location: str | torch.device = "cpu",
        strict: bool | None = None,
        **overrides,
    ) -> Module:
        """Rebuild a module from a checkpoint's hyperparameters and weights.

        The checkpoint is checked first (``checkpoint.py``): a damaged or
        foreign file, or one of another model, raises ``CheckpointError``
        naming it. The module's ``loaded_from`` says which checkpoint, epoch
        and step its weights come from.

        Args:
            path: A checkpoint written by the Trainer (a file, or a sharded folder).
            map_location: Where to load the tensors.
            strict: Whether the weights' names must be the module's exactly
                (None: the module's ``strict_loading``, True unless set, as
                Lightning). False loads those both have and warns about the
                rest; a weight of another shape is refused either way.
            **overrides: Hyperparameters to replace (for example ``lr=1e-4``).

        As Lightning, the module's ``on_load_checkpoint`` sees the checkpoint
        before its weights are loaded (it may rename or convert them).
        """
        path = Path(path)
        if path.is_dir():
            # A sharded checkpoint folder (fsdp, deepspeed): the strategy gathers
            # the full weights here, in this one process, into a fresh module.
            from .strategy import full_weights, read_folder

            checkpoint = read_folder(path)
            module, strict = _rebuild(cls, path, checkpoint, overrides, strict)
            _load_weights(module, full_weights(path, module), strict)
            module = module.to(map_location)
        else:
            checkpoint = ckpt.load(path, map_location=map_location)
            module, strict = _rebuild(cls, path, checkpoint, overrides, strict)
            state = checkpoint["state_dict"]
            # Come back in the dtype it was trained in (bf16-true, 64-true, ...): the
            # parameters' (buffers may stay float32, like normalisation statistics).
            names = {name for name, _ in module.named_parameters()}
            dtypes = {t.dtype for n, t in state.items() if n in names and t.is_floating_point()}
            if len(dtypes) == 1:
                module.to(dtypes.pop())
            _load_weights(module, state, strict)
        module.loaded_from = ckpt.source(path, checkpoint)
        return module

    # ------------------------------------------------------------ logging

    def log(
        self,
        name: str,
        value: torch.Tensor | float | Any,
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: str | Callable = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any = None,
        add_dataloader_idx: bool = True,
        batch_size: int | None = None,
        metric_attribute: str | None = None,
        rank_zero_only: bool = False,
    ) -> None:
        """Log a metric, with Lightning's meaning for every option (and its order).

        ``value`` is a number, a one-element tensor, or a metric object (a
        torchmetrics ``Metric``, anything with ``compute()`` and ``reset()``)
        that you update in the step: its ``forward`` result is the step value;
        at the epoch's end it is computed, syncing itself across processes,
        and reset.

        In ``training_step`` (and the other per-batch training hooks) the
        default is ``on_step=True, on_epoch=False``; in validation/test steps
        ``on_step=False, on_epoch=True``; epoch-level hooks (``on_*_epoch_*``,
        ``on_*_start``) log epoch values only; other hooks (``on_fit_start``,
        ``configure_optimizers``, ``predict_step``, ...) can't log. With both,
        the metric is recorded as ``name_step`` and ``name_epoch``. Epoch
        values are means weighted by ``batch_size`` (taken from the batch when
        not given), or ``reduce_fx`` "sum", "max" or "min"; ``sync_dist``
        reduces them across processes. When an evaluation has several
        dataloaders, names get ``/dataloader_idx_N`` unless
        ``add_dataloader_idx=False``. ``metric_attribute`` is accepted for
        Lightning code and not needed here.
        """
        trainer = self.trainer
        if trainer is None:
            return  # called outside a Trainer (e.g. in a unit test): nothing to do
        if sync_dist_group is not None:
            raise ValueError(
                f"self.log({name!r}, sync_dist_group=...): this engine syncs over every "
                "process; drop sync_dist_group"
            )
        trainer.metrics.log(
            name,
            value,
            prog_bar=prog_bar,
            logger=logger is not False,
            on_step=on_step,
            on_epoch=on_epoch,
            reduce_fx=reduce_fx,
            # rank_zero_only: only rank zero calls this, so no collective may run.
            sync_dist=sync_dist and not rank_zero_only,
            batch_size=batch_size,
            add_dataloader_idx=add_dataloader_idx,
            detach=not enable_graph,
        )

    def log_dict(self, dictionary: Mapping[str, Any] | Any, **options: Any) -> None:
        """Log several metrics with the same options as :meth:`log`.

        ``dictionary`` maps names to values, or is a torchmetrics
        ``MetricCollection`` (its metrics are logged under their prefixed names).
        """
        if is_metric(dictionary):
            # A MetricCollection: prefixed names, and compute groups' shared state
            # passed by reference (Lightning's items(keep_base=False, copy_state=False)).
            items = dictionary.items(keep_base=False, copy_state=False)
        else:
            items = dictionary.items()
        for name, value in items:
            self.log(name, value, **options)

    # ------------------------------------------------------------ steps

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | dict:
        """Return the loss (or a dict with a ``"loss"`` key) for one batch."""
        raise NotImplementedError("Override training_step in your Module")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Compute and ``self.log`` validation metrics for one batch."""

    def test_step(self, batch: Any, batch_idx: int) -> None:
        """Compute and ``self.log`` test metrics for one batch."""

    def predict_step(self, batch: Any, batch_idx: int) -> Any:
        """Return predictions for one batch (default: ``self(batch)``)."""
        return self(batch)

    def configure_optimizers(self) -> Any:
        """Return the optimizer(s) and scheduler(s), in any of Lightning's forms.

        An optimizer; a list of optimizers; ``([optimizers], [schedulers])``;
        ``{"optimizer": ..., "lr_scheduler": ..., "monitor": ...}`` where the
        scheduler may be a dict with ``interval``, ``frequency``, ``monitor``,
        ``strict``, ``name``; a list of such dicts; or None (no optimizer).
        Several optimizers need manual optimization (see ``engine/manual.py``).
        """
        raise NotImplementedError("Override configure_optimizers in your Module")

    # ------------------------------------------------------------ optimization
    # Manual optimization, as in Lightning: set ``self.automatic_optimization =
    # False`` in ``__init__``; ``training_step`` then gets the optimizers from
    # ``self.optimizers()``, calls ``self.manual_backward(loss)`` and steps them.

    # A class default, so reading it never takes nn.Module's __getattr__ path.
    _automatic_optimization = True

    @property
    def automatic_optimization(self) -> bool:
        """True: the loop backpropagates and steps. False: ``training_step`` does."""
        return self._automatic_optimization

    @automatic_optimization.setter
    def automatic_optimization(self, automatic: bool) -> None:
        self._automatic_optimization = automatic

    _strict_loading: bool | None = None  # None: not set (True), as Lightning's

    @property
    def strict_loading(self) -> bool:
        """Whether loading a checkpoint needs every weight (False: e.g. adapters only)."""
        return self._strict_loading in (None, True)

    @strict_loading.setter
    def strict_loading(self, strict: bool) -> None:
        self._strict_loading = strict

    def optimizers(self, use_pl_optimizer: bool = True) -> Any:
        """The optimizer, or the list of them, from ``configure_optimizers``.

        Their ``step()`` goes through the precision's loss scaler and counts
        ``global_step``; ``use_pl_optimizer=False`` gives the bare optimizers.
        """
        trainer = self._attached("optimizers")
        found = manual.handles(trainer) if use_pl_optimizer else trainer.optimizers
        return found[0] if len(found) == 1 else found

    def lr_schedulers(self) -> Any:
        """The scheduler, the list of them, or None; under manual optimization you step them."""
        schedulers = [
            config["scheduler"] for config in self._attached("lr_schedulers").lr_schedulers
        ]
        if not schedulers:
            return None
        return schedulers[0] if len(schedulers) == 1 else schedulers

    def manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Backpropagate ``loss`` in ``training_step`` (scaled for 16-mixed, with the hooks)."""
        if self.automatic_optimization:
            raise UsageError(
                "to use manual_backward, please disable automatic optimization: set model "
                "property `automatic_optimization` as False"
            )
        manual.manual_backward(self._attached("manual_backward"), loss, *args, **kwargs)

    def clip_gradients(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip ``optimizer``'s gradients by "norm" (default) or "value", after backward."""
        trainer = self._attached("clip_gradients")
        gradients.clip_gradients(trainer, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def toggle_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Only ``optimizer``'s parameters require gradients until :meth:`untoggle_optimizer`."""
        self._attached("toggle_optimizer")
        gradients.toggle(self, optimizer)

    def untoggle_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Undo :meth:`toggle_optimizer`."""
        self._attached("untoggle_optimizer")
        gradients.untoggle(self, optimizer)

    @contextmanager
    def toggled_optimizer(self, optimizer: torch.optim.Optimizer) -> Iterator[None]:
        """``with self.toggled_optimizer(opt):`` toggles ``opt`` for the block."""
        self.toggle_optimizer(optimizer)
        try:
            yield
        finally:
            self.untoggle_optimizer(optimizer)

    def _attached(self, method: str) -> Trainer:
        if self.trainer is None:
            raise UsageError(
                f"self.{method}() needs a Trainer: {type(self).__qualname__} is not attached "
                "to one; call it while the Trainer runs the module (e.g. in training_step)"
            )
        return self.trainer


def _rebuild(
    cls: type[Module],
    path: Path,
    checkpoint: dict[str, Any],
    overrides: dict[str, Any],
    strict: bool | None,
) -> tuple[Module, bool]:
    """``cls`` from a checkpoint's hyperparameters, refused if the weights aren't its own;
    and whether loading is strict (``strict``, else the module's ``strict_loading``).

    The module's ``on_load_checkpoint`` runs first: the weights are checked as
    it leaves them.
    """
    module = rebuild(cls, path, checkpoint, "hyper_parameters", overrides)
    if strict is not None and module._strict_loading not in (None, strict):
        raise ValueError(
            f"load_from_checkpoint(..., strict={strict}) and {cls.__name__}.strict_loading="
            f"{module.strict_loading} disagree; give both the same value"
        )
    strict = module.strict_loading if strict is None else strict
    module.on_load_checkpoint(checkpoint)
    if isinstance(checkpoint.get("state_dict"), dict):  # a file: its weights, as the hook left them
        checkpoint = {**checkpoint, "shapes": None}
    ckpt.check_fits(path, checkpoint, module, strict=strict)
    return module, strict


def _load_weights(module: Module, state: dict[str, Any], strict: bool) -> None:
    """``module.load_state_dict(state)``; not strict: a warning names what didn't match."""
    keys = module.load_state_dict(state, strict=strict)
    for names, where in (
        (keys.missing_keys, "the model, not the checkpoint"),
        (keys.unexpected_keys, "the checkpoint, not the model"),
    ):
        if names:
            warnings.warn(f"strict=False: weights in {where}: {names}", stacklevel=3)


class DataModule(Hyperparameters, DataHooks):
    """Lightning's DataModule: where the data comes from and how it is batched.

    Its ``state_dict`` (when not empty) travels in checkpoints and comes back
    through ``load_state_dict`` on resume; so do its ``save_hyperparameters``.
    """

    @classmethod
    def load_from_checkpoint(cls, path: str | Path, **overrides: Any) -> DataModule:
        """Build the DataModule a checkpoint's fit used, as Lightning's classmethod.

        From the hyperparameters its ``save_hyperparameters`` recorded (none:
        ``cls()``), with ``overrides`` replacing them (``batch_size=64``), then
        its ``state_dict`` from the checkpoint when it kept one. A damaged or
        foreign checkpoint, or hyperparameters that don't fit ``__init__``,
        raise ``CheckpointError`` naming the file.
        """
        path = Path(path)
        if path.is_dir():  # a sharded folder (fsdp, deepspeed): the loop's file holds these
            from .strategy import read_folder

            checkpoint = read_folder(path)
        else:
            checkpoint = ckpt.load(path, map_location="cpu")
        datamodule = rebuild(cls, path, checkpoint, "datamodule_hyper_parameters", overrides)
        if "datamodule" in checkpoint:
            datamodule.load_state_dict(checkpoint["datamodule"])
        return datamodule

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data (e.g. a tokenizer's vocabulary)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def on_exception(self, exception: BaseException) -> None:
        """Called when fit fails or is stopped, after the callbacks' ``on_exception``."""

    def prepare_data(self) -> None:
        """Download or write data to disk; called once, before ``setup``."""

    def setup(self, stage: str) -> None:
        """Build datasets for ``stage`` ("fit", "validate", "test" or "predict")."""

    def train_dataloader(self) -> DataLoader:
        """The training batches."""
        raise NotImplementedError("Override train_dataloader in your DataModule")

    def val_dataloader(self) -> DataLoader | None:
        """The validation batches, or None to skip validation."""
        return None

    def test_dataloader(self) -> DataLoader:
        """The test batches."""
        raise NotImplementedError("Override test_dataloader in your DataModule")

    def predict_dataloader(self) -> DataLoader:
        """The batches to predict on."""
        raise NotImplementedError("Override predict_dataloader in your DataModule")
