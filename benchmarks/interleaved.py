"""The generated loop against a raw loop, interleaved in one process, block by block.

    python benchmarks/interleaved.py                 # tiny MLP, 7 runs
    python benchmarks/interleaved.py --runs 15 --model cnn

overhead.py runs each loop in its own process, one after another; on a shared
machine the speed changes between processes (on this project's 2-core VM the
same raw loop measured anywhere from 470 to 1,097 µs a step in eight runs in
a row), and a single overhead.py run moves by as much as the 10% it is meant to
resolve. This benchmark takes the machine's drift out: one process trains the
model with the generated Trainer (overhead.py's "ours" set-up: self.log every
step, the progress bar, the CSV logger, ModelCheckpoint, LearningRateMonitor)
and, after every ``--block`` of its steps, runs as many raw steps (forward,
backward, step, zero_grad) on a copy of the model with its own loader and
optimizer. Both are timed per step, as the gap between consecutive step ends;
the raw block's time is left out of the generated loop's gaps.

A run reports the median generated step over the median raw step; each run is
a fresh process, and the table gives the median over ``--runs`` and the range.
What this does not see: anything that differs between two processes (import
state, memory layout), which overhead.py does see.

``--without log,callbacks,logger,bar`` leaves those out of the generated
loop, to measure what each costs. ``--calibrate`` replaces the Trainer's epoch
with the raw loop's four calls, timed by the same callback: both sides then do
the same work, and the figure is the instrument's own bias (it should read 0).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import FEATURES, build, fit_ours, render_project  # noqa: E402  (the same set-up)


def run_once(
    kind: str, steps: int, block: int, project: Path, without: frozenset, calibrate: bool
) -> dict:
    """One process's measurement: median generated and raw step times (µs), after warm-up."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    net, dataset = build(kind)
    twin = copy.deepcopy(net)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.01)
    loader = DataLoader(dataset, batch_size=64, shuffle=True)
    twin_loader = DataLoader(dataset, batch_size=64, shuffle=True)
    twin_batches = iter(twin_loader)
    ours: list[float] = []
    raw: list[float] = []

    def raw_block() -> None:
        nonlocal twin_batches
        previous = time.perf_counter()
        for _ in range(block):
            try:
                x, y = next(twin_batches)
            except StopIteration:
                twin_batches = iter(twin_loader)
                x, y = next(twin_batches)
            loss = nn.functional.cross_entropy(twin(x), y)
            loss.backward()
            twin_optimizer.step()
            twin_optimizer.zero_grad(set_to_none=True)
            now = time.perf_counter()
            raw.append(now - previous)
            previous = now

    class Interleave:
        """Times the generated steps; every ``block`` of them, a block of raw steps."""

        def __init__(self) -> None:
            self.last: float | None = None
            self.count = 0

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            now = time.perf_counter()
            if self.last is not None:
                ours.append(now - self.last)
            self.count += 1
            if self.count % block == 0:
                raw_block()
                self.last = None  # the next gap would include the raw block
            else:
                self.last = time.perf_counter()

    timer = Interleave()
    if calibrate:
        sys.path.insert(0, str(project / "src"))
        from bench_exp.engine.trainer import Trainer

        def raw_epoch(trainer, loader, val_loaders) -> None:
            """The Trainer's epoch replaced by the raw loop, timed by the same callback."""
            net, optimizer = trainer.module.net, trainer.optimizers[0]
            for batch_idx, (x, y) in enumerate(loader):
                loss = nn.functional.cross_entropy(net(x), y)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                trainer.loop.global_step += 1
                timer.on_train_batch_end(trainer, trainer.module, None, None, batch_idx)
                if trainer.loop.global_step == steps:
                    return

        Trainer._train_epoch = raw_epoch
    with tempfile.TemporaryDirectory() as workdir, contextlib.redirect_stdout(io.StringIO()):
        fit_ours(project, net, loader, steps, Path(workdir), timer, without)
    warm_up = 50
    ours_us = statistics.median(ours[warm_up:]) * 1e6
    raw_us = statistics.median(raw[warm_up:]) * 1e6
    return {"ours_us": ours_us, "raw_us": raw_us}


def main() -> None:
    """Run ``--runs`` processes and print the median ratio and its range."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--project", help="a rendered project (default: render one)")
    parser.add_argument(
        "--without", default="", help=f"leave these out (comma-separated): {', '.join(FEATURES)}"
    )
    parser.add_argument(
        "--calibrate", action="store_true", help="raw against raw: the instrument's own bias"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    without = frozenset(filter(None, args.without.split(",")))
    if without - set(FEATURES):
        parser.error(f"--without takes {', '.join(FEATURES)}; got {args.without}")
    if args.child:
        result = run_once(
            args.model, args.steps, args.block, Path(args.project), without, args.calibrate
        )
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        project = args.project or render_project(Path(tmp))
        command = [sys.executable, __file__, "--child", "--model", args.model]
        command += ["--steps", str(args.steps), "--block", str(args.block)]
        command += ["--project", str(project), "--without", args.without]
        command += ["--calibrate"] if args.calibrate else []
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        results = []
        for _ in range(args.runs):
            done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    ratios = [r["ours_us"] / r["raw_us"] - 1 for r in results]
    what = "calibration (raw against raw)" if args.calibrate else "everything on"
    what = f"without {', '.join(sorted(without))}" if without else what
    print(
        f"{args.model}, {what}: {args.runs} runs of {args.steps} steps, "
        f"{args.block}-step blocks, torch threads: 1\n"
    )
    print("| loop | median step (µs) | vs raw, median of runs | range over runs |")
    print("| --- | --- | --- | --- |")
    print(f"| raw | {statistics.median(r['raw_us'] for r in results):.0f} | | |")
    print(
        f"| ours | {statistics.median(r['ours_us'] for r in results):.0f} | "
        f"{statistics.median(ratios):+.1%} | {min(ratios):+.1%} to {max(ratios):+.1%} |"
    )


if __name__ == "__main__":
    main()
