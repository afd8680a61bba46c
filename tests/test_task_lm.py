"""language_model on its fixture text file: validation loss at most 0.8 · ln(vocabulary).

The quality bar of issue 13. A generated project's own fixture
(``tests/fixtures/river.txt``, 2.5 KB of plain English) is read through the
text source's byte-level tokenizer (a vocabulary of 256) with the default
model, for 3 seeds (the data split is fixed: the file's last fifth is held
out; the seeds change the initialisation and batch order).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from task_quality import BY_DEFAULT, fit_and_evaluate, render

EPOCHS = 10  # 64 training sequences of 32 bytes: 2 steps an epoch
BAR = 0.8 * math.log(256)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return render(tmp_path_factory, "language_model", "lm")


@pytest.mark.parametrize("seed", BY_DEFAULT)
def test_validation_loss_is_at_most_0_8_ln_vocab(project, seed) -> None:
    fixture = project / "tests" / "fixtures" / "river.txt"
    data = ["--data.source=text", f"--data.path={fixture}"]
    fit = [f"--trainer.max_epochs={EPOCHS}"]
    validated = fit_and_evaluate(project, "lm", seed, data, fit, command="validate")
    assert validated["val_loss"] <= BAR, (validated, BAR)
    assert validated["val_perplexity"] == pytest.approx(math.exp(validated["val_loss"]), rel=0.05)
