"""Fault injection on a generated project's real processes: SIGKILL, full disks, shared folders.

* SIGKILL at seeded random moments of a run, half of them the moment a
  checkpoint write is seen in progress; each run resumes with ``--ckpt_path
  last``. The last one reaches the target step with weights bitwise equal to
  an uninterrupted run's, every ``*.ckpt`` left on disk loads, and the temp
  files of killed writers are gone (the next run tidies them).
* A full or read-only disk (the checkpoint writer's write raising ENOSPC or
  EROFS, injected in the real CLI process): one line on stderr, no traceback.
* Two runs, one checkpoint folder: the second is refused, naming the folder
  and the first's pid; a reader never sees a torn last.ckpt; the lock dies
  with a SIGKILLed holder. Two writers saving to one path at once both finish.
* SIGTERM stops a run after its current step with an up-to-date last.ckpt.

The project's own suite holds the in-process versions of these (bad
checkpoints, failed writes, the version_N race): ``tests/test_checkpoint_faults.py``.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import make_project, project_env

ARGS = [
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
    "--data.num_samples",
    "128",
    "--data.batch_size",
    "32",
    "--checkpoint.every_n_train_steps",
    "1",
]
EPOCHS_PER_KILL = 3  # 12 steps a kill: no killed run trains long enough to reach the end

# Loads every checkpoint named on the command line with the project's own
# checked loader; prints one line per one that doesn't load.
LOAD_ALL = """
import sys
from exp.engine import checkpoint as ckpt
for path in sys.argv[1:]:
    try:
        ckpt.load(path)
    except ckpt.CheckpointError as error:
        print(error)
"""

# Runs the CLI with the checkpoint writer failing with OSError(errno) from its
# third write on, as a disk that fills up (or turns read-only) mid-run does.
FAILING_DISK = """
import atexit, os, sys
from exp.engine import checkpoint as ckpt
code, writes = int(sys.argv[1]), []
real = ckpt.serialize
def write(checkpoint, file):
    writes.append(file.name)
    if len(writes) > 2:
        file.write(b"PK\\x03\\x04")
        raise OSError(code, os.strerror(code))
    real(checkpoint, file)
ckpt.serialize = write
atexit.register(lambda: print("writes attempted:", len(writes)))
from exp.__main__ import main
main(sys.argv[2:])
"""

# Saves a 4 MB checkpoint to one path again and again (the two-writers test).
WRITER = """
import sys, torch
from exp.engine import checkpoint as ckpt
path, rounds = sys.argv[1], int(sys.argv[2])
for i in range(rounds):
    ckpt.save({"format": ckpt.FORMAT, "i": i, "w": torch.full((1 << 20,), float(i))}, path)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("faults") / "exp", logger="csv").path


def _env(project: Path) -> dict[str, str]:
    return {**project_env(), "PYTHONPATH": str(project / "src")}


