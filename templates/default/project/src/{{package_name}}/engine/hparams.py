"""Hyperparameters, as Lightning's: what ``save_hyperparameters`` records.

The Module and the DataModule both have them. A checkpoint keeps the module's
under ``hyper_parameters`` and the DataModule's under
``datamodule_hyper_parameters`` (Lightning's keys), so each
``load_from_checkpoint`` can build the object again; the run's ``config.yaml``
and its loggers get them under ``model`` and ``data``.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from torch import nn

from . import checkpoint as ckpt


class AttributeDict(dict):
    """A dict whose keys read as attributes too: ``hparams.lr`` (Lightning's AttributeDict)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no hyperparameter {name!r}; saved: {sorted(self)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class Hyperparameters:
    """``save_hyperparameters``, ``hparams`` and ``hparams_initial`` (Lightning's mixin)."""

    _log_hyperparams = True  # save_hyperparameters(logger=False): the loggers don't get them

    @property
    def hparams(self) -> AttributeDict:
        """What ``save_hyperparameters`` recorded: ``self.hparams.lr``, ``self.hparams["lr"]``."""
        hparams = self.__dict__.get("_hparams")
        if hparams is None:
            hparams = self.__dict__["_hparams"] = AttributeDict()
        return hparams

    @property
    def hparams_initial(self) -> AttributeDict:
        """A copy of ``hparams`` as ``save_hyperparameters`` recorded them (before any edit)."""
        return copy.deepcopy(self.__dict__.get("_hparams_initial", AttributeDict()))

    def save_hyperparameters(
        self,
        *names: str,
        ignore: str | Sequence[str] | None = None,
        frame: FrameType | None = None,
        logger: bool = True,
        **hparams: Any,
    ) -> None:
        """Record the ``__init__`` arguments so checkpoints can rebuild the object.

        Called from ``__init__`` it records the caller's arguments, as in
        Lightning: all of them, or only ``names``, less ``ignore`` (e.g. the
        ``nn.Module`` arguments, whose weights the checkpoint holds anyway);
        ``frame`` names another frame to read them from. Keyword arguments are
        recorded as given. ``logger=False`` keeps them out of the loggers (the
        run's ``config.yaml`` still records them). Values must be plain Python
        (numbers, strings, lists, dicts).
        """
        if odd := [name for name in names if not isinstance(name, str)]:
            raise TypeError(
                f"save_hyperparameters takes the names of __init__ arguments, not a "
                f"{type(odd[0]).__name__}: call it with none (all of them), with names, "
                "or with keyword arguments (save_hyperparameters(**config))"
            )
        self._log_hyperparams = logger
        if not hparams:
            caller = frame or inspect.currentframe().f_back  # type: ignore[union-attr]
            info = inspect.getargvalues(caller)
            hparams = {name: info.locals[name] for name in info.args[1:]}
            if info.keywords:
                hparams.update(info.locals[info.keywords])
            skipped = {ignore} if isinstance(ignore, str) else set(ignore or ())
            hparams = {
                name: value
                for name, value in hparams.items()
                if name not in skipped and (not names or name in names)
            }
        self.hparams.update(_without_networks(hparams))
        self.__dict__["_hparams_initial"] = copy.deepcopy(self.hparams)


def _without_networks(hparams: dict[str, Any]) -> dict[str, Any]:
    """``hparams`` less its ``nn.Module`` values, with a warning naming them.

    Their weights are in the checkpoint's state dict already, and the
    checkpoint and config.yaml hold plain data only; Lightning keeps them
    (pickled) and warns too. They are passed again at load time, as in
    Lightning's quick start: ``load_from_checkpoint(path, encoder=...)``.
    """
    networks = [name for name, value in hparams.items() if isinstance(value, nn.Module)]
    if networks:
        warnings.warn(
            f"save_hyperparameters: {', '.join(map(repr, networks))} "
            f"{'is an nn.Module' if len(networks) == 1 else 'are nn.Modules'} whose weights "
            "the checkpoint holds already; left out of hparams, so pass "
            f"{'it' if len(networks) == 1 else 'them'} again to load_from_checkpoint "
            f"(silence this with save_hyperparameters(ignore={networks!r}))",
            stacklevel=3,
        )
    return {name: value for name, value in hparams.items() if name not in networks}


def rebuild(cls: type, path: Path, checkpoint: dict[str, Any], key: str, overrides: dict) -> Any:
    """``cls`` built from the hyperparameters ``checkpoint`` keeps under ``key`` and
    ``overrides``: refused in one line if they aren't a dict or don't fit its ``__init__``."""
    saved = checkpoint.get(key, {})
    if not isinstance(saved, dict):
        raise ckpt.CheckpointError(
            f"checkpoint {str(path)!r} is damaged: its {key} are a "
            f"{type(saved).__name__}, not a dict"
        )
    try:
        inspect.signature(cls).bind(**{**saved, **overrides})
    except TypeError as error:
        raise ckpt.CheckpointError(
            f"checkpoint {str(path)!r} was not written by a {cls.__name__} "
            f"(its {key} don't fit: {error}); load it with the class that wrote it"
        ) from None
    return cls(**{**saved, **overrides})
