"""Port test: a Lightning GAN (two optimizers, manual optimization) in a generated project.

tests/helpers/lightning_gan.py is pytorch_lightning code. It runs under
Lightning 2.6.6, then in a generated project with only its import line
changed (tests/porting.py): the same losses at every step, the same
``global_step`` when each is logged (every ``optimizer.step()`` counts), the
same learning rates and weights, to 1e-6 — at 32-true, and at bf16-mixed on
the CPU. Under torchrun (two processes, gloo) a ddp project's ranks agree
with each other and with one process on the same global batch, and resuming
from a mid-epoch checkpoint is exact.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from conftest import make_project, project_env
from porting import HELPERS, load, port

pl = pytest.importorskip("pytorch_lightning")

GAN = HELPERS / "lightning_gan.py"
DRIVER = HELPERS / "train_gan.py"
BATCHES = 6  # 48 samples in batches of 8


@pytest.fixture(scope="module", params=["32-true", "bf16-mixed"])
def project(request, tmp_path_factory) -> tuple[str, Path]:
    """A generated project at this precision: its package and its src/."""
    name = "gan32" if request.param == "32-true" else "ganbf16"
    dest = tmp_path_factory.mktemp("port") / name
    made = make_project(dest, logger="none", callbacks=[], precision=request.param)
    return name, made.path / "src"


def _close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def test_only_the_import_line_changes() -> None:
    source = GAN.read_text()
    ported = port(source, "exp")
    changed = set(ported.splitlines()) ^ set(source.splitlines())
    assert changed == {
        "from pytorch_lightning import LightningDataModule, LightningModule, Trainer",
        "from exp.engine.module import DataModule as LightningDataModule",
        "from exp.engine.module import Module as LightningModule",
        "from exp.engine.trainer import Trainer",
    }


def test_the_lightning_gan_trains_the_same_in_a_generated_project(project, tmp_path) -> None:
    package, src = project
    precision = "bf16-mixed" if package == "ganbf16" else "32-true"
    lightning_trainer, theirs = load(GAN)["fit"](str(tmp_path / "pl"), precision=precision)
    sys.path.insert(0, str(src))
    try:
        trainer, ours = load(GAN, package)["fit"](str(tmp_path / "ours"))
    finally:
        sys.path.remove(str(src))

    # (global_step, generator loss, discriminator loss) at every batch: the
    # step counts both optimizers' steps, as Lightning 2.6.6 does.
    assert [step for step, _, _ in ours.history] == list(range(2, 2 * 3 * BATCHES + 1, 2))
    assert [step for step, _, _ in theirs.history] == [step for step, _, _ in ours.history]
    losses = [loss for _, *pair in ours.history for loss in pair]
    assert losses == pytest.approx([loss for _, *pair in theirs.history for loss in pair], abs=1e-6)
    assert trainer.global_step == lightning_trainer.global_step == 2 * 3 * BATCHES
    _close(ours.state_dict(), theirs.state_dict())
    # The schedulers the module steps by hand (per batch, per epoch) went as far.
    ours_lr = [o.param_groups[0]["lr"] for o in trainer.optimizers]
    assert ours_lr == pytest.approx([o.param_groups[0]["lr"] for o in lightning_trainer.optimizers])
    for name in ("g_loss", "d_loss"):
        assert float(trainer.callback_metrics[name]) == pytest.approx(
            float(lightning_trainer.callback_metrics[name]), abs=1e-6
        )


def _logged(root: Path) -> list[tuple[int, dict[str, float]]]:
    """Each row of the run's metrics.csv: its step and the values it holds."""
    (path,) = root.glob("**/metrics.csv")
    rows = []
    for row in csv.DictReader(path.open()):
        values = {k: float(v) for k, v in row.items() if v and k not in ("step", "epoch")}
        rows.append((int(row["step"]), values))
    return sorted(rows, key=lambda row: (row[0], sorted(row[1])))


def test_loggers_count_batches_under_manual_optimization(tmp_path) -> None:
    source = HELPERS / "lightning_manual_logging.py"
    csv_logger = pl.loggers.CSVLogger(str(tmp_path / "pl"))
    theirs = load(source)["fit"](str(tmp_path / "pl"), logger=csv_logger)
    made = make_project(tmp_path / "manlog", logger="csv", callbacks=[])
    sys.path.insert(0, str(made.path / "src"))
    try:
        ours = load(source, "manlog")["fit"](str(tmp_path / "ours"))
    finally:
        sys.path.remove(str(made.path / "src"))

    assert ours.global_step == theirs.global_step == 40  # two optimizer steps a batch
    expected = _logged(tmp_path / "pl")
    got = _logged(tmp_path / "ours")
    # every 3rd batch's step values at its batch count, validation every 5 batches, epoch ends
    assert [step for step, _ in got] == [step for step, _ in expected]
    for (_, mine), (_, lightning) in zip(got, expected, strict=True):
        assert mine.keys() == lightning.keys()
        assert list(mine.values()) == pytest.approx([lightning[k] for k in mine], abs=1e-6)


# ------------------------------------------------------------ ddp under torchrun

needs_gloo = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed/gloo"
)


@pytest.fixture(scope="module")
def ddp_project(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("port-ddp") / "ganddp"
    return make_project(dest, logger="none", callbacks=[], devices=2, strategy="ddp").path


def _train(project: Path, out: Path, launcher: list[str], **options) -> list[dict]:
    """Fit the ported GAN (under torchrun when ``launcher`` says so); each rank's weights."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, *launcher, str(DRIVER), str(project / "src"), "ganddp"]
    command += [str(out), json.dumps(options)]
    env = {**project_env(), "PYTHONPATH": str(project / "src")}
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return [torch.load(path, weights_only=True) for path in sorted(out.glob("rank*.pt"))]


TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@needs_gloo
@pytest.mark.slow  # CI time: DDP's ranks are proved in the default run by tests/test_distributed.py
def test_ddp_ranks_agree_equal_one_process_and_resume_exactly(ddp_project, tmp_path) -> None:
    # One process, batches of 8; two processes, batches of 4 each: the same global batch.
    single = _train(ddp_project, tmp_path / "one", [], devices=1, batch_size=8)[0]
    ranks = _train(ddp_project, tmp_path / "ddp", TORCHRUN, devices=2, batch_size=4)
    assert len(ranks) == 2
    _close(ranks[0], ranks[1])
    for name in single:
        assert torch.equal(ranks[0][name], ranks[1][name]), name  # every rank holds the same
    _close(ranks[0], single)

    # Stopped after 4 of the 6 batches of epoch 1 (2 optimizers: step 16), then resumed.
    stop = tmp_path / "stopped.ckpt"
    _train(
        ddp_project,
        tmp_path / "stop",
        TORCHRUN,
        devices=2,
        batch_size=4,
        max_steps=16,
        save=str(stop),
    )
    resumed = _train(
        ddp_project, tmp_path / "resume", TORCHRUN, devices=2, batch_size=4, ckpt_path=str(stop)
    )
    for name in ranks[0]:
        assert torch.equal(resumed[0][name], ranks[0][name]), name
