"""Shared helpers: real copier renders, real git, the generated project's own tests."""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2
import pytest
from venvs import pycache, torch_extensions

from scaffold.new import Created, create

ROOT = Path(__file__).resolve().parents[1]
# One torch thread in each test process, before any test module imports torch:
# pytest-xdist runs a worker per core already, and more threads than cores
# spin-wait for each other (set OMP_NUM_THREADS to choose otherwise).
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _compiled_once(compile_: Any) -> Any:
    """``jinja2.Environment.compile``, compiling each template string once per process.

    copier builds a new Jinja environment for every render and compiles the
    template's ~1,100 strings (file names and contents) again: two thirds of
    a render's time, and the suite renders hundreds of projects. What a string
    compiles to depends only on it and on the environment's syntax settings
    (the key below), so renders stay copier's own, file for file (the render
    snapshot compares every file's hash with renders made without this).
    """
    compiled: dict[tuple, Any] = {}

    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):  # noqa: A001
        if not isinstance(source, str):  # an already-parsed template: nothing to share
            return compile_(self, source, name, filename, raw, defer_init)
        syntax = tuple(getattr(self, option) for option in _SYNTAX)
        extensions = tuple(sorted(self.extensions))
        key = (type(self), syntax, extensions, source, name, filename, raw, defer_init)
        try:
            return compiled[key]
        except KeyError:
            compiled[key] = code = compile_(self, source, name, filename, raw, defer_init)
            return code
        except TypeError:  # a setting that can't be a key (a function): compile, as usual
            return compile_(self, source, name, filename, raw, defer_init)

    return compile


_SYNTAX = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "autoescape",
    "finalize",
    "is_async",
)
jinja2.Environment.compile = _compiled_once(jinja2.Environment.compile)


def make_project(dest: Path, **answers) -> Created:
    """Render the bundled template non-interactively, as `scaffold new --defaults -d ...`."""
    return create(dest, data=answers, defaults=True)


@contextlib.contextmanager
def engine_of(
    folder: Path, name: str, modules: tuple[str, ...], **answers
) -> Iterator[tuple[ModuleType, ...]]:
    """Render project ``<name>-exp`` into ``folder`` (logger none unless given) and import
    its engine's ``modules`` (e.g. "module", "trainer") from its src/, for comparisons in
    this process. ``name`` must be unique among a run's: Python imports a package once."""
    project = make_project(folder / f"{name}-exp", **{"logger": "none", **answers}).path
    sys.path.insert(0, str(project / "src"))
    try:
        yield tuple(importlib.import_module(f"{name}_exp.engine.{m}") for m in modules)
    finally:
        sys.path.remove(str(project / "src"))


def project_env() -> dict[str, str]:
    """The environment a generated project's tests run in: offline, quiet loggers."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "COV_")) and k != "PYTHONPATH"
    }
    env.update(WANDB_MODE="offline", WANDB_SILENT="true")
    # Bytecode goes to one folder outside the projects, compiled once per run
    # (the test venvs are installed without it: tests/venvs.py).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache())
    # One torch thread per project: pytest-xdist already runs one suite per
    # core, and two suites of two threads each on two cores took 75 s where
    # one thread each took 55 s.
    env["OMP_NUM_THREADS"] = "1"
    env["TORCH_EXTENSIONS_DIR"] = str(torch_extensions(sys.executable))
    return env


def run_project_tests(
    path: Path, *args: str, python: Path | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run the generated project's own pytest suite in a subprocess.

    Args:
        path: The project.
        *args: More pytest arguments.
        python: The interpreter (default: this one, scaffold's dev venv); pass
            ``venvs.python_for(path)`` for one holding only what the project declares.
        timeout: Seconds before the run is killed.
    """
    python = Path(python or sys.executable)
    # The project's scripts (scripts/train.sh) call `python`: the same interpreter.
    env = project_env()
    env["PATH"] = os.pathsep.join([str(python.parent), env.get("PATH", "")])
    env["TORCH_EXTENSIONS_DIR"] = str(torch_extensions(python))
    return subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ruff(path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ruff (from this environment) on a generated project."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=path,
        capture_output=True,
        text=True,
        check=False,
    )


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


# Tests that take half a minute or more (besides the generated suites, costed
# by matrix.expected_seconds on the same scale), with their cost in seconds: measured in
# the CI run of 6468c74 (2026-11-30). Unlisted, a long test is scheduled among
# the short ones and can start last, with the other worker idle (the own-data
# suite did: 158 s at the end of that run).
LONG = {
    "test_deepspeed_trains_resumes_mid_epoch_and_exports": 220,
    "test_own_data_by_configuration_keeps_the_projects_tests_passing": 160,
    "test_sigkill_at_random_moments_then_resume_is_bitwise_exact": 120,
    "test_sigkill_then_resume_keeps_one_continuous_record_in_every_logger": 105,
    "test_fsdp_trains_saves_shards_resumes_and_exports": 90,
    "test_every_engine_combination_renders_clean": 80,
    "test_slurm_script_stops_on_usr1_requeues_and_the_next_job_resumes": 67,
    "test_ddp_resume_is_exact": 63,
    "test_ddp_ranks_agree_equal_one_process_and_resume_exactly": 59,
    "test_two_nodes_with_c10d_rendezvous_train_like_one_node": 50,
    "test_random_option_values_in_a_real_process": 50,
    "test_new_makes_a_clean_project_or_a_clean_error": 50,
    "test_a_killed_sweep_continues_its_trial_to_the_weights_of_an_unbroken_fit": 47,
    "test_a_run_records_the_template_answers_git_state_software_and_hardware": 39,
    "test_config_goes_to_hydra_and_back_keeping_edits": 37,
    "test_a_second_run_is_refused_a_checkpoint_folder_and_readers_never_see_a_torn_file": 36,
    "test_project_venvs_hold_only_what_the_project_declares": 35,
    "test_under_ddp_a_metric_object_syncs_itself_to_the_global_value": 34,
    "test_image_classifier_defaults_reach_95_percent_on_digits": 31,
    "test_every_engine_combination_renders_the_recorded_files": 31,
    "test_a_full_disk_under_ddp_is_said_once_by_rank_zero": 30,
}


@pytest.hookimpl(trylast=True)  # after `-m` has deselected: dealt out are the tests that run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest tests first on every pytest-xdist worker, so none waits on a long tail.

    ``--dist worksteal`` hands each worker a contiguous share of this order (the
    first half to one, the second to the other) and an idle worker takes the
    end of another's queue. Sorted alone, one worker got every long test, run
    one after another (the eight generated suites, 30 minutes in the CI run at
    b81659b); dealt out in turn, each worker's share starts with its long tests.
    """
    from matrix import expected_seconds

    def seconds(item: pytest.Item) -> int:
        params = getattr(item, "callspec", None)
        if params is not None and isinstance(params.params.get("answers"), dict):
            return expected_seconds(params.params["answers"])  # LONG's scale
        return LONG.get(getattr(item, "originalname", item.name), 0)

    items.sort(key=seconds, reverse=True)  # stable: the rest keep their order
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    items[:] = [item for start in range(workers) for item in items[start::workers]]


@pytest.fixture
def default_project(tmp_path_factory) -> Path:
    """A project made with every default (rendered once per test that asks)."""
    return make_project(tmp_path_factory.mktemp("made") / "my-exp").path
