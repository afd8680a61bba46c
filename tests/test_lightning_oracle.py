"""The Lightning oracle (tests/lightning_oracle.py) against live pytorch_lightning 2.6.6.

Two kinds of test: the recorder is whole and changes nothing (so what it records is
what Lightning does), and the facts of Lightning's hook order that the engine has to
match, each checked against the live run. docs/lightning-hooks.md is generated from
the same runs and must be current.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

pl = pytest.importorskip("pytorch_lightning")

import lightning_oracle as oracle  # noqa: E402
from lightning_oracle import Recording, merged  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "lightning-hooks.md"
CALLBACKS = ["callback", "model_callback", "checkpoint"]  # the fit scenario's, in Lightning's order
# The module's hooks in the training closure (zero_grad only on a window's first batch) ...
CLOSURE = ["training_step", "on_before_zero_grad", "optimizer_zero_grad"]
CLOSURE += ["on_before_backward", "backward", "on_after_backward"]
# ... and after it, when the optimizer steps.
STEP = ["on_before_optimizer_step", "configure_gradient_clipping", "clip_gradients"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Each scenario's recording, run once per module (and per xdist worker) on first use."""
    cache: dict[str, Recording] = {}

    def get(name: str) -> Recording:
        if name not in cache:
            cache[name] = oracle.scenario(name, tmp_path_factory.mktemp(name))
        return cache[name]

    return get


def args(recording: Recording, index: int) -> dict:
    return dict(recording.calls[index].args)


def groups(recording: Recording, hook: str) -> list[list[str]]:
    """The owner orders of `hook`'s runs (consecutive calls of it on several owners)."""
    return [owners for call, owners in merged(recording.calls) if call.hook == hook]


def nested(recording: Recording, index: int) -> list[tuple[str, str]]:
    """The (owner, hook) calls made while call `index` ran."""
    depth, inside = recording.calls[index].depth, []
    for call in recording.calls[index + 1 :]:
        if call.depth <= depth:
            break
        inside.append((call.owner, call.hook))
    return inside


def module_hooks_of_batch(recording: Recording, batch_idx: int) -> list[str]:
    """The module's hooks from the batch's on_train_batch_start to its on_train_batch_end."""
    start = recording.find("on_train_batch_start", batch_idx=batch_idx)[0]
    end = recording.find("on_train_batch_end", batch_idx=batch_idx)[0]
    return [c.hook for c in recording.calls[start : end + 1] if c.owner == "module"]


# ------------------------------------------------------------ the recorder itself


def test_the_oracle_is_of_the_pinned_lightning():
    assert pl.__version__ == oracle.LIGHTNING_VERSION  # pyproject.toml pins it for the dev extra


def test_every_lightning_module_method_is_a_recorded_hook_or_a_known_utility():
    # A Lightning release that adds a method fails here until it is classified.
    defined = set(oracle.public_functions(pl.LightningModule))
    assert defined == {*oracle.MODULE_STEPS, *oracle.MODULE_API, *oracle.MODULE_UTILITIES}
    assert len(oracle.CALLBACK_HOOKS) == 39 and len(oracle.DATAMODULE_HOOKS) == 13


def test_the_recorder_wraps_every_hook_but_the_undefined_only_if_overridden_ones():
    cls = oracle.recording(oracle.Gan, "module", oracle.Recorder())
    wrapped = {name for name, value in vars(cls).items() if hasattr(value, "__wrapped__")}
    defined = {"training_step", "configure_optimizers", "train_dataloader"}  # by Gan
    assert wrapped == set(oracle.MODULE_HOOKS) - (oracle.ONLY_IF_DEFINED["module"] - defined)


@pytest.mark.parametrize("name", oracle.SCENARIOS)
def test_the_receiving_side_gets_everything_lightning_dispatches(run, name):
    assert oracle.unreceived(run(name)) == []


