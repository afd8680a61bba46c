"""A generated project's command line under bad input: success or one clean error.

Every case ends one of two ways: it succeeds, or it exits non-zero with one
``error:`` line on stderr, no traceback, and nothing written outside the run
folder it was given. A bug in the user's own code is the exception: it keeps
its traceback.

The property-based tests (hypothesis, derandomized, so seeded) throw random
option names and values and random YAML config files at one rendered
project, in two ways:

- in-process, through the project's ``main([...])``, for most cases: it is
  what ``python -m <package>`` runs, and it ends the way the process would
  (a return is exit 0; ``SystemExit`` carries the exit code or the message
  the interpreter prints; any other exception is a traceback), minus the
  second or two of startup that a subprocess pays per case;
- in subprocesses, ``python -m <package> ...``, as users run it, for fewer cases.

Each case runs in a fresh folder several levels down a sandbox with sentinel
files at every level; the option values that name folders stay inside the
case's folder, and the sizes that cost time or memory are drawn small (a
huge width is a legitimate, if slow, request). ``--ckpt_path`` is left to the
checkpoint tests.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import shutil
import signal
import subprocess
import sys
import traceback
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from conftest import make_project, project_env, snapshot
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

PACKAGE = "cli_exp"
# Small and quick: 64 samples in one batch, at most two optimizer steps.
QUICK = [
    "--trainer.default_root_dir",
    "runs",
    "--trainer.max_steps",
    "2",
    "--trainer.limit_train_batches",
    "2",
    "--trainer.limit_val_batches",
    "2",
    "--trainer.limit_test_batches",
    "2",
    "--trainer.limit_predict_batches",
    "2",
    "--data.num_samples",
    "64",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The default project (logger csv: the quickest to import), rendered once."""
    return make_project(tmp_path_factory.mktemp("cli") / "cli-exp", logger="csv").path


@pytest.fixture(scope="module")
def cli(project: Path):
    """The project's ``__main__`` and ``config`` modules, imported from its src/."""
    sys.path.insert(0, str(project / "src"))
    try:
        yield types.SimpleNamespace(
            main=importlib.import_module(f"{PACKAGE}.__main__").main,
            cfg=importlib.import_module(f"{PACKAGE}.config"),
        )
    finally:
        sys.path.remove(str(project / "src"))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


# ------------------------------------------------------------------ running a case


@dataclass
class Outcome:
    """How a command ended: its exit code and what it wrote to stderr."""

    code: int
    stderr: str


class Sandbox:
    """``root/l1/l2/work``: a case runs in ``work``; sentinels sit at every level above."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root / "l1" / "l2" / "work"
        self.work.mkdir(parents=True)
        for level in (root, root / "l1", root / "l1" / "l2"):
            (level / "sentinel.txt").write_text(f"keep {level.name}\n")
        (self.work / "a_file").write_text("a file where a folder might be asked for\n")
        self.before = self.outside()

    def outside(self) -> dict[str, bytes | None]:
        """Everything in the sandbox except the case's own folder."""
        return {k: v for k, v in snapshot(self.root).items() if not k.startswith("l1/l2/work")}


def run_in_process(cli, argv: list[str], cwd: Path) -> Outcome:
    """``main(argv)`` in ``cwd``, ended as the interpreter ends ``python -m``."""
    stderr = io.StringIO()
    handlers = {name: signal.getsignal(getattr(signal, name)) for name in ("SIGTERM", "SIGUSR1")}
    old_cwd = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                cli.main(argv)
                code = 0
            except SystemExit as stop:
                code = exit_code(stop, stderr)
            except Exception:
                traceback.print_exc(file=stderr)
                code = 1
    finally:
        os.chdir(old_cwd)
        for name, handler in handlers.items():
            signal.signal(getattr(signal, name), handler)
        torch.use_deterministic_algorithms(False)  # --trainer.deterministic sets it globally
    return Outcome(code, stderr.getvalue())


