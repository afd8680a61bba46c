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
from argparse import Namespace
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
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
        *args: Any,
        ignore: str | Sequence[str] | None = None,
        frame: FrameType | None = None,
        logger: bool = True,
        **hparams: Any,
    ) -> None:
        """Record the ``__init__`` arguments so checkpoints can rebuild the object.

        As in Lightning, called from ``__init__`` with:

        - nothing: every argument of this object's ``__init__`` calls on the
          stack (a subclass's too, when a base class calls it);
        - names (``"lr", "width"``): those arguments only;
        - one dict or ``argparse.Namespace`` (or an OmegaConf config): its
          contents; when it was an ``__init__`` argument, ``load_from_checkpoint``
          passes it back under that argument's name.

        ``ignore`` leaves arguments out (e.g. ``nn.Module`` ones, whose weights
        the checkpoint holds anyway); ``frame`` names another frame to read
        them from; ``logger=False`` keeps them out of the loggers (the run's
        ``config.yaml`` still records them). Beyond Lightning, keyword
        arguments are recorded as given (``save_hyperparameters(lr=0.1)``).
        Values must be plain Python (numbers, strings, lists, dicts).
        """
        self._log_hyperparams = logger
        if len(args) == 1 and not isinstance(args[0], str) and not args[0]:
            return  # an empty container: nothing to record (Lightning)
        objects = [arg for arg in args if not isinstance(arg, str)]
        if len(objects) > 1 or (args and hparams):
            raise TypeError(
                "save_hyperparameters takes argument names, or one dict or Namespace, or "
                "keyword arguments (save_hyperparameters(**config)), one kind at a time"
            )
        name = None
        if not hparams:
            caller = frame or inspect.currentframe().f_back  # type: ignore[union-attr]
            given = _init_arguments(self, caller)
            if objects:
                hparams = _as_dict(objects[0])
                name = next((n for n, value in given.items() if value is objects[0]), None)
            else:
                if missing := [n for n in args if n not in given]:
                    raise KeyError(
                        f"save_hyperparameters: {', '.join(map(repr, missing))} "
                        f"{'is not an argument' if len(missing) == 1 else 'are not arguments'} "
                        f"of {type(self).__name__}.__init__ (its arguments: {sorted(given)})"
                    )
                hparams = {n: given[n] for n in args} if args else given
                name = "kwargs" if hparams else None
        skipped = {ignore} if isinstance(ignore, str) else set(ignore or ())
        hparams = {n: value for n, value in hparams.items() if n not in skipped}
        self.hparams.update(_as_plain_data(hparams))
        for ignored in skipped:  # also what an earlier call (a base class's) recorded
            self.hparams.pop(ignored, None)
        self.__dict__["_hparams_name"] = name
        self.__dict__["_hparams_initial"] = copy.deepcopy(self.hparams)


def hparams_name(part: Any) -> str | None:
    """The ``__init__`` argument ``part``'s hyperparameters came in as, if one did."""
    return getattr(part, "__dict__", {}).get("_hparams_name")


def _init_arguments(part: Any, frame: FrameType | None) -> dict[str, Any]:
    """The arguments of ``part``'s ``__init__`` calls on the stack from ``frame`` up.

    A base class's ``__init__`` calling ``save_hyperparameters`` sees its
    subclass's arguments too (the subclass's win), as in Lightning; the first
    ``__init__`` of ``part`` is looked for from ``frame`` up.
    """
    found: list[dict[str, Any]] = []
    while frame is not None:
        info = inspect.getargvalues(frame)
        own = bool(info.args) and info.locals.get(info.args[0]) is part
        if frame.f_code.co_name == "__init__" and own:
            arguments = {name: info.locals[name] for name in info.args[1:]}
            if info.keywords:
                arguments.update(info.locals[info.keywords])
            found.append(arguments)
        elif found:
            break
        frame = frame.f_back
    return {name: value for arguments in reversed(found) for name, value in arguments.items()}


