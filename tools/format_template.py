"""Format the Python in ``*.py.jinja`` template files with ruff, keeping the Jinja.

A maintainer's helper, not part of scaffold: rendered code must be ruff-clean
as rendered (tests/test_render.py proves it), and this brings a template file
back to ruff's layout after an edit. Each ``{{ expr }}`` becomes a placeholder
of the same length, each line holding only a ``{% tag %}`` becomes a comment;
ruff formats the result; the Jinja goes back in.

    python tools/format_template.py templates/default/project/src/...py.jinja
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXPRESSION = re.compile(r"\{\{.*?\}\}")
TAG_LINE = re.compile(r"^\s*\{%.*%\}\s*$")


def format_file(path: Path, config: Path) -> bool:
    """Reformat ``path`` in place; True if it changed."""
    text = path.read_text()
    expressions: list[str] = []

    def hide(match: re.Match[str]) -> str:
        expressions.append(match.group(0))
        token = f"J{len(expressions) - 1}J"
        return token + "x" * max(len(match.group(0)) - len(token), 0)

    tags: list[str] = []
    source = EXPRESSION.sub(hide, text).splitlines()
    lines = []
    for index, line in enumerate(source):
        if not TAG_LINE.match(line):
            lines.append(line)
            continue
        # Indent the stand-in comment like the code it belongs to: closing
        # tags (else/elif/end...) like the code above, opening ones like below.
        closing = re.match(r"\s*\{%-?\s*(else|elif|end)", line)
        around = reversed(source[:index]) if closing else source[index + 1 :]
        code = next((c for c in around if c.strip() and not TAG_LINE.match(c)), "")
        indent = code[: len(code) - len(code.lstrip())]
        tags.append(line)
        lines.append(f"{indent}# TAG{len(tags) - 1}TAG")
    hidden = "\n".join(lines) + "\n"
    result = subprocess.run(
        ["ruff", "format", "--config", str(config), "--stdin-filename", path.stem, "-"],
        input=hidden,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = re.sub(r"^[ \t]*# TAG(\d+)TAG$", lambda m: tags[int(m.group(1))], result, flags=re.M)
    result = re.sub(r"J(\d+)Jx*", lambda m: expressions[int(m.group(1))], result)
    if result != text:
        path.write_text(result)
        return True
    return False


if __name__ == "__main__":
    config = Path(__file__).with_name("ruff-generated.toml")
    for name in sys.argv[1:]:
        if format_file(Path(name), config):
            print(f"reformatted {name}")