def test_a_recorder_that_misses_a_hook_is_caught(tmp_path):
    def validate(rec: oracle.Recorder) -> pl.Trainer:
        module = oracle.recording(oracle.Regressor, "module", rec)
        callback = oracle.recording(oracle.Counter, "callback", rec)
        del module.on_validation_end, callback.on_validation_batch_start  # broken on purpose
        trainer = oracle.make_trainer(tmp_path, [callback()])
        trainer.validate(module(), verbose=False)
        return trainer

    problems = oracle.unreceived(oracle.record(validate, tmp_path))
    assert len(problems) == 2
    assert "dispatched ['on_validation_end']" in problems[0]
    assert problems[1] == "callbacks: dispatched on_validation_batch_start, got none"


def test_recording_changes_nothing_lightning_computes(run, tmp_path):
    trainer, module, data = oracle.fit_setup(tmp_path, None)  # the fit scenario, unrecorded
    with oracle.quiet([]):
        trainer.fit(module, datamodule=data)
    recorded = run("fit")
    assert oracle.metrics_of(trainer) == recorded.final_metrics
    assert (trainer.global_step, trainer.current_epoch) == (recorded.global_step, 2)


def test_records_are_plain_values(run):
    plain = (str, int, float, bool, type(None))
    recording = run("fit")
    for call in recording.calls:
        assert isinstance(call.owner, str) and isinstance(call.hook, str)
        assert all(isinstance(k, str) and isinstance(v, plain) for k, v in call.args)
        assert tuple(call) == (call.owner, call.hook, call.args, call.epoch, call.step, call.depth)
    assert hash(recording.calls)


# ------------------------------------------------------------- Lightning's facts


def test_set_up_runs_configure_callbacks_prepare_data_setup_configure_model_then_optimizers(run):
    calls = [(c.owner, c.hook) for c in run("fit").calls]
    assert calls[: calls.index(("module", "on_fit_start")) + 1] == [
        ("module", "configure_callbacks"),
        ("datamodule", "prepare_data"),
        ("module", "prepare_data"),
        ("datamodule", "setup"),
        *[(owner, "setup") for owner in CALLBACKS],
        ("module", "setup"),
        ("module", "configure_model"),
        ("module", "configure_optimizers"),
        *[(owner, "on_fit_start") for owner in CALLBACKS],
        ("module", "on_fit_start"),
    ]
    assert [args(run("fit"), i)["stage"] for i in run("fit").find("setup")] == ["fit"]
    for stage in ("validate", "test", "predict"):
        assert {args(run(stage), i)["stage"] for i in run(stage).find("teardown")} == {stage}


def test_callbacks_run_before_the_module_except_monitoring_ones_at_train_epoch_end(run):
    fit = run("fit")
    shared = [(c.hook, owners) for c, owners in merged(fit.calls) if len(owners) > 1]
    assert len({hook for hook, _ in shared}) >= 25
    for hook, owners in shared:
        if hook == "state_dict":  # the module's is nn.Module's (its weights), taken first
            assert owners == ["module", "callback", "checkpoint", "datamodule"]
        elif hook == "on_train_epoch_end":
            assert owners == ["callback", "model_callback", "module", "checkpoint"]
        elif "module" in owners:
            assert owners[-1] == "module", hook


def test_trainer_callbacks_come_first_then_configure_callbacks_then_model_checkpoint(run):
    # Trainer(callbacks=[Counter, ModelCheckpoint]) and configure_callbacks() -> [Probe]
    assert groups(run("fit"), "on_train_start") == [[*CALLBACKS, "module"]]


def test_the_sanity_check_is_a_full_validation_run_wrapped_in_callback_only_hooks(run):
    fit = run("fit")
    start, end = (
        fit.find("on_sanity_check_start", "callback")[0],
        fit.find("on_sanity_check_end", "callback")[0],
    )
    inside = [c.hook for c in fit.calls[start:end] if c.owner == "module"]
    assert inside == [
        "on_validation_model_eval",
        "on_validation_start",
        "on_validation_epoch_start",
        "on_before_batch_transfer",
        "transfer_batch_to_device",
        "on_after_batch_transfer",
        "on_validation_batch_start",
        "validation_step",  # num_sanity_val_steps=1
        "on_validation_batch_end",
        "on_validation_epoch_end",
        "on_validation_end",
    ]
    assert fit.find("on_sanity_check_start", "module") == []
    assert fit.hooks().index("on_sanity_check_end") < fit.hooks().index("train_dataloader")


