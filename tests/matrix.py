"""The answer combinations the render tests cover, derived from copier.yml and the rules."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator

from scaffold import rules
from scaffold.template import bundled_template, questions

# The questions whose answers change the generated code (names don't).
VARIED = (
    "task",
    "hardware",
    "devices",
    "num_nodes",
    "strategy",
    "deepspeed_stage",
    "precision",
    "logger",
    "callbacks",
    "config",
)
COUNTS = {"devices": [1, 2], "num_nodes": [1, 2]}
CALLBACKS = questions(bundled_template())["callbacks"].values
# Callbacks are independent blocks of code: the matrix takes none, the
# default set, all of them, and all but SWA (which sharded strategies refuse);
# tests/test_render.py renders every subset too.
CALLBACK_SETS = [
    (),
    tuple(questions(bundled_template())["callbacks"].default),
    tuple(CALLBACKS),
    tuple(name for name in CALLBACKS if name != "swa"),
]


LOGGERS = questions(bundled_template())["logger"].values
# Loggers are whole files each: none, each alone, and all at once (in one
# process and in two, through the combinations that hold them).
LOGGER_SETS = [(), *((name,) for name in LOGGERS), tuple(LOGGERS)]


def _values(name: str) -> list:
    if name == "callbacks":
        return CALLBACK_SETS
    if name == "logger":
        return LOGGER_SETS
    if name == "deepspeed_stage":
        # Asked only for strategy=deepspeed: None stands for "not asked".
        return [None, *questions(bundled_template())[name].values]
    question = questions(bundled_template())[name]
    return question.values or COUNTS[name]


def as_answers(combo: dict) -> dict:
    """The combination as scaffold answers (callbacks and loggers, when given, as lists).

    ``deepspeed_stage`` is left out unless the strategy asks it.
    """
    answers = dict(combo)
    if answers.get("deepspeed_stage", 0) is None:
        del answers["deepspeed_stage"]
    for name in ("callbacks", "logger"):
        if isinstance(answers.get(name), tuple | list):  # a single "csv" stays one answer
            answers[name] = list(answers[name])
    return answers


def all_valid() -> list[dict]:
    """Every combination this release renders (fresh dicts: the callers' to change)."""
    return [dict(combo) for combo in _all_valid()]


@functools.cache
def _all_valid() -> tuple[dict, ...]:
    combos = []
    for values in itertools.product(*(_values(name) for name in VARIED)):
        answers = dict(zip(VARIED, values, strict=True))
        if (answers["strategy"] == "deepspeed") != (answers["deepspeed_stage"] is not None):
            continue  # the stage is asked for deepspeed, and only for it
        if not rules.check(answers):
            combos.append(answers)
    return tuple(combos)


# The answers that decide how the loop runs: the slow set adds combinations so
# that every hardware x strategy x precision triple runs its tests.
ENGINE = ("hardware", "strategy", "deepspeed_stage", "precision")


# The ZeRO stage changes only the strategy's internals: it is paired with the
# answers that reach them (precision and the process counts), not with the
# task, logger or callbacks, which strategy=deepspeed is paired with already.
STAGE_PAIRS = {"hardware", "devices", "num_nodes", "strategy", "precision"}


def pairs_of(answers: dict) -> Iterator[tuple]:
    """The pairs of answers a combination covers."""
    items = sorted((k, answers[k]) for k in VARIED)
    for pair in itertools.combinations(items, 2):
        names = {pair[0][0], pair[1][0]}
        if "deepspeed_stage" not in names or names - {"deepspeed_stage"} <= STAGE_PAIRS:
            yield pair


def triple_of(answers: dict) -> tuple:
    """The engine triple (hardware, strategy, stage, precision) a combination covers."""
    return tuple((k, answers[k]) for k in ENGINE)


# The strategies whose projects run two processes under torchrun. Their own
# suites are the longest (two-process launches, DeepSpeed's engine, FSDP's
# shards: 280 to 560 s each in the CI run at 47ca2f9, half its work), so they
# run under -m slow, with the pairs. In the default run tests/test_distributed.py
# proves DDP (resume, ranks, two nodes, plain loaders) and FSDP (shards, resume,
# export) for real under torchrun; DeepSpeed (whose CPU op build alone takes
# 150 s of a CI run) runs with the slow set only.
TORCHRUN = ("ddp", "fsdp", "deepspeed")


def each_value() -> list[dict]:
    """A few valid one-process combinations, the cheapest first, holding every value
    of every answer that one process can hold.

    Every task, hardware, process count (on XLA), precision, logger, callback
    set and config system appears at least once: what the default run installs
    each into its own venv and tests. The torchrun strategies (:data:`TORCHRUN`)
    and the ZeRO stages are left to tests/test_distributed.py and the slow set.
    """
    candidates = [
        combo
        for combo in sorted(all_valid(), key=expected_seconds)  # ties go to the cheapest
        if combo["strategy"] not in TORCHRUN
    ]

    def values(combo: dict) -> set:
        return {(k, _key(combo[k])) for k in VARIED}

    return irredundant(cover(candidates, values), values)


def irredundant(chosen: list[dict], covers) -> list[dict]:
    """``chosen`` less each combination whose share the others hold too, first picks first.

    A greedy cover's first pick covers the most when it is picked; the later
    ones can cover all of it again (at 25477fa the default set's first suite,
    image classification at 32-true on one CPU, added no value the other seven
    lacked, and cost 87 s of a CI run).
    """
    kept = list(chosen)
    for combo in chosen:
        rest = [other for other in kept if other is not combo]
        if rest and covers(combo) <= set().union(*map(covers, rest)):
            kept = rest
    return kept


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def pairwise() -> list[dict]:
    """A small set of valid combinations covering every valid pair of answers."""
    return [dict(combo) for combo in _pairwise()]


@functools.cache
def _pairwise() -> tuple[dict, ...]:
    return tuple(cover(list(_all_valid()), lambda combo: set(pairs_of(combo))))


def engine_triples() -> list[dict]:
    """Combinations that, with :func:`pairwise`'s, cover every valid engine triple too."""
    candidates = all_valid()
    covered = {triple_of(combo) for combo in pairwise()}
    return cover(candidates, lambda combo: {triple_of(combo)} - covered)


def cover(candidates: list[dict], covers) -> list[dict]:
    """Greedy set cover: the candidate covering the most of what is left, until nothing is."""
    covered_by = [covers(combo) for combo in candidates]  # once each: there are thousands
    uncovered = set().union(*covered_by)
    chosen = []
    while uncovered:
        best = max(range(len(candidates)), key=lambda i: len(uncovered & covered_by[i]))
        chosen.append(candidates[best])
        uncovered -= covered_by[best]
    return chosen


# Seconds a suite takes alone on CI's 2-core machine, by what it holds (fitted
# to ten suites measured there, 2026-11-30, within about 15%): a base, each
# callback set's tests, the torchrun strategies' two-process tests (DeepSpeed
# also its engine set-up and, once per run, the build of its CPU collective
# op), Hydra's composition, each logger's start-up in every process that trains
# (MLflow's database the slowest), and true half precision, which a CPU runs
# slowly, convolutions most.
_SUITE = 60
_CALLBACKS = 40
_STRATEGY = {"ddp": 70, "fsdp": 120, "deepspeed": 170}
_HYDRA = 30
_LOGGER = {"csv": 5, "tensorboard": 15, "wandb": 20, "mlflow": 70}
_TRUE_HALF = {"image_classification": 60, "autoencoder": 60}


def expected_seconds(answers: dict) -> int:
    """A rough cost in seconds of a combination's own suite in a CI run, where the
    other worker is busy too (for the test order and the choice of the default set)."""
    seconds = _SUITE + _STRATEGY.get(answers["strategy"], 0)
    seconds += _CALLBACKS if answers["callbacks"] else 0
    seconds += _HYDRA if answers.get("config") == "hydra" else 0
    loggers = answers["logger"]
    loggers = [loggers] if isinstance(loggers, str) else list(loggers or ())
    seconds += sum(_LOGGER[name] for name in loggers)
    if answers["precision"] in ("16-true", "bf16-true"):
        seconds += _TRUE_HALF.get(answers["task"], 10)
    return seconds * 3 // 2  # alone -> beside another suite


def label(answers: dict) -> str:
    """A short test id."""
    names = {(): "no-callbacks", CALLBACK_SETS[2]: "all-callbacks", CALLBACK_SETS[3]: "no-swa"}
    loggers = tuple(answers["logger"])
    logger = {(): "no-logger", LOGGER_SETS[-1]: "all-loggers"}.get(loggers, "+".join(loggers))
    shown = [k for k in VARIED if k not in ("callbacks", "config") and answers[k] is not None]
    parts = [logger if k == "logger" else str(answers[k]) for k in shown]
    parts.append(names.get(tuple(answers["callbacks"]), "default-callbacks"))
    return "-".join([*parts, *(["hydra"] if answers.get("config") == "hydra" else [])])
