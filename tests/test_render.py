"""Every supported answer combination renders ruff-clean code whose own tests pass.

The default run tests a few projects that hold every value of every answer
with the generated project's full test suite, run with only the project's
declared dependencies installed; it renders every combination of the answers
that shape the engine for ruff (and bash -n for the launch scripts).
``pytest -m slow`` runs the suites of a set covering every valid *pair* of
answers, then the combinations that add every hardware x strategy x precision
triple, then every combination's.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import make_project, project_env, ruff, run_project_tests
from matrix import (
    CALLBACKS,
    LOGGERS,
    TORCHRUN,
    VARIED,
    all_valid,
    as_answers,
    cover,
    each_value,
    engine_triples,
    label,
    pairs_of,
    pairwise,
    triple_of,
)
from venvs import declared, python_for

from scaffold import rules
from scaffold.new import create

EACH = each_value()
PAIRWISE = pairwise()
TRIPLES = engine_triples()
ALL = all_valid()
# For ruff: every combination of the answers that shape the engine, each with
# the most callbacks it allows (the most code) and a logger, so that every
# logger meets every value of the others (a logger adds whole files and one
# block where the run starts: it meets the rest in pairs, not in every
# product); the tasks, which only change model/module/data, with each
# strategy; every subset of callbacks with the other answers at their defaults.
SHAPING = tuple(name for name in VARIED if name not in ("task", "callbacks", "logger", "config"))
MOST_CALLBACKS = {
    tuple(c[k] for k in (*SHAPING, "logger", "config")): c
    for c in sorted(ALL, key=lambda c: len(c["callbacks"]))  # the longest list wins
    if c["task"] == "image_classification"
}


def _engine_covers(combo: dict) -> set:
    shape = tuple(combo[k] for k in SHAPING)
    # The logger and the config system meet every value of the others in pairs.
    paired = ("logger", "config")
    return {shape} | {(p, combo[p], k, combo[k]) for p in paired for k in SHAPING}


ENGINE_RENDERS = cover(list(MOST_CALLBACKS.values()), _engine_covers)
TASKS_BY_STRATEGY = {(c["task"], c["strategy"]): c for c in ALL}
CALLBACK_SUBSETS = [
    list(subset)
    for size in range(len(CALLBACKS) + 1)
    for subset in itertools.combinations(CALLBACKS, size)
]


def _make(tmp_path: Path, answers: dict, name: str = "exp") -> Path:
    return make_project(tmp_path / name, **as_answers(answers)).path


def _assert_ruff_clean(project: Path) -> None:
    formatted = ruff(project, "format", "--check", "--diff", ".")
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    checked = ruff(project, "check", "--no-cache", ".")
    assert checked.returncode == 0, checked.stdout + checked.stderr


# The only tests a project may skip on this CPU-only machine: the hardware's own,
# and an image project's torchvision backbone (the optional .[vision] extra; no
# torchvision build matches CI's CPU torch: tests/test_vision.py runs it by hand).
HARDWARE_SKIPS = (
    "torch_xla is not installed",
    "needs a CUDA GPU",
    "needs torchvision for",
    "DeepSpeed can't run fp16 on this CPU",  # CPUs without fp16 kernels (AMD EPYC here)
)


# The by-hand sets run two suites side by side on CI's 2 cores, and a CPU
# running true half precision is slow (an image FSDP 16-true suite takes ~400 s
# alone): they get more time than CI's own combinations.
SLOW_SUITE_SECONDS = 1800


def _assert_own_tests_pass(project: Path, timeout: int = 600) -> None:
    # With only what the project declares installed (tests/venvs.py).
    result = run_project_tests(project, python=python_for(project), timeout=timeout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout, result.stdout
    skips = re.findall(r"^SKIPPED .*$", result.stdout, flags=re.MULTILINE)
    assert all(any(why in line for why in HARDWARE_SKIPS) for line in skips), skips


def test_the_pairwise_set_covers_every_valid_pair() -> None:
    needed = {pair for combo in ALL for pair in pairs_of(combo)}
    covered = {pair for combo in PAIRWISE for pair in pairs_of(combo)}
    # With the slow set, every hardware x strategy x precision triple too.
    assert {triple_of(c) for c in ALL} == {triple_of(c) for c in PAIRWISE + TRIPLES}
    assert needed == covered
    # Every pair of task, hardware, strategy, precision, logger and callbacks.
    assert (("precision", "16-mixed"), ("strategy", "deepspeed")) in covered
    assert (("logger", ("wandb",)), ("task", "language_model")) in covered
    assert (("logger", ("tensorboard", "wandb", "mlflow", "csv")), ("strategy", "ddp")) in covered
    assert len(PAIRWISE) < len(ALL) / 50


def test_only_valid_combinations_are_rendered() -> None:
    assert all(rules.check(as_answers(combo)) == "" for combo in ALL)
    assert {c["precision"] for c in ALL} == {
        "32-true",
        "16-mixed",
        "bf16-mixed",
        "16-true",
        "bf16-true",
        "64-true",
    }


def test_project_venvs_hold_only_what_the_project_declares(tmp_path: Path) -> None:
    project = _make(
        tmp_path, {"logger": "csv", "strategy": "ddp", "hardware": "cuda", "devices": 2}
    )
    requirements, extras = declared(project)
    assert extras == ["dev"] and not any("tensorboard" in r for r in requirements)
    probe = (
        "import importlib.util as u, sys; "
        "print(sorted(m for m in sys.argv[1:] if u.find_spec(m) is not None))"
    )
    modules = ["torch", "numpy", "yaml", "tqdm", "pytest", "tensorboard", "scaffold", "copier"]
    found = subprocess.run(
        [python_for(project), "-c", probe, *modules],
        cwd=project,
        env=project_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    # Declared (torch, numpy, pyyaml, tqdm, and pytest from the dev extra) and nothing else.
    assert found.stdout.split("\n")[0] == str(["numpy", "pytest", "torch", "tqdm", "yaml"])


@pytest.mark.parametrize("config", ["cli", "hydra"])
def test_every_file_a_project_is_made_of_is_committed(tmp_path: Path, config: str) -> None:
    # An ignore pattern that also matches a file of the template (`data/` did:
    # configs/data/) leaves it out of the project's git history, and of clones.
    answers = {"task": "tabular_regression", "logger": ["csv", "wandb", "mlflow"]}
    project = _make(tmp_path, {**answers, "config": config, "callbacks": list(CALLBACKS)})
    ignored = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ignored.stdout == ""


def test_the_default_set_holds_every_value_of_every_answer() -> None:
    # Every value one process can hold; the torchrun strategies are proved by
    # tests/test_distributed.py (DeepSpeed under -m slow), their suites by -m slow.
    one_process = [combo for combo in ALL if combo["strategy"] not in TORCHRUN]
    for name in VARIED:
        every = {str(combo[name]) for combo in one_process}
        assert {str(combo[name]) for combo in EACH} == every, name
    left = {str(c["strategy"]) for c in ALL} - {str(c["strategy"]) for c in EACH}
    assert left == set(TORCHRUN)
    assert len(EACH) <= 8
    for combo in EACH:  # none is there for nothing: each holds a value no other does
        others = [other for other in EACH if other is not combo]
        assert any(all(o[n] != combo[n] for o in others) for n in VARIED), label(combo)


@pytest.mark.parametrize("answers", EACH, ids=label)
def test_combination_is_clean_and_its_tests_pass(tmp_path: Path, answers: dict) -> None:
    project = _make(tmp_path, answers)
    _assert_ruff_clean(project)
    _assert_own_tests_pass(project)


@pytest.mark.slow
@pytest.mark.parametrize("answers", PAIRWISE, ids=label)
def test_pairwise_combination_is_clean_and_its_tests_pass(tmp_path: Path, answers: dict) -> None:
    project = _make(tmp_path, answers)
    _assert_ruff_clean(project)
    _assert_own_tests_pass(project, timeout=SLOW_SUITE_SECONDS)


# What a user writes in configs/default.yaml to train on their own data: here
# the fixture files the project ships (paths relative to the project, where
# its tests run).
OWN_DATA = {
    "image_classification": {"source": "folder", "path": "tests/fixtures/images"},
    "autoencoder": {"source": "folder", "path": "tests/fixtures/images"},
    "tabular_regression": {"source": "csv", "path": "tests/fixtures/houses.csv", "target": "price"},
    "text_classification": {"source": "jsonl", "path": "tests/fixtures/topics.jsonl"},
    "language_model": {"source": "text", "path": "tests/fixtures/river.txt"},
}


# Each task's own-data suite is a whole project suite more (136 s for the image
# one in the CI run at 25477fa): they run with the slow set, by hand.
@pytest.mark.slow
@pytest.mark.parametrize("task", list(OWN_DATA))
def test_own_data_by_configuration_keeps_the_projects_tests_passing(
    tmp_path: Path, task: str
) -> None:
    # The project's tests hard-code no synthetic size: pointed at real files by
    # configuration alone, its whole suite still passes.
    project = _make(tmp_path, {"task": task})
    config_file = project / "configs" / "default.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["data"].update(OWN_DATA[task])
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    _assert_own_tests_pass(project, timeout=SLOW_SUITE_SECONDS)


@pytest.mark.parametrize(
    ("task", "config"), [("image_classification", "cli"), ("language_model", "hydra")]
)
def test_longest_names_stay_ruff_clean(tmp_path: Path, task: str, config: str) -> None:
    # Names are substituted into code: the longest allowed must not break a line.
    name = "e" * rules.MAX_NAME_LENGTH
    every_logger = list(LOGGERS)  # each logger's files and tests hold the name too
    answers = {"task": task, "project_name": name, "logger": every_logger, "config": config}
    project = _make(tmp_path, {**answers, "callbacks": list(CALLBACKS)}, name=name)
    _assert_ruff_clean(project)


def test_the_engine_renders_cover_every_shape_and_every_logger_with_every_value() -> None:
    shapes = {tuple(c[k] for k in SHAPING) for c in ALL}
    assert {tuple(c[k] for k in SHAPING) for c in ENGINE_RENDERS} == shapes
    loggers = {c["logger"] for c in ALL}
    for name in SHAPING:
        for paired in ("logger", "config"):
            pairs = {(c[paired], c[name]) for c in ALL}
            assert {(c[paired], c[name]) for c in ENGINE_RENDERS} == pairs, (paired, name)
    assert len(loggers) > 1 and len(ENGINE_RENDERS) < len(MOST_CALLBACKS) / 3


@pytest.mark.parametrize("hardware", sorted({c["hardware"] for c in ALL}))
def test_every_engine_combination_renders_clean(tmp_path: Path, hardware: str) -> None:
    # Split by hardware so pytest-xdist spreads the renders; ruff then checks
    # them all in one run (each project's own pyproject configures it).
    combos = [as_answers(c) for c in ENGINE_RENDERS if c["hardware"] == hardware]
    combos += [as_answers(c) for c in TASKS_BY_STRATEGY.values() if c["hardware"] == hardware]
    for index, answers in enumerate(combos):
        create(tmp_path / f"p{index}", data=answers, defaults=True, use_git=False)
    _assert_ruff_clean(tmp_path)
    loops = sorted(str(path) for path in tmp_path.glob("p*/src/*/engine/trainer.py"))
    assert len(loops) == len(combos)
    # The loop reads in one sitting: no function in it above cyclomatic complexity 9.
    complexity = ("--select", "C901", "--config", "lint.mccabe.max-complexity=9")
    checked = ruff(tmp_path, "check", "--no-cache", *complexity, *loops)
    assert checked.returncode == 0, checked.stdout[-3000:]
    for script in tmp_path.glob("p*/scripts/*"):
        checked = subprocess.run(["bash", "-n", script], capture_output=True, text=True)
        assert checked.returncode == 0, f"{script}: {checked.stderr}"


def test_every_set_of_callbacks_renders_ruff_clean(tmp_path: Path) -> None:
    for index, callbacks in enumerate(CALLBACK_SUBSETS):
        create(tmp_path / f"c{index}", data={"callbacks": callbacks}, defaults=True, use_git=False)
    _assert_ruff_clean(tmp_path)
    with_file = list(tmp_path.glob("c*/src/*/engine/callbacks.py"))
    assert len(with_file) == len(CALLBACK_SUBSETS) - 1  # no callbacks: no callbacks.py


@pytest.mark.slow
@pytest.mark.parametrize("answers", TRIPLES, ids=label)
def test_engine_triple_combination_is_clean_and_its_tests_pass(
    tmp_path: Path, answers: dict
) -> None:
    project = _make(tmp_path, answers)
    _assert_ruff_clean(project)
    _assert_own_tests_pass(project, timeout=SLOW_SUITE_SECONDS)


@pytest.mark.slow
@pytest.mark.parametrize("answers", ALL, ids=label)
def test_full_matrix_combination_passes_its_tests(tmp_path: Path, answers: dict) -> None:
    project = _make(tmp_path, answers)
    _assert_own_tests_pass(project, timeout=SLOW_SUITE_SECONDS)
