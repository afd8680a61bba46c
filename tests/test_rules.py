"""The rules table: which answers go together, and what the messages say."""

from __future__ import annotations

import itertools
import re

import pytest
import yaml
from conftest import ROOT

from scaffold import rules
from scaffold.template import bundled_template, questions

QUESTIONS = questions(bundled_template())
HARDWARE = QUESTIONS["hardware"].values
STRATEGIES = QUESTIONS["strategy"].values
PRECISIONS = QUESTIONS["precision"].values


def answers(**given):
    base = {"hardware": "cpu", "devices": 1, "num_nodes": 1, "precision": "32-true"}
    base.update(given)
    base.setdefault("strategy", rules.default_strategy(base))
    return base


def every_combination():
    for hardware, devices, nodes, strategy, precision in itertools.product(
        HARDWARE, [1, 2, 8], [1, 2], STRATEGIES, PRECISIONS
    ):
        yield {
            "hardware": hardware,
            "devices": devices,
            "num_nodes": nodes,
            "strategy": strategy,
            "precision": precision,
        }


@pytest.mark.parametrize(
    ("given", "names", "fix"),
    [
        (
            {"hardware": "tpu", "strategy": "xla", "precision": "16-mixed"},
            ["precision=16-mixed", "hardware=tpu"],
            "bf16-mixed or bf16-true",
        ),
        ({"strategy": "deepspeed"}, ["strategy=deepspeed", "hardware=cpu"], "hardware=cuda"),
        ({"strategy": "ddp"}, ["strategy=ddp", "devices=1"], "strategy=single_device"),
        ({"strategy": "fsdp", "hardware": "cuda"}, ["strategy=fsdp", "devices=1"], "devices=2"),
        ({"hardware": "mps", "devices": 2}, ["hardware=mps", "devices=2"], "devices=1"),
        (
            {"strategy": "xla", "hardware": "cuda"},
            ["strategy=xla", "hardware=cuda"],
            "hardware=tpu",
        ),
        (
            {"hardware": "cuda", "devices": 4, "strategy": "single_device"},
            ["strategy=single_device", "devices=4"],
            "strategy=ddp",
        ),
        (
            {"hardware": "cuda", "devices": 2, "strategy": "fsdp", "precision": "64-true"},
            ["precision=64-true", "strategy=fsdp"],
            "precision=32-true",
        ),
    ],
)
def test_invalid_combinations_name_both_answers_and_the_fix(given, names, fix) -> None:
    message = rules.check(answers(**given))
    assert message, given
    for name in names:
        assert name in message
    assert fix in message


@pytest.mark.parametrize("hardware", ["cpu", "cuda"])
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_multi_process_cpu_and_cuda_training_is_valid(hardware, strategy) -> None:
    # gloo runs DDP/FSDP on CPU processes: how people debug distributed code on a laptop.
    assert rules.check(answers(hardware=hardware, devices=2, strategy=strategy)) == ""


def test_every_broken_rule_names_its_own_answer_and_another() -> None:
    for combo in every_combination():
        message = rules.check(combo)
        if not message:
            continue
        named = set(re.findall(r"\b([a-z_]+)=", message))
        assert len(named & set(combo)) >= 1, message
        if "must be at least" not in message:
            assert len(named & set(combo)) >= 2, message


def test_the_default_strategy_is_always_valid() -> None:
    for hardware, devices, nodes in itertools.product(HARDWARE, [1, 2, 8], [1, 2]):
        combo = answers(hardware=hardware, devices=devices, num_nodes=nodes)
        if hardware == "mps" and devices * nodes > 1:
            continue  # mps itself refuses more than one device
        message = rules.check(combo)
        assert message == "", (combo, message)


@pytest.mark.parametrize("precision", ["32-true", "16-mixed", "bf16-mixed"])
@pytest.mark.parametrize("devices", [1, 2])
def test_deepspeed_on_cuda_is_valid_with_its_precisions(precision, devices) -> None:
    # One GPU is valid too: ZeRO's offloading is useful on a single device.
    combo = answers(hardware="cuda", devices=devices, strategy="deepspeed", precision=precision)
    assert rules.check(combo) == ""


@pytest.mark.parametrize("precision", ["16-true", "bf16-true", "64-true"])
def test_deepspeed_refuses_precisions_it_does_not_train_in(precision) -> None:
    combo = answers(hardware="cuda", devices=2, strategy="deepspeed", precision=precision)
    message = rules.check(combo)
    assert f"precision={precision}" in message and "strategy=deepspeed" in message, message


@pytest.mark.parametrize(
    "given",
    [
        {"hardware": "tpu", "strategy": "xla", "precision": "bf16-mixed"},
        {"hardware": "tpu", "devices": 8, "strategy": "xla"},
        {"hardware": "cuda", "devices": 8, "num_nodes": 4, "strategy": "fsdp"},
        {"hardware": "cpu", "devices": 2, "strategy": "ddp", "precision": "16-mixed"},
    ],
)
def test_distributed_and_tpu_answers_are_supported(given) -> None:
    assert rules.check(answers(**given)) == ""


def test_swa_is_refused_with_sharded_strategies_only() -> None:
    fsdp = answers(hardware="cuda", devices=2, strategy="fsdp", callbacks=["swa"])
    assert "drop swa" in rules.check(fsdp)
    assert rules.check({**fsdp, "strategy": "ddp"}) == ""


def test_rules_only_name_real_questions_and_choices() -> None:
    for rule in rules.RULES:
        assert rule.question in QUESTIONS
    for (question, value), message in rules.RETIRED.items():
        assert question in QUESTIONS
        assert value not in QUESTIONS[question].values
        assert f"{question}={value}" in message
    assert set(rules.ORDER) == {q.name for q in QUESTIONS.values() if not q.computed}


def test_copier_yml_wires_every_choice_to_its_own_rule() -> None:
    # Each choice's validator must ask the rules about *that* question and value.
    raw = yaml.safe_load((ROOT / "templates" / "default" / "copier.yml").read_text())
    for name in ("hardware", "strategy", "precision"):
        for spec in raw[name]["choices"].values():
            assert spec["validator"] == f"{{{{ why_invalid('{name}', '{spec['value']}') }}}}"
    for name in ("devices", "num_nodes", "project_name", "package_name"):
        assert raw[name]["validator"] == f"{{{{ why_invalid('{name}', {name}) }}}}"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("my_exp", ""),
        ("class", "is a Python keyword"),
        ("match", "is a Python keyword"),
        ("os", "would shadow"),
        ("numpy", "would shadow"),
        ("2fast", "not a valid Python package name"),
        ("my-exp", "not a valid Python package name"),
        ("x" * 41, "longer than 40"),
    ],
)
def test_package_names(name, problem) -> None:
    found = rules.package_name_problem(name)
    assert (problem in found) if problem else found == ""


@pytest.mark.parametrize(
    ("project", "package"),
    [("My-Exp", "my_exp"), ("2024 run", "exp_2024_run"), ("---", "experiment"), ("a.b", "a_b")],
)
def test_package_name_is_derived_from_the_project_name(project, package) -> None:
    assert rules.package_name_for(project) == package
    assert rules.package_name_problem(package) == ""


def test_a_conditional_question_is_asked_only_when_its_condition_holds() -> None:
    stage = QUESTIONS["deepspeed_stage"]
    assert stage.asked({"strategy": "deepspeed"})
    assert not stage.asked({"strategy": "ddp"})
    assert stage.asked({})  # its condition can't be evaluated yet: copier decides
    assert QUESTIONS["task"].asked({}) and not QUESTIONS["torchrun"].asked({})
