"""The TPU path on a real XLA device: optional, run by hand (see docs/development.md).

torch_xla 2.9.0 needs torch 2.9.0 (a CUDA build, ~6.6 GB venv), too heavy for
routine CI; this test runs a generated TPU project's own ``tests/test_xla.py``
with that venv's python on one XLA CPU device (``PJRT_DEVICE=CPU``):

    SCAFFOLD_XLA_PYTHON=/path/to/xla-venv/bin/python pytest -m xla tests/test_xla.py
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import make_project, project_env

XLA_PYTHON = os.environ.get("SCAFFOLD_XLA_PYTHON")

pytestmark = [
    pytest.mark.xla,
    pytest.mark.skipif(
        not XLA_PYTHON,
        reason="set SCAFFOLD_XLA_PYTHON to a python with torch_xla (docs/development.md)",
    ),
]


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "bf16-true"])
def test_tpu_project_trains_and_resumes_on_an_xla_device(tmp_path: Path, precision: str) -> None:
    project = make_project(
        tmp_path / "tpu-exp", hardware="tpu", devices=8, precision=precision, logger="csv"
    ).path
    result = subprocess.run(
        [XLA_PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_xla.py"],
        cwd=project,
        env={**project_env(), "PJRT_DEVICE": "CPU"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout, result.stdout
