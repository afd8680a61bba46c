"""What a checkpoint holds, and how the Trainer comes back from one.

Part of the Trainer (``CheckpointState`` is one of its bases), kept apart so
that ``trainer.py`` holds the loop. The checkpoint is a plain dict (see
``checkpoint.py`` for how it is written and checked); the hooks around it run
in Lightning's order. Saving: the module's ``state_dict``, the callbacks'
(non-empty ones), the DataModule's, then ``on_save_checkpoint`` on the
callbacks and the module. Restoring: the module's ``on_load_checkpoint`` and
weights, the DataModule's state, then the callbacks' ``on_load_checkpoint``
and ``load_state_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt
from .checkpoint import FORMAT
from .ckpt_path import resolve
from .hooks import Callback, checkpointing, overrides
from .hparams import NAME_KEYS, hparams_name
from .module import DataModule
from .precision import NAME as PRECISION
from .rng import restore_rng_states, rng_states
from .strategy import on_rank_zero


@dataclass
class LoopProgress:
    """Where ``fit`` is: the Trainer's one record of its loop's position.

    A checkpoint saves each saved field once: ``epoch`` and ``global_step``
    under Lightning's top-level keys, the rest under ``"loops"``.
    """

    epoch: int = 0  # the Trainer's current_epoch
    global_step: int = 0  # optimizer steps taken
    batches_done: int = 0  # batches of this epoch already trained on
    epoch_finished: bool = False  # its batches and validation are done
    # Batches that ended with an optimizer step: the loggers' step, as in Lightning.
    # It is global_step unless a manual training_step steps several optimizers.
    batches_stepped: int = 0
    # About the batch running now, never saved:
    step_finished: bool = False  # it ended with an optimizer step
    logging_step: bool = False  # ... and that step is one to log

    def to_checkpoint(self, seconds: float) -> dict[str, Any]:
        """The checkpoint's keys for this position (``seconds``: training time so far)."""
        loops = {
            "batches_done": self.batches_done,
            "epoch_finished": self.epoch_finished,
            "batches_stepped": self.batches_stepped,
            "seconds": seconds,
        }
        return {"epoch": self.epoch, "global_step": self.global_step, "loops": loops}

    @classmethod
    def resuming(cls, state: dict[str, Any]) -> LoopProgress:
        """Where to go on from a checkpoint: past its epoch if that had finished.

        Reads every layout this engine wrote (earlier ones repeated the epoch in
        "loops" and had no batches_stepped: it was global_step then).
        """
        loops, step = state["loops"], state["global_step"]
        stepped = loops.get("batches_stepped", step)
        if loops["epoch_finished"]:
            return cls(state["epoch"] + 1, step, batches_stepped=stepped)
        return cls(state["epoch"], step, loops["batches_done"], batches_stepped=stepped)


