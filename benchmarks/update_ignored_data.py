"""`scaffold update` with and without a large ignored data folder (default 1 GB).

An update renders the template outside the project and lets git merge; git never
walks ignored folders, so data/, runs/ and checkpoints must cost nothing. This
times the same update (``-d logger=csv``, a real merge touching a few files) on
one project, first without data, then with ``--gb`` GB of random bytes in
``data/`` (1 MB files) plus a checkpoint in ``runs/``, resetting the project to
its pre-update commit between runs. Prints the median of ``--repeat`` runs.

    python benchmarks/update_ignored_data.py [--gb 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def git(path: Path, *args: str) -> str:
    """Run git in ``path``; return its output."""
    return subprocess.run(
        ["git", *args], cwd=path, check=True, capture_output=True, text=True
    ).stdout


def timed_update(path: Path, start: str) -> float:
    """Reset ``path`` to ``start``, then time one ``scaffold update`` in a fresh process."""
    git(path, "reset", "--quiet", "--hard", start)
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "scaffold", "update", "-d", "logger=csv"],
        cwd=path,
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return time.perf_counter() - began


def fill(folder: Path, gigabytes: float) -> int:
    """Write ``gigabytes`` of random bytes as 1 MB files; return the file count."""
    count = int(gigabytes * 1024)
    for i in range(count):
        part = folder / "data" / f"shard_{i // 100:03d}" / f"{i:05d}.bin"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(os.urandom(1 << 20))
    ckpt = folder / "runs" / "version_0" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(os.urandom(16 << 20))
    return count + 1


def main() -> None:
    """Time the update without, then with, the ignored data."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from scaffold.new import create

    tmp = Path(tempfile.mkdtemp(prefix="scaffold-bench-"))
    try:
        project = create(tmp / "bench", data={}, defaults=True).path
        start = git(project, "rev-parse", "HEAD").strip()
        without = [timed_update(project, start) for _ in range(args.repeat)]
        files = fill(project, args.gb)
        assert git(project, "status", "--porcelain") == "", "the data must be ignored"
        with_data = [timed_update(project, start) for _ in range(args.repeat)]
        began = time.perf_counter()
        for part in sorted((project / "data").rglob("*.bin")):
            part.read_bytes()
        read_once = time.perf_counter() - began
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"scaffold update -d logger=csv, median of {args.repeat} (min-max), seconds")
    print("| ignored data | update |")
    print("| --- | --- |")
    for label, runs in (
        ("none", without),
        (f"{args.gb:g} GB in {files} files", with_data),
    ):
        print(f"| {label} | {statistics.median(runs):.2f} ({min(runs):.2f}-{max(runs):.2f}) |")
    print(f"For scale: reading the data once (from the page cache) takes {read_once:.2f} s.")


if __name__ == "__main__":
    main()
