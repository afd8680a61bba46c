"""Render a template with copier into a fresh folder: the one place scaffold calls copier.

``scaffold new``, ``scaffold update`` and ``scaffold adopt`` all render the
same way, so an old render and a new one differ only by what the template and
the answers changed.
"""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import yaml

from scaffold import jinja_ext, prompts
from scaffold.errors import AnswerError, ScaffoldError, TemplateError
from scaffold.sources import ANSWERS_FILE, Template
from scaffold.template import normalized


def render(
    template: Template, target: Path, *, data: dict[str, Any], defaults: bool
) -> dict[str, Any]:
    """Render ``template`` into ``target`` (a folder that doesn't exist yet).

    The answers file is finalised to record ``template.source`` and
    ``template.version``. Only ``target`` may appear in its parent folder: a
    template that writes anything beside it is refused.

    Args:
        template: From :func:`scaffold.sources.fetch` (already checked for trust).
        target: Where to render; its name is copier's ``_folder_name``.
        data: Answers given up front.
        defaults: Take every other answer's default instead of asking.

    Returns:
        The answers, without copier's ``_`` entries.

    Raises:
        AnswerError: An answer the template's validators reject.
        TemplateError: The template failed, or wrote outside ``target``.
    """
    import copier  # imported here: it is slow to import, and --help doesn't need it
    import jinja2
    from copier.errors import (
        CopierAnswersInterrupt,
        CopierError,
        ForbiddenPathError,
        InteractiveSessionError,
        UnsafeTemplateError,
    )

    data = normalized(template.path, data)
    before = set(target.parent.iterdir())
    rendering = jinja_ext.RENDERING.set((template.source, template.version))
    try:
        with nullcontext() if defaults else prompts.asking(template.path):
            worker = copier.run_copy(
                str(template.path),
                target,
                data=data,
                defaults=defaults,
                # sources.fetch refused untrusted templates that run code; what is
                # left may load scaffold's own Jinja extension (the rules table).
                unsafe=True,
                quiet=True,
                cleanup_on_error=False,
            )
    except (KeyboardInterrupt, CopierAnswersInterrupt):
        raise ScaffoldError("interrupted; nothing was written") from None
    except InteractiveSessionError:
        raise AnswerError(
            "no terminal to ask the questions in; pass --defaults (and -d KEY=VALUE "
            "for the answers to change) to answer without one"
        ) from None
    except ForbiddenPathError as error:
        raise TemplateError(
            f"the template {template.source} tried to write outside the project ({error}); "
            "scaffold refuses paths with '..' or absolute paths"
        ) from None
    except UnsafeTemplateError as error:
        raise TemplateError(f"the template {template.source}: {error}; pass --trust") from None
    except ValueError as error:  # copier's validators: scaffold's rules table
        raise AnswerError(_copier_message(str(error))) from None
    except CopierError as error:
        raise TemplateError(f"the template failed to render: {error}") from None
    except jinja2.TemplateError as error:  # a template file with a Jinja mistake
        where = f"{error.filename}, line {error.lineno}" if getattr(error, "filename", None) else ""
        raise TemplateError(
            f"the template {template.source} failed to render ({where}): {error}; "
            "fix the template file"
        ) from None
    finally:
        jinja_ext.RENDERING.reset(rendering)
    strays = set(target.parent.iterdir()) - before - {target}
    if strays:
        for stray in strays:
            if stray.is_dir() and not stray.is_symlink():
                shutil.rmtree(stray, ignore_errors=True)
            else:
                stray.unlink()
        raise TemplateError(
            f"the template {template.source} wrote outside the project "
            f"({', '.join(sorted(p.name for p in strays))}); refused"
        )
    finalize_answers(target / ANSWERS_FILE, template)
    combined = worker.answers.combined
    return {k: v for k, v in combined.items() if not str(k).startswith("_")}


def _copier_message(text: str) -> str:
    """Unwrap copier's "Validation error for question 'x': <our message>"."""
    for prefix in ("Validation error for question", "Invalid choice for"):
        if text.startswith(prefix) and ": " in text:
            return text.split(": ", 1)[1]
    return text


def finalize_answers(path: Path, template: Template) -> None:
    """Record the template's identity, never a temporary or virtualenv path."""
    if not path.is_file():
        raise TemplateError(
            f"the template {template.source} wrote no {ANSWERS_FILE}; add the file "
            "`{{_copier_conf.answers_file}}.jinja` containing `{{ _copier_answers|to_nice_yaml }}`"
        )
    answers = yaml.safe_load(path.read_text())
    answers["_src_path"] = template.source
    answers["_commit"] = template.version
    header = "".join(line + "\n" for line in path.read_text().splitlines() if line.startswith("#"))
    path.write_text(header + yaml.safe_dump(answers, sort_keys=True))


def read_answers(
    path: Path,
    *,
    name: str = "",
    fix: str = "restore it from git",
    error: type[ScaffoldError] = ScaffoldError,
) -> dict[str, Any]:
    """A YAML file of answers (every entry, ``_src_path`` and ``_commit`` included).

    Args:
        path: The file.
        name: How messages name it (default: its path).
        fix: What messages tell the user to do.
        error: The ScaffoldError subclass to raise.
    """
    name = name or str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as problem:
        raise error(f"can't read {name}: {problem.strerror}; {fix}") from None
    except yaml.YAMLError as problem:
        raise error(f"{name} is not valid YAML ({problem}); {fix}") from None
    if not isinstance(data, dict):
        raise error(f"{name} is not a mapping of question: answer; {fix}")
    return data
