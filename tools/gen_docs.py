"""Regenerate the docs' generated tables (questions, rules, engine size).

    python tools/gen_docs.py          # rewrite docs/questions.md's generated blocks
    python tools/gen_docs.py --check  # exit 1 if they are out of date (tests do this)

The text between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->`` is
replaced; everything else in the page is hand-written.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scaffold import rules  # noqa: E402
from scaffold.template import bundled_template, questions  # noqa: E402

DERIVED = {
    "{{ _folder_name }}": "the destination folder's name",
    "{{ package_name_for(project_name) }}": "project_name, lowercased, `-`/`.`/spaces → `_`",
    "{{ default_strategy() }}": "`xla` on tpu, `ddp` for several processes, else `single_device`",
}


def questions_table() -> str:
    """One row per question: key, what it asks, choices, default."""
    rows = ["| key | question | choices | default |", "| --- | --- | --- | --- |"]
    for question in questions(bundled_template()).values():
        if question.computed:
            continue
        choices = ", ".join(f"`{value}`" for value in question.values) or question.type
        default = DERIVED.get(str(question.default), f"`{question.default}`")
        rows.append(f"| `{question.name}` | {question.help} | {choices} | {default} |")
    return "\n".join(rows)


def choices_table() -> str:
    """One row per choice of the multiple-choice questions, with its label."""
    rows = ["| key | value | meaning |", "| --- | --- | --- |"]
    for question in questions(bundled_template()).values():
        if question.computed or not question.choices:
            continue
        for label, value in question.choices:
            rows.append(f"| `{question.name}` | `{value}` | {label} |")
    return "\n".join(rows)


def rules_table() -> str:
    """Every cross-question rule, in the words the CLI uses."""
    rows = ["| question | refused when | message |", "| --- | --- | --- |"]
    for rule in rules.RULES:
        message = rule.message.replace("|", "\\|").replace("{", "&lt;").replace("}", "&gt;")
        rows.append(f"| `{rule.question}` | invalid | {message} |")
    for (question, value), message in rules.RETIRED.items():
        rows.append(f"| `{question}` | retired name `{value}` | {message} |")
    return "\n".join(rows)


def engine_size_table() -> str:
    """Lines of each engine file in a default project (with every callback)."""
    import tempfile

    from scaffold.new import create

    every = questions(bundled_template())["callbacks"].values
    with tempfile.TemporaryDirectory() as tmp:
        project = create(
            Path(tmp) / "exp", data={"callbacks": every}, defaults=True, use_git=False
        ).path
        engine = project / "src" / "exp" / "engine"
        rows = ["| file | lines | non-blank, non-comment |", "| --- | ---: | ---: |"]
        total = code_total = 0
        for path in sorted(engine.rglob("*.py")):  # loggers/ holds one file per logger
            lines = path.read_text().splitlines()
            code = sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))
            total, code_total = total + len(lines), code_total + code
            name = path.relative_to(engine).as_posix()
            rows.append(f"| `engine/{name}` | {len(lines)} | {code} |")
        rows.append(f"| **total** | **{total}** | **{code_total}** |")
    return "\n".join(rows)


def hooks_table() -> str:
    """Every hook the engine calls, from the table in the template's engine/hooks.py."""
    import importlib.util

    path = ROOT / "templates" / "default" / "project" / "src" / "{{package_name}}" / "engine"
    # A package of the template's engine folder, so that hooks.py's relative imports load.
    package = types.ModuleType("template_engine")
    package.__path__ = [str(path)]
    sys.modules.setdefault("template_engine", package)
    spec = importlib.util.spec_from_file_location("template_engine.hooks", path / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    names = {
        "datamodule|module": "DataModule's if overridden, else module",
        "monitoring": "ModelCheckpoint, EarlyStopping",
    }
    rows = ["| hook | called on, in order | receives | when |", "| --- | --- | --- | --- |"]
    for hook in hooks.HOOKS:
        on = " → ".join(names.get(receiver, receiver) for receiver in hook.on)
        when = hook.when + ("; always (its default does the work)" if hook.always else "")
        rows.append(f"| `{hook.name}` | {on} | {hook.args or '—'} | {when} |")
    return "\n".join(rows)


PAGES = {
    ROOT / "docs" / "questions.md": {
        "questions": questions_table,
        "choices": choices_table,
        "rules": rules_table,
    },
    ROOT / "docs" / "engine.md": {"engine-size": engine_size_table, "hooks": hooks_table},
}


def render(page: Path, text: str) -> str:
    """``text`` with every generated block of ``page`` brought up to date."""
    for name, make in PAGES[page].items():
        pattern = re.compile(
            rf"(<!-- generated: {name} -->\n)(?:.*?\n)?(<!-- end: {name} -->)", re.S
        )
        if not pattern.search(text):
            raise SystemExit(f"{page} has no generated block {name!r}")
        text = pattern.sub(lambda m, make=make: f"{m.group(1)}{make()}\n{m.group(2)}", text)
    return text


if __name__ == "__main__":
    stale = []
    for page in PAGES:
        current = page.read_text()
        fresh = render(page, current)
        if fresh != current:
            stale.append(page)
            if "--check" not in sys.argv:
                page.write_text(fresh)
    if stale and "--check" in sys.argv:
        sys.exit(f"out of date: {', '.join(map(str, stale))}; run tools/gen_docs.py")
