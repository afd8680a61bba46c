"""What the template renders, file by file, for every hardware x strategy x stage x precision.

Moving template code around (one file per variant, shared includes) must not
change what users get. ``tests/test_render_snapshot.py`` renders one project
per engine combination and compares the SHA-256 of every file with
``tests/snapshots/renders.json``. A change that is meant to alter the rendered
code updates the snapshot in the same commit, and the diff of that JSON is the
record of what changed, and where:

    python tests/render_snapshot.py          # rewrite tests/snapshots/renders.json
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from matrix import all_valid, as_answers, cover, label, triple_of  # noqa: E402

from scaffold.new import create  # noqa: E402

SNAPSHOT = HERE / "snapshots" / "renders.json"
# Holds the template's path and commit: it differs between clones, not between renders.
UNTRACKED = {".copier-answers.yml"}


def combinations() -> list[dict]:
    """One valid combination per engine triple (hardware, strategy, ZeRO stage, precision)."""
    return cover(all_valid(), lambda combo: {triple_of(combo)})


def digests(answers: dict) -> dict[str, str]:
    """Render ``answers`` into a temporary folder; the SHA-256 of each file, by path."""
    with tempfile.TemporaryDirectory() as tmp:
        project = create(
            Path(tmp) / "exp", data=as_answers(answers), defaults=True, use_git=False
        ).path
        return {
            path.relative_to(project).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(project.rglob("*"))
            if path.is_file() and path.name not in UNTRACKED
        }


def render_all(workers: int = 2) -> dict[str, dict[str, str]]:
    """Every combination's digests, by its label."""
    combos = combinations()
    with ProcessPoolExecutor(workers) as pool:
        return dict(zip(map(label, combos), pool.map(digests, combos), strict=True))


def differences(expected: dict[str, str], found: dict[str, str]) -> list[str]:
    """What changed between two renders of one combination, one line per file."""
    lines = [f"added {name}" for name in sorted(found.keys() - expected.keys())]
    lines += [f"removed {name}" for name in sorted(expected.keys() - found.keys())]
    lines += [
        f"changed {name}"
        for name in sorted(expected.keys() & found.keys())
        if expected[name] != found[name]
    ]
    return lines


if __name__ == "__main__":
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(render_all(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