def _as_dict(config: Any) -> dict[str, Any]:
    """A dict of ``config``'s entries: a dict, a ``Namespace`` or an OmegaConf config."""
    if isinstance(config, Namespace):
        return dict(vars(config))
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(config, resolve=True)
    if isinstance(config, Mapping):
        return dict(config)
    primitive = isinstance(config, (bool, int, float))
    kind = "Primitives are" if primitive else "A config of that type is"
    raise ValueError(
        f"save_hyperparameters: {kind} not allowed ({type(config).__name__}): pass argument "
        "names, or a dict or argparse.Namespace holding them"
    )


def _as_plain_data(hparams: dict[str, Any]) -> dict[str, Any]:
    """``hparams`` as plain data: paths as text, and without what isn't plain, with a
    warning naming it.

    ``nn.Module`` values: their weights are in the checkpoint's state dict
    already; Lightning keeps them (pickled) and warns too. They are passed again
    at load time, as in Lightning's quick start: ``load_from_checkpoint(path,
    encoder=...)``. Other objects (a tensor, an exception): the checkpoint and
    config.yaml hold plain data only, where Lightning pickles them and leaves
    them out of its YAML files with a warning.
    """
    hparams = {n: str(v) if isinstance(v, PurePath) else v for n, v in hparams.items()}
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
    others = [n for n, value in hparams.items() if n not in networks and not _plain(value)]
    for name in others:
        warnings.warn(
            f"save_hyperparameters: {name!r} is a {type(hparams[name]).__name__}, not plain "
            "data (numbers, text, lists, dicts), which checkpoints and config.yaml hold; left "
            "out of hparams, so pass it again to load_from_checkpoint (silence this with "
            f"save_hyperparameters(ignore=[{name!r}]))",
            stacklevel=3,
        )
    return {name: value for name, value in hparams.items() if name not in networks + others}


def _plain(value: Any) -> bool:
    """Whether ``value`` is plain data: None, numbers, text, and lists and dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(map(_plain, value))
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _plain(v) for k, v in value.items())
    return False


# Where a checkpoint names the __init__ argument the hyperparameters came in as
# (Lightning's keys): save_hyperparameters(config) comes back as cls(config=...).
NAME_KEYS = {
    "hyper_parameters": "hparams_name",
    "datamodule_hyper_parameters": "datamodule_hparams_name",
}


def rebuild(cls: type, path: Path, checkpoint: dict[str, Any], key: str, overrides: dict) -> Any:
    """``cls`` built from the hyperparameters ``checkpoint`` keeps under ``key`` and ``overrides``.

    As Lightning, saved ones ``__init__`` doesn't take are left out (unless it
    takes ``**kwargs``); hyperparameters recorded from one dict or Namespace
    argument are passed back as that argument. Refused in one line: saved
    ones that aren't a dict or leave out a required argument, and an override
    ``__init__`` doesn't take (Lightning drops it silently).
    """
    saved = checkpoint.get(key, {})
    if not isinstance(saved, dict):
        raise ckpt.CheckpointError(
            f"checkpoint {str(path)!r} is damaged: its {key} are a "
            f"{type(saved).__name__}, not a dict"
        )
    parameters = inspect.signature(cls).parameters.values()
    named = [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if (name := checkpoint.get(NAME_KEYS[key])) in named:
        saved = {name: AttributeDict(saved)}
    if not any(p.kind is p.VAR_KEYWORD for p in parameters):
        if unknown := [n for n in overrides if n not in named]:
            raise TypeError(
                f"{cls.__name__}.load_from_checkpoint: {', '.join(map(repr, unknown))} "
                f"{'is not an argument' if len(unknown) == 1 else 'are not arguments'} "
                f"of {cls.__name__}.__init__ (its arguments: {named})"
            )
        saved = {n: value for n, value in saved.items() if n in named}
    try:
        inspect.signature(cls).bind(**{**saved, **overrides})
    except TypeError as error:
        raise ckpt.CheckpointError(
            f"checkpoint {str(path)!r} was not written by a {cls.__name__} "
            f"(its {key} don't fit: {error}); load it with the class that wrote it"
        ) from None
    return cls(**{**saved, **overrides})
