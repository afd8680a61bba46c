"""One exception root for every error a user can cause, mapped to exit codes by click."""

from __future__ import annotations

import click


class ScaffoldError(click.ClickException):
    """Something the user can fix; click prints ``Error: <message>`` and exits 1."""

    exit_code = 1


class AnswerError(ScaffoldError):
    """An answer that is unknown, malformed, or invalid with the other answers."""

    exit_code = 2


class DestinationError(ScaffoldError):
    """The destination folder can't receive a new project."""


class TemplateError(ScaffoldError):
    """The template is missing or broken."""


class GitError(ScaffoldError):
    """A git command failed."""


class PathError(ScaffoldError):
    """A path that can't be used as given (an unknown ``~user``, too long, ambiguous)."""