def exit_code(stop: SystemExit, stderr: io.StringIO) -> int:
    """What Python does with an uncaught SystemExit: print a message, exit 1."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=stderr)
    return 1


def run_subprocess(project: Path, argv: list[str], cwd: Path, **env: str) -> Outcome:
    """``python -m cli_exp ...`` in ``cwd``, as a user runs it."""
    environment = {**project_env(), "PYTHONPATH": str(project / "src"), **env}
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, *argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Outcome(result.returncode, result.stderr)


def describe(outcome: Outcome) -> str:
    """What kind of ending a case had, for hypothesis' statistics."""
    if outcome.code == 0:
        return "succeeded"
    error = next(line for line in outcome.stderr.splitlines() if "error:" in line)
    return "error: " + " ".join(error.split("error:", 1)[1].split()[:3])[:60]


def assert_clean(outcome: Outcome, argv: list[str]) -> None:
    """Success, or exit != 0 with exactly one ``error:`` line; never a traceback."""
    assert "Traceback" not in outcome.stderr, (argv, outcome.stderr[-3000:])
    if outcome.code != 0:
        errors = [line for line in outcome.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1, (argv, outcome.stderr[-3000:])


# ------------------------------------------------------------------ what to throw at it

JUNK = st.one_of(
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "null",
            "~",
            "",
            "true",
            "no",
            "yes",
            "{epoch}",
            "{a: 1}",
            "[1, 2]",
            "[",
            "1e-3",
            "0x10",
            "1_000",
            "1:00:00:00",
            "-1",
            "0",
            "1.5",
            "é",
            "a b",
            "9" * 4400,  # past the digits Python's int() reads
        ]
    ),
    st.integers(-3, 3).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n\r"), max_size=12
    ),
)
# Options whose values bound the time, memory or place of a run: drawn from
# values that keep a case small and inside its folder (junk included).
BOUNDED = {
    "trainer.max_steps": ["0", "1", "2", "3", "-2", "null", "x", "1.5"],  # never -1: no limit
    "trainer.max_epochs": ["-1", "0", "1", "2", "null", "x"],
    "trainer.devices": ["1", "2", "0", "-1", "x"],
    "trainer.num_nodes": ["1", "2", "0", "x"],
    "trainer.fast_dev_run": ["true", "false", "1", "3", "0", "-1", "100000"],
    "trainer.default_root_dir": [
        "runs",
        "",
        "/dev/null",
        "a_file/runs",
        "{x}",
        "no",
        "é b",
        "runs/../other",
        "<work>/absolute",
    ],
    "trainer.max_time": ["00:00:00:01", "1:00:00:00", "00:00:01", "x", "null", "²:1:1:1"],
    "checkpoint.dirpath": ["ckpts", "null", "/dev/null", "a_file/x", "<work>/ckpts", ""],
    "checkpoint.filename": [
        "{epoch}",
        "no",
        "last",
        "../x",
        "../../../../x",
        "a/../../x",
        "<work>/../../x",
        "{epoch}-{val_loss:.3f}",
        "{val_loss:d}",
        "{epoch:c}",
        "{step:99999}",
        "{missing}",
        "x" * 300,
        "sub/{step}",
    ],
    "data.num_workers": ["0", "-1", "x", "2.5"],
}
SMALL_INT = st.integers(-2, 24).map(str)


def small_enough(text: str) -> bool:
    """False for text that YAML reads as an int above 64 (``1_000``, ``0x100``, ``99``)."""
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):
        return True
    return not isinstance(value, int) or value <= 64


# Junk for a size (a width, a sample count, an image size): never a huge one.
SIZE_JUNK = JUNK.filter(small_enough)
TEXT = st.sampled_from(
    [
        "cpu",
        "min",
        "max",
        "val_loss",
        "val_acc",
        "train_loss",
        "norm",
        "value",
        "step",
        "epoch",
        "lr-AdamW",
        "x",
    ]
)
FLOAT = st.one_of(st.floats(-1, 2).map(repr), st.sampled_from(["0", "1e-3", "0.5", "1"]))


def value_for(
    name: str, annotations: dict[str, object], *, junk: bool = True
) -> st.SearchStrategy[str]:
    """Text for ``--name``: mostly a value of its type (often a wrong one), sometimes junk."""
    if name in BOUNDED:
        return st.one_of(*[st.sampled_from(BOUNDED[name])] * 3, *[JUNK] * junk)
    section = name.partition(".")[0]
    members = set(typing.get_args(annotations.get(name))) or {annotations.get(name)}
    typed = []
    is_size = int in members and section in ("model", "data") and "seed" not in name
    if is_size:
        typed.append(SMALL_INT)  # small, or wrong
    elif int in members:
        typed.append(st.integers().map(str))
    if bool in members:
        typed.append(st.sampled_from(["true", "false"]))
    if float in members:
        typed.append(FLOAT)
    if str in members:
        typed.append(TEXT)
    if type(None) in members:
        typed.append(st.just("null"))
    junk_values = SIZE_JUNK if is_size else JUNK
    if not typed:
        return junk_values
    return st.one_of(*[st.one_of(typed)] * 5, *[junk_values] * junk)


