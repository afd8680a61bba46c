"""text_classification on its fixture files: accuracy at least 0.9, for 3 seeds.

The quality bar of issue 13. A generated project's own fixture
(``tests/fixtures/topics.csv``: 120 short sentences on three topics) is read
through the csv source and the project's word tokenizer, with the default
model and optimizer; each seed shuffles the rows into other splits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_project, project_env

SEEDS = (0, 1, 2)
EPOCHS = 15  # 84 training rows: 2 steps an epoch

SCRIPT = """
import json, sys
from txt.__main__ import main

seed, epochs, path = sys.argv[1], sys.argv[2], sys.argv[3]
options = [
    "--data.source=csv", f"--data.path={path}", f"--data.seed={seed}", f"--seed_everything={seed}",
    "--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.num_nodes=1",
    "--trainer.enable_progress_bar=false", "--trainer.logger=false",
    "--trainer.enable_model_summary=false", f"--trainer.default_root_dir=runs{seed}",
]
main(["fit", f"--trainer.max_epochs={epochs}", *options])
(tested,) = main(["test", "--ckpt_path", "last", *options])
print(json.dumps(tested))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "txt"
    make_project(path, task="text_classification")
    (path / "quality.py").write_text(SCRIPT)
    return path


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_on_the_fixture_is_at_least_0_9(project, seed) -> None:
    env = {**project_env(), "PYTHONPATH": str(project / "src")}
    fixture = project / "tests" / "fixtures" / "topics.csv"
    result = subprocess.run(
        [sys.executable, "quality.py", str(seed), str(EPOCHS), str(fixture)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tested = json.loads(result.stdout.strip().splitlines()[-1])
    assert tested["test_acc"] >= 0.9, tested
    assert tested["test_f1"] >= 0.85, tested
