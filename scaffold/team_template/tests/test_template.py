"""The template renders, and the project it renders passes its own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]


def test_renders_and_the_project_tests_pass(tmp_path: Path) -> None:
    # Render a copy outside git: the working tree, not the newest tag.
    copy = tmp_path / "template"
    shutil.copytree(TEMPLATE, copy, ignore=_outside_the_template)
    project = tmp_path / "my-exp"
    subprocess.run(
        [sys.executable, "-m", "scaffold", "new", str(project), "--template", str(copy)]
        + ["--defaults", "--no-git"],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(WANDB_MODE="offline", PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _outside_the_template(folder: str, names: list[str]) -> list[str]:
    """This repository's own files (git, these tests), not the template's."""
    top = Path(folder) == TEMPLATE
    return [n for n in names if n == "__pycache__" or (top and n in (".git", "tests"))]
