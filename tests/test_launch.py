"""The generated launchers, run for real: the SLURM script's preemption and requeue.

SLURM itself isn't on this machine, so ``srun`` and ``scontrol`` are stand-ins
on PATH (``srun`` runs its command here; ``scontrol`` answers ``show
hostnames`` and records ``requeue``). Everything else is the generated
``scripts/slurm.sbatch`` under bash, real ``torchrun`` with two gloo processes,
and a real USR1, as SLURM sends it before the time limit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import make_project, project_env

SRUN = """#!/usr/bin/env bash
while [[ "$1" == --* ]]; do shift; done  # srun's own options
exec "$@"
"""
SCONTROL = """#!/usr/bin/env bash
if [ "$1" = show ]; then echo 127.0.0.1; else echo "$@" >> "$SCONTROL_LOG"; fi
"""


@pytest.fixture
def cluster(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {
        # The stand-ins, then this venv's torchrun and python, then the rest.
        "PATH": os.pathsep.join(
            [str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]
        ),
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "node001",
        "SLURM_NNODES": "1",
        "MASTER_PORT": str(port),
        "SCONTROL_LOG": str(tmp_path / "scontrol.log"),
        "RUNS_DIR": str(tmp_path / "runs"),
        "OMP_NUM_THREADS": "1",
    }


OPTIONS = [
    "--trainer.accelerator",
    "cpu",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
    "--data.num_samples",
    "256",
    "--data.batch_size",
    "8",
]


def _last_step(runs: Path) -> int:
    last = max(runs.glob("version_*/checkpoints/last.ckpt"), key=os.path.getmtime)
    return torch.load(last, weights_only=True)["global_step"]


def test_slurm_script_stops_on_usr1_requeues_and_the_next_job_resumes(
    tmp_path: Path, cluster: dict[str, str]
) -> None:
    project = make_project(
        tmp_path / "exp", project_name="exp", task="tabular_regression", devices=2, logger="csv"
    ).path
    env = {**project_env(), **cluster, "PYTHONPATH": str(project / "src")}
    script = project / "scripts" / "slurm.sbatch"
    runs = Path(cluster["RUNS_DIR"])

    job = subprocess.Popen(
        ["bash", str(script), *OPTIONS, "--trainer.max_epochs", "-1"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Let training get going (its metrics file appears with the first logged step).
    deadline = time.monotonic() + 120
    while not list(runs.glob("version_0/metrics.csv")) and time.monotonic() < deadline:
        assert job.poll() is None, job.stdout.read()
        time.sleep(0.5)
    time.sleep(3)
    job.send_signal(signal.SIGUSR1)  # SLURM: --signal=B:USR1@120
    output, _ = job.communicate(timeout=120)

    assert job.returncode == 0, output[-4000:]
    assert "requeueing job 4242" in output
    assert Path(cluster["SCONTROL_LOG"]).read_text().split() == ["requeue", "4242"]
    stopped_at = _last_step(runs)
    assert stopped_at > 0

    # The requeued job: same script, finds last.ckpt and continues from it.
    target = stopped_at + 3
    again = subprocess.run(
        [
            "bash",
            str(script),
            *OPTIONS,
            "--trainer.max_epochs",
            "-1",
            "--trainer.max_steps",
            str(target),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"step {stopped_at}" in again.stdout  # "Resumed from ... at epoch e, step n"
    assert _last_step(runs) == target
    assert Path(cluster["SCONTROL_LOG"]).read_text().split() == ["requeue", "4242"]