def known_options(cli) -> dict[str, object]:
    """``{"section.name": annotation}`` of every option, top-level ones by name."""
    cfg = cli.cfg
    names = {name: annotation for name, (annotation, _) in cfg.TOP_LEVEL.items()}
    for section, target in cfg.SECTIONS.items():
        for name, (annotation, _) in cfg.options(target).items():
            names[f"{section}.{name}"] = annotation
    return names


@st.composite
def option_names(draw, known: dict[str, object]) -> str:
    """Mostly real option names; some misspelt, some made up."""
    name = draw(st.sampled_from(sorted(known)))
    kind = draw(st.sampled_from(["real"] * 12 + ["typo", "section", "junk"]))
    if kind == "typo" and len(name) > 1:
        cut = draw(st.integers(0, len(name) - 1))
        return name[:cut] + name[cut + 1 :]
    if kind == "section":
        return f"{draw(st.sampled_from(['nonsense', 'Trainer', 'model ', '']))}.{name}"
    if kind == "junk":
        return draw(
            st.text(
                st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n\r="),
                max_size=10,
            )
        )
    return name


@st.composite
def overrides(draw, known: dict[str, object], *, typed: bool = False) -> list[str]:
    """``--name value`` or ``--name=value`` pairs (``typed``: real names, values of their type)."""
    argv = []
    for _ in range(draw(st.integers(2 if typed else 0, 3))):
        name = draw(st.sampled_from(sorted(known)) if typed else option_names(known))
        value = draw(value_for(name, known, junk=not typed))
        if draw(st.booleans()):
            argv.append(f"--{name}={value}")
        else:
            argv += [f"--{name}", value]
    return argv


@st.composite
def config_files(draw, known: dict[str, object]) -> str:
    """The text of a YAML config file: real keys, junk values, and the usual mistakes."""
    kind = draw(st.sampled_from(["sections"] * 5 + ["empty", "duplicate", "garbage", "list"]))
    if kind == "empty":
        return draw(st.sampled_from(["", "# only a comment\n", "---\n", "null\n", "{}\n"]))
    if kind == "garbage":
        return draw(
            st.sampled_from(
                [
                    "trainer: [\n",
                    "a: b: c\n",
                    "\t- x\n",
                    "!!python/int 3\n",
                    "trainer:\n  filename: {epoch}-{step}\n",
                    "\x07\n",
                ]
            )
        )
    if kind == "list":
        return "- trainer\n- model\n"
    sections: dict[str, list[str]] = {}
    for _ in range(draw(st.integers(1, 4))):
        name = draw(option_names(known))
        section, dot, option = name.partition(".")
        value = draw(value_for(name, known))
        line = f"  {option}: {value}" if dot else f"{section}: {value}"
        sections.setdefault(section if dot else "", []).append(line)
    text = "".join(f"{line}\n" for line in sections.pop("", []))
    for section, lines in sections.items():
        text += f"{section}:\n" + "".join(f"{line}\n" for line in lines)
    if kind == "duplicate":
        text += text  # every key twice
    return text


@st.composite
def commands(draw, known: dict[str, object]) -> tuple[list[str], str | None]:
    """A whole command line, and the config file it names (or None)."""
    command = draw(st.sampled_from(["fit"] * 5 + ["validate", "test", "predict", "export"]))
    extra = ["--print_config"] if draw(st.integers(0, 9)) == 0 else []
    config = draw(st.one_of(st.none(), st.none(), config_files(known)))
    files = ["--config", "run.yaml"] if config is not None else []
    return [command, *QUICK, *files, *draw(overrides(known)), *extra], config


