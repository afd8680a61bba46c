"""Expose :mod:`scaffold.rules` to copier.yml, so prompts and rules agree.

copier.yml refers to these globals in defaults and validators; they read the
answers given so far from the Jinja context. Templates also get
``made_with()``: the template and answers a project records in its package.
The extension imports nothing but scaffold's rules, so it is cheap to load and
safe to trust.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from jinja2 import Environment, pass_context
from jinja2.ext import Extension
from jinja2.runtime import Context

from scaffold import rules

# The template being rendered, as ``(source, version)``: set by scaffold.render
# around copier's run (copier itself knows only the folder it renders from).
RENDERING: ContextVar[tuple[str, str] | None] = ContextVar("rendering", default=None)


def _answers(context: Context) -> dict[str, Any]:
    return {name: context[name] for name in rules.ORDER if name in context}


@pass_context
def why_invalid(context: Context, question: str, value: Any) -> str:
    """Why ``value`` is not a valid answer to ``question`` here, or ``""``."""
    answers = {**_answers(context), question: value}
    if question == "package_name":
        return rules.package_name_problem(value)
    if question == "project_name":
        return rules.project_name_problem(value)
    return rules.why_invalid(question, answers)


@pass_context
def several_valid(context: Context, question: str, *values: Any) -> bool:
    """Whether more than one of ``values`` is a valid answer to ``question`` here.

    copier.yml's ``when`` for a question whose other choices the earlier answers
    all rule out: there is nothing to ask, so copier takes the default.
    """
    answers = _answers(context)
    valid = [
        value for value in values if not rules.why_invalid(question, {**answers, question: value})
    ]
    return len(valid) > 1


@pass_context
def default_strategy(context: Context) -> str:
    """The strategy to offer first for the answers so far."""
    return rules.default_strategy(_answers(context))


@pass_context
def made_with(context: Context) -> dict[str, Any]:
    """The template (source and version) and the answers this render uses.

    What a project keeps in its package (``made_with.yml``), so that every run
    can record it, installed or not. Outside scaffold (plain copier), the
    source and version are copier's own record of them.
    """
    recorded = dict(context.get("_copier_answers") or {})
    source, version = RENDERING.get() or (
        recorded.get("_src_path", "unknown"),
        recorded.get("_commit", "unknown"),
    )
    answers = {key: value for key, value in recorded.items() if not str(key).startswith("_")}
    return {
        "template": {"source": str(source), "version": str(version)},
        "answers": dict(sorted(answers.items())),
    }


class RulesExtension(Extension):
    """Adds the rules' globals and ``made_with``.

    ``why_invalid``, ``several_valid``, ``default_strategy`` and
    ``package_name_for`` for copier.yml; ``made_with`` for template files.
    """

    def __init__(self, environment: Environment) -> None:
        """Register the globals on ``environment``."""
        super().__init__(environment)
        environment.globals["why_invalid"] = why_invalid
        environment.globals["several_valid"] = several_valid
        environment.globals["default_strategy"] = default_strategy
        environment.globals["package_name_for"] = rules.package_name_for
        environment.globals["made_with"] = made_with
