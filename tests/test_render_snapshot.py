"""The rendered tree of every engine combination is the recorded one (see render_snapshot.py)."""

from __future__ import annotations

import json

from render_snapshot import SNAPSHOT, combinations, differences, render_all

from scaffold import rules


def test_the_snapshot_holds_one_valid_render_per_engine_combination() -> None:
    recorded = json.loads(SNAPSHOT.read_text())
    combos = combinations()
    assert len(recorded) == len(combos) >= 40
    assert all(not rules.check(combo) for combo in combos)


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
