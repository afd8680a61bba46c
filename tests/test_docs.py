"""The docs agree with copier.yml and with the README's own commands."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

from conftest import ROOT


def test_questions_page_is_generated_from_copier_yml() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_readme_opens_with_exactly_two_commands() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "readme_commands.py"), str(ROOT / "README.md")],
        capture_output=True,
        text=True,
        check=True,
    )
    first, second = result.stdout.splitlines()
    assert "scaffold new my-exp --defaults" in first and " fit " in first
    assert '".[dev]"' in second and "pytest" in second


def test_docs_link_to_pages_that_exist() -> None:
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(((?:docs/)?[\w.-]+\.md)\)", page.read_text()):
            base = ROOT if target.startswith("docs/") else page.parent
            assert (base / target).is_file(), (page.name, target)


def test_the_sweeps_page_shows_the_sweep_yaml_a_project_gets(tmp_path) -> None:
    from conftest import make_project

    project = make_project(tmp_path / "exp", task="tabular_regression").path
    rendered = (project / "configs" / "sweep.yaml").read_text().splitlines()
    settings = "\n".join(line for line in rendered if not line.startswith("#"))
    assert f"```yaml\n{settings}\n```" in (ROOT / "docs" / "sweeps.md").read_text()


def test_the_configuration_page_shows_what_a_hydra_project_gets(tmp_path) -> None:
    from conftest import make_project

    page = (ROOT / "docs" / "configuration.md").read_text()
    project = make_project(tmp_path / "my-exp", config="hydra").path
    configs = project / "configs"
    files = sorted(path.relative_to(configs).as_posix() for path in configs.rglob("*.yaml"))
    tree = page.split("```\nconfigs/\n")[1].split("```")[0]
    shown = [line.split()[0] for line in tree.splitlines()]
    assert sorted(shown) == files
    trainer = (project / "configs" / "trainer" / "default.yaml").read_text().splitlines()
    settings = "\n".join(line for line in trainer if not line.startswith("#"))
    assert f"```yaml\n{settings}\n```" in page


def test_the_configuration_pages_hydra_commands_are_valid_overrides() -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    page = (ROOT / "docs" / "configuration.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| ") and "`" in line]
    commands = [re.findall(r"`([^`]+)`", line.split(" | ")[2]) for line in rows[1:]]
    parser = OverridesParser.create()
    checked = 0
    for command in (c for found in commands for c in found):
        words = shlex.split(command)
        if words[0] == "torchrun":
            words = words[words.index("my_exp") + 1 :]
        assert words[0] in ("fit", "validate", "test", "predict", "export", "plot", "sweep"), (
            command
        )
        flags = {"--multirun", "--traceback", "--help", "--cfg", "job"}  # Hydra's and ours
        if "--config-dir" in words:  # Hydra's flag, and the folder it adds
            del words[words.index("--config-dir") : words.index("--config-dir") + 2]
        overrides = [word for word in words[1:] if word not in flags]
        parser.parse_overrides(overrides)  # raises on what Hydra's command line would refuse
        checked += 1
    assert checked >= 15