def test_a_training_batch_accumulating_and_stepping(run):
    warmup = run("warmup")  # accumulate 2, no schedulers, no validation
    transfers = ["on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"]
    hooks = warmup.hooks()
    assert (
        hooks[hooks.index("on_train_batch_start") - 3 : hooks.index("on_train_batch_start")]
        == transfers
    )
    assert module_hooks_of_batch(warmup, 0) == [
        "on_train_batch_start",
        *CLOSURE,
        "on_train_batch_end",
    ]
    stepping = [h for h in CLOSURE if "zero_grad" not in h]  # batch 1 is no window's first
    assert module_hooks_of_batch(warmup, 1) == [
        "on_train_batch_start",
        "optimizer_step",
        *stepping,
        *STEP,
        "on_train_batch_end",
    ]


def test_optimizer_step_gets_the_closure_and_training_step_runs_inside_it(run):
    for name in ("fit", "warmup", "lbfgs", "resume"):
        recording = run(name)
        for i in recording.find("optimizer_step"):
            assert args(recording, i)["closure"] is True and args(recording, i)["optimizer"] == 0
            inside = nested(recording, i)
            assert inside[0] == ("module", "training_step")
            assert ("module", "on_before_optimizer_step") in inside
            assert args(recording, i + 1)["batch_idx"] == args(recording, i)["batch_idx"]


def test_accumulation_only_batches_run_the_closure_without_optimizer_step(run):
    for name, epochs in (("fit", 2), ("warmup", 1)):
        recording = run(name)
        stepped = [args(recording, i)["batch_idx"] for i in recording.find("optimizer_step")]
        assert stepped == [1, 3] * epochs
        for i in recording.find("training_step"):
            assert recording.calls[i].depth == args(recording, i)["batch_idx"] % 2


def test_zero_grad_runs_inside_the_closure_on_the_first_batch_of_each_window(run):
    fit = run("fit")
    assert [args(fit, i)["batch_idx"] for i in fit.find("optimizer_zero_grad")] == [0, 2, 0, 2]
    module = [i for i, c in enumerate(fit.calls) if c.owner == "module"]
    for i in fit.find("optimizer_zero_grad"):
        around = [fit.calls[j].hook for j in module[module.index(i) - 2 : module.index(i) + 2]]
        assert around == [
            "training_step",
            "on_before_zero_grad",
            "optimizer_zero_grad",
            "on_before_backward",
        ]
        assert args(fit, i)["epoch"] == fit.calls[i].epoch


def test_lbfgs_evaluates_the_whole_closure_several_times_inside_one_optimizer_step(run):
    lbfgs = run("lbfgs")
    assert lbfgs.global_step == 2
    for i in lbfgs.find("optimizer_step"):
        inside = [hook for owner, hook in nested(lbfgs, i) if owner == "module"]
        assert inside == (CLOSURE + STEP) * 2  # LBFGS(max_iter=2): two evaluations


def test_global_step_grows_inside_optimizer_step_before_schedulers_and_batch_end(run):
    fit = run("fit")
    scheduled = [
        (c.epoch, c.step, dict(c.args)["scheduler"])
        for c in fit.calls
        if c.hook == "lr_scheduler_step"
    ]
    assert scheduled == [
        (0, 1, "StepLR"),
        (0, 2, "StepLR"),
        (0, 2, "ExponentialLR"),  # interval="epoch": at the last batch, before its batch end
        (1, 3, "StepLR"),
        (1, 4, "StepLR"),
        (1, 4, "ExponentialLR"),
    ]
    for i in fit.find("optimizer_step"):
        end = fit.find("on_train_batch_end", batch_idx=args(fit, i)["batch_idx"])
        batch_end = min(j for j in end if j > i)
        assert fit.calls[batch_end].step == fit.calls[i].step + 1
        assert fit.hooks()[i:batch_end].count("lr_scheduler_step") >= 1


