"""Helpers for update and team-template tests: real git, template copies, repo state."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT

from scaffold import template as bundled
from scaffold.cli import main

TEMPLATE = ROOT / "templates" / "default"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}
RNG = "src/{{package_name}}/engine/rng.py"
SAMPLING = "src/{{package_name}}/engine/sampling.py"


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch) -> None:
    """A git identity, and no registry but the one a test writes."""
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.delenv("SCAFFOLD_CONFIG", raising=False)


def invoke(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def git(path: Path, *args: str, check: bool = True) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=check
    ).stdout


def commit_all(path: Path, message: str = "my changes") -> None:
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)


def answers(path: Path) -> dict:
    return yaml.safe_load((path / ".copier-answers.yml").read_text())


def state(path: Path) -> dict:
    """HEAD, branch, index, status and every file's bytes outside .git: the repo's whole state."""
    files = {
        str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(path.rglob("*"))
        if ".git" not in p.relative_to(path).parts and not p.is_fifo()
    }
    return {
        "head": git(path, "rev-parse", "HEAD"),
        "branch": git(path, "symbolic-ref", "HEAD", check=False),
        "refs": git(path, "for-each-ref"),
        "index": git(path, "ls-files", "--stage"),
        "status": git(path, "status", "--porcelain", "--ignored"),
        "files": files,
    }


def template_copy(dest: Path) -> Path:
    """A copy of the bundled template, to change like a new release would."""
    shutil.copytree(TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def next_release(dest: Path) -> Path:
    """The bundled template as a next release might change it.

    An edited file (engine/rng.py's docstring), a file renamed and edited
    (engine/sampling.py -> engine/samplers.py), and a new question ``seed`` with
    a file that uses it.
    """
    template_copy(dest)
    project = dest / "project"
    rng = project / RNG
    rng.write_text(
        rng.read_text().replace("Seeds and random-generator state", "Seeds and RNG state")
    )
    sampling = project / SAMPLING
    text = sampling.read_text().replace("A sampler whose order", "A resumable sampler whose order")
    sampling.with_name("samplers.py").write_text(text)
    sampling.unlink()
    with (dest / "copier.yml").open("a") as config:
        config.write("\nseed:\n  type: int\n  help: The random seed\n  default: 42\n")
    (project / "configs" / "seed.yaml.jinja").write_text("seed: {{ seed }}\n")
    return dest


def use_bundled(monkeypatch, path: Path, version: str) -> None:
    """Make ``path`` scaffold's bundled template at ``version`` (as `pip install -U` would)."""
    monkeypatch.setattr(bundled, "bundled_template", lambda: path)
    monkeypatch.setattr(bundled, "bundled_version", lambda: version)


def template_repo(dest: Path) -> Path:
    """A team template in git: v1.0.0 (the bundled one), v1.1.0 (rng.py edited), then main."""
    template_copy(dest)
    git(dest, "-c", "init.defaultBranch=main", "init", "-q")
    commit_all(dest, "v1")
    git(dest, "tag", "v1.0.0")
    rng = dest / "project" / RNG
    rng.write_text(rng.read_text().replace("Seeds and random-generator state", "Seeds (v1.1)"))
    commit_all(dest, "v1.1")
    git(dest, "tag", "v1.1.0")
    git(dest, "tag", "v2.0.0rc1")  # a pre-release: never picked by default
    rng.write_text(rng.read_text().replace("Seeds (v1.1)", "Seeds (main)"))
    commit_all(dest, "unreleased")
    return dest
