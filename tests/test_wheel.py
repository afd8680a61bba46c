"""The bundled template ships inside the wheel, and the installed scaffold uses it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import yaml
from conftest import ROOT


def test_wheel_contains_the_template_and_works_from_a_fresh_venv(tmp_path: Path) -> None:
    subprocess.run(
        # No build isolation: hatchling comes from the dev environment, not the network.
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    # The distribution is scaffold-dl (the name scaffold on PyPI is another project's).
    (wheel,) = tmp_path.glob("scaffold_dl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "scaffold/templates/default/copier.yml" in names
    assert any(n.startswith("scaffold/templates/default/project/src/") for n in names)
    assert not any("__pycache__" in n for n in names)
    # What `template init` adds beside the template: real files of the package.
    extras = ["scaffold/team_template/README.md", "scaffold/team_template/tests/test_template.py"]
    assert set(extras) <= set(names)

    # A fresh venv that sees this environment's packages (click, copier, ...)
    # only through a .pth file, so the wheel's own scaffold is the one imported.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    # Without PYTHONPATH: one naming a checkout (a worktree's) would shadow the wheel.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        env=clean,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = subprocess.run(
        [
            sys.executable,
            "-c",
            "import copier, os; print(os.path.dirname(os.path.dirname(copier.__file__)))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "dev-deps.pth").write_text(deps + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        env=clean,
        check=True,
        capture_output=True,
    )
    where = subprocess.run(
        [str(python), "-c", "import scaffold; print(scaffold.__file__)"],
        env=clean,
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(site), where

    made = subprocess.run(
        [str(env_dir / "bin" / "scaffold"), "new", "exp", "--defaults"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    answers = yaml.safe_load((tmp_path / "exp" / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == "scaffold:default"
    assert (tmp_path / "exp" / "src" / "exp" / "engine" / "trainer.py").is_file()

    # Updates work from the wheel too: the base render is in the project's history.
    for args in (["check"], ["update", "-d", "logger=csv"]):
        done = subprocess.run(
            [str(env_dir / "bin" / "scaffold"), *args],
            cwd=tmp_path / "exp",
            capture_output=True,
            text=True,
            env=clean,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "csv" in (tmp_path / "exp" / ".copier-answers.yml").read_text()

    # `template init` writes the README and the test that the wheel ships.
    team = tmp_path / "team"
    made = subprocess.run(
        [str(env_dir / "bin" / "scaffold"), "template", "init", str(team)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    shipped = ROOT / "scaffold" / "team_template"
    test = "tests/test_template.py"
    assert (team / test).read_bytes() == (shipped / test).read_bytes()
    assert (team / "README.md").read_text().startswith("# team: a scaffold template\n")


# The name `scaffold` on PyPI is another project's: "scaffold" not followed by "-dl".
UNRELATED = re.compile(r"pypi\.org/project/scaffold\b(?!-)|pip install (-U )?scaffold\b(?!-)")


def test_nothing_points_at_the_unrelated_pypi_project() -> None:
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    files += [*(ROOT / "scaffold").rglob("*.py"), *(ROOT / "templates").rglob("*")]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            found = UNRELATED.search(path.read_text(errors="replace"))
            assert found is None, (path, found and found.group())
