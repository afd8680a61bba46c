"""Hooks: who is called, in which order, and what it costs when nobody listens.

Lightning's hooks, recorded from pytorch_lightning 2.6.6 (the oracle this
project is tested against), in one table: :data:`HOOKS` says which objects
receive each hook and in what order. At the start of each stage (fit,
validate, test, predict) the Trainer builds one :class:`Hooks` from it: for
every hook, the implementations that are actually overridden, bound and
chained into one callable. A hook nobody overrides becomes :func:`nothing`,
so the loop calls ``hooks.on_train_batch_start(batch, batch_idx)`` on every
batch and pays one empty call for it (``benchmarks/hooks.py`` measures it).

Callbacks need no base class: any method named after a hook is called with
``(trainer, module, *args)``. :class:`Callback` exists for code ported from
Lightning (``class MyCallback(Callback)``); its methods do nothing, and one
that isn't overridden is never called.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from .batches import to_device

if TYPE_CHECKING:
    from .module import DataModule, Module
    from .trainer import Trainer


class Hook(NamedTuple):
    """One row of the hook table.

    Attributes:
        name: The method name.
        on: Who receives it, in call order: ``datamodule``, ``callbacks``,
            ``module``; ``monitoring`` is the monitoring callbacks
            (ModelCheckpoint, EarlyStopping) when they go after the module;
            ``datamodule|module`` is the DataModule's override, else the module's.
        args: What it receives (besides ``trainer, module`` for callbacks).
        when: When it runs.
        always: The module's method is called even when not overridden, because
            its default does the work (``optimizer_step`` steps the optimizer).
    """

    name: str
    on: tuple[str, ...]
    args: str
    when: str
    always: bool = False


CB_MODULE = ("callbacks", "module")
MODULE = ("module",)
SETUP = ("datamodule", "callbacks", "module")
TRANSFER = ("datamodule|module",)
BATCH = "batch, batch_idx[, dataloader_idx]"  # dataloader_idx: with several loaders
BATCH_END = f"outputs, {BATCH}"

# In Lightning's order within a fit (then what validate/test/predict add).
HOOKS: tuple[Hook, ...] = (
    Hook("configure_callbacks", MODULE, "", "first, every stage; returns callbacks", True),
    Hook("prepare_data", ("datamodule", "module"), "", "before setup, on one rank per node"),
    Hook("setup", SETUP, "stage", "after prepare_data"),
    Hook("configure_model", MODULE, "", "after setup, before the module moves to its device"),
    Hook("configure_optimizers", MODULE, "", "fit, after the module is on its device", True),
    Hook("on_load_checkpoint", ("module", "callbacks"), "checkpoint", "with ckpt_path"),
    Hook("on_fit_start", CB_MODULE, "", "fit, after set-up"),
    Hook("on_sanity_check_start", ("callbacks",), "", "before the sanity check"),
    Hook("on_sanity_check_end", ("callbacks",), "", "after the sanity check"),
    Hook("on_train_start", CB_MODULE, "", "fit, before the first epoch"),
    Hook("on_train_epoch_start", CB_MODULE, "", "each epoch (not a resumed one)"),
    Hook("on_before_batch_transfer", TRANSFER, "batch, dataloader_idx", "each batch; returns it"),
    Hook("transfer_batch_to_device", TRANSFER, "batch, device, dataloader_idx", "each batch"),
    Hook("on_after_batch_transfer", TRANSFER, "batch, dataloader_idx", "each batch; returns it"),
    Hook("on_train_batch_start", CB_MODULE, "batch, batch_idx", "each batch; -1 ends the epoch"),
    Hook("optimizer_step", MODULE, "epoch, batch_idx, optimizer, closure", "stepping batch", True),
    Hook("on_before_zero_grad", CB_MODULE, "optimizer", "in the closure, a window's 1st batch"),
    Hook("optimizer_zero_grad", MODULE, "epoch, batch_idx, optimizer", "after it", True),
    Hook("on_before_backward", CB_MODULE, "loss", "in the closure, after training_step"),
    Hook("backward", MODULE, "loss", "in the closure", True),
    Hook("on_after_backward", CB_MODULE, "", "in the closure, after backward"),
    Hook("on_before_optimizer_step", CB_MODULE, "optimizer", "after the closure, before step"),
    Hook(
        "configure_gradient_clipping",
        MODULE,
        "optimizer, gradient_clip_val, gradient_clip_algorithm",
        "after on_before_optimizer_step (None: no clipping set)",
        True,
    ),
    Hook("lr_scheduler_step", MODULE, "scheduler, metric", "when a scheduler is due", True),
    Hook("on_train_batch_end", CB_MODULE, "outputs, batch, batch_idx", "each batch"),
    Hook("on_validation_model_zero_grad", MODULE, "", "before a validation in fit", True),
    Hook("on_validation_model_eval", MODULE, "", "validation starts", True),
    Hook("on_validation_start", CB_MODULE, "", "validation starts"),
    Hook("on_validation_epoch_start", CB_MODULE, "", "validation starts"),
    Hook("on_validation_batch_start", CB_MODULE, BATCH, "each batch"),
    Hook("on_validation_batch_end", CB_MODULE, BATCH_END, "each batch"),
    Hook("on_validation_epoch_end", CB_MODULE, "", "after the batches of every loader"),
    Hook("on_validation_end", CB_MODULE, "", "validation ends (ModelCheckpoint saves)"),
    Hook("on_validation_model_train", MODULE, "", "validation ends (only when overridden)"),
    Hook("on_save_checkpoint", CB_MODULE, "checkpoint", "a checkpoint is written"),
    Hook("on_train_epoch_end", ("callbacks", "module", "monitoring"), "", "after its validation"),
    Hook("on_train_end", CB_MODULE, "", "fit, after the last epoch"),
    Hook("on_fit_end", CB_MODULE, "", "fit, at the end"),
    Hook("teardown", SETUP, "stage", "last, every stage"),
    Hook("on_test_model_eval", MODULE, "", "test starts", True),
    Hook("on_test_start", CB_MODULE, "", "test starts"),
    Hook("on_test_epoch_start", CB_MODULE, "", "test starts"),
    Hook("on_test_batch_start", CB_MODULE, BATCH, "each batch"),
    Hook("on_test_batch_end", CB_MODULE, BATCH_END, "each batch"),
    Hook("on_test_epoch_end", CB_MODULE, "", "after the batches of every loader"),
    Hook("on_test_end", CB_MODULE, "", "test ends"),
    Hook("on_test_model_train", MODULE, "", "test ends (only when overridden)"),
    Hook("on_predict_model_eval", MODULE, "", "predict starts", True),
    Hook("on_predict_start", CB_MODULE, "", "predict starts"),
    Hook("on_predict_epoch_start", CB_MODULE, "", "predict starts"),
    Hook("on_predict_batch_start", CB_MODULE, BATCH, "each batch"),
    Hook("on_predict_batch_end", CB_MODULE, BATCH_END, "each batch"),
    Hook("on_predict_epoch_end", CB_MODULE, "", "after the batches"),
    Hook("on_predict_end", CB_MODULE, "", "predict ends"),
    Hook("on_exception", ("callbacks", "datamodule"), "exception", "fit failed or was stopped"),
)
BY_NAME = {hook.name: hook for hook in HOOKS}
TRANSFERS = ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")


def nothing(*args: Any) -> None:
    """What a hook nobody overrides resolves to."""


def overrides(obj: Any, name: str, base: type) -> bool:
    """Whether ``obj`` (its class, or the object itself) defines hook ``name`` other than
    ``base``'s default."""
    if name in getattr(obj, "__dict__", ()):
        return callable(obj.__dict__[name])
    method = getattr(type(obj), name, None)
    return callable(method) and method is not getattr(base, name, None)


