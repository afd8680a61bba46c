"""The generated engine, driven from outside: SIGKILL mid-run, then exact resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import make_project, project_env

ARGS = [
    "--trainer.max_epochs",
    "30",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
    "--data.num_samples",
    "128",
    "--data.batch_size",
    "32",
    "--checkpoint.every_n_train_steps",
    "1",
]


def _fit(project: Path, root: Path, *extra: str, **popen) -> subprocess.Popen:
    env = {**project_env(), "PYTHONPATH": str(project / "src")}
    command = [sys.executable, "-m", "exp", "fit", "--trainer.default_root_dir", str(root)]
    return subprocess.Popen(
        [*command, *ARGS, *extra],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **popen,
    )


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_a_run_killed_with_sigkill_resumes_to_bitwise_the_same_weights(tmp_path) -> None:
    project = make_project(tmp_path / "exp", logger="csv").path
    straight = _fit(project, tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, straight.stderr.read()

    killed = _fit(project, tmp_path / "killed")
    last = tmp_path / "killed" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    step = 0
    while step < 5 and time.monotonic() < deadline and killed.poll() is None:
        if last.exists():
            step = torch.load(last, weights_only=True)["global_step"]
        time.sleep(0.01)
    os.kill(killed.pid, signal.SIGKILL)  # no handler, no cleanup: the hard way
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    stopped_at = torch.load(last, weights_only=True)["global_step"]
    assert 5 <= stopped_at < 120

    resumed = _fit(project, tmp_path / "killed", "--ckpt_path", "last")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    final = _weights(tmp_path / "killed" / "version_1" / "checkpoints" / "last.ckpt")
    expected = _weights(tmp_path / "straight" / "version_0" / "checkpoints" / "last.ckpt")
    assert final.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(final[name], tensor), name


def test_sigterm_leaves_an_up_to_date_last_checkpoint(tmp_path) -> None:
    project = make_project(tmp_path / "exp", logger="csv").path
    run = _fit(project, tmp_path / "runs")
    last = tmp_path / "runs" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 128 + signal.SIGTERM
    checkpoint = torch.load(last, weights_only=True)
    # last.ckpt holds the state at the moment of the signal: resuming continues.
    assert 0 < checkpoint["global_step"] < 120