def _fit(project: Path, root: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "exp", "fit", "--trainer.default_root_dir", str(root)]
    return subprocess.Popen(
        [*command, *ARGS, *extra],
        cwd=project,
        env=_env(project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _python(project: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _wait_for(
    path: Path, run: subprocess.Popen, timeout: float = 120, newer_than: int = -1
) -> None:
    """Wait until ``path`` exists, modified after ``newer_than`` (ns) when given."""
    deadline = time.monotonic() + timeout
    while not path.exists() or path.stat().st_mtime_ns <= newer_than:
        assert run.poll() is None, f"the run ended before writing {path}: {run.stderr.read()}"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.005)


def _kill_during_a_write(folder: Path, run: subprocess.Popen, timeout: float = 30) -> bool:
    """SIGKILL ``run`` the moment a checkpoint temp file is seen in ``folder``."""
    deadline = time.monotonic() + timeout
    while run.poll() is None and time.monotonic() < deadline:
        if any(p.name.endswith(".tmp") for p in folder.iterdir()):
            os.kill(run.pid, signal.SIGKILL)
            return True
        time.sleep(0.0002)
    os.kill(run.pid, signal.SIGKILL)  # no write seen in time: kill it anyway
    return False


def _kill_series(project: Path, root: Path, epochs: int, kills: int, seed: int) -> tuple[int, int]:
    """Run, SIGKILL, resume, ``kills`` times; returns (kills during a write seen, temps left)."""
    rng = random.Random(seed)
    during_writes = temps_left = 0
    # A resumed run continues its run folder: every run writes in version_0.
    folder = root / "version_0" / "checkpoints"
    for version in range(kills):
        extra = ["--ckpt_path", "last"] if version else []
        before = (folder / "last.ckpt").stat().st_mtime_ns if version else -1
        run = _fit(project, root, "--trainer.max_epochs", str(epochs), *extra)
        _wait_for(folder / "last.ckpt", run, newer_than=before)  # trained at least one step
        if rng.random() < 0.5:
            during_writes += _kill_during_a_write(folder, run)
        else:
            time.sleep(rng.uniform(0, 0.3))
            os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=60)
        assert run.returncode == -signal.SIGKILL, f"run {version} ended before it was killed"
        temps_left += sum(p.name.endswith(".tmp") for p in folder.iterdir())
    return during_writes, temps_left


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.parametrize(
    ("kills", "seed"),
    [
        (6, 1),  # seed 1: 4 of the 6 kills wait for a checkpoint write
        pytest.param(40, 7, marks=pytest.mark.slow),
    ],
)
def test_sigkill_at_random_moments_then_resume_is_bitwise_exact(
    project, tmp_path, kills: int, seed: int
) -> None:
    epochs = EPOCHS_PER_KILL * kills
    straight = _fit(project, tmp_path / "straight", "--trainer.max_epochs", str(epochs))
    assert straight.wait(timeout=300) == 0, straight.stderr.read()

    root = tmp_path / "killed"
    during_writes, temps_left = _kill_series(project, root, epochs, kills, seed)
    final = _fit(project, root, "--trainer.max_epochs", str(epochs), "--ckpt_path", "last")
    assert final.wait(timeout=300) == 0, final.stderr.read()

    assert [p.name for p in root.glob("version_*")] == ["version_0"]  # one run, continued
    resumed = _weights(root / "version_0" / "checkpoints" / "last.ckpt")
    expected = _weights(tmp_path / "straight" / "version_0" / "checkpoints" / "last.ckpt")
    assert resumed.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(resumed[name], tensor), name
    last = torch.load(root / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4 * epochs

    checkpoints = sorted(root.glob("**/*.ckpt"))
    assert len(checkpoints) >= 2  # last.ckpt and the best
    failures = _python(project, LOAD_ALL, *map(str, checkpoints))
    assert failures.returncode == 0 and not failures.stdout, failures.stdout + failures.stderr
    leftovers = sorted(p.name for p in root.glob("**/.*.tmp"))
    assert not leftovers, f"temp files of killed writers were not tidied: {leftovers}"
    assert during_writes, "no kill landed while a checkpoint was being written"
    print(f"{kills} kills, {during_writes} during a write, {temps_left} left a temp file")


@pytest.mark.parametrize(("code", "cause"), [(28, "no space left on device"), (30, "read-only")])
def test_a_full_or_read_only_disk_is_one_line_and_keeps_the_last_checkpoint(
    project, tmp_path, code: int, cause: str
) -> None:
    root = tmp_path / "runs"
    command = ["fit", "--trainer.default_root_dir", str(root), *ARGS, "--trainer.max_epochs", "1"]
    result = _python(project, FAILING_DISK, str(code), *command)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "writes attempted: 3" in result.stdout, "the run tried the broken disk again"
    folder = root / "version_0" / "checkpoints"
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {cause}") and str(folder / "last.ckpt") in error, error
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"], "a temp file was left"
    assert torch.load(folder / "last.ckpt", weights_only=True)["global_step"] == 2


def test_a_full_disk_under_ddp_is_said_once_by_rank_zero(tmp_path) -> None:
    answers = {"logger": "csv", "hardware": "cpu", "devices": 2, "strategy": "ddp"}
    project = make_project(tmp_path / "exp", **answers).path
    script = tmp_path / "failing_disk.py"
    script.write_text(FAILING_DISK)
    root = tmp_path / "runs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(script), str(28), "fit"]
    command += ["--trainer.default_root_dir", str(root), *ARGS, "--trainer.devices", "2"]
    command += ["--trainer.max_epochs", "2"]  # 2 steps an epoch: the third write fails
    result = subprocess.run(
        command, cwd=project, env=_env(project), capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    # Rank zero wrote for both and both stopped at the same step: one message,
    # and no rank reports a failure of its own.
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: no space left on device"), (
        result.stderr[-3000:]
    )
    assert "no checkpoint saved" not in result.stdout + result.stderr
    folder = root / "version_0" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".lock")) == [
        "last.ckpt"
    ]


