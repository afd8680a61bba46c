"""The errors this project raises on purpose: problems the user can fix.

``__main__`` prints a ``UsageError`` as one line (``error: <message>``) and
exits non-zero: a bad config value, a launch the strategy can't train in, a
checkpoint that can't be used, a non-finite loss, a data path that isn't
there. Every other exception is a bug, in this project or in your code, and
keeps its full traceback.
"""

from __future__ import annotations


class UsageError(Exception):
    """A problem with how the project was run; the message names the value and the fix."""
