"""The training loop: everything between ``fit`` and ``optimizer.step()``.

Read it top to bottom: ``Trainer.fit`` sets things up in the order they
depend on each other, ``_train_epoch`` runs the batches, and ``_train_step``
hands each to ``automatic.py`` (where the weights change: as in Lightning,
the module's ``optimizer_step`` receives a closure that runs
``training_step`` and ``backward``) or to ``manual.py``. ``evaluation.py``
holds validate/test/predict, ``state.py`` checkpoints, ``run.py`` the run
folder. Options keep Lightning's names and meanings
(``max_epochs``, ``accumulate_grad_batches``, ``gradient_clip_val``, ...),
and every hook runs in Lightning 2.x's order through one dispatcher
(``hooks.Hooks``, resolved once per stage: a hook nobody overrides costs one
empty call). docs/engine.md in scaffold lists the few deliberate differences.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from . import loaders as data
from . import manual, optim
from .attributes import LightningAttributes, TrainerFn, TrainerState, running
from .automatic import AutomaticOptimization
from .batches import to_device
from .errors import NonFiniteLossError as NonFiniteLossError  # re-exported: defined here before
from .errors import UsageError
from .evaluation import Evaluation
from .hooks import Hooks, merge_callbacks
from .metrics import Metrics, as_floats
from .module import DataModule, Module
from .options import (
    TrainerConfig,
    checkpointing_callbacks,
    lightning_precision,
    lightning_strategy,
    max_time_seconds,
    validation_interval,
)
from .precision import NAME as PRECISION
from .precision import Precision
from .prediction_writer import PredictLoop
from .progress import ProgressBar, shows_progress, shows_summary, summarize
from .rng import restore_rng_states, set_torch_flags
from .run import RunFolder
from .state import CheckpointState, LoopProgress
from .strategy import Strategy

# What a training step returns when on_train_batch_start asked to end the epoch.
END_EPOCH = object()


class Trainer(RunFolder, CheckpointState, Evaluation, LightningAttributes):
    """Runs a Module: ``fit``, ``validate``, ``test``, ``predict`` (Lightning's signatures).

    Args:
        config: The options (see :class:`TrainerConfig`).
        callbacks: Objects with hook-named methods (see ``callbacks.py``).
        strategy: How processes and devices train together (``strategy.py``;
            None or "auto": this project's).
        precision: This project's precision (any of Lightning's names), or None.
        run_config: The whole run's configuration, logged as hyperparameters
            and saved as ``config.yaml`` in the run directory.
        **options: Override ``config`` fields, e.g. ``Trainer(max_epochs=3)``.
    """

    def __init__(
        self,
        config: TrainerConfig | None = None,
        *,
        callbacks: Iterable[Any] = (),
        strategy: Strategy | str | None = None,
        precision: str | int | None = None,
        run_config: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        lightning_precision(precision, PRECISION)  # chosen when the project was made
        config = config or TrainerConfig()
        if options:
            known = {field.name for field in fields(TrainerConfig)}
            if unknown := sorted(set(options) - known):
                raise TypeError(f"Trainer got unknown options {unknown}")
            config = TrainerConfig(**{**asdict(config), **options})
        self.config = config
        self.callbacks = checkpointing_callbacks(config.enable_checkpointing, list(callbacks))
        shows_progress(config.enable_progress_bar, self.callbacks)  # refused here, as Lightning
        self.run_config = run_config or {}
        self.strategy = lightning_strategy(strategy) or Strategy()
        # The device, precision and progress bar are set per process by _launch.
        self.device = torch.device("cpu")
        set_torch_flags(config.deterministic, config.benchmark)
        self.precision_plugin = Precision(self.device)
        self.metrics = Metrics(sync=self.strategy.reduce)
        self.progress = ProgressBar(False)
        self.loggers: list[Any] = []
        self.log_dir = Path(config.default_root_dir)

        self.loop = LoopProgress()  # where fit is: what a checkpoint saves to resume there
        self.predict_loop = PredictLoop()  # what prediction writers read (Lightning's)
        self.should_stop = False
        self.is_last_batch = False  # set at each training batch, as Lightning's
        self.state = TrainerState()  # what runs now: trainer.fitting, .sanity_checking, ...
        self.stop_signal: int | None = None  # SIGTERM/SIGUSR1 received: stop at the next step
        self.stopping_together = False  # every rank raised the same stop
        self.optimizers: list[torch.optim.Optimizer] = []
        self.lr_schedulers: list[dict[str, Any]] = []
        self.module: Module | None = None
        self.datamodule: DataModule | None = None
        self.hooks: Hooks | None = None  # resolved at the start of each stage
        # Several val/test loaders: the index of the one running (self.log's
        # "/dataloader_idx_N" suffix); None with one loader, as Lightning.
        self.dataloader_idx: int | None = None
        self.steps: Any = None  # what the step methods are called on (see strategy.connect)
        self._resume_rng: dict[str, Any] | None = None
        self._folder_locks: list[Any] = []  # held while fitting (see _open_run)
        self.train_loader: DataLoader | None = None
        self.val_loaders: list[Any] = []  # the fit's (none: no validation)
        self.eval_loaders: dict[str, list[Any]] = {}  # the last validate/test/predict's, by kind
        self.automatic: AutomaticOptimization | None = None  # set by fit
        # max_time: training time so far, carried across resumes in checkpoints.
        self.max_seconds = max_time_seconds(config.max_time)
        self._time_before = 0.0
        self._started = time.monotonic()

    # ================================================================ fit

    @running(TrainerFn.FITTING)
    def fit(
        self,
        model: Module,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: DataModule | None = None,
        ckpt_path: str | Path | None = None,
    ) -> None:
        """Train ``model``; resume from ``ckpt_path`` ("last" or a path) if given.

        The data: ``train_dataloaders``/``val_dataloaders`` (a loader or a list),
        else the ``datamodule``, else the module's own ``*_dataloader()``.
        """
        cfg = self.config
        self.should_stop = False  # as Lightning: a new fit starts afresh
        self._setup()
        module = self._prepare_fit(model, train_dataloaders, val_dataloaders, datamodule)
        hooks, train_loader, val_loaders = self.hooks, self.train_loader, self.val_loaders
        # 4. Resume: weights, optimizer, schedulers, loop position and RNG
        #    (after configure_optimizers: sharded strategies load both at once).
        resumed = path = None
        if ckpt_path is not None:
            path = self._resolve(ckpt_path)
            resumed = self._restore(path, full=True)
        # 5. Where this run writes (a resumed run: its own folder, continued),
        #    and its loggers: last, so a setup error leaves no empty run
        #    directory or dangling logger run behind.
        self._open_run(path, resumed)
        if shows_summary(cfg.enable_model_summary, self.callbacks) and self.is_global_zero:
            print(summarize(module))  # unless a ModelSummary among the callbacks prints one
        hooks.on_fit_start()
        if resumed is not None:  # the loop's position: after on_fit_start, as Lightning
            self._restore_loops(resumed, path)
        self._started = time.monotonic()
        try:
            # detect_anomaly: every backward records where a nan came from (slow).
            with torch.autograd.set_detect_anomaly(cfg.detect_anomaly):
                if val_loaders and ckpt_path is None:
                    self._sanity_check(val_loaders)
                self._train(train_loader, val_loaders)
        except BaseException as error:
            # Ctrl-C, SIGTERM (turned into SystemExit by __main__) and crashes all
            # pass through here, so callbacks can save a last checkpoint.
            self._fit_failed(error)
            raise
        self.progress.close()
        hooks.on_fit_end()
        self._close_run("success", fitted=True)
        hooks.teardown("fit")
        self.strategy.barrier()  # every rank done before any leaves the process group

    def _prepare_fit(
        self, model: Module, train_dataloaders: Any, val_dataloaders: Any, datamodule: Any
    ) -> Module:
        """``fit``'s set-up, up to the optimizers (the Tuner's too); returns the module."""
        cfg = self.config
        if isinstance(train_dataloaders, DataModule):  # fit(model, datamodule), as Lightning
            train_dataloaders, datamodule = None, train_dataloaders
        # 1. The hooks' set-up (configure_callbacks, prepare_data, setup,
        #    configure_model), then the model on its device and in its dtype,
        #    before the optimizer is built: optimizers hold references to the
        #    final parameters.
        module = self._begin("fit", model, datamodule)
        # 2. The loaders, asked for now (Lightning asks later) so that a bad one
        #    or a val_check_interval longer than the epoch fails before the run
        #    folder exists.
        train_loader, _ = self._fit_loaders(module, train_dataloaders, val_dataloaders, datamodule)
        self.strategy.seed_per_rank()  # dropout and augmentation differ between ranks
        # 3. Optimizers and schedulers, from the module (any of Lightning's forms).
        manual.check_manual(self, module)
        self.optimizers, self.lr_schedulers = optim.configure(module)
        self.optimizers = [self.precision_plugin.convert_optimizer(o) for o in self.optimizers]
        self.automatic = AutomaticOptimization(self)
        if self.strategy.owns_optimizer_step:  # DeepSpeed: the engine takes both together
            self.steps = self.strategy.connect_optimizer(
                module,
                self.optimizers[0],
                batch_size=train_loader.batch_size,
                accumulate=cfg.accumulate_grad_batches,
                gradient_clip_val=cfg.gradient_clip_val,
                gradient_clip_algorithm=cfg.gradient_clip_algorithm,
            )
        return module

    def _train(self, train_loader: DataLoader, val_loaders: list[Any]) -> None:
        """on_train_start, the epochs until the fit is done, on_train_end."""
        self.metrics.start("train")
        self.hooks.on_train_start()  # what it logs is shown at once, as in Lightning
        self.log_metrics(as_floats(self.metrics.collect_epoch()))
        while not self._fit_done():
            self._train_epoch(train_loader, val_loaders)
        self.hooks.on_train_end()

    def _fit_loaders(
        self, module: Module, train_passed: Any, val_passed: Any, datamodule: Any
    ) -> tuple[Any, list[Any]]:
        """The train loader, ready to shard, and the validation loaders (maybe none)."""
        cfg = self.config
        train = data.request("train", train_passed, module, datamodule)
        if not train:
            raise data.missing("train")
        first = data.unshuffled(train[0]) if cfg.overfit_batches else train[0]  # as Lightning
        self.train_loader = train_loader = data.distributable(first, self.strategy)
        if not self.strategy.shard(getattr(train_loader, "sampler", None), pad=True):
            raise UsageError(
                f"the train loader ({type(train_loader).__name__} over "
                f"{type(getattr(train_loader, 'sampler', None)).__name__}) can't give each "
                "rank its part of the data; use a plain DataLoader(dataset, shuffle=...), "
                "or build it on engine.sampling.ResumableSampler"
            )
        # limit_val_batches=0: validation off, its loader and hooks unused (as Lightning).
        off = cfg.limit_val_batches == 0
        self.val_loaders = [] if off else self._eval_loaders("val", val_passed, module, datamodule)
        if self.val_loaders:
            validation_interval(cfg, self.num_training_batches)  # a bad interval fails now
        return train_loader, self.val_loaders

    def _begin(self, stage: str, model: Module, datamodule: DataModule | None) -> Module:
        """Lightning's set-up order, then the module on its device; returns it attached."""
        model.trainer = self
        self.datamodule = datamodule
        # configure_callbacks runs before the hooks are resolved: its callbacks are hooks' too.
        self.callbacks = merge_callbacks(self.callbacks, model.configure_callbacks())
        self.hooks = hooks = Hooks(self, model, datamodule, self.callbacks)
        hooks.prepare_data_once()  # one rank downloads, every rank waits
        hooks.setup(stage)
        hooks.configure_model()  # may create the layers: before they move
        self.module = self._attach(model)
        return self.module

    def elapsed(self) -> float:
        """Seconds spent fitting, including the runs this one resumed."""
        return self._time_before + time.monotonic() - self._started

    def _fit_done(self) -> bool:
        cfg, loop = self.config, self.loop
        if 0 <= cfg.max_steps <= loop.global_step or 0 <= self.max_epochs <= loop.epoch:
            return True
        return self.should_stop and self._can_stop_early()

    def _can_stop_early(self) -> bool:
        """Whether ``min_epochs`` and ``min_steps`` let a stop request stop the run."""
        cfg, loop = self.config, self.loop
        return loop.epoch >= cfg.min_epochs and loop.global_step >= (cfg.min_steps or 0)

    def _train_epoch(self, loader: DataLoader, val_loaders: list[Any]) -> None:
        """One epoch, from where a resume left off: batch, step, log, validate, stop."""
        loop = self.loop
        start = loop.batches_done  # > 0 when resuming mid-epoch
        total = self.num_training_batches  # this rank's, after limit_train_batches
        every = self._validation_every(val_loaders, total)  # None: no validation this epoch
        batches = self._start_train_epoch(loader, start, total)
        if self._stopped_at_epoch_start():  # as Lightning: no batch, no validation
            self._end_train_epoch()  # but the epoch ends
            return
        for batch_idx, batch in enumerate(batches, start):
            if batch_idx >= total:
                break
            batch = self._transfer(batch, 0)
            outputs = self._train_step(batch, batch_idx, total)
            if outputs is END_EPOCH:
                total = batch_idx
                break
            self._end_train_batch(outputs, batch, batch_idx, total)
            if every is not None and self._due(every):  # no extra one at the end, as Lightning
                self._validate(val_loaders, zero_grad=loop.step_finished)
            if loop.step_finished and self._stop_after_step():
                break  # max_steps reached, or a callback stopped the run mid-epoch

        if loop.batches_done < total:
            return  # stopped mid-epoch: the epoch did not end, and resumes from here
        loop.epoch_finished = True
        if start == total and every is not None and self._due(every):
            self._validate(val_loaders, zero_grad=False)  # resumed before the last validation
        self._end_train_epoch()

    def _start_train_epoch(self, loader: DataLoader, start: int, total: int) -> Iterator[Any]:
        """The epoch's hooks, bar and sampler order; returns the batches, from ``start``."""
        data.position(loader, self.current_epoch, start, shuffle=not self.config.overfit_batches)
        self.metrics.start("train")
        self.loop.epoch_finished = False
        self.module.train()
        if start == 0:
            self.hooks.on_train_epoch_start()
        self.steps = self.strategy.connect(self.module)  # DDP: wraps again if what trains changed
        self.progress.start(f"Epoch {self.current_epoch}", total, initial=start)
        batches = iter(loader)
        if self._resume_rng is not None:  # after the loader drew its own seeds
            restore_rng_states(self._resume_rng)
            self._resume_rng = None
        return batches

    def _stopped_at_epoch_start(self) -> bool:
        """Whether ``on_train_epoch_start`` set ``should_stop`` (and the minimums allow it)."""
        self.should_stop = self.strategy.any(self.should_stop)  # every rank, or none
        return self.should_stop and self._can_stop_early()

    def _validation_every(self, val_loaders: list[Any], total: int) -> int | None:
        """Training batches between this epoch's validations (0: at its end; None: none)."""
        cfg = self.config
        if not val_loaders or (self.current_epoch + 1) % cfg.check_val_every_n_epoch:
            return None
        return validation_interval(cfg, total)

    def _due(self, every: int) -> bool:
        """Whether a validation falls after this batch: each ``every`` batches (0: the last)."""
        return self.loop.batches_done % every == 0 if every else self.loop.epoch_finished

    def _train_step(self, batch: Any, batch_idx: int, total: int) -> Any:
        """on_train_batch_start, then the step; END_EPOCH when that hook returned -1."""
        self.metrics.new_batch(batch)
        self.loop.step_finished = False
        self.is_last_batch = last = batch_idx + 1 == total  # Lightning's trainer.is_last_batch
        if self.hooks.on_train_batch_start(batch, batch_idx) == -1:
            return END_EPOCH  # as Lightning: -1 ends the epoch
        if not self.module.automatic_optimization:
            outputs = manual.manual_training_step(self, batch, batch_idx)  # steps itself
            self._after_step(automatic=False)
            return outputs
        # Step at the end of each window, and at the end of the epoch even if
        # the last window is short (as Lightning does).
        stepping = (batch_idx + 1) % self.config.accumulate_grad_batches == 0 or last
        outputs = self.automatic.run(batch, batch_idx, stepping)
        if stepping:
            self._after_step()
        return outputs

    def _end_train_batch(self, outputs: Any, batch: Any, batch_idx: int, total: int) -> None:
        """Count the batch; epoch-interval schedulers on the last; on_train_batch_end; the bar."""
        self.loop.batches_done = batch_idx + 1
        last = batch_idx + 1 == total
        if last:
            optim.step_schedulers(self, "epoch", plateau=False)  # before the epoch's validation
        self.hooks.on_train_batch_end(outputs, batch, batch_idx)
        self.progress.update(batch_idx, self._bar_metrics)
        # The epoch's own work is done: its validation is the end-of-epoch one.
        self.loop.epoch_finished = last

    def _stop_after_step(self) -> bool:
        """After an optimizer step: a stop request on any rank stops every rank; fit done?"""
        self.should_stop, signum = self.strategy.agree_to_stop(self.should_stop, self.stop_signal)
        if signum:
            self.stopping_together = True
            raise SystemExit(128 + signum)
        return self._fit_done()

    def _after_step(self, automatic: bool = True) -> None:
        """Count the step; step-interval schedulers, step logging, max_time.

        Under manual optimization each ``optimizer.step()`` counted itself (and
        ran XLA's step), and ``training_step`` steps its schedulers.
        """
        loop = self.loop
        if automatic:
            self.strategy.after_optimizer_step()  # XLA compiles and runs the traced step
            loop.global_step += 1
            if self.lr_schedulers:
                optim.step_schedulers(self, "step")
        loop.step_finished = True
        loop.batches_stepped += 1
        if self.module.loaded_from is not None:  # (nn.Module's setattr is slow: once)
            self.module.loaded_from = None  # its weights are now this fit's, not a checkpoint's
        # Logged every log_every_n_steps; Lightning logs the n-th step's values at step n - 1.
        loop.logging_step = loop.batches_stepped % self.config.log_every_n_steps == 0
        if loop.logging_step and self.loggers:
            self.log_metrics(as_floats(self.metrics.collect_step()), step=loop.batches_stepped - 1)
        if self.max_seconds is not None:
            # max_time, checked after each step (Lightning's Timer); like
            # early stopping, it gives way to min_epochs and min_steps.
            self.should_stop = self.should_stop or self.elapsed() >= self.max_seconds

    def _end_train_epoch(self) -> None:
        """Epoch end, after the epoch's validation: ``on_train_epoch_end``.

        Lightning's order: the other callbacks, the module, then the monitoring
        ones (ModelCheckpoint, EarlyStopping) which see what the module logged.
        ReduceLROnPlateau steps before them (Lightning: after), so a checkpoint
        written there holds the epoch's final state and resumes exactly.
        """
        self.loop.epoch_finished = True
        self.metrics.show_epoch()  # the *_epoch values, for on_train_epoch_end
        optim.step_schedulers(self, "epoch", plateau=True)
        self.hooks.on_train_epoch_end()
        train_metrics = self.metrics.collect_epoch()  # and what it logged
        self.hooks.on_train_epoch_end_monitoring()
        self.progress.close(self._bar_metrics())
        # At Lightning's step: the last logged step's.
        self.log_metrics(as_floats(train_metrics), step=self.loop.batches_stepped - 1)
        self.should_stop = self.strategy.any(self.should_stop)  # e.g. EarlyStopping's
        loop = self.loop  # now at the start of the next epoch
        loop.epoch, loop.batches_done, loop.epoch_finished = loop.epoch + 1, 0, False

    # ================================================================ logging

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Send metrics and the epoch (unless given) to the loggers, at Lightning's step."""
        if not metrics or not self.loggers:
            return
        metrics = {**metrics, "epoch": float(metrics.get("epoch", self.current_epoch))}
        for logger in self.loggers:
            logger.log_metrics(metrics, self.loop.batches_stepped if step is None else step)

    def _bar_metrics(self) -> dict[str, float]:
        if not self.progress.showing:
            return {}
        self.metrics.fold_steps()
        return as_floats(self.metrics.progress_bar_metrics)

    # ================================================================ plumbing

    def prepare_batch(self, batch: Any) -> Any:
        """Move a batch to the device and into the precision's dtype."""
        if self.device.type != "cpu":  # loaders yield CPU tensors: nothing to move
            batch = to_device(batch, self.device)
        return self.precision_plugin.convert_input(batch)

    def _transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """The batch on the device: through the transfer hooks when any is overridden."""
        hooks = self.hooks
        if not hooks.transfers:
            return self.prepare_batch(batch)
        batch = hooks.on_before_batch_transfer(batch, dataloader_idx)
        batch = hooks.transfer_batch_to_device(batch, self.device, dataloader_idx)
        batch = hooks.on_after_batch_transfer(batch, dataloader_idx)
        return self.precision_plugin.convert_input(batch)

    def _attach(self, module: Module) -> Module:
        """Put the module on this rank's device and precision, then let the strategy wrap it."""
        module.trainer = self
        module = self.precision_plugin.convert_module(module.to(self.device))
        self.steps = self.strategy.connect(module)
        return module

    def _setup(self) -> None:
        """This process's part: its device and, when distributed, the process group.

        The group lives until ``teardown()`` (``__main__`` calls it on every
        exit path) or the interpreter exits.
        """
        cfg = self.config
        self.device = self.strategy.setup(cfg.accelerator, cfg.devices, cfg.num_nodes)
        if self.precision_plugin.device != self.device:
            self.precision_plugin = Precision(self.device)
        showing = shows_progress(cfg.enable_progress_bar, self.callbacks)
        self.progress = ProgressBar(showing and self.strategy.is_global_zero)
        self.stopping_together = False
        self.metrics.reset()  # each run's metrics are its own, as in Lightning

    def teardown(self) -> None:
        """Leave the process group, if this process started one."""
        self.steps = None  # drop the strategy's wrapper first
        self.strategy.teardown()

    def request_stop(self, signum: int) -> None:
        """A signal handler's way to stop (SIGTERM, SLURM's SIGUSR1): at the next step.

        Fitting stops after the current optimizer step, on every rank at the
        same step, so checkpoints written on the way out are consistent. A
        second signal, or one outside fit, stops at once.
        """
        if self.stop_signal is not None or not self.fitting:
            raise SystemExit(128 + signum)
        self.stop_signal = signum
