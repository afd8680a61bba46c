"""The training loop: everything between ``fit`` and ``optimizer.step()``.

Read it top to bottom: ``Trainer.fit`` sets things up in the order they
depend on each other, ``_train_epoch`` runs the batches, and
``_training_batch`` is where the weights change: as in Lightning, the
module's ``optimizer_step`` receives a closure that runs ``training_step``
and ``backward``. Options keep Lightning's names and meanings
(``max_epochs``, ``accumulate_grad_batches``, ``gradient_clip_val``, ...),
and every hook runs in Lightning 2.x's order through one dispatcher
(``hooks.Hooks``, resolved once per stage: a hook nobody overrides costs one
empty call). docs/engine.md in scaffold lists the few deliberate differences.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from . import loaders as data
from . import manual, optim
from .errors import ConfigError, UsageError
from .hooks import Hooks, merge_callbacks, nothing, to_device
from .metrics import Metrics, as_floats
from .module import DataModule, Module
from .optimizer import Closure, LightningOptimizer
from .options import TrainerConfig, max_time_seconds, validation_interval
from .precision import Precision
from .progress import ProgressBar, print_results, summarize
from .rng import restore_rng_states, use_deterministic_algorithms
from .run import RunFolder
from .state import CheckpointState
from .strategy import Strategy

# The stage's loop name ("validation": on_validation_*) and its loaders' kind.
EVALUATED = {"validate": ("validation", "val"), "test": ("test", "test")}
EVALUATED["predict"] = ("predict", "predict")
# What a training step returns when on_train_batch_start asked to end the epoch.
END_EPOCH = object()


class NonFiniteLossError(UsageError):
    """The loss became inf or nan; training stopped before applying it."""


class Trainer(RunFolder, CheckpointState):
    """Runs a Module: ``fit``, ``validate``, ``test``, ``predict`` (Lightning's signatures).

    Args:
        config: The options (see :class:`TrainerConfig`).
        callbacks: Objects with hook-named methods (see ``callbacks.py``).
        strategy: How processes and devices train together (``strategy.py``).
        run_config: The whole run's configuration, logged as hyperparameters
            and saved as ``config.yaml`` in the run directory.
        **options: Override ``config`` fields, e.g. ``Trainer(max_epochs=3)``.
    """

    def __init__(
        self,
        config: TrainerConfig | None = None,
        *,
        callbacks: Iterable[Any] = (),
        strategy: Strategy | None = None,
        run_config: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        config = config or TrainerConfig()
        if options:
            known = {field.name for field in fields(TrainerConfig)}
            if unknown := sorted(set(options) - known):
                raise TypeError(f"Trainer got unknown options {unknown}")
            config = TrainerConfig(**{**asdict(config), **options})
        self.config = config
        self.callbacks = list(callbacks)
        self.run_config = run_config or {}
        self.strategy = strategy or Strategy()
        # The device, precision and progress bar are set per process by _launch.
        self.device = torch.device("cpu")
        if config.deterministic:
            use_deterministic_algorithms()
        self.precision = Precision(self.device)
        self.metrics = Metrics(sync=self.strategy.reduce)
        self.progress = ProgressBar(False)
        self.loggers: list[Any] = []
        self.log_dir = Path(config.default_root_dir)

        # Loop progress: what a checkpoint records to resume exactly here.
        self.current_epoch = 0
        self.global_step = 0
        self.batches_done = 0  # batches of the current epoch already trained on
        self.epoch_finished = False
        self.should_stop = False
        self.fitting = False
        self.sanity_checking = False  # inside the sanity check's validation run
        self.validations = 0  # validation runs during fit (sanity checks aside)
        self.step_finished = False  # the current batch ended with an optimizer step
        self.stop_signal: int | None = None  # SIGTERM/SIGUSR1 received: stop at the next step
        self._stopping_together = False  # every rank raised the same stop
        self.logging_step = False  # ... and that step is one to log
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
        self._closure = Closure(self._run_closure)
        self._finite: Any = True  # this window's losses were finite (see _note_finite)
        # max_time: training time so far, carried across resumes in checkpoints.
        self.max_seconds = max_time_seconds(config.max_time)
        self._time_before = 0.0
        self._started = time.monotonic()

    @property
    def callback_metrics(self) -> dict[str, torch.Tensor]:
        """The latest value of every logged metric (what callbacks monitor)."""
        self.metrics.fold_steps()
        return self.metrics.callback_metrics

    @property
    def logged_metrics(self) -> dict[str, torch.Tensor]:
        """The latest value sent (or due) to the loggers under each name."""
        self.metrics.fold_steps()
        return self.metrics.logged_metrics

    @property
    def progress_bar_metrics(self) -> dict[str, torch.Tensor]:
        """The latest ``prog_bar=True`` values."""
        self.metrics.fold_steps()
        return self.metrics.progress_bar_metrics

    # ================================================================ fit

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
        if isinstance(train_dataloaders, DataModule):  # fit(model, datamodule), as Lightning
            train_dataloaders, datamodule = None, train_dataloaders
        self._setup()
        self.fitting = True
        # 1. The hooks' set-up (configure_callbacks, prepare_data, setup,
        #    configure_model), then the model on its device and in its dtype,
        #    before the optimizer is built: optimizers hold references to the
        #    final parameters.
        module = self._begin("fit", model, datamodule)
        hooks = self.hooks
        # 2. The loaders, asked for now (Lightning asks later) so that a bad one
        #    or a val_check_interval longer than the epoch fails before the run
        #    folder exists.
        train_loader, val_loaders = self._fit_loaders(
            module, train_dataloaders, val_dataloaders, datamodule
        )
        self.strategy.seed_per_rank()  # dropout and augmentation differ between ranks
        # 3. Optimizers and schedulers, from the module (any of Lightning's forms).
        manual.check_manual(self, module)
        self.optimizers, self.lr_schedulers = optim.configure(module)
        self.optimizers = [self.precision.convert_optimizer(o) for o in self.optimizers]
        self._stepper = LightningOptimizer(self.optimizers[0], self._optimizer_step)
        if self.strategy.owns_optimizer_step:  # DeepSpeed: the engine takes both together
            self.steps = self.strategy.connect_optimizer(
                module,
                self.optimizers[0],
                batch_size=train_loader.batch_size,
                accumulate=cfg.accumulate_grad_batches,
                gradient_clip_val=cfg.gradient_clip_val,
                gradient_clip_algorithm=cfg.gradient_clip_algorithm,
            )
        # 4. Resume: weights, optimizer, schedulers, loop position and RNG
        #    (after configure_optimizers: sharded strategies load both at once).
        resumed = None
        if ckpt_path is not None:
            path = self._resolve(ckpt_path)
            resumed = self._restore(path, full=True)
        # 5. Where this run writes, and its logger: last, so a setup error
        #    leaves no empty run directory or dangling logger run behind.
        self._open_run()
        if cfg.enable_model_summary and self.strategy.is_global_zero:
            print(summarize(module))
        hooks.on_fit_start()
        if resumed is not None:  # the loop's position: after on_fit_start, as Lightning
            self._restore_loops(resumed, path)
        self._started = time.monotonic()
        try:
            # detect_anomaly: every backward records where a nan came from (slow).
            with torch.autograd.set_detect_anomaly(cfg.detect_anomaly):
                if val_loaders and ckpt_path is None:
                    self._sanity_check(val_loaders)
                self.metrics.start("train")
                hooks.on_train_start()  # what it logs is shown at once, as in Lightning
                self.log_metrics(as_floats(self.metrics.collect_epoch()))
                while not self._fit_done():
                    self._train_epoch(train_loader, val_loaders)
                hooks.on_train_end()
        except BaseException as error:
            # Ctrl-C, SIGTERM (turned into SystemExit by __main__) and crashes all
            # pass through here, so callbacks can save a last checkpoint.
            self._fit_failed(error)
            raise
        self.progress.close()
        hooks.on_fit_end()
        self._close_run("success")
        hooks.teardown("fit")
        self.strategy.barrier()  # every rank done before any leaves the process group

    def _fit_loaders(
        self, module: Module, train_passed: Any, val_passed: Any, datamodule: Any
    ) -> tuple[Any, list[Any]]:
        """The train loader, ready to shard, and the validation loaders (maybe none)."""
        cfg = self.config
        train = data.request("train", train_passed, module, datamodule)
        if not train:
            raise data.missing("train")
        self.train_loader = train_loader = self._distributable(train[0])
        if not self.strategy.shard(getattr(train_loader, "sampler", None), pad=True):
            raise UsageError(
                f"the train loader ({type(train_loader).__name__} over "
                f"{type(getattr(train_loader, 'sampler', None)).__name__}) can't give each "
                "rank its part of the data; use a plain DataLoader(dataset, shuffle=...), "
                "or build it on engine.sampling.ResumableSampler"
            )
        # limit_val_batches=0: validation off, its loader and hooks unused (as Lightning).
        if cfg.limit_val_batches == 0:
            return train_loader, []
        val_loaders = self._eval_loaders("val", val_passed, module, datamodule)
        if val_loaders:
            total = data.limit(cfg.limit_train_batches, len(train_loader), "limit_train_batches")
            validation_interval(cfg, total)  # a bad val_check_interval fails now
        return train_loader, val_loaders

    def _fit_failed(self, error: BaseException) -> None:
        """A fit ended by an error or a stop: on_exception (callbacks save), close the run."""
        status = "interrupted" if isinstance(error, KeyboardInterrupt | SystemExit) else "failed"
        self.progress.close()
        together = self._stopping_together or getattr(error, "every_rank", False)
        if self.strategy.world_size == 1 or together:
            self.hooks.on_exception(error)
        else:
            # One rank failed on its own: the others are not at this point, so
            # a checkpoint (a collective operation) would wait forever.
            print(f"rank {self.strategy.rank}: {type(error).__name__}; no checkpoint saved")
        self._close_run(status)

    def _begin(self, stage: str, model: Module, datamodule: DataModule | None) -> Module:
        """Lightning's set-up order, then the module on its device; returns it attached."""
        model.trainer = self
        self.datamodule = datamodule
        # configure_callbacks runs before the hooks are resolved: its callbacks are hooks' too.
        self.callbacks = merge_callbacks(self.callbacks, model.configure_callbacks())
        self.hooks = hooks = Hooks(self, model, datamodule, self.callbacks)
        hooks.prepare_data()
        hooks.setup(stage)
        hooks.configure_model()  # may create the layers: before they move
        self.module = self._attach(model)
        return self.module

    def elapsed(self) -> float:
        """Seconds spent fitting, including the runs this one resumed."""
        return self._time_before + time.monotonic() - self._started

    def _fit_done(self) -> bool:
        cfg = self.config
        if 0 <= cfg.max_steps <= self.global_step:
            return True
        max_epochs = cfg.max_epochs
        if max_epochs is None:
            max_epochs = -1 if cfg.max_steps != -1 else 1000
        if 0 <= max_epochs <= self.current_epoch:
            return True
        return self.should_stop and self.current_epoch >= cfg.min_epochs

    def _train_epoch(self, loader: DataLoader, val_loaders: list[Any]) -> None:
        """One epoch, from where a resume left off: batch, step, log, validate, stop."""
        start = self.batches_done  # > 0 when resuming mid-epoch
        total = data.limit(self.config.limit_train_batches, len(loader), "limit_train_batches")
        every = self._validation_every(val_loaders, total)  # None: no validation this epoch
        for batch_idx, batch in enumerate(self._start_train_epoch(loader, start, total), start):
            if batch_idx >= total:
                break
            batch = self._transfer(batch, 0)
            outputs = self._train_step(batch, batch_idx, total)
            if outputs is END_EPOCH:
                total = batch_idx
                break
            self._end_train_batch(outputs, batch, batch_idx, total)
            if every is not None and (self.epoch_finished or self._due(every)):
                self._validate(val_loaders, zero_grad=self.step_finished)
            if self.step_finished and self._stop_after_step():
                break  # max_steps reached, or a callback stopped the run mid-epoch

        if self.batches_done < total:
            return  # stopped mid-epoch: the epoch did not end, and resumes from here
        if start == total and every is not None:  # resumed between last batch and validation
            self.epoch_finished = True
            self._validate(val_loaders, zero_grad=False)
        self._end_train_epoch()

    def _start_train_epoch(self, loader: DataLoader, start: int, total: int) -> Iterator[Any]:
        """The epoch's hooks, bar and sampler order; returns the batches, from ``start``."""
        data.position(loader, self.current_epoch, start, shuffle=not self.config.overfit_batches)
        self.metrics.start("train")
        self.epoch_finished = False
        self.module.train()
        if start == 0:
            self.hooks.on_train_epoch_start()
        self.progress.start(f"Epoch {self.current_epoch}", total, initial=start)
        batches = iter(loader)
        if self._resume_rng is not None:  # after the loader drew its own seeds
            restore_rng_states(self._resume_rng)
            self._resume_rng = None
        return batches

    def _validation_every(self, val_loaders: list[Any], total: int) -> int | None:
        """Training batches between this epoch's validations (0: at its end; None: none)."""
        cfg = self.config
        if not val_loaders or (self.current_epoch + 1) % cfg.check_val_every_n_epoch:
            return None
        return validation_interval(cfg, total)

    def _due(self, every: int) -> bool:
        """Whether a mid-epoch validation falls after this batch."""
        return bool(every) and self.batches_done % every == 0

    def _train_step(self, batch: Any, batch_idx: int, total: int) -> Any:
        """on_train_batch_start, then the step; END_EPOCH when that hook returned -1."""
        self.metrics.new_batch(batch)
        self.step_finished = False
        if self.hooks.on_train_batch_start(batch, batch_idx) == -1:
            return END_EPOCH  # as Lightning: -1 ends the epoch
        if not self.module.automatic_optimization:
            outputs = manual.manual_training_step(self, batch, batch_idx)  # steps itself
            self._after_step(automatic=False)
            return outputs
        # Step at the end of each window, and at the end of the epoch even if
        # the last window is short (as Lightning does).
        stepping = (batch_idx + 1) % self.config.accumulate_grad_batches == 0
        return self._training_batch(batch, batch_idx, stepping or batch_idx + 1 == total)

    def _end_train_batch(self, outputs: Any, batch: Any, batch_idx: int, total: int) -> None:
        """Count the batch; epoch-interval schedulers on the last; on_train_batch_end; the bar."""
        self.batches_done = batch_idx + 1
        last = self.batches_done == total
        if last:
            self._step_schedulers("epoch", plateau=False)  # before the epoch's validation
        self.hooks.on_train_batch_end(outputs, batch, batch_idx)
        self.progress.update(batch_idx, self._bar_metrics)
        # The epoch's own work is done: its validation is the end-of-epoch one.
        self.epoch_finished = last

    def _stop_after_step(self) -> bool:
        """After an optimizer step: every rank agrees on stopping; is the fit done?"""
        self._agree_to_stop()
        return self._fit_done()

    def _training_batch(self, batch: Any, batch_idx: int, stepping: bool) -> Any:
        """One batch of automatic optimization, in Lightning's order.

        A stepping batch calls the module's ``optimizer_step`` with the
        closure, which the optimizer runs (LBFGS: several times); a batch that
        only accumulates gradients runs the closure itself.
        """
        closure = self._closure.prepare(batch, batch_idx, stepping)
        if stepping:
            self.hooks.optimizer_step(self.current_epoch, batch_idx, self._stepper, closure)
            closure.check_ran()
            self._after_step()
        else:
            closure()
        # on_train_batch_end gets a dict, as in Lightning: {"loss": ...} for a tensor.
        outputs = closure.outputs
        return outputs if isinstance(outputs, dict) else {"loss": outputs}

    def _after_step(self, automatic: bool = True) -> None:
        """Count the step; step-interval schedulers, step logging, max_time.

        Under manual optimization each ``optimizer.step()`` counted itself (and
        ran XLA's step), and ``training_step`` steps its schedulers.
        """
        if automatic:
            self.strategy.after_optimizer_step()  # XLA compiles and runs the traced step
            self.global_step += 1
            self._step_schedulers("step")
        self.step_finished = True
        self._log_step()
        if self.max_seconds is not None:
            # max_time, checked after each step (Lightning's Timer); like
            # early stopping, it gives way to min_epochs.
            self.should_stop = self.should_stop or self.elapsed() >= self.max_seconds

    def _run_closure(self, closure: Closure) -> torch.Tensor:
        """training_step, zero_grad (a window's first batch), backward; then, when
        stepping, the checks and hooks before the optimizer applies the gradients."""
        hooks, cfg, optimizer = self.hooks, self.config, self.optimizers[0]
        accumulate, batch_idx = cfg.accumulate_grad_batches, closure.batch_idx
        # Forward under autocast (a no-op at full precision), then backward.
        # The loss is divided by the window size so that the summed
        # gradients of an accumulation window equal one big batch's.
        with self.strategy.no_sync(not closure.stepping):
            metrics = self.metrics
            outer, metrics.hook = metrics.hook, "training_step"
            with self.precision.autocast():
                outputs = self.steps.training_step(closure.batch, batch_idx)
            metrics.hook = outer
            closure.outputs = outputs
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            owns_step = self.strategy.owns_optimizer_step  # DeepSpeed: zeroes, clips, steps
            if batch_idx % accumulate == 0 and not owns_step:  # a window's first batch
                hooks.on_before_zero_grad(optimizer)
                hooks.optimizer_zero_grad(self.current_epoch, batch_idx, optimizer)
            self._note_finite(loss, first=batch_idx % accumulate == 0)
            if accumulate > 1:
                loss = loss / accumulate
            hooks.on_before_backward(loss)
            if owns_step:
                self.strategy.backward(loss)  # the engine scales, reduces and accumulates
            else:
                hooks.backward(self.precision.scale(loss))
            hooks.on_after_backward()
        if closure.stepping:
            self._check_finite(batch_idx)
            self.strategy.before_optimizer_step(optimizer)  # XLA averages the gradients
            if owns_step:
                hooks.on_before_optimizer_step(optimizer)  # the engine clips in its step
            else:
                self.precision.unscale_gradients(optimizer)
                hooks.on_before_optimizer_step(optimizer)
                hooks.configure_gradient_clipping(
                    optimizer, cfg.gradient_clip_val, cfg.gradient_clip_algorithm
                )
        return loss

    def _optimizer_step(self, optimizer: torch.optim.Optimizer, closure: Any) -> Any:
        """What ``optimizer.step(closure)`` does in ``optimizer_step``."""
        if self.strategy.owns_optimizer_step:
            # DeepSpeed clips (gradient_clip_val is in its config), unscales,
            # steps and zeroes the gradients; the optimizer's learning rates are
            # the ones the schedulers set.
            loss = closure() if closure is not None else None
            self.strategy.optimizer_step()
            return loss
        return self.precision.optimizer_step(optimizer, closure)

    def _step_schedulers(self, interval: str, plateau: bool | None = None) -> None:
        """Step the ``interval`` schedulers that are due (``plateau``: only those, or none)."""
        if not self.module.automatic_optimization:
            return  # manual optimization: training_step steps them, as in Lightning
        count = self.global_step if interval == "step" else self.current_epoch + 1
        for scheduler in self.lr_schedulers:
            if scheduler["interval"] != interval or count % scheduler["frequency"]:
                continue
            if plateau is None or plateau == (scheduler["monitor"] is not None):
                self._step_scheduler(scheduler)

    def _end_train_epoch(self) -> None:
        """Epoch end, after the epoch's validation: ``on_train_epoch_end``.

        Lightning's order: the other callbacks, the module, then the monitoring
        ones (ModelCheckpoint, EarlyStopping) which see what the module logged.
        ReduceLROnPlateau steps before them (Lightning: after), so a checkpoint
        written there holds the epoch's final state and resumes exactly.
        """
        self.epoch_finished = True
        self.metrics.show_epoch()  # the *_epoch values, for on_train_epoch_end
        self._step_schedulers("epoch", plateau=True)
        self.hooks.on_train_epoch_end()
        train_metrics = self.metrics.collect_epoch()  # and what it logged
        self.hooks.on_train_epoch_end_monitoring()
        self.progress.close(self._bar_metrics())
        # At Lightning's step: the last logged step's.
        self.log_metrics(as_floats(train_metrics), step=self.global_step - 1)
        self.should_stop = self.strategy.any(self.should_stop)  # e.g. EarlyStopping's
        self.current_epoch += 1
        self.batches_done = 0
        self.epoch_finished = False  # now at the start of the next epoch

    def _validate(self, loaders: list[Any], *, zero_grad: bool) -> dict[str, float]:
        if zero_grad:
            self.hooks.on_validation_model_zero_grad()  # free the gradients' memory
        metrics, _ = self._evaluate("validation", loaders, self.config.limit_val_batches)
        self.validations += 1
        # Lightning's step: the count of batches stepped before this one.
        self.log_metrics(metrics, step=self.global_step - int(self.step_finished))
        return metrics

    def _sanity_check(self, loaders: list[Any]) -> None:
        steps = self.config.num_sanity_val_steps
        if steps == 0:
            return
        self.sanity_checking = True
        self.hooks.on_sanity_check_start()
        self._evaluate("validation", loaders, steps, sanity=True)
        self.sanity_checking = False
        # Callbacks see what the sanity check logged (ModelCheckpoint warns
        # when its monitor is not among it) before it is thrown away.
        self.hooks.on_sanity_check_end()
        self.metrics.reset()  # sanity values are not results

    # ================================================================ evaluate

    def validate(
        self,
        model: Module,
        dataloaders: Any = None,
        datamodule: DataModule | None = None,
        ckpt_path: str | Path | None = None,
        verbose: bool = True,
    ) -> list[dict[str, float]]:
        """Run the validation loop once; its metrics, a dict per dataloader."""
        return self._run_stage("validate", model, dataloaders, datamodule, ckpt_path, verbose)

    def test(
        self,
        model: Module,
        dataloaders: Any = None,
        datamodule: DataModule | None = None,
        ckpt_path: str | Path | None = None,
        verbose: bool = True,
    ) -> list[dict[str, float]]:
        """Run the test loop once; its metrics, a dict per dataloader."""
        return self._run_stage("test", model, dataloaders, datamodule, ckpt_path, verbose)

    def predict(
        self,
        model: Module,
        dataloaders: Any = None,
        datamodule: DataModule | None = None,
        ckpt_path: str | Path | None = None,
    ) -> list[Any]:
        """Return ``predict_step``'s output for every predict batch (this rank's share)."""
        return self._run_stage("predict", model, dataloaders, datamodule, ckpt_path)

    def _run_stage(
        self,
        stage: str,
        model: Module,
        dataloaders: Any,
        datamodule: DataModule | None,
        ckpt_path: str | Path | None,
        verbose: bool = True,
    ) -> Any:
        if isinstance(dataloaders, DataModule):  # validate(model, datamodule), as Lightning
            dataloaders, datamodule = None, dataloaders
        self._setup()
        module = self._begin(stage, model, datamodule)
        if ckpt_path is not None:
            self._restore(self._resolve(ckpt_path), full=False)
        loop, kind = EVALUATED[stage]
        loaders = self._eval_loaders(kind, dataloaders, module, datamodule)
        if not loaders:
            raise data.missing(kind)
        limit = getattr(self.config, f"limit_{kind}_batches")
        if stage == "predict":  # writes nothing: no run folder
            _, predictions = self._evaluate(loop, loaders, limit)
            self.hooks.teardown(stage)
            return predictions
        self._open_run()
        try:
            metrics, _ = self._evaluate(loop, loaders, limit)
            self.log_metrics(metrics)
        finally:
            self._close_run("success")
        self.hooks.teardown(stage)
        if verbose and self.strategy.is_global_zero:
            print_results(stage, metrics)
        # As Lightning: one dict per dataloader, what was logged from it or
        # from no dataloader in particular (the epoch hooks).
        where = self.metrics.loader_of
        return [
            {k: v for k, v in metrics.items() if where.get(k) in (None, idx)}
            for idx in range(len(loaders))
        ]

    def _evaluate(
        self, loop: str, loaders: list[Any], limit: int | float, sanity: bool = False
    ) -> tuple[dict[str, float], list[Any]]:
        """Run ``<loop>_step`` over every loader without gradients, with Lightning's hooks.

        Returns the epoch metrics and, for predict, the step outputs.
        """
        hooks, several = self.hooks, len(loaders) > 1
        name = f"limit_{'val' if loop == 'validation' else loop}_batches"
        step = getattr(self.steps, f"{loop}_step")
        batch_start = getattr(hooks, f"on_{loop}_batch_start")
        batch_end = getattr(hooks, f"on_{loop}_batch_end")
        modes = [(m, m.training) for m in self.module.modules()]
        stage = self.metrics.stage
        getattr(hooks, f"on_{loop}_model_eval")()
        self.metrics.start(loop)
        getattr(hooks, f"on_{loop}_start")()
        getattr(hooks, f"on_{loop}_epoch_start")()
        outputs: list[Any] = []
        with self.strategy.inference():
            for dataloader_idx, loader in enumerate(loaders):
                total = min(limit, len(loader)) if sanity else data.limit(limit, len(loader), name)
                if sanity and limit == -1:
                    total = len(loader)
                # Lightning passes dataloader_idx only when there are several loaders.
                extra = (dataloader_idx,) if several else ()
                self.dataloader_idx = dataloader_idx if several else None
                label = "Sanity check" if sanity else loop.capitalize()
                self.progress.start(label, total)
                for batch_idx, batch in enumerate(loader):
                    if batch_idx >= total:
                        break
                    batch = self._transfer(batch, dataloader_idx)
                    self.metrics.new_batch(batch, self.dataloader_idx)
                    batch_start(batch, batch_idx, *extra)
                    self.metrics.hook = f"{loop}_step"
                    with self.precision.autocast():
                        output = step(batch, batch_idx, *extra)
                    batch_end(output, batch, batch_idx, *extra)
                    if loop == "predict":
                        outputs.append(output)
                    elif self.loggers and not sanity:
                        self._log_eval_step()
                    self.progress.update(batch_idx)
            self.dataloader_idx = None
            self.metrics.show_epoch()  # current in on_<loop>_epoch_end, as Lightning
            getattr(hooks, f"on_{loop}_epoch_end")()
            metrics = as_floats(self.metrics.collect_epoch())  # with what it logged
        self.progress.close(metrics)
        getattr(hooks, f"on_{loop}_end")()
        restore = getattr(hooks, f"on_{loop}_model_train", nothing)
        if restore is nothing:
            for module, training in modes:  # each submodule's mode, as it was
                module.training = training
        else:
            restore()
        self.metrics.switch(stage)  # back to the training epoch's accumulators
        return metrics, outputs

    def _eval_loaders(self, kind: str, passed: Any, module: Module, datamodule: Any) -> list[Any]:
        """Shard evaluation loaders over the ranks (unpadded: no sample counts twice)."""
        loaders = data.request(kind, passed, module, datamodule)
        loaders = [self._distributable(loader) for loader in loaders]
        for loader in loaders:
            if not self.strategy.shard(getattr(loader, "sampler", None), pad=False):
                # A sampler that can't shard: every rank evaluates all of it. The
                # results are right, the work is repeated.
                if self.strategy.is_global_zero:
                    print("note: an evaluation loader's sampler can't shard; every rank runs all")
        return loaders

    def _distributable(self, loader: Any) -> Any:
        """A plain DataLoader rebuilt to shard over the ranks (see loaders.distributable)."""
        if self.strategy.world_size == 1:
            return loader
        # Every rank must draw the same permutation: rank zero's seed, for all of them.
        seed = self.strategy.broadcast(torch.initial_seed() % 2**32)
        return data.distributable(loader, self.strategy.world_size, seed)

    # ================================================================ logging

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Send metrics to the logger, with the epoch, as Lightning does."""
        if not metrics or not self.loggers:
            return
        metrics = {**metrics, "epoch": float(self.current_epoch)}
        for logger in self.loggers:
            logger.log_metrics(metrics, self.global_step if step is None else step)

    def _log_step(self) -> None:
        # Lightning logs the n-th step's values at step n - 1.
        self.logging_step = self.global_step % self.config.log_every_n_steps == 0
        if self.logging_step and self.loggers:
            self.log_metrics(as_floats(self.metrics.collect_step()), step=self.global_step - 1)

    def _log_eval_step(self) -> None:
        # An evaluation's on_step values, at its per-dataloader batch count (Lightning's).
        values, step = self.metrics.collect_eval_step()
        if values:
            for logger in self.loggers:
                logger.log_metrics(as_floats(values), step)

    def _bar_metrics(self) -> dict[str, float]:
        if self.progress.bar is None:
            return {}
        self.metrics.fold_steps()
        return as_floats(self.metrics.progress_bar_metrics)

    def _note_finite(self, loss: torch.Tensor, first: bool) -> None:
        # Whether the window's losses are all finite, checked before its step. A
        # CPU value is read at once (a tensor isfinite costs ~30 µs a step there);
        # on an accelerator it stays a tensor, so the device syncs only at the check.
        if self.device.type == "cpu":
            finite: Any = math.isfinite(loss.item())
        else:
            finite = torch.isfinite(loss.detach())
        self._finite = finite if first else self._finite & finite

    def _check_finite(self, batch_idx: int) -> None:
        # One device sync per optimizer step, not per micro-batch; a joint decision:
        # with one rank's loss inf, every rank skips the step.
        if not self.strategy.any(not bool(self._finite)):
            return
        self._stopping_together = True
        raise NonFiniteLossError(
            f"the training loss is not finite at epoch {self.current_epoch}, "
            f"batch {batch_idx}, step {self.global_step}; the optimizer step was "
            "not applied and the last checkpoint was kept. Lower the learning rate, "
            "set --trainer.gradient_clip_val, or use precision=bf16-mixed"
        )

    # ================================================================ plumbing

    def prepare_batch(self, batch: Any) -> Any:
        """Move a batch to the device and into the precision's dtype."""
        if self.device.type != "cpu":  # loaders yield CPU tensors: nothing to move
            batch = to_device(batch, self.device)
        return self.precision.convert_input(batch)

    def _transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """The batch on the device: through the transfer hooks when any is overridden."""
        hooks = self.hooks
        if not hooks.transfers:
            return self.prepare_batch(batch)
        batch = hooks.on_before_batch_transfer(batch, dataloader_idx)
        batch = hooks.transfer_batch_to_device(batch, self.device, dataloader_idx)
        batch = hooks.on_after_batch_transfer(batch, dataloader_idx)
        return self.precision.convert_input(batch)

    def _attach(self, module: Module) -> Module:
        """Put the module on this rank's device and precision, then let the strategy wrap it."""
        module.trainer = self
        module = self.precision.convert_module(module.to(self.device))
        self.steps = self.strategy.connect(module)
        return module

    def _setup(self) -> None:
        """This process's part: its device and, when distributed, the process group.

        The group lives until ``teardown()`` (``__main__`` calls it on every
        exit path) or the interpreter exits.
        """
        cfg = self.config
        self.device = self.strategy.setup(cfg.accelerator, cfg.devices, cfg.num_nodes)
        if self.precision.device != self.device:
            self.precision = Precision(self.device)
        self.progress = ProgressBar(cfg.enable_progress_bar and self.strategy.is_global_zero)
        self._stopping_together = False
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

    def _agree_to_stop(self) -> None:
        """After each optimizer step: a stop request on any rank stops every rank here."""
        self.should_stop, signum = self.strategy.agree_to_stop(self.should_stop, self.stop_signal)
        if signum:
            self._stopping_together = True
            raise SystemExit(128 + signum)

    def _step_scheduler(self, scheduler: dict[str, Any]) -> None:
        if scheduler["monitor"] is None:
            self.hooks.lr_scheduler_step(scheduler["scheduler"], None)
            return
        value = self.callback_metrics.get(scheduler["monitor"])
        if value is None:
            off = " (validation is off: trainer.limit_val_batches=0)"
            raise ConfigError(
                f"lr_scheduler monitor={scheduler['monitor']!r} is not a logged metric"
                f"{off if self.config.limit_val_batches == 0 else ''}; "
                f"logged metrics are {sorted(self.callback_metrics)}"
            )
        self.hooks.lr_scheduler_step(scheduler["scheduler"], float(value))
