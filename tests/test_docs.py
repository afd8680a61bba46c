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
