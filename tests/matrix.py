"""The answer combinations the render tests cover, derived from copier.yml and the rules."""

from __future__ import annotations

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
    "precision",
    "logger",
    "callbacks",
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


def _values(name: str) -> list:
    if name == "callbacks":
        return CALLBACK_SETS
    question = questions(bundled_template())[name]
    return question.values or COUNTS[name]


def as_answers(combo: dict) -> dict:
    """The combination as scaffold answers (callbacks, when given, as a list)."""
    if "callbacks" not in combo:
        return combo
    return {**combo, "callbacks": list(combo["callbacks"])}


def all_valid() -> list[dict]:
    """Every combination this release renders."""
    combos = []
    for values in itertools.product(*(_values(name) for name in VARIED)):
        answers = dict(zip(VARIED, values, strict=True))
        if not rules.check(answers):
            combos.append(answers)
    return combos


# The answers that decide how the loop runs: every valid triple of them is
# covered, not just every pair (hardware x strategy x precision).
ENGINE = ("hardware", "strategy", "precision")


def _pairs(answers: dict) -> Iterator[tuple]:
    items = sorted((k, answers[k]) for k in VARIED)
    yield from itertools.combinations(items, 2)
    yield tuple((k, answers[k]) for k in ENGINE)


def pairwise() -> list[dict]:
    """A small set of valid combinations covering every valid pair of answers.

    And every valid hardware x strategy x precision triple.
    """
    candidates = all_valid()
    uncovered = {pair for combo in candidates for pair in _pairs(combo)}
    chosen = []
    while uncovered:
        best = max(candidates, key=lambda c: len(uncovered.intersection(_pairs(c))))
        chosen.append(best)
        uncovered.difference_update(_pairs(best))
    return chosen


def label(answers: dict) -> str:
    """A short test id."""
    names = {(): "no-callbacks", CALLBACK_SETS[2]: "all-callbacks", CALLBACK_SETS[3]: "no-swa"}
    parts = [str(answers[k]) for k in VARIED[:-1]]
    return "-".join([*parts, names.get(tuple(answers["callbacks"]), "default-callbacks")])
