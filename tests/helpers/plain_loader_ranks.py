"""Run under torchrun: fit with plain DataLoaders, record which samples each rank saw.

    python plain_loader_ranks.py SRC OUT MODE

MODE "plain": ``DataLoader(dataset, shuffle=True)`` for training and a
sequential one for validation, as Lightning code passes them to ``fit``,
then ``predict`` with a prediction writer; writes ``rank<r>.json`` with the
sample indices of each epoch's training and validation, and what the writer
was handed (each batch's indices and samples, the run's indices), and what
``self.all_gather`` gave at the end of training. MODE
"weighted": a train loader on a ``WeightedRandomSampler``, which can't be
sharded; the fit must refuse.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

SAMPLES = 21  # odd: the ranks' shares are padded to the same length
SEED = 7


def main() -> None:
    source, out, mode = sys.argv[1:4]
    sys.path.insert(0, source)
    from exp.engine.module import Module
    from exp.engine.prediction_writer import BasePredictionWriter
    from exp.engine.rng import seed_everything
    from exp.engine.strategy import Strategy
    from exp.engine.trainer import Trainer

    class Recording(Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)
            self.seen: dict[str, list[int]] = {}

        def _note(self, key: str, batch) -> None:
            self.seen.setdefault(key, []).extend(int(i) for i in batch[0].flatten())

        def training_step(self, batch, batch_idx: int) -> torch.Tensor:
            self._note(f"train_{self.current_epoch}", batch)
            return self.layer(batch[0]).pow(2).mean()

        def validation_step(self, batch, batch_idx: int) -> None:
            self._note(f"val_{self.current_epoch}", batch)

        def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
            return batch[0]

        def on_train_end(self) -> None:
            # Lightning's all_gather: a row per rank; numbers become tensors; with
            # sync_grads, each rank's part gets the gradient of every rank's use.
            rank = self.global_rank
            leaf = torch.tensor(float(rank + 1), requires_grad=True)
            gathered = self.all_gather(leaf * 3, sync_grads=True)
            gathered.sum().backward()
            both = self.all_gather({"rows": torch.full((2,), rank), "count": (5, 0.5)})
            self.seen["gathered"] = {
                "values": gathered.tolist(),
                "grad": leaf.grad.item(),
                "rows": both["rows"].tolist(),
                "count": [both["count"][0].tolist(), both["count"][1].tolist()],
                "dtypes": [str(both["count"][0].dtype), str(both["count"][1].dtype)],
                "plain": self.all_gather(torch.ones(3)).requires_grad,
            }

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Writer(BasePredictionWriter):
        def write_on_batch_end(self, trainer, module, prediction, indices, *args) -> None:
            samples = [int(i) for i in prediction.flatten()]
            module.seen.setdefault("predicted", []).append([indices, samples])

        def write_on_epoch_end(self, trainer, module, predictions, indices) -> None:
            module.seen["predicted_epoch"] = indices

    seed_everything(SEED)
    dataset = TensorDataset(torch.arange(SAMPLES, dtype=torch.float32).unsqueeze(1))
    if mode == "plain":
        train = DataLoader(dataset, batch_size=4, shuffle=True)
    else:
        weights = torch.ones(SAMPLES)
        train = DataLoader(dataset, batch_size=4, sampler=WeightedRandomSampler(weights, SAMPLES))
    val = DataLoader(dataset, batch_size=4)
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        num_sanity_val_steps=0,
        default_root_dir=str(Path(out) / "runs"),
        strategy=Strategy(),
        callbacks=[Writer("batch_and_epoch")],
    )
    module = Recording()
    try:
        trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
        if mode == "plain":
            trainer.predict(module, dataloaders=DataLoader(dataset, batch_size=4))
        rank = trainer.strategy.rank
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(module.seen))
    finally:
        trainer.teardown()


if __name__ == "__main__":
    main()
