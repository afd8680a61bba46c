"""Run under torchrun: who runs ``prepare_data``, and does ``setup`` wait for it?

    python prepare_data_ranks.py SRC OUT PER_NODE

The DataModule's and the module's ``prepare_data`` each write a file named
after the rank that ran them, slowly; ``setup`` records, on every rank,
whether the DataModule's file was already there. PER_NODE ("1" or "0") is
their ``prepare_data_per_node``. Writes ``setup-rank<r>.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset


def main() -> None:
    source, out, per_node = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
    sys.path.insert(0, source)
    from exp.engine.module import DataModule, Module
    from exp.engine.strategy import Strategy
    from exp.engine.trainer import Trainer

    rank = int(os.environ["RANK"])

    class Downloading(DataModule):
        prepare_data_per_node = per_node

        def prepare_data(self) -> None:
            time.sleep(1.0)  # a download: the other rank must not go ahead meanwhile
            (out / f"data-prepared-by-rank{rank}").write_text("")

        def setup(self, stage: str) -> None:
            saw = sorted(path.name for path in out.glob("data-prepared-by-*"))
            (out / f"setup-rank{rank}.json").write_text(json.dumps(saw))

        def train_dataloader(self) -> DataLoader:
            return DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=4)

    class Tiny(Module):
        prepare_data_per_node = per_node

        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def prepare_data(self) -> None:
            (out / f"module-prepared-by-rank{rank}").write_text("")

        def training_step(self, batch, batch_idx: int) -> torch.Tensor:
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    trainer = Trainer(
        accelerator="cpu",
        devices=2,
        max_steps=1,
        default_root_dir=str(out / "runs"),
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        strategy=Strategy(),
    )
    try:
        trainer.fit(Tiny(), Downloading())
    finally:
        trainer.teardown()


if __name__ == "__main__":
    main()