def prepare(sandbox: Sandbox, argv: list[str], config: str | None) -> list[str]:
    """Write the case's config file; put the case's folder into the values that ask for it."""
    if config is not None:
        (sandbox.work / "run.yaml").write_text(config, encoding="utf-8")
    return [arg.replace("<work>", str(sandbox.work)) for arg in argv]


FUZZ = settings(
    derandomize=True,  # seeded: the same cases on every run
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------ properties


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_random_options_and_config_files_succeed_or_fail_cleanly(
    cli, project, tmp_path_factory, data
) -> None:
    known = known_options(cli)
    argv, config = data.draw(commands(known))
    sandbox = Sandbox(tmp_path_factory.mktemp("sandbox"))
    before = snapshot(project)
    argv = prepare(sandbox, argv, config)
    outcome = run_in_process(cli, argv, sandbox.work)
    assert_clean(outcome, argv)
    assert sandbox.outside() == sandbox.before, argv
    assert snapshot(project) == before, argv
    event(describe(outcome))  # --hypothesis-show-statistics: how the cases ended


@settings(FUZZ, max_examples=6)  # a process each: ~8 s apiece on CI's machine
@given(data=st.data())
def test_random_option_values_in_a_real_process(cli, project, tmp_path_factory, data) -> None:
    # Fewer cases, each a second or two of startup: real option names with
    # values of their type (sizes from -2 up, rates from -1, names that may
    # not exist), which reach furthest into a run; the in-process test has the
    # junk, the made-up names and the config files.
    known = known_options(cli)
    command = data.draw(st.sampled_from(["fit", "fit", "validate", "predict"]))
    sandbox = Sandbox(tmp_path_factory.mktemp("sandbox"))
    argv = prepare(sandbox, [command, *QUICK, *data.draw(overrides(known, typed=True))], None)
    assert_clean(run_subprocess(project, argv, sandbox.work), argv)
    assert sandbox.outside() == sandbox.before, argv


# ------------------------------------------------------------------ the cases the issue names

DUPLICATE = "trainer:\n  max_epochs: 1\n  max_epochs: 2\n"
BRACES = "checkpoint:\n  filename: {epoch}\n"


@pytest.mark.parametrize(
    ("argv", "config", "expected"),
    [
        (["--model.lr", "-1"], None, "model.lr=-1.0: use a finite value of at least 0"),
        (["--model.lr", "nan"], None, "model.lr=nan"),
        (["--model.width", "-3"], None, "model.width=-3: use a value of at least 1"),
        (["--model.weight_decay", "-0.1"], None, "model.weight_decay=-0.1"),
        (["--data.image_size", "1"], None, "data.image_size=1"),
        (["--seed_everything", str(2**70)], None, "seed_everything=1180591620717411303424"),
        (["--trainer.default_root_dir", "/dev/null"], None, "'/dev/null' is not a folder"),
        (["--trainer.default_root_dir", "a_file/runs"], None, "is not a folder"),
        (["--trainer.val_check_interval", "5"], None, "trainer.val_check_interval=5"),
        (["--trainer.limit_val_batches", "nan"], None, "trainer.limit_val_batches=nan"),
        (["--checkpoint.filename", "../../../escape"], None, "leaves dirpath"),
        (["--checkpoint.filename", "<work>/escape"], None, "leaves dirpath"),
        (["--checkpoint.filename", "{val_loss:d}"], None, "not a number format"),
        (["--checkpoint.every_n_epochs", "-1"], None, "every_n_epochs=-1"),
        (["--config", "run.yaml"], DUPLICATE, "'max_epochs' is given twice (lines 2 and 3)"),
        (["--config", "run.yaml"], BRACES, "read the unquoted text as a mapping"),
        (["--config", "run.yaml"], "trainer: [\n", "is not valid YAML"),
        (["--config", "run.yaml"], "- 1\n", "must hold a mapping"),
    ],
)
def test_bad_input_stops_before_anything_is_written(cli, tmp_path, argv, config, expected) -> None:
    sandbox = Sandbox(tmp_path)
    argv = prepare(sandbox, ["fit", *QUICK, *argv], config)
    before = snapshot(sandbox.work)
    outcome = run_in_process(cli, argv, sandbox.work)
    assert outcome.code == 1
    assert outcome.stderr.startswith("error: ") and outcome.stderr.count("\n") == 1, outcome.stderr
    assert expected in outcome.stderr
    assert snapshot(sandbox.work) == before  # no run folder, nothing at all
    assert sandbox.outside() == sandbox.before


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # Found on the first batch, as torch would, with the numbers and the fix.
        (["--model.num_classes", "3"], "model.num_classes=3 covers labels 0 to 2: set model"),
        (["--model.in_channels", "1"], "the data has 3 channels per image, but model.in_channels"),
        # Found at the first validation's end, where Lightning finds it; the
        # learning-rate monitor's rate is among them, as in Lightning's callback_metrics.
        (["--checkpoint.monitor", "val_los"], "metrics are ['lr-AdamW', 'train_loss', 'val_acc'"),
    ],
)
def test_bad_input_found_once_running_ends_in_one_line(cli, tmp_path, argv, expected) -> None:
    sandbox = Sandbox(tmp_path)
    outcome = run_in_process(cli, ["fit", *QUICK, *argv], sandbox.work)
    assert outcome.code == 1
    assert_clean(outcome, argv)
    assert expected in outcome.stderr


