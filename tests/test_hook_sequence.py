"""The generated engine calls Lightning's hooks in Lightning's order, with Lightning's arguments.

Each scenario of tests/lightning_oracle.py runs twice: in pytorch_lightning 2.6.6
(recorded on the receiving side by the oracle) and on a generated project's engine
(tests/helpers/engine_hooks.py, recorded the same way: every scenario in one fresh
process, shared by the pytest-xdist workers). The two
lists of calls (owner, hook, key arguments, epoch, step, nesting) must be equal once
Lightning's is put through the engine's deliberate differences, each a function
below, named in `DELIBERATE` and listed in docs/engine.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, project_env
from venvs import locked

from scaffold.new import create

pytest.importorskip("pytorch_lightning")

import lightning_oracle as oracle  # noqa: E402
from lightning_oracle import Call  # noqa: E402

ENGINE_SIDE = Path(__file__).parent / "helpers" / "engine_hooks.py"
LOADERS = ("train_dataloader", "val_dataloader")


def loaders_requested_up_front(calls: list[Call]) -> list[Call]:
    """fit asks for its loaders after configure_model, before configure_optimizers (Lightning:
    before the sanity check and on_train_start), so a bad loader fails before the run folder."""
    if not any(c.hook == "configure_optimizers" for c in calls):
        return calls
    asked = sorted(
        (c for c in calls if c.hook in LOADERS and c.depth == 0),
        key=lambda c: LOADERS.index(c.hook),
    )
    rest = [c for c in calls if c not in asked]
    at = next(i for i, c in enumerate(rest) if c.hook == "configure_optimizers")
    clock = rest[at]
    moved = [c._replace(epoch=clock.epoch, step=clock.step) for c in asked]
    return rest[:at] + moved + rest[at:]


def restore_after_configure_optimizers(calls: list[Call]) -> list[Call]:
    """With ckpt_path, fit restores after configure_optimizers (Lightning: the weights before
    it): sharded strategies load the weights and the optimizer state together."""
    restore = [
        i for i, c in enumerate(calls) if c.hook in ("on_load_checkpoint", "load_state_dict")
    ]
    configure = [i for i, c in enumerate(calls) if c.hook == "configure_optimizers"]
    if not restore or not configure or configure[0] < restore[0]:
        return calls
    moved = calls[configure[0]]
    rest = calls[: configure[0]] + calls[configure[0] + 1 :]
    return rest[: restore[0]] + [moved] + rest[restore[0] :]


def epoch_end_checkpoint(calls: list[Call]) -> list[Call]:
    """At an epoch's end ModelCheckpoint saves in its on_train_epoch_end, after the plateau
    schedulers stepped and the epoch is marked done (Lightning: in the epoch's last
    on_validation_end), so the checkpoint resumes exactly at the next epoch."""
    calls = list(calls)
    for i in range(len(calls)):
        c = calls[i]
        if not (c.hook == "on_validation_end" and c.owner == "checkpoint" and c.depth == 0):
            continue
        end = next((j for j in range(i + 1, len(calls)) if calls[j].depth == 0), len(calls))
        nxt = next(
            (
                j
                for j in range(end, len(calls))
                if calls[j].owner == "checkpoint"
                and calls[j].hook in ("on_train_batch_start", "on_train_epoch_end")
            ),
            None,
        )
        if end > i + 1 and nxt is not None and calls[nxt].hook == "on_train_epoch_end":
            block = calls[i + 1 : end]
            calls[nxt + 1 : nxt + 1] = block
            del calls[i + 1 : end]
    return calls


def clip_algorithm_named(calls: list[Call]) -> list[Call]:
    """gradient_clip_algorithm arrives as "norm" when not set (Lightning: None, meaning norm)."""
    out = []
    for c in calls:
        args = tuple(
            (k, "norm" if k == "gradient_clip_algorithm" and v is None else v) for k, v in c.args
        )
        out.append(c._replace(args=args))
    return out


DELIBERATE: dict[str, Callable[[list[Call]], list[Call]]] = {
    f.__name__: f
    for f in (
        restore_after_configure_optimizers,
        loaders_requested_up_front,  # then before configure_optimizers, before the restore
        epoch_end_checkpoint,
        clip_algorithm_named,
    )
}
COMPARED = ["fit", "validate", "test", "predict", "resume", "warmup", "lbfgs", "multi_val"]
COMPARED += ["overrides", "exception"]
SCENARIOS = [*COMPARED, "manual"]


@pytest.fixture(scope="module")
def recorded(request, tmp_path_factory) -> dict[str, dict]:
    """What the engine calls in every scenario, recorded once per test run.

    One process runs them all (each process start costs seconds); the
    pytest-xdist workers of a run share its answer through their common
    temporary folder, the first to need it recording it for all.
    """
    shared = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # a worker's folder is in the run's
        shared = shared.parent
    answer = shared / "hook-sequence.json"
    with locked(shared / "hook-sequence"):
        if not answer.is_file():
            folder = tmp_path_factory.mktemp("hooks")
            project = create(folder / "hook-exp", data={}, defaults=True, use_git=False).path
            answer.write_text(json.dumps(engine_calls(project, folder / "runs")))
    return json.loads(answer.read_text())


def engine_calls(project: Path, tmp: Path) -> dict[str, dict]:
    """What the engine calls in each scenario, recorded in a fresh process."""
    done = subprocess.run(
        [sys.executable, str(ENGINE_SIDE), str(project / "src"), "hook_exp", str(tmp), *SCENARIOS],
        capture_output=True,
        text=True,
        env={**project_env(), "PYTHONPATH": str(ROOT)},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def calls_of(recorded: dict[str, dict], scenario: str) -> dict:
    """One scenario's recording, its calls as ``Call``s."""
    result = dict(recorded[scenario])
    result["calls"] = [
        Call(o, h, tuple(tuple(a) for a in args), e, s, d)
        for o, h, args, e, s, d in result["calls"]
    ]
    return result


