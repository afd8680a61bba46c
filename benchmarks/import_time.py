"""Import time of a generated project's entry point vs ``import torch`` alone.

    python benchmarks/import_time.py [--runs 7] [--logger tensorboard]

Renders a project with scaffold, then times fresh interpreters importing
``torch`` and importing the project's ``__main__`` (everything ``fit`` needs:
config, engine, callbacks, the chosen logger). Median of --runs each, in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def seconds(code: str, env: dict[str, str]) -> float:
    """Wall time of a fresh ``python -c code``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    """Print the medians and their ratio as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--logger", default="tensorboard")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from scaffold.new import create

    with tempfile.TemporaryDirectory() as tmp:
        create(Path(tmp) / "imp-exp", data={"logger": args.logger}, defaults=True, use_git=False)
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "imp-exp" / "src")}
        cases = {
            "python -c pass": "pass",
            "import torch": "import torch",
            f"import imp_exp.__main__ (logger={args.logger})": "import imp_exp.__main__",
        }
        seconds("import torch, imp_exp.__main__", env)  # warm the file cache
        results = {
            label: statistics.median(seconds(code, env) for _ in range(args.runs))
            for label, code in cases.items()
        }
    torch_time = results["import torch"]
    print(f"median of {args.runs} fresh interpreters\n")
    print("| import | seconds | vs import torch |")
    print("| --- | ---: | ---: |")
    for label, value in results.items():
        print(f"| `{label}` | {value:.2f} | {value / torch_time:.2f}x |")


if __name__ == "__main__":
    main()