def monitoring(callback: Any) -> bool:
    """ModelCheckpoint and EarlyStopping: their on_train_epoch_end runs after the module's."""
    return bool(getattr(callback, "monitoring", False))


def checkpointing(callback: Any) -> bool:
    """ModelCheckpoint: Lightning moves these last among the callbacks."""
    return bool(getattr(callback, "checkpointing", False))


def merge_callbacks(callbacks: Iterable[Any], extra: Iterable[Any] | None) -> list[Any]:
    """The Trainer's callbacks with ``configure_callbacks``'s, as Lightning merges them.

    A returned callback replaces the Trainer's of the same class; the rest
    follow the Trainer's; checkpointing callbacks go last.
    """
    extra = list(extra or ())
    replaced = {type(cb) for cb in extra}
    merged = [cb for cb in callbacks if type(cb) not in replaced] + extra
    return [cb for cb in merged if not checkpointing(cb)] + [
        cb for cb in merged if checkpointing(cb)
    ]


class Hooks:
    """Every hook of :data:`HOOKS` as one callable, resolved once per stage.

    ``hooks.<name>(*args)`` runs the overriding implementations in Lightning's
    order and returns the module's result (e.g. ``on_train_batch_start``'s -1,
    a transfer hook's batch). While a module or callback hook runs,
    ``trainer.metrics.hook`` names it, so ``self.log`` knows where it is.

    Args:
        trainer: The Trainer (callbacks receive it first).
        module: The Module.
        datamodule: The DataModule, or None when loaders were passed in.
        callbacks: The callbacks, in order (after ``configure_callbacks``).
    """

    def __init__(
        self,
        trainer: Trainer,
        module: Module,
        datamodule: DataModule | None,
        callbacks: list[Any],
    ) -> None:
        from .module import DataModule, Module

        self._trainer, self._module, self._datamodule = trainer, module, datamodule
        self._callbacks = callbacks
        self._bases = {"module": Module, "datamodule": DataModule, "callbacks": Callback}
        for hook in HOOKS:
            if "monitoring" in hook.on:  # two calls: the Trainer collects metrics between
                before, after = hook.on[:-1], ("monitoring",)
                setattr(self, hook.name, self._chain(hook.name, self.implementations(hook, before)))
                after_calls = self.implementations(hook, after)
                setattr(self, f"{hook.name}_monitoring", self._chain(hook.name, after_calls))
            else:
                setattr(self, hook.name, self._chain(hook.name, self.implementations(hook)))
        # The module's `always` hooks it leaves as they are (and clip_gradients,
        # which configure_gradient_clipping's default calls): the loop does their
        # default work without calling them (automatic.py).
        self.defaults = frozenset(
            name
            for name in (*(hook.name for hook in HOOKS if hook.always), "clip_gradients")
            if not overrides(module, name, Module)
        )
        # No transfer hook overridden: the Trainer moves batches itself (fast path).
        self.transfers = any(getattr(self, name) is not nothing for name in TRANSFERS)
        if self.transfers:  # the ones not overridden do their default
            for name in TRANSFERS:
                if getattr(self, name) is nothing:
                    setattr(self, name, getattr(module, name))

    def implementations(
        self, hook: Hook, receivers: tuple[str, ...] | None = None
    ) -> list[tuple[Callable[..., Any], bool]]:
        """The bound implementations of ``hook`` (on ``receivers`` only), in call order.

        Each comes with whether its result counts (the module's and the
        DataModule's do; a callback's doesn't).
        """
        name, found = hook.name, []
        for receiver in receivers or hook.on:
            if receiver == "datamodule|module":
                owner = self._datamodule
                if owner is None or not overrides(owner, name, self._bases["datamodule"]):
                    owner = self._module
                if overrides(owner, name, self._bases["module"]) or owner is self._datamodule:
                    found.append((getattr(owner, name), True))
            elif receiver in ("callbacks", "monitoring"):
                last = receiver == "monitoring"
                reorder = "monitoring" in hook.on
                found += [
                    (functools.partial(getattr(cb, name), self._trainer, self._module), False)
                    for cb in self._callbacks
                    if overrides(cb, name, Callback) and (not reorder or monitoring(cb) == last)
                ]
            else:
                owner = self._module if receiver == "module" else self._datamodule
                if owner is None:
                    continue
                if overrides(owner, name, self._bases[receiver]) or (
                    hook.always and receiver == "module"  # the engine's default does the work
                ):
                    found.append((getattr(owner, name), True))
        return found

    def prepare_data_once(self) -> None:
        """``prepare_data``, as Lightning runs it: the DataModule's, then the module's.

        Each runs on local rank zero (once per node), or on global rank zero
        when its owner sets ``prepare_data_per_node = False``; every rank
        waits for it, so ``setup`` finds the data in place.
        """
        strategy = self._trainer.strategy
        for receiver, owner in (("datamodule", self._datamodule), ("module", self._module)):
            hook = self.of("prepare_data", receiver)
            if hook is nothing:
                continue
            per_node = getattr(owner, "prepare_data_per_node", True)
            if strategy.local_rank == 0 if per_node else strategy.is_global_zero:
                hook()
            strategy.barrier()

    def of(self, name: str, receiver: str) -> Callable[..., Any]:
        """Hook ``name`` on one kind of receiver only (a restore interleaves them)."""
        return self._chain(name, self.implementations(BY_NAME[name], (receiver,)))

    def _chain(self, name: str, calls: list[tuple[Callable[..., Any], bool]]) -> Callable[..., Any]:
        """One callable for ``calls``, with ``metrics.hook`` naming the hook while they run.

        It returns the last non-None result of a call whose result counts.
        """
        if not calls:
            return nothing
        metrics = self._trainer.metrics

        def every(*args: Any) -> Any:
            outer, metrics.hook = metrics.hook, name
            result = None
            try:
                for call, counts in calls:
                    value = call(*args)
                    if counts and value is not None:
                        result = value
            finally:
                metrics.hook = outer
            return result

        every.__name__ = every.__qualname__ = name
        return every