def test_command_line_text_is_taken_verbatim(cli, tmp_path) -> None:
    sandbox = Sandbox(tmp_path)
    one_epoch = [*QUICK, "--trainer.max_epochs", "1", "--checkpoint.monitor", "null"]
    for name in ("{epoch}", "no"):
        outcome = run_in_process(
            cli, ["fit", *one_epoch, "--checkpoint.filename", name], sandbox.work
        )
        assert outcome.code == 0, outcome.stderr
    saved = sorted(p.name for p in (sandbox.work / "runs").glob("version_*/checkpoints/*.ckpt"))
    assert saved == ["epoch=0.ckpt", "last.ckpt", "last.ckpt", "no.ckpt"]


def test_an_empty_config_file_is_accepted_with_a_note(cli, tmp_path) -> None:
    sandbox = Sandbox(tmp_path)
    argv = prepare(sandbox, ["fit", *QUICK, "--config", "run.yaml", "--print_config"], "# later\n")
    outcome = run_in_process(cli, argv, sandbox.work)
    assert outcome.code == 0
    assert (
        "note: --config 'run.yaml' is empty (or only comments): it changes nothing"
        in outcome.stderr
    )


@pytest.fixture
def buggy_project(project: Path, tmp_path: Path) -> Path:
    """A copy of the project whose module's ``__init__`` has a bug of the user's."""
    copy = tmp_path / "buggy"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("__pycache__"))
    module = copy / "src" / PACKAGE / "module.py"
    text = module.read_text()
    anchor = "        self.save_hyperparameters()\n"
    assert anchor in text
    module.write_text(text.replace(anchor, anchor + '        int("x")  # the bug\n'))
    return copy


def test_a_bug_in_the_users_module_keeps_its_traceback(buggy_project, tmp_path) -> None:
    outcome = run_subprocess(buggy_project, ["fit", *QUICK], tmp_path)
    assert outcome.code == 1
    assert "Traceback (most recent call last)" in outcome.stderr
    assert f'{PACKAGE}/module.py", line' in outcome.stderr  # the file and line of the bug
    assert "ValueError: invalid literal for int() with base 10: 'x'" in outcome.stderr
    assert "error:" not in outcome.stderr
    assert not (tmp_path / "runs").exists()


def test_a_usage_error_shows_its_traceback_when_asked(project, tmp_path) -> None:
    quiet = run_subprocess(project, ["fit", *QUICK, "--model.lr", "-1"], tmp_path)
    assert quiet.code == 1
    assert quiet.stderr.strip() == "error: model.lr=-1.0: use a finite value of at least 0"
    for argv, env in [
        (["fit", *QUICK, "--model.lr", "-1", "--traceback"], {}),
        (["fit", *QUICK, "--model.lr", "-1"], {f"{PACKAGE.upper()}_TRACEBACK": "1"}),
    ]:
        loud = run_subprocess(project, argv, tmp_path, **env)
        assert loud.code == 1
        assert "Traceback (most recent call last)" in loud.stderr
        assert "ConfigError: model.lr=-1.0" in loud.stderr
        assert "module.py" in loud.stderr  # where it was raised


# ------------------------------------------------------------------ Lightning, recorded


