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
from pathlib import Path

from scaffold import destination
from scaffold import template as bundled

README = """\
# {name}: a scaffold template

Made with `scaffold template init` from scaffold {version}'s bundled template.

- `copier.yml`: the questions (add yours; every question needs `help` and a default)
- `project/`: what is rendered (copier's `_subdirectory`)
- `tasks/`: the model, module and data of each task
- `tests/test_template.py`: renders the template and runs the generated project's tests

## Use it

```bash
python -m pytest tests                      # the template renders and its project passes
git tag v0.1.0                              # a version: updates move between tags
scaffold new my-exp --template {path}
```

Projects made from it update like any scaffold project (`scaffold update`
moves them to the newest tag; `--vcs-ref` picks another). Share it from a git
server and name it in `~/.config/scaffold/templates.toml`:

```toml
[templates.{name}]
src = "https://git.example.com/team/{name}.git"
```
"""

TEST = '''\
"""The template renders, and the project it renders passes its own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]


def test_renders_and_the_project_tests_pass(tmp_path: Path) -> None:
    # Render a copy outside git: the working tree, not the newest tag.
    copy = tmp_path / "template"
    shutil.copytree(TEMPLATE, copy, ignore=_outside_the_template)
    project = tmp_path / "my-exp"
    subprocess.run(
        [sys.executable, "-m", "scaffold", "new", str(project), "--template", str(copy)]
        + ["--defaults", "--no-git"],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(WANDB_MODE="offline", PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _outside_the_template(folder: str, names: list[str]) -> list[str]:
    """This repository's own files (git, these tests), not the template's."""
    top = Path(folder) == TEMPLATE
    return [n for n in names if n == "__pycache__" or (top and n in (".git", "tests"))]
'''

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
        readme = README.format(name=dest.name, version=version, path=dest)
        (stage.target / "README.md").write_text(readme)
        (stage.target / "tests").mkdir()
        (stage.target / "tests" / "test_template.py").write_text(TEST)
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
