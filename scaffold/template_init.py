"""``scaffold template init``: start a team template from the bundled one.

The result is a git repository holding the bundled template's copier.yml,
``project/`` and ``tasks/``, plus a test that renders the template and runs the
generated project's own tests. It keeps loading scaffold's own Jinja extension
(the rules table), which scaffold trusts without ``--trust``: the extension is
scaffold's code, not the template's. Tasks, migrations or other extensions a
team adds do need trust (``--trust``, or ``trusted = true`` in templates.toml).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from scaffold import destination
from scaffold import template as bundled

# What ``init`` adds beside the copied template, kept as real files in the
# package (``team_template/`` mirrors where they land) so ruff lints the test
# with this repository's settings and the wheel ships both: hatchling packs
# every file under scaffold/. README.md holds ``{name}``, ``{version}`` and
# ``{path}`` fields for ``str.format``.
EXTRAS = resources.files("scaffold") / "team_template"
README = EXTRAS / "README.md"
TEST = EXTRAS / "tests" / "test_template.py"

GITIGNORE = "__pycache__/\n*.py[co]\n.pytest_cache/\n.ruff_cache/\n"


@dataclass(frozen=True)
class Initialized:
    """What ``template init`` made."""

    path: Path
    commit: str
    next_steps: list[str]


def init(dest: Path) -> Initialized:
    """Copy the bundled template into ``dest``, add a test and a README, and commit.

    Raises:
        DestinationError: ``dest`` exists and is not an empty folder (or a fresh
            ``git init``), or can't be created; nothing is written then.
    """
    where = destination.check(dest)
    dest = where.path
    source = bundled.bundled_template()
    version = bundled.bundled_version()
    with destination.staged(where) as stage:
        shutil.copytree(
            source, stage.target, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]")
        )
        readme = README.read_text(encoding="utf-8")
        filled = readme.format(name=dest.name, version=version, path=dest)
        (stage.target / "README.md").write_text(filled, encoding="utf-8")
        (stage.target / "tests").mkdir()
        (stage.target / "tests" / "test_template.py").write_bytes(TEST.read_bytes())
        (stage.target / ".gitignore").write_text(GITIGNORE)
        commit = stage.install(f"Start {dest.name} from scaffold {version}'s bundled template")
    return Initialized(
        dest,
        commit,
        [
            f"cd {dest}",
            "edit copier.yml and project/, then: python -m pytest tests",
            "git commit -am 'Our defaults' && git tag v0.1.0",
            f"scaffold new my-exp --template {dest}",
        ],
    )
