"""Lightning code: two optimizers stepped by hand, logging every few batches (a port test).

Under manual optimization every ``optimizer.step()`` counts a ``global_step``
(two per batch here), but Lightning's loggers count batches: step metrics go
out every ``log_every_n_steps`` *batches*, at the batch count, and so do the
epoch values and the learning rates. tests/test_port_gan.py runs this file
under Lightning 2.6.6 and, with only its import line changed, in a generated
project with a CSV logger, and compares what each logged where.
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset


class TwoNets(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.first = torch.nn.Linear(4, 1)
        self.second = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        (x,) = batch
        one, two = self.optimizers()
        for net, optimizer, name in ((self.first, one, "first"), (self.second, two, "second")):
            loss = net(x).pow(2).mean()
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
            self.log(f"{name}_loss", loss, on_step=True, on_epoch=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        (x,) = batch
        self.log("val_loss", self.first(x).pow(2).mean())

    def configure_optimizers(self) -> Any:
        return [
            torch.optim.SGD(self.first.parameters(), lr=0.1),
            torch.optim.SGD(self.second.parameters(), lr=0.05),
        ]


def fit(root: str, **options: Any) -> Trainer:
    torch.manual_seed(0)
    model = TwoNets()
    train = DataLoader(TensorDataset(torch.randn(40, 4)), batch_size=4)
    val = DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)
    trainer = Trainer(
        max_epochs=2,
        log_every_n_steps=3,
        val_check_interval=5,
        num_sanity_val_steps=0,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )
    trainer.fit(model, train, val)
    return trainer
