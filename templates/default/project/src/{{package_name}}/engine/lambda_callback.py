"""Lightning's ``LambdaCallback``: a callback made of functions, one per hook.

    LambdaCallback(on_train_epoch_end=lambda trainer, module: print(trainer.current_epoch))

Each function is called as the hook it is named after, with that hook's
arguments (``trainer, module, ...``; ``hooks.HOOKS`` lists them), in
Lightning's order like any other callback's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .hooks import HOOKS, Callback

# The hooks a callback receives, which LambdaCallback takes by name.
CALLBACK_HOOKS = tuple(hook.name for hook in HOOKS if "callbacks" in hook.on)


class LambdaCallback(Callback):
    """A callback whose hooks are the functions given: ``LambdaCallback(on_fit_start=f)``."""

    def __init__(self, **hooks: Callable[..., Any] | None) -> None:
        if unknown := sorted(set(hooks) - set(CALLBACK_HOOKS)):
            raise TypeError(
                f"LambdaCallback got {', '.join(unknown)}, which no callback receives; "
                f"it takes {', '.join(CALLBACK_HOOKS)}"
            )
        for name, function in hooks.items():
            if function is not None:  # None: not given, as Lightning's defaults
                setattr(self, name, function)
