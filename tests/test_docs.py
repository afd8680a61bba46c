"""The docs agree with copier.yml and with the README's own commands."""

from __future__ import annotations

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
    import re

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