def test_monitor_and_validation_checks_happen_where_lightnings_do(cli, tmp_path) -> None:
    """pytorch_lightning 2.6.6 as the oracle: the same three cases, side by side.

    - A monitor never logged: Lightning raises after the first validation (at
      epoch 0, step 3 here), listing the logged names; so do we, in one line,
      after warning at the end of the sanity check.
    - Validation off (limit_val_batches=0) with a monitor: Lightning warns and
      keeps only last.ckpt; so do we.
    - An int val_check_interval longer than the epoch: Lightning raises before
      the first step, and not when validation is off; so do we.
    """
    pl = pytest.importorskip("pytorch_lightning")
    lightning = lightning_outcomes(pl, tmp_path / "lightning")
    assert lightning["monitor"][:2] == ("MisconfigurationException", (0, 3))
    assert "could not find the monitored key" in lightning["monitor"][2]
    assert "'val_loss'" in lightning["monitor"][2]
    assert lightning["off"][0] is None and "could not find the monitored key" in lightning["off"][2]
    assert lightning["off_files"] == ["last.ckpt"]
    assert lightning["interval"][:2] == ("ValueError", (0, 0))
    assert lightning["interval_off"][0] is None

    sandbox = Sandbox(tmp_path / "ours")
    three_steps = [
        *QUICK,
        "--trainer.max_steps",
        "3",
        "--trainer.limit_train_batches",
        "3",
        "--data.num_samples",
        "192",
    ]
    monitor = run_in_process(
        cli, ["fit", *three_steps, "--checkpoint.monitor", "val_los"], sandbox.work
    )
    assert monitor.code == 1 and "'val_loss'" in monitor.stderr
    warning, error = (
        monitor.stderr.index("warning: ModelCheckpoint"),
        monitor.stderr.index("error:"),
    )
    assert warning < error  # warned after the sanity check, stopped after validation
    ours = sandbox.work / "runs" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(ours, weights_only=True)["global_step"] == 3  # stopped where Lightning did

    validation_off = ["--trainer.limit_val_batches", "0", "--trainer.default_root_dir", "off"]
    off = run_in_process(cli, ["fit", *three_steps, *validation_off], sandbox.work)
    assert off.code == 0 and "turns validation off" in off.stderr
    assert sorted(p.name for p in (sandbox.work / "off").glob("version_0/checkpoints/*")) == [
        "last.ckpt"
    ]

    interval = run_in_process(
        cli,
        [
            "fit",
            *three_steps,
            "--trainer.val_check_interval",
            "5",
            "--trainer.default_root_dir",
            "interval",
        ],
        sandbox.work,
    )
    assert interval.code == 1 and "trainer.val_check_interval=5" in interval.stderr
    assert not (sandbox.work / "interval").exists()  # before the first step
    interval_off = run_in_process(
        cli,
        [
            "fit",
            *three_steps,
            "--trainer.val_check_interval",
            "5",
            "--trainer.limit_val_batches",
            "0",
        ],
        sandbox.work,
    )
    assert interval_off.code == 0, interval_off.stderr


def lightning_outcomes(pl, root: Path) -> dict:
    """Run the three cases through pytorch_lightning.Trainer; how each ended."""
    import warnings

    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    class Regression(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=4)  # 3 batches

    def fit(name: str, checkpoint: dict, **options) -> tuple:
        trainer = pl.Trainer(
            default_root_dir=root / name,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            max_epochs=2,
            callbacks=[pl.callbacks.ModelCheckpoint(**checkpoint)],
            **options,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                trainer.fit(Regression(), loader, loader)
            except Exception as error:  # what Lightning raised, and where
                return (
                    type(error).__name__,
                    (trainer.current_epoch, trainer.global_step),
                    str(error),
                )
        return (
            None,
            (trainer.current_epoch, trainer.global_step),
            " ".join(str(w.message) for w in caught),
        )

    outcomes = {
        "monitor": fit("monitor", {"monitor": "val_los"}),
        "off": fit("off", {"monitor": "val_loss", "save_last": True}, limit_val_batches=0),
        "interval": fit("interval", {}, val_check_interval=5),
        "interval_off": fit("interval_off", {}, val_check_interval=5, limit_val_batches=0),
    }
    outcomes["off_files"] = sorted(p.name for p in (root / "off").glob("**/*.ckpt"))
    return outcomes
