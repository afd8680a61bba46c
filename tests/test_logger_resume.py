"""A run killed with SIGKILL and resumed keeps one continuous record in every
logger (issue 14, point 4), read back with each tool's own reader: the
generated project's ``tests/records.py`` (TensorBoard's EventAccumulator, the
csv module, MLflow's client, and wandb's protobuf records for W&B).

CI runs it for a project with all four loggers; ``-m slow`` also for each
logger beside the CSV one alone, which tells the test when to kill (a
clean stop and resume is in every generated project's test_loggers.py).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import make_project, project_env

ARGS = [
    *("--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.num_nodes", "1"),
    *("--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"),
    *("--trainer.log_every_n_steps", "1", "--trainer.max_epochs", "3"),
    *("--data.num_samples", "3000", "--data.batch_size", "16"),
]


EVERY = ["tensorboard", "csv", "wandb", "mlflow"]
ALONE = [pytest.param([n, "csv"], id=n, marks=pytest.mark.slow) for n in EVERY if n != "csv"]


@pytest.fixture(scope="module", params=[pytest.param(EVERY, id="every"), *ALONE])
def project(request, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("loggers") / "exp"
    return make_project(dest, task="tabular_regression", logger=request.param).path


@pytest.fixture
def records(project, monkeypatch):
    """The project's tests/records.py (it reads W&B files with the package's own reader)."""
    monkeypatch.syspath_prepend(str(project / "src"))
    yield _records_module(project)
    for name in [n for n in sys.modules if n == "exp" or n.startswith("exp.")]:
        del sys.modules[name]  # other tests import projects named exp


def _records_module(project: Path):
    spec = importlib.util.spec_from_file_location("exp_records", project / "tests" / "records.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fit(project: Path, root: Path, *extra: str) -> subprocess.Popen:
    env = {**project_env(), "PYTHONPATH": str(project / "src")}
    command = [sys.executable, "-m", "exp", "fit", *ARGS, "--trainer.default_root_dir", str(root)]
    return subprocess.Popen(
        [*command, *extra],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(run: subprocess.Popen) -> str:
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, out[-2000:] + err[-3000:]
    return out


def _last_step(csv_file: Path) -> int:
    """The last step in the CSV file (-1 before its first save)."""
    if not csv_file.is_file():
        return -1
    with csv_file.open() as rows:
        return max((int(line.split(",")[0]) for line in list(rows)[1:]), default=-1)


def test_sigkill_then_resume_keeps_one_continuous_record_in_every_logger(
    project, records, tmp_path
) -> None:
    straight = records.read_records(_finish(_fit(project, tmp_path / "straight")))

    root = tmp_path / "killed"
    run = _fit(project, root)
    last = root / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists():  # the first epoch's checkpoint
        assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()
        time.sleep(0.01)
    checkpoint_step = torch.load(last, weights_only=True)["loops"]["batches_stepped"]
    csv_file = root / "version_0" / "metrics.csv"
    # Kill once the run has logged past its checkpoint: the CSV is saved at
    # each checkpoint and every 100 rows, so a later step shows the others did too.
    while _last_step(csv_file) <= checkpoint_step:
        assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()
        time.sleep(0.01)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL, "the run ended before it was killed"
    resumed_from = torch.load(last, weights_only=True)["loops"]["batches_stepped"]
    assert _last_step(csv_file) > resumed_from, "the next checkpoint came first: kill sooner"

    resumed = _finish(_fit(project, root, "--ckpt_path", "last"))
    assert f"Run folder: {root / 'version_0'}\n" in resumed
    assert [p.name for p in root.glob("version_*")] == ["version_0"]
    held_by = records.read_run(resumed)  # each logger's records and hyperparameters
    killed = {name: held for name, (held, _) in held_by.items()}
    chosen = set(yaml.safe_load((project / ".copier-answers.yml").read_text())["logger"])
    assert killed.keys() == straight.keys() == chosen
    for name, held in killed.items():
        try:
            steps = records.assert_steps_continue(held)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from None
        assert steps == records.assert_steps_continue(straight[name]), name
        records.assert_same_records({"straight": straight[name], "killed and resumed": held})
    made = yaml.safe_load((root / "version_0" / "provenance.yaml").read_text())
    assert made["template"]["source"] == "scaffold:default"
    for name, (_, params) in held_by.items():  # each logger's, resumed
        assert params["provenance.template.source"] == "scaffold:default", name
        assert str(params["provenance.answers.logger"]) == str(made["answers"]["logger"]), name
