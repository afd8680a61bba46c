"""The torchvision backbone of image projects: optional, run by hand (see docs/tasks).

The torchvision matching CI's CPU torch is not installable here (PyPI's build
for it is a CUDA one, which fails to import beside the CPU torch), so this
test runs a generated image project's own ``tests/test_backbone.py`` with a
Python that has a matching torch and torchvision:

    SCAFFOLD_VISION_PYTHON=/path/to/venv/bin/python pytest tests/test_vision.py

Without one, the project's suite still runs its other backbone test: asking for
a backbone without torchvision is one line saying how to get it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import make_project, project_env

VISION_PYTHON = os.environ.get("SCAFFOLD_VISION_PYTHON")

pytestmark = pytest.mark.skipif(
    not VISION_PYTHON,
    reason="set SCAFFOLD_VISION_PYTHON to a python with torch and a matching torchvision",
)


def test_the_backbone_fine_tunes_where_torchvision_imports(tmp_path: Path) -> None:
    project = make_project(tmp_path / "vision-exp", task="image_classification").path
    result = subprocess.run(
        [VISION_PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_backbone.py"],
        cwd=project,
        env={**project_env(), "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 passed, 1 skipped" in result.stdout, result.stdout
