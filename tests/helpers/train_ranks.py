"""Run under torchrun (or alone): fit a generated tabular project, save each rank's weights.

    python train_ranks.py SRC OUT '{"devices": 2, "max_steps": 3, ...}'

SRC is the generated project's ``src`` folder, OUT a folder for the results:
``rank<r>.pt`` (the full weights as this rank holds them after fit) and
``rank<r>.json`` (the synced validation metrics this rank saw).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch


def main() -> None:
    source, out, raw = sys.argv[1:4]
    options = json.loads(raw)
    sys.path.insert(0, source)
    from exp.data import TabularDataModule
    from exp.engine.rng import seed_everything
    from exp.engine.strategy import Strategy
    from exp.engine.trainer import Trainer
    from exp.module import TabularRegressor

    data = TabularDataModule(num_samples=64, batch_size=options.pop("batch_size"), seed=0)
    seed_everything(0)
    # The sizes given, so the weights are drawn here (test_distributed compares
    # them with a module built the same way); no per-rank randomness in the math.
    sizes = {"in_features": data.in_features, "out_features": data.out_features}
    module = TabularRegressor(**sizes, dropout=0.0)
    ckpt_path = options.pop("ckpt_path", None)
    save = options.pop("save", None)  # where to write a checkpoint after fit
    unfreeze_at = options.pop("unfreeze_first_layer_at", None)  # a BaseFinetuning's epoch
    sweep = options.pop("lr_find", None)  # Tuner.lr_find's num_training, before fit
    if unfreeze_at is not None:
        options["callbacks"] = [_first_layer_later(unfreeze_at)]
    options.setdefault("default_root_dir", str(Path(out) / "runs"))  # never the cwd
    trainer = Trainer(
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        num_sanity_val_steps=0,
        strategy=Strategy(),
        **options,
    )
    try:
        if sweep:  # Tuner.lr_find first: every rank must find rank zero's rate
            from exp.engine.tuner import Tuner

            finder = Tuner(trainer).lr_find(module, data, num_training=sweep)
            found = {**finder.results, "suggestion": finder.suggestion()}
            found["hparam"] = module.hparams["lr"]
            rank = trainer.strategy.rank
            (Path(out) / f"lr_find{rank}.json").write_text(json.dumps(found))
        trainer.fit(module, data, ckpt_path=ckpt_path)
        if save:
            trainer.save_checkpoint(save)
        state = _full_state(module)
        rank = trainer.strategy.rank
        out = Path(out)
        torch.save(state, out / f"rank{rank}.pt")
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        (out / f"rank{rank}.json").write_text(json.dumps(metrics))
        print(f"rank {rank} of {trainer.strategy.world_size} (RANK={os.environ.get('RANK')})")
    finally:
        trainer.teardown()


def _first_layer_later(epoch: int) -> object:
    """A BaseFinetuning that freezes the module's first layer until ``epoch``."""
    from exp.engine.finetuning import BaseFinetuning

    class FirstLayerLater(BaseFinetuning):
        def freeze_before_training(self, module):
            self.freeze(self.flatten_modules(module)[0])

        def finetune_function(self, module, current_epoch, optimizer):
            if current_epoch == epoch:
                self.unfreeze_and_add_param_group(self.flatten_modules(module)[0], optimizer)

    return FirstLayerLater()


def _full_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole weights, however the strategy holds them (FSDP DTensors, ZeRO-3 partitions)."""
    from exp.engine.strategy import NAME

    if NAME == "deepspeed":
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(module.parameters())):
            return {name: value.detach().clone() for name, value in module.state_dict().items()}
    return {
        name: (value.full_tensor() if hasattr(value, "full_tensor") else value).detach()
        for name, value in module.state_dict().items()
    }


if __name__ == "__main__":
    main()