class DataHooks:
    """The batch-transfer hooks a Module and a DataModule share (Lightning's DataHooks).

    Not overridden, the Trainer moves batches itself; a DataModule's override
    wins over the module's.
    """

    # Lightning's: prepare_data runs once per node (False: once in all).
    prepare_data_per_node = True

    def prepare_data(self) -> None:
        """Download or write data to disk, on one rank; called before ``setup`` (if overridden)."""

    def setup(self, stage: str) -> None:
        """Build what ``stage`` ("fit", "validate", "test", "predict") needs."""

    def teardown(self, stage: str) -> None:
        """Undo ``setup``; called last in every stage."""

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Change a batch before it moves to the device; returns it."""
        return batch

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int):
        """Move a batch to ``device`` (tensors in lists, tuples and dicts)."""
        return to_device(batch, device)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Change a batch after it moved to the device; returns it."""
        return batch


class ModuleHooks(DataHooks):
    """Every hook the Trainer calls on a Module, with Lightning's defaults.

    Hooks whose default does nothing are called only when overridden; the
    ones marked ``always`` in :data:`HOOKS` do the work by default
    (``optimizer_step`` steps, ``backward`` backpropagates): override them to
    change it, as in Lightning.
    """

    def configure_callbacks(self) -> list[Any]:
        """Callbacks the module brings; they replace the Trainer's of the same class."""
        return []

    def configure_model(self) -> None:
        """Build layers here to create them late (only when overridden)."""

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        """Step the optimizer; ``optimizer_closure`` runs training_step and backward.

        Override for LR warm-up, then call ``optimizer.step(closure=optimizer_closure)``.
        """
        optimizer.step(closure=optimizer_closure)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Any) -> None:
        """Zero the gradients, at the start of each accumulation window."""
        optimizer.zero_grad()

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Backpropagate ``loss`` (already scaled for 16-mixed)."""
        loss.backward(*args, **kwargs)

    def configure_gradient_clipping(
        self,
        optimizer: Any,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip before each step; the arguments are the Trainer's options.

        ``clip_gradients`` is the Module's (``module.py``, rules in ``gradients.py``).
        """
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        """Step a scheduler (``metric``: the monitored value, for ReduceLROnPlateau)."""
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)

    def on_validation_model_zero_grad(self) -> None:
        """Free the gradients before a validation inside fit."""
        self.zero_grad()

    def on_validation_model_eval(self) -> None:
        """Put the module in eval mode for validation."""
        self.eval()

    def on_validation_model_train(self) -> None:
        """Back to training mode (not overridden: each submodule's mode is restored)."""
        self.train()

    def on_test_model_eval(self) -> None:
        """Put the module in eval mode for testing."""
        self.eval()

    def on_test_model_train(self) -> None:
        """After testing (not overridden: each submodule's mode is restored)."""
        self.train()

    def on_predict_model_eval(self) -> None:
        """Put the module in eval mode for predicting."""
        self.eval()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add entries to a checkpoint before it is written (tensors, primitives)."""

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Read back what :meth:`on_save_checkpoint` added."""


