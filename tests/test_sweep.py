"""A generated project's ``sweep`` command, from outside (issue 15, point 3).

Each test runs ``python -m exp sweep`` in processes of its own, as a user's
terminals or jobs would, and reads the study back with Optuna's own storage:
a sweep killed (SIGKILL) in the middle of a trial's epoch continues that
trial from its checkpoint to the weights an unbroken fit reaches; a pruner stops a bad
trial cleanly; two workers share one study with no trial run twice. (Each
project's own ``tests/test_sweep.py`` checks the study, its folders and
``best.yaml``, and the search-space errors, in-process.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from conftest import make_project, project_env

QUIET = [
    *("--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.num_nodes", "1"),
    *("--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"),
]
# Long enough epochs (150 steps) that the test kills trial 1 between its first
# checkpoint and its end.
SLOW = [
    *QUIET,
    "--trainer.max_epochs",
    "3",
    *("--data.num_samples", "3000", "--data.batch_size", "16"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("sweep") / "exp"
    return make_project(dest, task="tabular_regression", logger=["csv"]).path


@pytest.fixture(scope="module")
def hydra_project(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("sweep-hydra") / "exp"
    return make_project(dest, task="tabular_regression", logger=["csv"], config="hydra").path


def _start(project: Path, command: str, root: Path, *extra: str) -> subprocess.Popen:
    env = {**project_env(), "PYTHONPATH": str(project / "src")}
    options = ["--trainer.default_root_dir", str(root), *extra]
    if (project / "configs" / "config.yaml").is_file():  # a hydra project: Hydra's overrides
        options = _as_overrides(options)
    argv = [sys.executable, "-m", "exp", command, *options]
    return subprocess.Popen(
        argv, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _as_overrides(options: list[str]) -> list[str]:
    """``--a.b value`` pairs as ``a.b=value`` (a callback's under ``callbacks.``)."""
    pairs = zip(options[::2], options[1::2], strict=True)
    spelled = [(key[2:], value) for key, value in pairs]
    return [
        f"callbacks.{key}={value}" if key.startswith("checkpoint.") else f"{key}={value}"
        for key, value in spelled
    ]


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, out[-2000:] + err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return out


def _study(root: Path) -> optuna.Study:
    backend = optuna.storages.journal.JournalFileBackend(str(root / "sweeps" / "sweep.journal"))
    return optuna.load_study(study_name="sweep", storage=optuna.storages.JournalStorage(backend))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


# The hydra project's sweep shares all but its entry point with the cli one's:
# its kill-and-continue runs with the slow set (-m slow).
@pytest.mark.parametrize("config", ["cli", pytest.param("hydra", marks=pytest.mark.slow)])
def test_a_killed_sweep_continues_its_trial_to_the_weights_of_an_unbroken_fit(
    config, request, tmp_path
) -> None:
    project = request.getfixturevalue("project" if config == "cli" else "hydra_project")
    root = tmp_path / "runs"
    # last.ckpt every 50 steps: the kill comes in the middle of an epoch.
    every = ("--checkpoint.every_n_train_steps", "50")
    sweep = ["--sweep.trials", "4", "--sweep.pruner", "none", *SLOW, *every]
    worker = _start(project, "sweep", root, *sweep)
    last = root / "sweeps" / "sweep" / "trial_1" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists():  # trial 1's first epoch is over
        assert worker.poll() is None and time.monotonic() < deadline, worker.stderr.read()
        time.sleep(0.01)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=60)
    killed_at = torch.load(last, weights_only=True)
    ended = killed_at["epoch"] == 2 and killed_at["loops"]["epoch_finished"]
    assert not ended, "trial 1 ended before it was killed: make its epochs longer"
    assert not killed_at["loops"]["epoch_finished"]  # killed mid-epoch, after step 50

    out = _finish(_start(project, "sweep", root, *sweep))
    assert "continues its last checkpoint" in out
    trials = _study(root).trials
    states = {t.number: t.state.name for t in trials}
    assert states == {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE", 3: "COMPLETE", 4: "COMPLETE"}
    (continuation,) = [t for t in trials if t.user_attrs.get("continues") == 1]
    assert continuation.user_attrs["folder"] == "trial_1"
    assert continuation.params == trials[1].params
    folders = sorted(p.name for p in (root / "sweeps" / "sweep").glob("trial_*"))
    assert folders == ["trial_0", "trial_1", "trial_3", "trial_4"]  # four trials, one continued
    assert [p.name for p in (last.parents[2]).glob("version_*")] == ["version_0"]  # resumed there

    # The same trial, never killed: a fit with the values it was given.
    straight = tmp_path / "straight"
    values = [
        token for key, value in trials[1].params.items() for token in (f"--{key}", repr(value))
    ]
    _finish(_start(project, "fit", straight, *SLOW, *every, *values))
    unbroken = _weights(straight / "version_0" / "checkpoints" / "last.ckpt")
    continued = _weights(last)
    assert unbroken.keys() == continued.keys()
    for name, tensor in unbroken.items():
        assert torch.equal(tensor, continued[name]), name


def test_the_pruner_stops_a_bad_trial_cleanly(project, tmp_path) -> None:
    root = tmp_path / "runs"
    (root / "sweeps").mkdir(parents=True)
    backend = optuna.storages.journal.JournalFileBackend(str(root / "sweeps" / "sweep.journal"))
    study = optuna.create_study(study_name="sweep", storage=optuna.storages.JournalStorage(backend))
    study.enqueue_trial({"model.lr": 3e-3, "model.hidden": 64})  # learns
    study.enqueue_trial({"model.lr": 1e-4, "model.hidden": 64})  # barely moves
    out = _finish(
        _start(
            project,
            "sweep",
            root,
            *("--sweep.trials", "2", "--sweep.startup_trials", "1", "--sweep.warmup_steps", "0"),
            *QUIET,
            *("--trainer.max_epochs", "4", "--data.num_samples", "512"),
        )
    )
    good, bad = _study(root).trials
    assert (good.state.name, bad.state.name) == ("COMPLETE", "PRUNED")
    assert "Trial 1 pruned at epoch 0" in out
    kept = root / "sweeps" / "sweep" / "trial_1" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(kept, weights_only=True)["epoch"] == 0  # stopped after epoch 0


# Twice, to show sharing doesn't depend on timing: the second with the slow set.
@pytest.mark.parametrize("attempt", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_two_workers_share_one_study_and_run_each_trial_once(project, tmp_path, attempt) -> None:
    root = tmp_path / "runs"
    args = ["--sweep.trials", "6", *QUIET, "--trainer.max_epochs", "1", "--data.num_samples", "256"]
    workers = [_start(project, "sweep", root, *args) for _ in range(2)]
    outs = [_finish(worker) for worker in workers]
    ran = [
        int(line.split()[1])
        for out in outs
        for line in out.splitlines()
        if line.startswith("Trial ") and line.split()[2].startswith("(")
    ]
    assert sorted(ran) == list(range(6))  # every trial number once, across both workers
    assert all("Trial " in out for out in outs)  # and both worked
    trials = _study(root).trials
    assert len(trials) == 6 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED", "FAIL"}
    for trial in trials:  # each trial's folder holds one run
        folder = root / "sweeps" / "sweep" / f"trial_{trial.number}"
        assert [p.name for p in folder.glob("version_*")] == ["version_0"]
