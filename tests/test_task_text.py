"""text_classification on its fixture file: accuracy at least 0.9, for 3 seeds.

The quality bar of issue 13. A generated project's own fixture
(``tests/fixtures/topics.csv``: 120 short sentences on three topics) is read
through the csv source and the project's word tokenizer, with the default
model and optimizer; each seed shuffles the rows into other splits.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from task_quality import BY_DEFAULT, fit_and_evaluate, render

EPOCHS = 15  # 84 training rows: 2 steps an epoch


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return render(tmp_path_factory, "text_classification", "txt")


@pytest.mark.parametrize("seed", BY_DEFAULT)
def test_accuracy_on_the_fixture_is_at_least_0_9(project, seed) -> None:
    fixture = project / "tests" / "fixtures" / "topics.csv"
    data = ["--data.source=csv", f"--data.path={fixture}", f"--data.seed={seed}"]
    tested = fit_and_evaluate(project, "txt", seed, data, [f"--trainer.max_epochs={EPOCHS}"])
    assert tested["test_acc"] >= 0.9, tested
    assert tested["test_f1"] >= 0.85, tested
