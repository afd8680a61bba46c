"""Property-based tests (hypothesis) of `scaffold new` and `scaffold template init`.

Random destinations (`..` chains, `~`, unicode, spaces, long names, symlinks
including dangling ones, absolute paths) and random `-d` answers. Whatever the
input, the outcome is either a project that is ruff-clean as rendered, or a
clean error (non-zero exit, one `Error:` line, no traceback); and every file
that existed before is byte-for-byte as it was.

Safety: these tests were written against a scaffold whose clean-up emptied the
folder it ran in. Each case runs scaffold in a subprocess whose cwd and HOME are
inside a fresh sandbox several levels deep (tests/sandbox.py), absolute paths
are generated only under the sandbox, and a path is used only when every prefix
of it, read lexically and by the kernel, stays in the sandbox (`..` chains are
capped that way).

Seeded (``derandomize=True``) and bounded: the same examples on every run,
under a minute on one idle core. Shrinking is off to keep a failing run short; the
failing example is printed as generated (add ``Phase.shrink`` to minimise it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, Phase, assume, event, example, given, settings
from hypothesis import strategies as st
from sandbox import Sandbox, changes, inside, make_sandbox, no_such_user, snapshot, split

from scaffold.template import bundled_template, questions

SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=120),
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Names that exist in the sandbox's working folder (tests/sandbox.py), and
# some that are hard for other reasons.
EXISTING = ["keep", "empty", "sentinel.txt", "README.md", "tests", "deep", "up", "to-empty"]
EXISTING += ["dangling"]
HARD = ["proj", "my-exp", "My Exp", "new folder", "é-exp", "ü", "-", ".hidden", "x" * 255]
HARD += ["y" * 256, "ö" * 128, "日本語", "a\tb", "--help"]
# Folder names a project can take (ASCII, starting and ending with a letter or
# digit), so that some cases get as far as rendering.
PLAIN = st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?", fullmatch=True)
UNICODE = st.text(st.characters(codec="utf-8", exclude_characters="/\0"), min_size=1, max_size=12)
name = st.one_of(st.sampled_from(EXISTING), st.sampled_from(HARD), PLAIN, PLAIN, UNICODE)
NOT_USERS = [user for user in ("nosuchuser", "x", "scaffold-nobody") if no_such_user(user)]
# Symlinks followed by `..` (the kernel and a lexical reading disagree), a
# folder that doesn't exist followed by `..`, and symlinks as the destination.
TRAPS = ["deep/..", "up/../..", "typo/..", "keep/x/y/../..", "dangling", "to-empty", "up/up"]
component = st.one_of(st.just(".."), st.just("."), st.sampled_from(TRAPS), name, name)
STARTS = ["", "", "", "", "", "~/", "~", "/", "/", "~user/"]
NOT_USERS = [user for user in ("nosuchuser", "x", "scaffold-nobody") if no_such_user(user)]


@st.composite
def destinations(draw: st.DrawFn) -> tuple[str, list[str]]:
    """``(start, components)``: start is "" (relative), "~", "~/", "~user/" or "/" (the sandbox)."""
    start = draw(st.sampled_from(STARTS))
    if start == "~user/":
        start = f"~{draw(st.sampled_from(NOT_USERS))}/"
    parts = draw(st.lists(component, min_size=0 if start == "~" else 1, max_size=5))
    return start, parts


def spell(start: str, parts: list[str], box: Sandbox) -> str:
    if start == "~":
        return "/".join(["~", *parts])
    if start == "/":
        return "/".join([str(box.root), *parts])
    return start + "/".join(parts)


# Answers: known questions with valid and invalid values, and unknown keys.
QUESTIONS = {n: q for n, q in questions(bundled_template()).items() if not q.computed}
VALUES = {n: [str(v) for v in q.values] for n, q in QUESTIONS.items()}
VALUES.update(
    project_name=["ok", "ok-exp", "my exp", "-bad", "x" * 41, ""],
    package_name=["ok", "class", "torch", "My-Exp", "_ok"],
    devices=["1", "2", "0", "-1", "two"],
    num_nodes=["1", "2", "0"],
    callbacks=["", "[]", "lr_monitor,swa", "[early_stopping, model_checkpoint]", "nope"],
)
KEYS = [*QUESTIONS, "tsk", "module_class", "project-name"]


@st.composite
def answers(draw: st.DrawFn) -> list[str]:
    pairs = []
    if draw(st.booleans()):
        pairs.append("project_name=ok")  # most folder names are not project names
    for key in draw(st.one_of(st.just([]), st.lists(st.sampled_from(KEYS), max_size=2))):
        choices = st.sampled_from(VALUES.get(key) or ["x"])
        value = draw(st.one_of(choices, choices, st.text(max_size=6)))
        pairs.append(f"{key}={value}")
    return [arg for pair in pairs for arg in ("-d", pair)]


def normalised(raw: str, box: Sandbox) -> Path:
    """Where the project must land: the lexically normalised absolute path."""
    found = split(raw, box)
    assert found is not None, f"{raw!r} can't have succeeded: no such user"
    base, parts = found
    return Path(os.path.normpath("/".join([base, *parts])))


def ruff_clean(folder: Path) -> None:
    for args in (["format", "--check", "."], ["check", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=folder, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def check_outcome(
    box: Sandbox, before: dict, raw: str, result: subprocess.CompletedProcess, made: str
) -> Path | None:
    """The destination when scaffold succeeded (and it holds ``made``), None after a clean error."""
    output = result.stdout + result.stderr
    lost, added = changes(before, snapshot(box.root))
    assert lost == [], (raw, lost, output)
    if result.returncode != 0:
        assert "Traceback" not in output, (raw, output)
        assert sum(line.startswith("Error:") for line in output.splitlines()) == 1, (raw, output)
        assert added == [], (raw, added, output)
        message = output.split("Error:", 1)[1].split(";")[0]
        event("clean error", re.sub(r"'.*'|\S*/\S*|=\S*", "…", message)[:50])
        return None
    dest = normalised(raw, box)
    assert (dest / made).is_file(), (raw, output)
    event("made")
    real = Path(os.path.realpath(dest))  # the snapshot sees paths through symlinks resolved
    for path in added:  # the project, and the folders made to hold it
        full = box.root / path
        assert full == real or real in full.parents or full in real.parents, (raw, path)
    return dest


def fresh_sandbox(tmp_path: Path) -> Sandbox:
    return make_sandbox(Path(tempfile.mkdtemp(dir=tmp_path)))


@settings(SETTINGS, max_examples=30)
@given(where=destinations(), data=answers(), no_git=st.sampled_from([True, True, True, False]))
@example(where=("", ["typo", "..", "proj"]), data=[], no_git=True)  # emptied the cwd
@example(where=("", ["n1", ".."]), data=["-d", "project_name=ok"], no_git=False)
@example(where=("", ["deep", "..", "p"]), data=["-d", "project_name=ok"], no_git=True)
@example(where=("", ["dangling"]), data=[], no_git=True)
def test_new_makes_a_clean_project_or_a_clean_error(tmp_path, where, data, no_git) -> None:
    box = fresh_sandbox(tmp_path)
    raw = spell(*where, box)
    assume(inside(raw, box))
    before = snapshot(box.root)
    args = ["new", "--defaults", *data, *(["--no-git"] if no_git else []), "--", raw]
    dest = check_outcome(box, before, raw, box.run(*args), ".copier-answers.yml")
    if dest is not None:
        ruff_clean(dest)


@settings(SETTINGS, max_examples=30)
@given(where=destinations())
@example(where=("", ["x", ".."]))  # replaced the cwd's README.md, or emptied the cwd
@example(where=("", ["typo", "..", "team"]))
def test_template_init_makes_a_template_or_a_clean_error(tmp_path, where) -> None:
    box = fresh_sandbox(tmp_path)
    raw = spell(*where, box)
    assume(inside(raw, box))
    before = snapshot(box.root)
    dest = check_outcome(box, before, raw, box.run("template", "init", "--", raw), "copier.yml")
    if dest is not None:
        ruff_clean(dest / "tests")
