"""Lightning's ``BaseFinetuning`` and ``BackboneFinetuning``: train a pretrained part later.

    class Unfreeze(BaseFinetuning):
        def freeze_before_training(self, module):
            self.freeze(module.encoder)  # before configure_optimizers

        def finetune_function(self, module, epoch, optimizer):
            if epoch == 3:  # as each epoch starts
                self.unfreeze_and_add_param_group(module.encoder, optimizer, lr=1e-4)

``configure_optimizers`` then optimizes only what trains:
``Adam(filter(lambda p: p.requires_grad, self.parameters()))``.
``BackboneFinetuning(unfreeze_backbone_at_epoch=10)`` does this for a module's
``backbone``, its learning rate growing each epoch after.

Two differences from Lightning 2.6.6, both where it loses work:

- A resumed run continues as the unbroken one would: the parameter groups
  added and which parameters train (and BatchNorm's running statistics) come
  back from the checkpoint. Lightning restores the groups but freezes their
  parameters again (its issue 21901).
- Under DDP the parameters unfrozen train on every rank: the strategy wraps
  the model again when the set that trains changes between epochs. Lightning
  leaves them out of the gradient all-reduce (its issue 20340).

DeepSpeed is refused, as Lightning does. Under FSDP training works, but a
checkpoint written after an unfreezing can't resume (FSDP reads the
optimizer's state before the callback can unfreeze): that is refused in one
line.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .errors import ConfigError
from .hooks import Callback
from .strategy import NAME as STRATEGY

log = logging.getLogger(__name__)

Modules = nn.Module | Iterable[Any]  # a module, or (nested) iterables of them


class BaseFinetuning(Callback):
    """Freeze parts of the module before training, unfreeze them as epochs start.

    Override ``freeze_before_training(module)`` (called in ``setup``, before
    ``configure_optimizers``) and ``finetune_function(module, epoch,
    optimizer)`` (called for each optimizer as each training epoch starts).
    """

    def __init__(self) -> None:
        # Per optimizer: its parameter groups, parameters by name (Lightning's key).
        self._internal_optimizer_metadata: dict[int, list[dict[str, Any]]] = {}
        self._restarting = False
        self._trainable: list[str] | None = None  # restored: the names that train
        self._tracking: dict[str, bool] = {}  # restored: BatchNorm's track_running_stats
        self._fitting: tuple[Any, nn.Module] | None = None

    def state_dict(self) -> dict[str, Any]:
        """The groups added (Lightning's key), and which parameters train, by name."""
        state: dict[str, Any] = {"internal_optimizer_metadata": self._internal_optimizer_metadata}
        if self._fitting is not None:
            module = self._fitting[1]
            state["trainable"] = [n for n, p in module.named_parameters() if p.requires_grad]
            state["track_running_stats"] = {
                name: m.track_running_stats
                for name, m in module.named_modules()
                if isinstance(m, _BatchNorm)
            }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the saved groups; during a fit's restore, put them back on the optimizers.

        The engine loads callback states after ``configure_optimizers`` and
        before the optimizers' own states, which need the groups in place.
        """
        self._restarting = True
        self._internal_optimizer_metadata = state_dict.get("internal_optimizer_metadata", {})
        self._trainable = state_dict.get("trainable")
        self._tracking = state_dict.get("track_running_stats", {})
        if self._fitting is not None:
            self._restore(*self._fitting)

    def setup(self, trainer: Any, module: nn.Module, stage: str) -> None:
        """Freeze (``freeze_before_training``) before the optimizers are made."""
        self._fitting = (trainer, module)
        self.freeze_before_training(module)
        if trainer.strategy.owns_optimizer_step:
            raise ConfigError(
                f"{type(self).__name__} changes which parameters train, and DeepSpeed fixes "
                "that when it starts (as in Lightning); drop the callback or use another strategy"
            )

    def on_fit_start(self, trainer: Any, module: nn.Module) -> None:
        """Restore the saved groups if ``load_state_dict`` came before this fit (Lightning's)."""
        if self._restarting:
            self._restore(trainer, module)

    def on_train_epoch_start(self, trainer: Any, module: nn.Module) -> None:
        """``finetune_function`` for each optimizer; remember the groups it added."""
        names = {p: n for n, p in module.named_parameters()}
        for index, optimizer in enumerate(trainer.optimizers):
            before = len(optimizer.param_groups)
            self.finetune_function(module, trainer.current_epoch, optimizer)
            groups = optimizer.param_groups
            if index not in self._internal_optimizer_metadata:
                self._internal_optimizer_metadata[index] = _named(groups, names)
            elif len(groups) != before:
                self._internal_optimizer_metadata[index] += _named(groups[before:], names)

    def _restore(self, trainer: Any, module: nn.Module) -> None:
        """The saved parameter groups on the optimizers; what trained trains again."""
        self._restarting = False
        if not self._internal_optimizer_metadata:
            return
        params = dict(module.named_parameters())
        for index, optimizer in enumerate(trainer.optimizers):
            saved = self._internal_optimizer_metadata.get(index)
            if saved is None:
                continue
            made = len(optimizer.param_groups)  # by configure_optimizers
            optimizer.param_groups = [
                {**group, "params": [params[name] for name in group["params"]]} for group in saved
            ]
            if self._trainable is None:  # a Lightning checkpoint: the groups added train
                for group in optimizer.param_groups[made:]:
                    for param in group["params"]:
                        param.requires_grad = True
        if self._trainable is not None:
            trainable = set(self._trainable)
            if STRATEGY == "fsdp" and any(
                p.requires_grad != (n in trainable) for n, p in params.items()
            ):
                raise ConfigError(
                    f"{type(self).__name__}: this checkpoint was written after parameters were "
                    "unfrozen, and FSDP reads the optimizer's state before they can be; resume "
                    "it with strategy=ddp, or load its weights and fit again"
                )
            for name, param in params.items():
                param.requires_grad = name in trainable
        for name, m in module.named_modules():
            if name in self._tracking:
                m.track_running_stats = self._tracking[name]

    # ------------------------------------------------------------ to override

    def freeze_before_training(self, module: nn.Module) -> None:
        """Override: freeze what trains later (``self.freeze(module.backbone)``)."""
        raise NotImplementedError(f"{type(self).__name__} must define freeze_before_training")

    def finetune_function(self, module: nn.Module, epoch: int, optimizer: Any) -> None:
        """Override: unfreeze as ``epoch`` starts (``self.unfreeze_and_add_param_group``)."""
        raise NotImplementedError(f"{type(self).__name__} must define finetune_function")

    # ------------------------------------------------------------ Lightning's helpers

    @staticmethod
    def flatten_modules(modules: Modules) -> list[nn.Module]:
        """The leaf modules of ``modules``, and those holding parameters themselves."""
        if isinstance(modules, nn.ModuleDict):
            modules = modules.values()
        if isinstance(modules, Iterable):
            found = (m for each in modules for m in BaseFinetuning.flatten_modules(each))
        else:
            found = modules.modules()
        return [m for m in found if not list(m.children()) or m._parameters]

    @staticmethod
    def filter_params(
        modules: Modules, train_bn: bool = True, requires_grad: bool = True
    ) -> Iterator[nn.Parameter]:
        """The parameters of ``modules`` whose ``requires_grad`` is ``requires_grad``."""
        for m in BaseFinetuning.flatten_modules(modules):
            if isinstance(m, _BatchNorm) and not train_bn:
                continue
            yield from (p for p in m.parameters(recurse=False) if p.requires_grad == requires_grad)

    @staticmethod
    def make_trainable(modules: Modules) -> None:
        """Unfreeze ``modules`` (BatchNorm tracks its running statistics again)."""
        for m in BaseFinetuning.flatten_modules(modules):
            if isinstance(m, _BatchNorm):
                m.track_running_stats = True
            for param in m.parameters(recurse=False):
                param.requires_grad = True

    @staticmethod
    def freeze_module(module: nn.Module) -> None:
        """Freeze ``module``'s own parameters (BatchNorm stops tracking its statistics)."""
        if isinstance(module, _BatchNorm):
            module.track_running_stats = False
        for param in module.parameters(recurse=False):
            param.requires_grad = False

    @staticmethod
    def freeze(modules: Modules, train_bn: bool = True) -> None:
        """Freeze ``modules``; with ``train_bn``, their BatchNorm layers keep training."""
        for m in BaseFinetuning.flatten_modules(modules):
            if isinstance(m, _BatchNorm) and train_bn:
                BaseFinetuning.make_trainable(m)
            else:
                BaseFinetuning.freeze_module(m)

    @staticmethod
    def filter_on_optimizer(optimizer: Any, params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
        """``params`` less those ``optimizer`` already holds (a warning names them).

        Lightning compares values (``torch.equal``), which also drops a new
        parameter equal to one already there; this compares identity.
        """
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        params = list(params)
        kept = [p for p in params if id(p) not in held]
        if len(kept) < len(params):
            warnings.warn(
                f"{len(params) - len(kept)} of the parameters to unfreeze are already in the "
                "optimizer and were skipped; build it on the trainable ones only: "
                f"{type(optimizer).__name__}(filter(lambda p: p.requires_grad, self.parameters()))",
                stacklevel=2,
            )
        return kept

    @staticmethod
    def unfreeze_and_add_param_group(
        modules: Modules,
        optimizer: Any,
        lr: float | None = None,
        initial_denom_lr: float = 10.0,
        train_bn: bool = True,
    ) -> None:
        """Unfreeze ``modules`` and give their parameters to ``optimizer`` as a new group.

        Its learning rate is ``lr``, else the first group's over ``initial_denom_lr``.
        """
        BaseFinetuning.make_trainable(modules)
        group_lr = optimizer.param_groups[0]["lr"] / initial_denom_lr if lr is None else float(lr)
        params = BaseFinetuning.filter_params(modules, train_bn=train_bn, requires_grad=True)
        if params := BaseFinetuning.filter_on_optimizer(optimizer, params):
            optimizer.add_param_group({"params": params, "lr": group_lr})


def _named(groups: list[dict[str, Any]], names: dict[Any, str]) -> list[dict[str, Any]]:
    """``groups`` with each parameter given by its name (what a checkpoint keeps)."""
    return [{**group, "params": [names[p] for p in group["params"]]} for group in groups]


def multiplicative(epoch: int) -> float:
    """BackboneFinetuning's default ``lambda_func``: the backbone's rate doubles each epoch."""
    return 2.0


class BackboneFinetuning(BaseFinetuning):
    """Train the module's ``backbone`` from ``unfreeze_backbone_at_epoch``, its rate rising.

    When it unfreezes, the backbone's learning rate is ``backbone_initial_lr``,
    else the first group's times ``backbone_initial_ratio_lr``; each epoch after,
    it is multiplied by ``lambda_func(epoch + 1)``, and with ``should_align``
    it stops at the first group's rate.
    """

    def __init__(
        self,
        unfreeze_backbone_at_epoch: int = 10,
        lambda_func: Callable[[int], float] = multiplicative,
        backbone_initial_ratio_lr: float = 10e-2,
        backbone_initial_lr: float | None = None,
        should_align: bool = True,
        initial_denom_lr: float = 10.0,
        train_bn: bool = True,
        verbose: bool = False,
        rounding: int = 12,
    ) -> None:
        super().__init__()
        self.unfreeze_backbone_at_epoch = unfreeze_backbone_at_epoch
        self.lambda_func = lambda_func
        self.backbone_initial_ratio_lr = backbone_initial_ratio_lr
        self.backbone_initial_lr = backbone_initial_lr
        self.should_align = should_align
        self.initial_denom_lr = initial_denom_lr
        self.train_bn = train_bn
        self.verbose = verbose
        self.rounding = rounding
        self.previous_backbone_lr: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "previous_backbone_lr": self.previous_backbone_lr}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.previous_backbone_lr = state_dict["previous_backbone_lr"]
        super().load_state_dict(state_dict)

    def setup(self, trainer: Any, module: nn.Module, stage: str) -> None:
        if not isinstance(getattr(module, "backbone", None), nn.Module):
            raise ConfigError(
                "BackboneFinetuning needs the module's backbone as an nn.Module attribute "
                "named `backbone` (self.backbone = ...)"
            )
        super().setup(trainer, module, stage)

    def freeze_before_training(self, module: nn.Module) -> None:
        self.freeze(module.backbone)

    def finetune_function(self, module: nn.Module, epoch: int, optimizer: Any) -> None:
        current = optimizer.param_groups[0]["lr"]
        if epoch == self.unfreeze_backbone_at_epoch:
            backbone_lr = self.backbone_initial_lr
            if backbone_lr is None:
                backbone_lr = current * self.backbone_initial_ratio_lr
            self.unfreeze_and_add_param_group(
                module.backbone,
                optimizer,
                backbone_lr,
                train_bn=self.train_bn,
                initial_denom_lr=self.initial_denom_lr,
            )
        elif epoch > self.unfreeze_backbone_at_epoch and self.previous_backbone_lr is not None:
            backbone_lr = self.lambda_func(epoch + 1) * self.previous_backbone_lr
            if self.should_align and backbone_lr > current:
                backbone_lr = current
            optimizer.param_groups[-1]["lr"] = backbone_lr
        else:
            return
        self.previous_backbone_lr = backbone_lr
        if self.verbose:
            log.info(
                "Current lr: %s, Backbone lr: %s",
                round(current, self.rounding),
                round(backbone_lr, self.rounding),
            )