def expected(scenario: str, tmp: Path) -> list[Call]:
    """Lightning's calls in `scenario`, through the engine's deliberate differences."""
    calls = list(oracle.scenario(scenario, tmp).calls)
    for difference in DELIBERATE.values():
        calls = difference(calls)
    return calls


def lines(calls: list[Call]) -> list[str]:
    return [f"e{c.epoch} s{c.step} {'  ' * c.depth}{c.owner}.{oracle._signature(c)}" for c in calls]


@pytest.mark.parametrize("scenario", COMPARED)
def test_the_engine_calls_what_lightning_calls(recorded, tmp_path, scenario) -> None:
    ours = calls_of(recorded, scenario)
    assert ours["error"] is None, ours["error"]
    assert lines(ours["calls"]) == lines(expected(scenario, tmp_path / "lightning"))


def test_manual_optimization_calls_what_lightning_calls(recorded, tmp_path) -> None:
    ours = calls_of(recorded, "manual")
    assert ours["error"] is None, ours["error"]
    assert lines(ours["calls"]) == lines(expected("manual", tmp_path / "lightning"))


def test_validation_metrics_are_current_in_on_validation_epoch_end(recorded) -> None:
    # Lightning: on entry, callback_metrics already holds this run's val_loss, in
    # the sanity check and in every validation.
    ours = recorded["fit"]
    seen = [
        dict(metrics)
        for owner, hook, _, _, metrics in ours["snapshots"]
        if owner == "module" and hook == "on_validation_epoch_end"
    ]
    assert len(seen) == 5  # the sanity check, then two validations an epoch
    assert all("val_loss" in metrics for metrics in seen)


def test_each_deliberate_difference_is_in_the_docs() -> None:
    text = (ROOT / "docs" / "engine.md").read_text()
    assert [name for name in DELIBERATE if f"`{name}`" not in text] == []
