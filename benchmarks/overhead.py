"""Per-step overhead of the generated loop vs a raw PyTorch loop vs Lightning.

    python benchmarks/overhead.py            # prints a Markdown table
    python benchmarks/overhead.py --steps 3000 --repeats 5

One run renders a default project with scaffold, then trains the same model on
the same in-memory data with three loops, each in its own subprocess (so peak
memory is its own), on the CPU:

- raw: forward, backward, step, zero_grad; nothing else.
- ours: the generated Trainer with its defaults on: self.log every step
  (step and epoch values), the progress bar, the CSV logger, ModelCheckpoint
  with last.ckpt and LearningRateMonitor.
- lightning: pytorch_lightning.Trainer with its defaults on (progress bar,
  CSV logger, checkpointing), the same self.log calls.

Each loop's stderr is a pipe, not a terminal: ours then prints plain
progress lines (one every 30 s and one per epoch) instead of redrawing a
bar; Lightning's tqdm bar still redraws into the pipe.

Per-step time is the median gap between consecutive step ends, after warm-up,
so setup and teardown don't count. Each repeat runs the three loops back to
back (raw, ours, lightning), so a machine that slows down during the run slows
the loops of one repeat alike; a loop's "vs raw" is the median, over the
repeats, of its step time over that repeat's raw step time, and the range of
those ratios is shown beside it. Ratios are taken within this one run, on this
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "tiny MLP": "mlp",
    "small CNN": "cnn",
}


def build(kind: str, rows: int = 4096):
    """The network and an in-memory dataset of ``rows`` for ``kind`` (mlp or cnn)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    if kind == "mlp":
        net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
        x = torch.randn(rows, 32)
    else:
        net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 10),
        )
        x = torch.randn(rows, 3, 32, 32)
    y = torch.randint(10, (rows,))
    return net, torch.utils.data.TensorDataset(x, y)


def training_step(self, batch, batch_idx):
    """The benchmarked module's step (ours and Lightning's): the loss, logged every step."""
    from torch import nn

    x, y = batch
    loss = nn.functional.cross_entropy(self.net(x), y)
    self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True)
    return loss


def configure_optimizers(self):
    """Plain SGD, as the raw loop's."""
    import torch

    return torch.optim.SGD(self.parameters(), lr=0.01)


def training_step_unlogged(self, batch, batch_idx):
    """training_step without its self.log call (interleaved.py's ``--without log``)."""
    from torch import nn

    x, y = batch
    return nn.functional.cross_entropy(self.net(x), y)


# What fit_ours can leave out: interleaved.py's --without.
FEATURES = ("log", "callbacks", "logger", "bar")


def fit_ours(
    project: Path, net, loader, steps: int, workdir: Path, timer, without: frozenset = frozenset()
) -> None:
    """Train ``net`` with the generated Trainer, everything a user gets on.

    self.log every step (training_step above), the progress bar, the CSV logger,
    ModelCheckpoint and LearningRateMonitor; ``timer`` is one more callback, the
    benchmark's, called at each step's end. ``without`` names FEATURES to leave
    out, to measure what each costs.
    """
    sys.path.insert(0, str(project / "src"))
    from bench_exp.engine.callbacks import LearningRateMonitor, ModelCheckpoint
    from bench_exp.engine.module import DataModule, Module
    from bench_exp.engine.trainer import Trainer

    class Ours(Module):
        def __init__(self):
            super().__init__()
            self.net = net

    Ours.training_step = training_step_unlogged if "log" in without else training_step
    Ours.configure_optimizers = configure_optimizers
    data = DataModule()
    data.train_dataloader = lambda: loader
    callbacks = [] if "callbacks" in without else [LearningRateMonitor(), ModelCheckpoint()]
    trainer = Trainer(
        accelerator="cpu",
        max_steps=steps,
        max_epochs=-(-steps // len(loader)),
        default_root_dir=str(workdir),
        enable_model_summary=False,
        callbacks=[*callbacks, timer],
        enable_checkpointing="callbacks" not in without,  # else a default ModelCheckpoint
        logger="logger" not in without,
        enable_progress_bar="bar" not in without,
    )
    trainer.fit(Ours(), data)


def render_project(folder: Path) -> Path:
    """A default project with the CSV logger, rendered by scaffold into ``folder``."""
    sys.path.insert(0, str(ROOT))
    from scaffold.new import create

    return create(folder / "bench-exp", data={"logger": "csv"}, defaults=True, use_git=False).path


def run_variant(
    variant: str, kind: str, steps: int, project: Path, workdir: Path, rows: int = 4096
) -> dict:
    """Train with one loop; return its median step time and peak memory."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    net, dataset = build(kind, rows)
    loader = DataLoader(dataset, batch_size=64, shuffle=True)
    epochs = -(-steps // len(loader))
    stamps: list[float] = []

    if variant == "raw":
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
        done = 0
        for _ in range(epochs):
            for x, y in loader:
                loss = nn.functional.cross_entropy(net(x), y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                stamps.append(time.perf_counter())
                done += 1
                if done == steps:
                    break
    elif variant == "ours":

        class Stamp:
            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                stamps.append(time.perf_counter())

        fit_ours(project, net, loader, steps, workdir, Stamp())
    else:
        import pytorch_lightning as pl

        class Theirs(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.net = net

        Theirs.training_step, Theirs.configure_optimizers = training_step, configure_optimizers

        class Stamp(pl.Callback):
            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                stamps.append(time.perf_counter())

        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_steps=steps,
            max_epochs=epochs,
            default_root_dir=str(workdir),
            enable_model_summary=False,
            logger=pl.loggers.CSVLogger(str(workdir)),
            callbacks=[pl.callbacks.LearningRateMonitor(), Stamp()],
        )
        trainer.fit(Theirs(), loader)
    gaps = [b - a for a, b in zip(stamps[50:], stamps[51:], strict=False)]
    return {
        "step_us": statistics.median(gaps) * 1e6,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(variant: str, kind: str, steps: int, project: Path, env: dict) -> dict:
    """One loop's run in a fresh process: its median step time and peak memory."""
    command = [sys.executable, __file__, "--variant", variant, "--model", kind]
    command += ["--steps", str(steps), "--project", str(project)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure every loop on every model and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=4096, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # a child process: one measurement, as JSON
        with tempfile.TemporaryDirectory() as workdir:
            result = run_variant(
                args.variant, args.model, args.steps, Path(args.project), Path(workdir), args.rows
            )
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp))
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        rows = []
        for label, kind in MODELS.items():
            runs: dict[str, list[dict]] = {"raw": [], "ours": [], "lightning": []}
            for _ in range(args.repeats):
                for variant, measured in runs.items():
                    measured.append(measure(variant, kind, args.steps, project, env))
            raws = [r["step_us"] for r in runs["raw"]]
            for variant, measured in runs.items():
                # Each repeat's loop against the raw loop of the same repeat.
                ratios = [r["step_us"] / raw - 1 for r, raw in zip(measured, raws, strict=True)]
                step = statistics.median(r["step_us"] for r in measured)
                memory = statistics.median(r["peak_rss_mb"] for r in measured)
                rows.append(
                    f"| {label} | {variant} | {step:.0f} | {statistics.median(ratios):+.1%} | "
                    f"{min(ratios):+.1%} to {max(ratios):+.1%} | {memory:.0f} |"
                )
    print(f"steps: {args.steps}, {args.repeats} repeats, torch threads: 1\n")
    print("| model | loop | median step (µs) | vs raw | range over repeats | peak RSS (MB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
