"""Team templates: the registry, trust, path safety, `template init`, and their updates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, project_env, ruff
from gitrepo import (
    answers,
    commit_all,
    git,
    invoke,
    isolated,  # noqa: F401 (autouse)
    template_copy,
    template_repo,
)

from scaffold import __version__
from scaffold.sources import parse

# What `template init` adds beside the copied template, as shipped in the package.
EXTRAS = ROOT / "scaffold" / "team_template"

SOURCES = [
    ("https://git.example.com/team/tpl.git", "https://git.example.com/team/tpl.git", None),
    ("https://git.example.com/team/tpl.git@v2", "https://git.example.com/team/tpl.git", "v2"),
    ("git@git.example.com:team/tpl.git", "git@git.example.com:team/tpl.git", None),
    ("git@git.example.com:team/tpl.git@feature/x", "git@git.example.com:team/tpl.git", "feature/x"),
    ("ssh://git@git.example.com/team/tpl.git", "ssh://git@git.example.com/team/tpl.git", None),
    ("gh:team/tpl@v1.0.0", "https://github.com/team/tpl.git", "v1.0.0"),
]


@pytest.mark.parametrize(("text", "source", "ref"), SOURCES)
def test_git_urls_and_refs(text, source, ref) -> None:
    spec = parse(text)
    assert (spec.kind, spec.source, spec.ref) == ("git", source, ref)


def write_registry(text: str) -> Path:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "scaffold" / "templates.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return template_repo(tmp_path_factory.mktemp("team") / "vision-template")


def test_registry_names_a_template_and_lists_its_version(repo, tmp_path) -> None:
    write_registry(f'[templates.vision]\nsrc = "{repo}"\ndescription = "team"\n')
    result = invoke("new", tmp_path / "p", "--defaults", "--template", "vision")
    assert result.exit_code == 0, result.output
    recorded = answers(tmp_path / "p")
    assert (recorded["_src_path"], recorded["_commit"]) == (str(repo), "v1.1.0")

    listed = invoke("templates")
    assert listed.exit_code == 0, listed.output
    rows = [line.split() for line in listed.output.splitlines()]
    assert ["default", __version__, "bundled", "with", "scaffold"] in rows
    assert ["vision", "v1.1.0", str(repo)] in rows


def test_team_config_overrides_the_user_file(repo, tmp_path, monkeypatch) -> None:
    write_registry('[templates.vision]\nsrc = "/nowhere"\n')
    team = tmp_path / "team-config" / "scaffold.toml"
    team.parent.mkdir()
    relative = os.path.relpath(repo, team.parent)  # relative to the file that names it
    team.write_text(f'[templates.vision]\nsrc = "{relative}"\nref = "v1.0.0"\n')
    monkeypatch.setenv("SCAFFOLD_CONFIG", str(team))
    result = invoke("new", tmp_path / "p", "--defaults", "--template", "vision")
    assert result.exit_code == 0, result.output
    assert answers(tmp_path / "p")["_commit"] == "v1.0.0"
    assert answers(tmp_path / "p")["_src_path"] == str(repo)


def test_unknown_name_and_bad_config_are_clear_errors(tmp_path) -> None:
    write_registry('[templates.vision]\nsrc = "/srv/vision"\n')
    result = invoke("new", tmp_path / "p", "--defaults", "--template", "visoin")
    assert result.exit_code == 1 and "no template 'visoin'" in result.output
    assert "(names: vision)" in result.output
    write_registry("[templates.vision\n")
    result = invoke("new", tmp_path / "p", "--defaults", "--template", "vision")
    assert result.exit_code == 1 and "is not valid TOML" in result.output
    assert not (tmp_path / "p").exists()


# Trust: tasks, migrations and foreign Jinja extensions run code.


def with_settings(tmp_path: Path, settings: str) -> Path:
    folder = template_copy(tmp_path / "tpl")
    with (folder / "copier.yml").open("a") as config:
        config.write("\n" + settings)
    return folder


def test_tasks_need_trust(tmp_path) -> None:
    folder = with_settings(tmp_path, '_tasks:\n  - "touch task-ran"\n')
    result = invoke("new", tmp_path / "p", "--defaults", "--template", folder)
    assert result.exit_code == 1
    assert "uses tasks" in result.output and "pass --trust" in result.output
    assert not (tmp_path / "p").exists()

    result = invoke("new", tmp_path / "p", "--defaults", "--template", folder, "--trust")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "task-ran").is_file()

    write_registry(f'trusted = ["{folder}"]\n')
    result = invoke("new", tmp_path / "q", "--defaults", "--template", folder)
    assert result.exit_code == 0, result.output


def test_foreign_jinja_extensions_need_trust(tmp_path) -> None:
    folder = template_copy(tmp_path / "tpl")
    config = folder / "copier.yml"
    config.write_text(
        config.read_text().replace(
            "_jinja_extensions:\n", "_jinja_extensions:\n  - jinja2.ext.do\n"
        )
    )  # noqa: E501
    result = invoke("new", tmp_path / "p", "--defaults", "--template", folder)
    assert result.exit_code == 1 and "Jinja extensions (jinja2.ext.do)" in result.output


def test_paths_escaping_the_project_are_refused(tmp_path) -> None:
    folder = template_copy(tmp_path / "tpl")
    escape = folder / "project" / "{{ '..' }}"
    escape.mkdir()
    (escape / "escaped.txt").write_text("out\n")
    result = invoke("new", tmp_path / "out" / "p", "--defaults", "--template", folder)
    assert result.exit_code == 1 and "outside the project" in result.output
    assert not (tmp_path / "out").exists()

    subdir = with_settings(tmp_path / "other", "")
    config = subdir / "copier.yml"
    config.write_text(config.read_text().replace("_subdirectory: project", "_subdirectory: ../x"))
    result = invoke("new", tmp_path / "p", "--defaults", "--template", subdir)
    assert result.exit_code == 1 and "'..'" in result.output


# `scaffold template init` and a team template's own evolution.


def test_template_init_makes_a_repo_that_renders_and_updates(tmp_path) -> None:
    team = tmp_path / "team-template"
    result = invoke("template", "init", team)
    assert result.exit_code == 0, result.output
    assert git(team, "status", "--porcelain") == ""
    assert len(git(team, "log", "--format=%H").split()) == 1
    for name in ("copier.yml", "project", "tasks", "tests/test_template.py", "README.md"):
        assert (team / name).exists(), name
    git(team, "tag", "v0.1.0")

    # The template keeps scaffold's own Jinja extension: no --trust needed.
    project = tmp_path / "my-exp"
    result = invoke("new", project, "--defaults", "--template", team)
    assert result.exit_code == 0, result.output
    assert answers(project)["_commit"] == "v0.1.0"
    module = project / "src/my_exp/module.py"
    module.write_text(module.read_text() + "\n# mine\n")
    commit_all(project)

    # The team adds a question, a file and a new default, and tags a release.
    with (team / "copier.yml").open("a") as config:
        config.write("\ncluster:\n  type: str\n  help: The cluster\n  default: a100\n")
    (team / "project" / "scripts").mkdir()
    (team / "project" / "scripts" / "launch.sh.jinja").write_text("echo {{ cluster }}\n")
    config = team / "copier.yml"
    config.write_text(config.read_text().replace("default: [tensorboard]", "default: [csv]"))
    commit_all(team, "cluster question")
    git(team, "tag", "v0.2.0")

    assert invoke("check", project).exit_code == 1
    result = invoke("update", project)
    assert result.exit_code == 0, result.output
    assert (project / "scripts/launch.sh").read_text() == "echo a100\n"
    recorded = answers(project)
    assert recorded["cluster"] == "a100" and recorded["_commit"] == "v0.2.0"
    assert recorded["logger"] == ["tensorboard"]  # an answer given stays; defaults are for new ones
    assert module.read_text().endswith("# mine\n")
    assert git(project, "status", "--porcelain") == ""


# The team template's test renders the default project and runs its whole
# suite (two minutes of CPU): the render suites run projects' suites in the
# default run, so this one runs by hand with the slow set (-m slow).
@pytest.mark.slow
def test_template_init_test_passes(tmp_path) -> None:
    team = tmp_path / "team-template"
    assert invoke("template", "init", team).exit_code == 0
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=team,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_init_writes_the_packaged_readme_and_test(tmp_path) -> None:
    team = tmp_path / "team-template"
    assert invoke("template", "init", team).exit_code == 0
    test = "tests/test_template.py"
    assert (team / test).read_bytes() == (EXTRAS / test).read_bytes()
    readme = (team / "README.md").read_text()
    assert readme.startswith("# team-template: a scaffold template\n")
    assert f"scaffold {__version__}'s bundled template" in readme
    assert f"scaffold new my-exp --template {team}\n" in readme
    assert "[templates.team-template]" in readme and "{" not in readme


def test_template_init_files_are_linted_with_scaffolds_own_code() -> None:
    # `ruff check .` in this repository sees the shipped test (not excluded) ...
    listed = ruff(ROOT, "check", "--show-files", ".").stdout.splitlines()
    assert str(EXTRAS / "tests" / "test_template.py") in listed
    # ... and it is clean under this repository's settings.
    for args in (["format", "--check"], ["check"]):
        done = ruff(ROOT, *args, str(EXTRAS))
        assert done.returncode == 0, done.stdout + done.stderr


def test_template_init_refuses_a_non_empty_folder(tmp_path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "mine.txt").write_text("mine")
    result = invoke("template", "init", tmp_path / "t")
    assert result.exit_code == 1 and "not empty" in result.output
    assert [p.name for p in (tmp_path / "t").iterdir()] == ["mine.txt"]
