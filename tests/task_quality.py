"""The task quality bars' shared step: train and evaluate inside a generated project.

Each bar (tests/test_task_*.py) fits a freshly rendered project through its
command line, as a user would, in a subprocess with the project's package on
the path, and reads back the metrics the evaluation returned.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import make_project, project_env

# Each bar holds on every seed; the default run tries the first, the slow set all
# three (CI time: each seed of a bar is a whole fit in a process of its own).
SEEDS = (0, 1, 2)
BY_DEFAULT = [SEEDS[0], *(pytest.param(seed, marks=pytest.mark.slow) for seed in SEEDS[1:])]

# Runs inside the project: fit, then evaluate a checkpoint; prints the metrics.
FIT_AND_EVALUATE = """
import json, sys
from importlib import import_module

main = import_module(sys.argv[1] + ".__main__").main
spec = json.loads(sys.argv[2])
main(["fit", *spec["options"], *spec["fit"]])
(metrics,) = main([spec["command"], "--ckpt_path", spec["ckpt_path"], *spec["options"]])
print(json.dumps(metrics))
"""

QUIET = [
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.num_nodes=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.logger=false",
]


def run_python(project: Path, code: str, *args: str) -> Any:
    """Run ``code`` in ``project`` (its ``src`` on the path); what it printed last, as JSON."""
    script = project / "quality_step.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=project,
        env={**project_env(), "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def fit_and_evaluate(
    project: Path,
    package: str,
    seed: int,
    options: list[str],
    fit: list[str],
    command: str = "test",
    ckpt_path: str = "last",
) -> dict[str, float]:
    """``fit`` then ``command --ckpt_path ckpt_path`` with ``options``, seeded; the metrics."""
    seeded = [f"--seed_everything={seed}", f"--trainer.default_root_dir=runs{seed}"]
    spec = {
        "options": [*QUIET, *seeded, *options],
        "fit": fit,
        "command": command,
        "ckpt_path": ckpt_path,
    }
    return run_python(project, FIT_AND_EVALUATE, package, json.dumps(spec))


def render(tmp_path_factory: Any, task: str, package: str) -> Path:
    """A fresh project of ``task`` whose package is ``package``."""
    path = tmp_path_factory.mktemp(task) / package
    make_project(path, task=task)
    return path
