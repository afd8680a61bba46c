"""The rendered tree of every engine combination is the recorded one (see render_snapshot.py)."""

from __future__ import annotations

import json

import jinja2
from conftest import ROOT
from render_snapshot import SNAPSHOT, combinations, differences, render_all

from scaffold import rules


def test_the_snapshot_holds_one_valid_render_per_engine_combination() -> None:
    recorded = json.loads(SNAPSHOT.read_text())
    combos = combinations()
    assert len(recorded) == len(combos) >= 40
    assert all(not rules.check(combo) for combo in combos)


def test_the_loop_is_the_same_file_for_every_engine_combination() -> None:
    # The loop never names a strategy or a precision: they are behind their interfaces.
    recorded = json.loads(SNAPSHOT.read_text())
    loops = {files["src/exp/engine/trainer.py"] for files in recorded.values()}
    assert len(loops) == 1


def test_every_engine_combination_renders_the_recorded_files() -> None:
    recorded = json.loads(SNAPSHOT.read_text())
    rendered = render_all()
    assert rendered.keys() == recorded.keys()
    changed = {
        name: lines for name in recorded if (lines := differences(recorded[name], rendered[name]))
    }
    assert not changed, (
        "the rendered projects differ from tests/snapshots/renders.json; if the change is "
        "meant, run `python tests/render_snapshot.py` and commit the JSON with it:\n"
        + "\n".join(f"{name}: {', '.join(lines)}" for name, lines in changed.items())
    )


# Issue 12's limits for the bundled template's files: none may break them.
MAX_LINES, MAX_TAG_LINES = 500, 20


def test_template_files_stay_short_with_few_tags() -> None:
    template = ROOT / "templates" / "default"
    over = set()
    for path in template.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".jinja") and ".py" in path.name:
            text = path.read_text().splitlines()
            tags = sum(1 for line in text if "{%" in line or "{#" in line)
            if len(text) > MAX_LINES or tags > MAX_TAG_LINES:
                over.add(path.relative_to(template).as_posix())
    assert not over, f"over {MAX_LINES} lines or {MAX_TAG_LINES} tag lines: {sorted(over)}"


def test_templates_compiled_once_still_follow_each_environments_syntax() -> None:
    # conftest compiles each template string once per process (copier's renders
    # are most of the suite's time): a string shared by two syntaxes must still
    # render by each one's own delimiters.
    source = "<< x >> {{ x }}"
    plain = jinja2.Environment()
    angled = jinja2.Environment(variable_start_string="<<", variable_end_string=">>")
    for _ in range(2):  # the second time from the cache
        assert plain.from_string(source).render(x=1) == "<< x >> 1"
        assert angled.from_string(source).render(x=1) == "1 {{ x }}"
