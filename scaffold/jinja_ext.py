"""Expose :mod:`scaffold.rules` to copier.yml, so prompts and rules agree.

copier.yml refers to these globals in defaults and validators; they read the
answers given so far from the Jinja context. The extension imports nothing but
scaffold's rules, so it is cheap to load and safe to trust.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, pass_context
from jinja2.ext import Extension
from jinja2.runtime import Context

from scaffold import rules


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


class RulesExtension(Extension):
    """Adds ``why_invalid``, ``several_valid``, ``default_strategy`` and ``package_name_for``."""

    def __init__(self, environment: Environment) -> None:
        """Register the globals on ``environment``."""
        super().__init__(environment)
        environment.globals["why_invalid"] = why_invalid
        environment.globals["several_valid"] = several_valid
        environment.globals["default_strategy"] = default_strategy
        environment.globals["package_name_for"] = rules.package_name_for
