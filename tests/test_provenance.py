"""Every run records where it came from (issue 14, point 3): the template, its
version and the answers (kept in the package, so an installed copy has them),
the git commit and whether the tree was dirty, the software and the hardware.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from conftest import make_project, project_env
from gitrepo import (
    commit_all,
    git,
    invoke,
    isolated,  # noqa: F401 (autouse)
)

from scaffold import __version__

FIT = [
    "fit",
    *("--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"),
    *("--trainer.enable_model_summary", "false", "--data.num_samples", "64"),
]


def fit(project: Path, root: Path, pythonpath: Path, cwd: Path) -> dict:
    """Train once in a subprocess; the run's provenance.yaml."""
    env = {**project_env(), "PYTHONPATH": str(pythonpath)}
    command = [sys.executable, "-m", "exp", *FIT, "--trainer.default_root_dir", str(root)]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (folder,) = [
        line.split(": ", 1)[1] for line in result.stdout.splitlines() if "Run folder: " in line
    ]
    return yaml.safe_load((Path(folder) / "provenance.yaml").read_text())


def test_a_run_records_the_template_answers_git_state_software_and_hardware(tmp_path) -> None:
    project = make_project(tmp_path / "exp", task="tabular_regression", logger=["csv"]).path
    made = fit(project, tmp_path / "runs", project / "src", project)
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert made["template"] == {"source": "scaffold:default", "version": __version__}
    assert made["answers"] == {k: v for k, v in recorded.items() if not k.startswith("_")}
    assert made["git"] == {"commit": git(project, "rev-parse", "HEAD").strip(), "dirty": False}
    assert made["software"]["torch"] == torch.__version__
    assert made["software"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert made["hardware"]["cpu_count"] == os.cpu_count()

    # An edit not committed yet: the same commit, dirty.
    module = project / "src/exp/module.py"
    module.write_text(module.read_text() + "\n# trying a larger learning rate\n")
    made = fit(project, tmp_path / "runs", project / "src", project)
    assert made["git"]["dirty"] is True
    commit_all(project, "larger learning rate")
    made = fit(project, tmp_path / "runs", project / "src", project)
    assert made["git"] == {"commit": git(project, "rev-parse", "HEAD").strip(), "dirty": False}


def test_an_installed_copy_has_the_template_and_answers_and_no_git_state(tmp_path) -> None:
    project = make_project(tmp_path / "exp", task="tabular_regression", logger=[]).path
    target = tmp_path / "installed"
    subprocess.run(
        # A real, non-editable install (a wheel built by hatchling, unpacked into target).
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
        + ["--target", str(target), str(project)],
        check=True,
        capture_output=True,
    )
    assert (target / "exp" / "made_with.yml").is_file()
    made = fit(project, tmp_path / "runs", target, tmp_path)
    assert made["template"]["source"] == "scaffold:default"
    assert made["answers"]["project_name"] == "exp" and made["answers"]["logger"] == []
    assert made["git"] == {"commit": "unknown", "dirty": "unknown"}


def test_update_refreshes_the_record_in_the_package(tmp_path) -> None:
    project = make_project(tmp_path / "exp", logger=["tensorboard"]).path
    result = invoke("update", project, "-d", "logger=csv,wandb")
    assert result.exit_code == 0, result.output
    made_with = yaml.safe_load((project / "src/exp/made_with.yml").read_text())
    assert made_with["answers"]["logger"] == ["wandb", "csv"]
    assert made_with["template"] == {"source": "scaffold:default", "version": __version__}