def _documented(name: str) -> Callable[..., None]:
    def hook(self: Any, *args: Any) -> None:
        pass

    row = BY_NAME[name]
    hook.__signature__ = _signature(row, ("self",))  # type: ignore[attr-defined]
    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = f"Called {row.when}; receives ({row.args}). Does nothing by default."
    return hook


def _signature(hook: Hook, first: tuple[str, ...]) -> inspect.Signature:
    """The signature :data:`HOOKS` gives ``hook``, after the ``first`` parameters."""
    names = [arg.strip(" []") for arg in hook.args.replace("[", ",").split(",") if arg.strip()]
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter(n, kind) for n in (*first, *names)]
    if "[" in hook.args:  # an optional last argument: dataloader_idx
        parameters[-1] = parameters[-1].replace(default=0)
    return inspect.Signature(parameters)


# The rest of the module's hooks do nothing by default: called only when overridden.
for _hook in HOOKS:
    if "module" in _hook.on and not hasattr(ModuleHooks, _hook.name):
        setattr(ModuleHooks, _hook.name, _documented(_hook.name))


class Callback:
    """Optional base class for callbacks: every hook, doing nothing.

    Subclass it and override the hooks you need (Lightning's ``Callback``);
    the Trainer calls only the overridden ones. Plain classes with hook-named
    methods work the same. Each hook receives ``(trainer, module, ...)``;
    :data:`HOOKS` lists the rest of the arguments and when each runs.
    """

    # on_train_epoch_end after the module's (Lightning's ModelCheckpoint, EarlyStopping).
    monitoring = False
    checkpointing = False  # moved after the other callbacks (ModelCheckpoint)

    @property
    def state_key(self) -> str:
        """Its state's key in a checkpoint: the class name, as Lightning's."""
        return type(self).__qualname__

    def _generate_state_key(self, **settings: Any) -> str:
        """A key that tells apart instances with other ``settings`` (Lightning's format)."""
        return generated_state_key(self, **settings)

    def state_dict(self) -> dict[str, Any]:
        """What this callback keeps in checkpoints (saved only when not empty)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


def generated_state_key(callback: Any, **settings: Any) -> str:
    """Lightning's state key format: the class name, then ``settings`` (e.g. the monitor)."""
    return f"{type(callback).__qualname__}{settings!r}"


def _no_op(hook: Hook) -> Callable[..., None]:
    """A hook that does nothing, with the signature :data:`HOOKS` gives it."""

    def method(self: Callback, trainer: Trainer, module: Module, *args: Any) -> None:
        """Does nothing; see ``HOOKS`` for when it runs."""

    method.__signature__ = _signature(hook, ("self", "trainer", "pl_module"))  # type: ignore[attr-defined]
    method.__name__ = method.__qualname__ = hook.name
    return method


# Callbacks receive every hook but the module-only ones and the DataModule's.
for _hook in HOOKS:
    if "callbacks" in _hook.on:
        setattr(Callback, _hook.name, _no_op(_hook))
