"""A GAN written for pytorch_lightning 2.6.6: two optimizers, manual optimization.

Plain Lightning code, as a Lightning user writes it (the style of Lightning's
own GAN example): ``automatic_optimization = False``, ``self.optimizers()``,
``self.manual_backward``, ``toggle_optimizer``/``untoggle_optimizer`` and the
``toggled_optimizer`` context, ``self.clip_gradients``, ``self.lr_schedulers()``
stepped by hand (per batch for one, per epoch for the other), ``self.log_dict``.
tests/test_port_gan.py runs it under Lightning, then in a generated project
with only its pytorch_lightning import changed, and compares.

The noise is part of the data, so every sample meets the same noise however
the batches are split over processes (tests/helpers/train_gan.py runs it
under torchrun).
"""

import torch
import torch.nn.functional as F  # noqa: N812
from pytorch_lightning import LightningDataModule, LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

SAMPLES, LATENT = 48, 4


class GAN(LightningModule):
    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.lr = lr
        self.generator = nn.Sequential(nn.Linear(LATENT, 16), nn.Tanh(), nn.Linear(16, 2))
        self.discriminator = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
        self.history: list[tuple[int, float, float]] = []

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def training_step(self, batch, batch_idx: int) -> None:
        real, z = batch
        opt_g, opt_d = self.optimizers()
        ones = torch.ones(real.shape[0], 1, device=real.device)

        # Generator: fool the discriminator (only the generator's parameters learn).
        self.toggle_optimizer(opt_g)
        g_loss = F.binary_cross_entropy_with_logits(self.discriminator(self(z)), ones)
        self.manual_backward(g_loss)
        opt_g.step()
        opt_g.zero_grad()
        self.untoggle_optimizer(opt_g)

        # Discriminator: tell real from generated, with clipped gradients.
        with self.toggled_optimizer(opt_d):
            real_loss = F.binary_cross_entropy_with_logits(self.discriminator(real), ones)
            fake = self.discriminator(self(z).detach())
            fake_loss = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(ones))
            d_loss = (real_loss + fake_loss) / 2
            self.manual_backward(d_loss)
            self.clip_gradients(opt_d, gradient_clip_val=0.5, gradient_clip_algorithm="norm")
            opt_d.step()
            opt_d.zero_grad()

        scheduler_g, _ = self.lr_schedulers()
        scheduler_g.step()
        self.history.append((self.global_step, g_loss.item(), d_loss.item()))
        self.log_dict({"g_loss": g_loss, "d_loss": d_loss}, prog_bar=True)

    def on_train_epoch_end(self) -> None:
        _, scheduler_d = self.lr_schedulers()
        scheduler_d.step()

    def configure_optimizers(self):
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=(0.5, 0.999))
        schedulers = [
            torch.optim.lr_scheduler.StepLR(opt_g, step_size=4, gamma=0.5),
            torch.optim.lr_scheduler.ExponentialLR(opt_d, gamma=0.9),
        ]
        return [opt_g, opt_d], schedulers


class Points(LightningDataModule):
    """Points on a circle, each with its own noise vector."""

    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(1)
        angle = torch.rand(SAMPLES, generator=generator) * 6.2832
        points = torch.stack([angle.cos(), angle.sin()], dim=1)  # (SAMPLES, 2)
        noise = torch.randn(SAMPLES, LATENT, generator=generator)  # (SAMPLES, LATENT)
        return DataLoader(TensorDataset(points, noise), batch_size=self.batch_size)


def fit(
    root: str, batch_size: int = 8, devices: int = 1, ckpt_path: str | None = None, **options
) -> tuple[Trainer, GAN]:
    """Train the GAN for 3 epochs; ``options`` go to the Trainer."""
    torch.manual_seed(0)
    model = GAN()
    trainer = Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=devices,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
        **options,
    )
    trainer.fit(model, datamodule=Points(batch_size), ckpt_path=ckpt_path)
    return trainer, model