class CheckpointState:
    """The Trainer's checkpoint methods (they use its module, loop counters and strategy)."""

    @property
    def checkpoint_callback(self) -> Any:
        """The first ModelCheckpoint among the callbacks, or None (Lightning's property)."""
        return next((cb for cb in self.callbacks if checkpointing(cb)), None)

    def save_checkpoint(self, path: str | Path, weights_only: bool = False) -> None:
        """Write everything needed to resume exactly here (see ``checkpoint.py``).

        With ``weights_only`` (Lightning's), the module's weights, hyperparameters
        and the loop's position, without the optimizer, scheduler, callback and
        random states a fit resumes from; the callbacks' ``on_save_checkpoint``
        isn't called, the module's is.
        """
        if self.config.fast_dev_run:
            return  # a smoke test keeps nothing
        module = self.module
        state = {
            "format": FORMAT,
            **self.loop.to_checkpoint(self.elapsed()),
            "state_dict": self.strategy.model_state(module),
            "shapes": ckpt.shapes(module),  # to refuse another model's checkpoint up front
            "hyper_parameters": dict(module.hparams),
            "precision": {"name": PRECISION, "state": self.precision_plugin.state_dict()},
        }
        if weights_only:
            state["weights_only"] = True
        else:
            optimizers, strategy = self.optimizers, self.strategy
            state["optimizer_states"] = [strategy.optimizer_state(module, o) for o in optimizers]
            state["lr_schedulers"] = [s["scheduler"].state_dict() for s in self.lr_schedulers]
            state["callbacks"] = self._callback_states()
            state["rng"] = strategy.gather(rng_states())  # one entry per rank
        datamodule = self.datamodule
        if datamodule is not None and overrides(datamodule, "state_dict", DataModule):
            if data := datamodule.state_dict():
                state["datamodule"] = data
        if hparams := getattr(datamodule, "hparams", None):  # Lightning's key for them
            state["datamodule_hyper_parameters"] = dict(hparams)
        for part, key in zip((module, datamodule), NAME_KEYS.values(), strict=True):
            if name := hparams_name(part):  # the __init__ argument they came in as
                state[key] = name
        if weights_only:  # as Lightning: the module's on_save_checkpoint, not the callbacks'
            self.hooks.of("on_save_checkpoint", "module")(state)
        else:
            self.hooks.on_save_checkpoint(state)
        for logger in self.loggers:  # records up to here on disk first: a run killed
            if hasattr(logger, "save"):  # after its checkpoint resumes with all of them
                logger.save()
        self.strategy.save(state, path)

    def _callback_states(self) -> dict[str, Any]:
        """Each callback's non-empty ``state_dict``, under its ``state_key``."""
        states = {}
        for callback in self.callbacks:
            if overrides(callback, "state_dict", Callback) and (saved := callback.state_dict()):
                states[state_key(callback)] = saved
        return states

    def remove_checkpoint(self, path: str | Path) -> None:
        """Delete a checkpoint this run wrote (ModelCheckpoint's top-k pruning)."""
        self.strategy.remove(path)

    def _restore(self, path: Path, *, full: bool) -> dict[str, Any]:
        """Load weights; with ``full``, also the optimizer (``_restore_loops``: the rest).

        The checkpoint is checked before anything is loaded (``checkpoint.py``):
        a damaged, foreign or mismatched one raises CheckpointError, on every rank.
        """
        if full and self.strategy.is_global_zero:
            ckpt.clean_stale(path.parent)  # temp files of the run that was killed there
        module, hooks = self.module, self.hooks
        state = self.strategy.load(path, module, self.optimizers if full else None)
        hooks.of("on_load_checkpoint", "module")(state)
        self.strategy.load_model_state(module, state["state_dict"])
        module.loaded_from = ckpt.source(path, state)
        datamodule = self.datamodule
        if datamodule is not None and "datamodule" in state:
            datamodule.load_state_dict(state["datamodule"])
        if not full:
            if self.strategy.is_global_zero:
                print(f"Loaded {module.loaded_from}")
            return state
        hooks.of("on_load_checkpoint", "callbacks")(state)
        for callback in self.callbacks:
            saved = state["callbacks"].get(state_key(callback))
            if saved is None:  # a checkpoint written before state keys: its class name
                saved = state["callbacks"].get(type(callback).__name__)
            if saved is not None and overrides(callback, "load_state_dict", Callback):
                callback.load_state_dict(saved)
        for optimizer, saved in zip(self.optimizers, state["optimizer_states"], strict=True):
            self.strategy.load_optimizer_state(module, optimizer, saved)
        for scheduler, saved in zip(self.lr_schedulers, state["lr_schedulers"], strict=True):
            scheduler["scheduler"].load_state_dict(saved)
        self.precision_plugin.load_state_dict(state["precision"]["state"])
        return state

    def _restore_loops(self, state: dict[str, Any], path: Path) -> None:
        """The loop position, training time and random state where the checkpoint was made.

        After ``on_fit_start``, as in Lightning (it sees step 0).
        """
        self._time_before = state["loops"]["seconds"]
        self.loop = LoopProgress.resuming(state)
        # Random state resumes where the stopped run left it. Mid-epoch, that is
        # after the epoch's DataLoader iterator was made (making one draws from
        # the generator), so _train_epoch restores it then; between epochs, now.
        # Each rank takes its own generators' state (rank 0's on a larger world).
        saved_rng = state["rng"]
        rng = saved_rng[self.strategy.rank if self.strategy.rank < len(saved_rng) else 0]
        if self.loop.batches_done == 0:
            restore_rng_states(rng)
        else:
            self._resume_rng = rng
        if self.strategy.is_global_zero:
            print(f"Resumed from {path} at epoch {self.current_epoch}, step {self.global_step}")

    def resolve_checkpoint(self, ckpt_path: str | Path) -> Path:
        """``--ckpt_path``'s checkpoint ('last', 'best' or a path), the same on every rank.

        Joins the process group first (when distributed), as a run would.
        """
        config = self.config
        self.strategy.setup(config.accelerator, config.devices, config.num_nodes)
        return self._resolve(ckpt_path)

    def _resolve(self, ckpt_path: str | Path) -> Path:
        # Rank zero looks (and tidies what killed writers left); every rank loads that.
        # 'best': this run's ModelCheckpoint, or the one saved in last.ckpt (checkpoint.py).
        root = self.config.default_root_dir
        path = on_rank_zero(self.strategy, resolve, ckpt_path, root, self.callbacks)
        self.ckpt_path = self.strategy.broadcast(str(path) if path is not None else None)
        return Path(self.ckpt_path)


def state_key(callback: Any) -> str:
    """Where ``callback``'s state goes in ``checkpoint["callbacks"]``, as Lightning keys it.

    Its ``state_key`` (ModelCheckpoint's and EarlyStopping's name their monitor and
    schedule, so two of them keep two states), else its class name.
    """
    return getattr(callback, "state_key", type(callback).__qualname__)