def test_on_train_epoch_end_comes_after_the_epochs_last_validation(run):
    fit = run("fit")
    for end in fit.find("on_train_epoch_end"):
        epoch = fit.calls[end].epoch
        last_validation = max(
            i for i in fit.find("on_validation_end") if fit.calls[i].epoch == epoch
        )
        between = {(c.owner, c.hook) for c in fit.calls[last_validation + 1 : end]}
        assert between <= {
            ("callback", "on_train_epoch_end"),
            ("model_callback", "on_train_epoch_end"),
        }
    # current_epoch grows after it
    assert [fit.calls[i].epoch for i in fit.find("on_train_end")] == [2]


def test_model_checkpoint_saves_inside_its_on_validation_end_before_the_modules(run):
    runs = list(merged(run("fit").calls))
    at = next(i for i, (c, owners) in enumerate(runs) if c.hook == "state_dict")
    assert [(c.hook, owners, c.depth) for c, owners in runs[at - 1 : at + 3]] == [
        ("on_validation_end", CALLBACKS, 0),
        ("state_dict", ["module", "callback", "checkpoint", "datamodule"], 1),
        ("on_save_checkpoint", [*CALLBACKS, "module"], 1),
        ("on_validation_end", ["module"], 0),
    ]
    # every validation of the fit saved: ModelCheckpoint(save_top_k=-1), mid-epoch too
    assert len(run("fit").find("on_save_checkpoint")) == 4


def test_callback_metrics_in_on_validation_epoch_end_hold_this_runs_aggregate(run):
    torch.manual_seed(0)
    net = nn.Linear(3, 1)  # Regressor.configure_model's
    with torch.no_grad():
        losses = [F.mse_loss(net(x), y).item() for x, y in oracle.loader(8, seed=2)]
    (validate,) = [s for s in run("validate").snapshots if s.owner == "module"]
    assert dict(validate.metrics)["val_loss"] == pytest.approx(sum(losses) / 2, abs=1e-6)
    module = [s for s in run("fit").snapshots if s.owner == "module"]
    sanity, *during = [s for s in module if s.hook == "on_validation_epoch_end"]
    assert dict(sanity.metrics) == pytest.approx({"val_loss": losses[0]}, abs=1e-6)  # 1 batch
    assert all("val_loss" in dict(s.metrics) for s in during)
    assert len({dict(s.metrics)["val_loss"] for s in during}) == len(during)  # fresh each time


def test_callback_metrics_in_on_train_epoch_end_hold_the_epoch_aggregates(run):
    fit = run("fit")
    module = [s for s in fit.snapshots if s.owner == "module"]
    for i, snap in enumerate(module):
        if snap.hook != "on_train_epoch_end":
            continue
        metrics, before = dict(snap.metrics), dict(module[i - 1].metrics)
        assert module[i - 1].hook == "on_validation_epoch_end"
        assert metrics["val_loss"] == before["val_loss"]  # this epoch's last validation
        assert metrics["train_loss"] == metrics["train_loss_epoch"]
        assert (
            "train_loss_epoch" not in before
            or before["train_loss_epoch"] != metrics["train_loss_epoch"]
        )
        assert before["train_loss"] == before["train_loss_step"]  # during the epoch: the step's


def test_resume_restores_in_lightnings_order(run):
    calls = [(c.owner, c.hook) for c in run("resume").calls]
    restore = calls[
        calls.index(("module", "configure_model")) : calls.index(("module", "configure_optimizers"))
        + 1
    ]
    assert restore == [
        ("module", "configure_model"),
        ("module", "on_load_checkpoint"),
        ("module", "load_state_dict"),
        ("datamodule", "load_state_dict"),
        *[(owner, "on_load_checkpoint") for owner in CALLBACKS],  # every callback
        ("callback", "load_state_dict"),  # only those that saved state: not Probe
        ("checkpoint", "load_state_dict"),
        ("module", "configure_optimizers"),
    ]


