"""The evaluation loops: ``validate``, ``test``, ``predict``, and the sanity check.

Part of the Trainer (``Evaluation`` is one of its bases), kept apart so that
``trainer.py`` holds the training loop. Each stage runs ``<loop>_step`` over
its loaders without gradients, with Lightning's hooks in Lightning's order,
and puts every submodule back in the mode it was in.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from . import loaders as data
from .attributes import TrainerFn, running
from .batches import to_cpu
from .hooks import nothing
from .metrics import as_floats
from .module import DataModule, Module
from .prediction_writer import keeps_predictions, recording, writes_predictions
from .progress import print_results
from .rng import restore_rng_states, rng_states
from .state import LoopProgress

# The stage's loop name ("validation": on_validation_*) and its loaders' kind.
EVALUATED = {"validate": ("validation", "val"), "test": ("test", "test")}
EVALUATED["predict"] = ("predict", "predict")


class Evaluation:
    """The Trainer's evaluation methods (they use its hooks, metrics, strategy and loaders)."""

    @running(TrainerFn.VALIDATING)
    def validate(
        self,
        model: Module | None = None,
        dataloaders: Any = None,
        ckpt_path: str | Path | None = None,
        verbose: bool = True,
        datamodule: DataModule | None = None,
    ) -> list[dict[str, float]]:
        """Run the validation loop once; its metrics, a dict per dataloader.

        Lightning's signature. ``model`` None: the module of this Trainer's
        previous run, with the weights of ``ckpt_path`` (None: "best", as
        Lightning). The data comes from ``dataloaders`` (a DataModule there
        counts as ``datamodule``), else ``datamodule``, else the module's own
        ``val_dataloader()``. The same for ``test`` and ``predict``.
        """
        return self._run_stage("validate", model, dataloaders, datamodule, ckpt_path, verbose)

    @running(TrainerFn.TESTING)
    def test(
        self,
        model: Module | None = None,
        dataloaders: Any = None,
        ckpt_path: str | Path | None = None,
        verbose: bool = True,
        datamodule: DataModule | None = None,
    ) -> list[dict[str, float]]:
        """Run the test loop once; its metrics, a dict per dataloader."""
        return self._run_stage("test", model, dataloaders, datamodule, ckpt_path, verbose)

    @running(TrainerFn.PREDICTING)
    def predict(
        self,
        model: Module | None = None,
        dataloaders: Any = None,
        datamodule: DataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: str | Path | None = None,
    ) -> list[Any] | None:
        """``predict_step``'s output for every predict batch (this rank's share), on the CPU.

        ``return_predictions=False`` returns None and keeps no output, unless a
        prediction writer writes at the epoch's end (as Lightning).
        """
        keep = keeps_predictions(self.callbacks, return_predictions)
        outputs = self._run_stage("predict", model, dataloaders, datamodule, ckpt_path, keep=keep)
        return None if return_predictions is False else outputs

    def _run_stage(
        self,
        stage: str,
        model: Module | None,
        dataloaders: Any,
        datamodule: DataModule | None,
        ckpt_path: str | Path | None,
        verbose: bool = True,
        keep: bool = True,
    ) -> Any:
        """One validate, test or predict (``keep``: predict's outputs, to return them)."""
        if isinstance(dataloaders, DataModule):  # validate(model, datamodule), as Lightning
            dataloaders, datamodule = None, dataloaders
        if model is None:  # as Lightning: the previous run's module, at its best checkpoint
            if self.module is None:
                raise TypeError(
                    f"Trainer.{stage}() needs a module: no earlier run of this Trainer "
                    f"passed one; call trainer.{stage}(model, ...)"
                )
            model = self.module
            if ckpt_path is None:
                ckpt_path = "best"
                warnings.warn(
                    f"trainer.{stage}() without a model evaluates the best checkpoint of the "
                    "previous fit; pass ckpt_path='best' or 'last' to say which (and silence it)",
                    stacklevel=4,  # the caller of trainer.<stage>()
                )
        self._setup()
        module = self._begin(stage, model, datamodule)
        path = state = None
        if ckpt_path is not None:
            path = self._resolve(ckpt_path)
            state = self._restore(path, full=False)
        loop, kind = EVALUATED[stage]
        loaders = self._eval_loaders(kind, dataloaders, module, datamodule)
        self.eval_loaders[kind] = loaders  # trainer.test_dataloaders, num_test_batches, ...
        if not loaders:
            raise data.missing(kind)
        limit = getattr(self.config, f"limit_{kind}_batches")
        if stage == "predict" and writes_predictions(self.callbacks):  # indices for the writers
            loaders = self.eval_loaders[kind] = [recording(loader) for loader in loaders]
        if stage == "predict":  # writes nothing: no run folder
            _, predictions = self._evaluate(loop, loaders, limit, keep=keep)
            self.hooks.teardown(stage)
            return predictions
        self._open_run(path, state)  # the checkpoint's run folder, if it can
        try:
            metrics, _ = self._evaluate(loop, loaders, limit)
            source = module.loaded_from  # logged at the checkpoint's step and epoch
            if source is None:
                self.log_metrics(metrics)
            else:
                step = LoopProgress.resuming(state).batches_stepped if state else source.step
                self.log_metrics({**metrics, "epoch": source.epoch}, step=step)
            if self.strategy.is_global_zero and not self.config.fast_dev_run:
                self._record_evaluation(stage, metrics)
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
        self,
        loop: str,
        loaders: list[Any],
        limit: int | float,
        sanity: bool = False,
        keep: bool = True,
    ) -> tuple[dict[str, float], list[Any]]:
        """Run ``<loop>_step`` over every loader without gradients, with Lightning's hooks.

        Returns the epoch metrics and, for predict, the step outputs (moved to
        the CPU, as Lightning; none unless ``keep``): a list, or with several
        loaders a list per loader (as Lightning).
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
        outputs: list[list[Any]] = [[] for _ in loaders]
        writing = loop == "predict" and writes_predictions(self.callbacks)
        on_cpu_already = self.device.type == "cpu"
        if loop == "predict":
            self.predict_loop.start(outputs)
        with self.strategy.inference() if self.config.inference_mode else torch.no_grad():
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
                    if writing:
                        self.predict_loop.new_batch(loader, dataloader_idx, batch_idx)
                    batch_start(batch, batch_idx, *extra)
                    self.metrics.hook = f"{loop}_step"
                    with self.precision_plugin.autocast():
                        output = step(batch, batch_idx, *extra)
                    batch_end(output, batch, batch_idx, *extra)
                    if loop == "predict":
                        if keep:  # on the CPU, as Lightning: the device's memory stays free
                            on_cpu = output if on_cpu_already else to_cpu(output)
                            outputs[dataloader_idx].append(on_cpu)
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
        return metrics, outputs[0] if len(outputs) == 1 else outputs

    def _eval_loaders(self, kind: str, passed: Any, module: Module, datamodule: Any) -> list[Any]:
        """Shard evaluation loaders over the ranks (unpadded: no sample counts twice)."""
        loaders = data.request(kind, passed, module, datamodule)
        if self.fitting and self.config.overfit_batches:  # as Lightning: unshuffled
            loaders = [data.unshuffled(loader) for loader in loaders]
        loaders = [data.distributable(loader, self.strategy) for loader in loaders]
        for loader in loaders:
            if not self.strategy.shard(getattr(loader, "sampler", None), pad=False):
                # A sampler that can't shard: every rank evaluates all of it. The
                # results are right, the work is repeated.
                if self.strategy.is_global_zero:
                    print("note: an evaluation loader's sampler can't shard; every rank runs all")
        return loaders

    def _validate(self, loaders: list[Any], *, zero_grad: bool) -> dict[str, float]:
        """A validation run during fit (mid-epoch or at its end), logged at Lightning's step."""
        if zero_grad:
            self.hooks.on_validation_model_zero_grad()  # free the gradients' memory
        self.validating = True  # trainer.state.stage, as Lightning
        metrics, _ = self._evaluate("validation", loaders, self.config.limit_val_batches)
        self.training = True
        # Lightning's step: the count of batches stepped before this one.
        self.log_metrics(metrics, step=self.loop.batches_stepped - int(self.loop.step_finished))
        return metrics

    def _sanity_check(self, loaders: list[Any]) -> None:
        steps = self.config.num_sanity_val_steps
        if steps == 0:
            return
        # As Lightning: the random generators come out as they went in, so the
        # check changes nothing training draws (shuffles, dropout, loader seeds).
        states, stage = rng_states(), self.state.stage
        try:
            self.sanity_checking = True  # from on_sanity_check_start to _end, as Lightning
            self.hooks.on_sanity_check_start()
            self._evaluate("validation", loaders, steps, sanity=True)
            # Callbacks see what the sanity check logged (ModelCheckpoint warns
            # when its monitor is not among it) before it is thrown away.
            self.hooks.on_sanity_check_end()
            self.metrics.reset()  # sanity values are not results
        finally:
            self.state.stage = stage
            restore_rng_states(states)

    def _log_eval_step(self) -> None:
        # An evaluation's on_step values, at its per-dataloader batch count (Lightning's).
        values, step = self.metrics.collect_eval_step()
        if values:
            for logger in self.loggers:
                logger.log_metrics(as_floats(values), step)
