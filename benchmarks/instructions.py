"""Per-step instructions of the tiny-MLP loops, counted by valgrind: raw vs ours.

    python benchmarks/instructions.py              # needs valgrind; ~25 minutes
    python benchmarks/instructions.py --no-cache   # instructions only, ~3x faster

A timed benchmark (overhead.py) moves with whatever else the machine runs; a
count doesn't. Each loop of overhead.py runs under valgrind's callgrind
twice, for ``--steps`` and for twice as many, on a dataset large enough that
no epoch ends in between (so once-per-epoch work like checkpoint writes
doesn't count); the difference divided by ``--steps`` is what one more step
costs. With the cache and branch simulation on, the table also shows
simulated first-level cache misses and branch mispredictions: valgrind's
model of them, not the CPU's.

numpy's OpenBLAS threads are held to one (``OPENBLAS_NUM_THREADS=1``): valgrind
runs one thread at a time, and an idle BLAS thread spinning in its time slices
would be counted as the loop's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OVERHEAD = ROOT / "benchmarks" / "overhead.py"
ROWS = 65_536  # 1,024 batches of 64: the measured steps stay inside the first epoch
NAMES = {
    "Ir": "instructions",
    "I1mr": "L1 instruction misses",
    "D1mr": "L1 data read misses",
    "D1mw": "L1 data write misses",
    "Bcm": "conditional branch mispredictions",
    "Bim": "indirect branch mispredictions",
}


def totals(variant: str, steps: int, project: Path, cache: bool, out: Path) -> dict[str, int]:
    """The event totals valgrind counted for one loop run of ``steps`` steps."""
    simulate = ["--cache-sim=yes", "--branch-sim=yes"] if cache else []
    command = [
        "valgrind",
        "--tool=callgrind",
        *simulate,
        f"--callgrind-out-file={out}",
        "-q",
        sys.executable,
        str(OVERHEAD),
        "--variant",
        variant,
        "--model",
        "mlp",
        "--steps",
        str(steps),
        "--rows",
        str(ROWS),
        "--project",
        str(project),
    ]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        sys.exit(f"error: the {variant} loop failed under valgrind:\n{done.stderr[-3000:]}")
    events: list[str] = []
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("summary:", "totals:")):
            return dict(zip(events, map(int, line.split()[1:]), strict=True))
    raise RuntimeError(f"no totals in {out}")


def main() -> None:
    """Count both loops at two lengths and print the per-step table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--no-cache", action="store_true", help="count instructions only")
    args = parser.parse_args()
    if args.steps < 60:  # overhead.py times steps after 50 of warm-up
        parser.error("--steps must be at least 60")
    if shutil.which("valgrind") is None:
        sys.exit("error: valgrind is not installed (apt install valgrind)")

    sys.path.insert(0, str(ROOT))
    from scaffold.new import create

    with tempfile.TemporaryDirectory() as tmp:
        project = create(
            Path(tmp) / "bench-exp", data={"logger": "csv"}, defaults=True, use_git=False
        ).path
        per_step = {}
        for variant in ("raw", "ours"):
            short, long = (
                totals(variant, n, project, not args.no_cache, Path(tmp) / f"{variant}.{n}.out")
                for n in (args.steps, 2 * args.steps)
            )
            per_step[variant] = {e: (long[e] - short[e]) / args.steps for e in short}
    raw, ours = per_step["raw"], per_step["ours"]
    print(f"tiny MLP, per step (callgrind, {args.steps} -> {2 * args.steps} steps)\n")
    print("| event | raw | ours | ours vs raw |")
    print("| --- | ---: | ---: | ---: |")
    for event, name in NAMES.items():
        if event in raw:
            print(
                f"| {name} | {raw[event]:,.0f} | {ours[event]:,.0f} | "
                f"{ours[event] / raw[event] - 1:+.1%} |"
            )


if __name__ == "__main__":
    main()