def test_a_mid_epoch_resume_skips_the_sanity_check_and_that_epochs_start(run):
    resume = run("resume")
    assert "on_sanity_check_start" not in resume.hooks()
    assert [resume.calls[i].epoch for i in resume.find("on_train_epoch_start")] == [1]
    first = resume.find("on_train_batch_start")[0]
    assert (
        resume.calls[first].epoch,
        resume.calls[first].step,
        args(resume, first)["batch_idx"],
    ) == (0, 1, 2)
    before_start = resume.hooks()[: resume.hooks().index("on_train_start")]
    assert before_start[-2:] == ["train_dataloader", "val_dataloader"]
    assert any("dataloader is not resumable" in w for w in resume.warnings)
    assert resume.global_step == run("fit").global_step == 4


def test_manual_optimization_runs_no_automatic_hooks_and_counts_every_step(run):
    manual = run("manual")  # two optimizers, 4 batches
    assert manual.global_step == 8
    automatic = {"optimizer_step", "optimizer_zero_grad", "on_before_zero_grad"}
    automatic |= {"configure_gradient_clipping", "lr_scheduler_step"}
    assert not automatic & set(manual.hooks())
    for i in manual.find("manual_backward"):
        assert nested(manual, i) == [
            ("callback", "on_before_backward"),
            ("module", "on_before_backward"),
            ("module", "backward"),
            ("callback", "on_after_backward"),
            ("module", "on_after_backward"),
        ]
    stepped = [args(manual, i)["optimizer"] for i in manual.find("on_before_optimizer_step")]
    assert stepped == [0, 1] * 4
    assert {args(manual, i)["outputs"] for i in manual.find("on_train_batch_end")} == {"dict()"}


def test_hooks_that_run_only_when_overridden(run):
    assert {"configure_model", "prepare_data"} <= set(run("fit").hooks("module"))
    assert not {"configure_model", "prepare_data"} & set(run("manual").hooks())  # Gan: neither
    assert "on_validation_model_train" not in run("validate").hooks()
    overrides = run("overrides")
    module = overrides.hooks("module")
    assert module[module.index("on_validation_end") + 1] == "on_validation_model_train"
    transfers = set(oracle.TRANSFERS)
    assert transfers <= set(overrides.hooks("datamodule")) and not transfers & set(module)
    assert transfers <= set(run("validate").hooks("module"))


def test_a_datamodule_or_passed_dataloaders_win_over_the_modules_own(run):
    # Regressor defines train/val/test_dataloader; Data defines them too
    assert "val_dataloader" in run("fit").hooks("datamodule")
    assert not {"train_dataloader", "val_dataloader"} & set(run("fit").hooks("module"))
    assert "test_dataloader" in run("test").hooks("module")  # no DataModule given
    assert "val_dataloader" not in run("multi_val").hooks()  # dataloaders passed


def test_several_dataloaders_pass_dataloader_idx_and_suffix_the_metrics(run):
    multi = run("multi_val")
    steps = [args(multi, i) for i in multi.find("validation_step")]
    assert [(a["batch_idx"], a["dataloader_idx"]) for a in steps] == [(0, 0), (1, 0), (0, 1)]
    single = run("validate")
    assert "dataloader_idx" not in args(single, single.find("validation_step")[0])
    assert len(multi.find("on_validation_epoch_end")) == 1
    (snapshot,) = [s for s in multi.snapshots if s.owner == "module"]
    assert [k for k, _ in snapshot.metrics] == [
        "val_loss/dataloader_idx_0",
        "val_loss/dataloader_idx_1",
    ]


def test_an_exception_reaches_callbacks_then_the_datamodule_and_nothing_tears_down(run):
    failed = run("exception")
    tail = [(c.owner, c.hook, dict(c.args).get("exception")) for c in failed.calls[-2:]]
    assert tail == [
        ("callback", "on_exception", "RuntimeError"),
        ("datamodule", "on_exception", "RuntimeError"),
    ]
    assert not {"teardown", "on_train_end", "on_fit_end"} & set(failed.hooks())


def test_the_document_is_generated_from_the_live_run(run):
    expected = oracle.markdown({name: run(name) for name in oracle.SCENARIOS})
    regenerate = "python tests/lightning_oracle.py > docs/lightning-hooks.md"
    assert DOC.read_text(encoding="utf-8") == expected, f"stale; regenerate: {regenerate}"