def _read_while(path: Path, running: threading.Event, torn: list[str], reads: list[int]) -> None:
    """Read ``path`` whole, again and again, checking every zip CRC, until told to stop."""
    while running.is_set():
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except FileNotFoundError:
            continue
        except zipfile.BadZipFile as error:
            bad = str(error)
        reads.append(1)
        if bad is not None:
            torn.append(bad)


def test_a_second_run_is_refused_a_checkpoint_folder_and_readers_never_see_a_torn_file(
    project, tmp_path
) -> None:
    shared = tmp_path / "shared"
    # The first run trains until it is told to stop (SIGTERM, once the second was refused).
    first = _fit(
        project, tmp_path / "a", "--trainer.max_epochs", "1000", "--checkpoint.dirpath", str(shared)
    )
    _wait_for(shared / "last.ckpt", first)
    running, torn, reads = threading.Event(), [], []
    running.set()
    reader = threading.Thread(target=_read_while, args=(shared / "last.ckpt", running, torn, reads))
    reader.start()
    try:
        second = _fit(
            project,
            tmp_path / "b",
            "--trainer.max_epochs",
            "1",
            "--checkpoint.dirpath",
            str(shared),
        )
        assert second.wait(timeout=120) == 1, second.stderr.read()
        error = second.stderr.read().strip()
        assert error == (
            f"error: checkpoint folder {str(shared)!r} is in use by another run (pid "
            f"{first.pid} on {socket.gethostname()}); give this run its own folder "
            "(--checkpoint.dirpath), or wait for that one to end"
        ), error
        assert not (tmp_path / "b").exists(), "the refused run wrote a run folder"
        assert first.poll() is None, "the first run ended before the second was refused"
        time.sleep(1)  # the first run goes on writing, and the reader reading
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=120) == 128 + signal.SIGTERM, first.stderr.read()
    finally:
        running.clear()
        reader.join()
        first.kill()
    assert reads and not torn, f"{len(torn)} of {len(reads)} reads saw a torn last.ckpt"
    assert torch.load(shared / "last.ckpt", weights_only=True)["global_step"] > 0


def test_the_folder_lock_dies_with_a_killed_run(project, tmp_path) -> None:
    shared = tmp_path / "shared"
    first = _fit(
        project, tmp_path / "runs", "--trainer.max_epochs", "8", "--checkpoint.dirpath", str(shared)
    )
    _wait_for(shared / "last.ckpt", first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    resumed = _fit(
        project,
        tmp_path / "runs",
        "--trainer.max_epochs",
        "8",
        "--checkpoint.dirpath",
        str(shared),
        "--ckpt_path",
        str(shared / "last.ckpt"),
    )
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert torch.load(shared / "last.ckpt", weights_only=True)["global_step"] == 32


def test_two_writers_saving_to_one_path_both_finish_and_never_tear_it(project, tmp_path) -> None:
    path = tmp_path / "last.ckpt"
    env = _env(project)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), "60"],
            cwd=project,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    running, torn, reads = threading.Event(), [], []
    running.set()
    reader = threading.Thread(target=_read_while, args=(path, running, torn, reads))
    reader.start()
    try:
        for writer in writers:
            assert writer.wait(timeout=300) == 0, writer.stderr.read()
    finally:
        running.clear()
        reader.join()
    assert reads and not torn, f"{len(torn)} of {len(reads)} reads saw a torn file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"], "temp files were left"


def test_sigterm_leaves_an_up_to_date_last_checkpoint(project, tmp_path) -> None:
    run = _fit(project, tmp_path / "runs", "--trainer.max_epochs", "30")
    last = tmp_path / "runs" / "version_0" / "checkpoints" / "last.ckpt"
    _wait_for(last, run)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 128 + signal.SIGTERM
    checkpoint = torch.load(last, weights_only=True)
    # last.ckpt holds the state at the moment of the signal: resuming continues.
    assert 0 < checkpoint["global_step"] < 120
