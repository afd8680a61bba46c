"""copier's interactive prompts, adjusted so they show scaffold's messages whole.

copier asks through questionary, which draws with prompt_toolkit. Two things
there hide what scaffold has to say, and neither has a setting:

* Long lines are cut at the terminal's width: a validation message ("use
  letters, digits, ..."), the reason a choice is disabled, a long question.
  prompt_toolkit's validation toolbar is one row high, and questionary's
  choice list and bottom toolbar don't wrap.
* A typed answer copier can't convert (``two`` for ``devices``) gets a bare
  "Invalid input", where ``-d devices=two`` says why.

:func:`asking` changes both for as long as copier asks (and restores them
after): those windows wrap at the terminal's width, and an answer copier can't
convert gets the message scaffold gives for the same value on the command line.
These reach into copier's, questionary's and prompt_toolkit's modules
(copier is pinned below 10); tests/test_interactive.py drives them in a real
terminal 80 columns wide, so a change upstream fails there first.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from scaffold.errors import AnswerError
from scaffold.template import Question, questions

# What copier's prompt says for an answer it can't convert to the question's type.
COPIER_INVALID_INPUT = "Invalid input"
# What copier puts before a validator's message.
COPIER_PREFIX = "Validation error for question"


@contextmanager
def asking(template: Path) -> Iterator[None]:
    """While copier asks ``template``'s questions: wrap long lines, explain bad input."""
    import copier._main
    import questionary.prompts.common
    from prompt_toolkit.filters import has_validation_error
    from prompt_toolkit.layout import ConditionalContainer, Window
    from prompt_toolkit.widgets.toolbars import ValidationToolbar

    class WrappingValidationToolbar(ValidationToolbar):
        """prompt_toolkit's validation toolbar, as many rows high as its message needs."""

        def __init__(self, show_position: bool = False) -> None:
            super().__init__(show_position)
            self.container = ConditionalContainer(
                content=Window(self.control, wrap_lines=True), filter=has_validation_error
            )

    wrapping_window = functools.partial(Window, wrap_lines=True)
    known = questions(template)
    with ExitStack() as stack:
        # The module, not the function of the same name that prompt_toolkit.shortcuts exports.
        prompt = importlib.import_module("prompt_toolkit.shortcuts.prompt")
        stack.enter_context(_replaced(prompt, "ValidationToolbar", WrappingValidationToolbar))
        # Windows without an explicit wrap_lines: toolbars, and questionary's choice list.
        stack.enter_context(_replaced(prompt, "Window", wrapping_window))
        stack.enter_context(_replaced(questionary.prompts.common, "Window", wrapping_window))
        explaining = _explaining(copier._main.Question, known)
        stack.enter_context(_replaced(copier._main, "Question", explaining))
        yield


@contextmanager
def _replaced(module: ModuleType, name: str, value: Any) -> Iterator[None]:
    """``module.name`` is ``value`` inside the block, and what it was after it."""
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def _explaining(copier_question: type, known: dict[str, Question]) -> type:
    """A subclass of copier's Question whose prompts say why an answer is refused."""

    class ExplainingQuestion(copier_question):
        def get_questionary_structure(self) -> dict[str, Any]:
            structure = super().get_questionary_structure()
            check = structure.get("validate")
            ours = known.get(self.var_name)
            if check is not None and ours is not None:
                structure["validate"] = _explained(check, ours)
            return structure

    return ExplainingQuestion


def _explained(check: Callable[[Any], Any], question: Question) -> Callable[[Any], Any]:
    def validate(answer: Any) -> Any:
        verdict = check(answer)
        if verdict == COPIER_INVALID_INPUT:
            try:
                question.cast(answer)
            except AnswerError as error:
                return error.message
        if isinstance(verdict, str) and verdict.startswith(COPIER_PREFIX) and ": " in verdict:
            return verdict.split(": ", 1)[1]  # the message -d gives, without copier's prefix
        return verdict

    return validate
