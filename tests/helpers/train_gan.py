"""Run under torchrun (or alone): the Lightning GAN (lightning_gan.py), ported to a project.

    python train_gan.py SRC PACKAGE OUT '{"devices": 2, "batch_size": 4, "max_steps": 6}'

SRC is the generated project's ``src`` folder and PACKAGE its package; the
GAN's Lightning code runs with only its import changed (tests/porting.py),
its DataLoader given the project's ResumableSampler (unshuffled), which
shards over the ranks and resumes mid-epoch. OUT gets ``rank<r>.pt``, this
rank's weights after fit; with ``"save"`` in the options, a checkpoint is
written there after fit.
"""

from __future__ import annotations

import json
import sys
from importlib import import_module
from pathlib import Path

import torch
from torch.utils.data import DataLoader

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, for porting.py

from porting import load  # noqa: E402


def main() -> None:
    source, package, out, raw = sys.argv[1:5]
    options = json.loads(raw)
    save = options.pop("save", None)
    sys.path.insert(0, source)
    gan = load(HERE / "lightning_gan.py", package)
    sampling = import_module(f"{package}.engine.sampling")

    class Sharded(gan["Points"]):
        def train_dataloader(self) -> DataLoader:
            dataset = super().train_dataloader().dataset
            sampler = sampling.ResumableSampler(len(dataset), shuffle=False)
            return DataLoader(dataset, self.batch_size, sampler=sampler)

    gan["Points"] = Sharded  # what the GAN's fit() builds its data from
    trainer, model = gan["fit"](str(Path(out) / "runs"), **options)
    try:
        if save:
            trainer.save_checkpoint(save)
        state = {name: tensor.detach() for name, tensor in model.state_dict().items()}
        torch.save(state, Path(out) / f"rank{trainer.strategy.rank}.pt")
    finally:
        trainer.teardown()


if __name__ == "__main__":
    main()
