"""Predictions you can use: ``predict_step``'s columns, written as CSV or JSONL rows.

``predict_step`` returns a dict of columns for its batch: each value a tensor
with the batch on dim 0, or a list with one item per input. An ``id`` column
names each input (a row number, a file name). ``write`` turns every batch's
dict into one row per input and writes them, from rank zero, into one file:
under DDP each rank predicted its own share of the inputs, so the shares are
gathered and put back in the input order first.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .engine.errors import ConfigError, cause
from .engine.options import folder_problem

FORMATS = (".csv", ".jsonl")


@dataclass
class PredictOptions:
    """What ``predict`` reads and where it writes (the config's ``predict`` section).

    Attributes:
        input: What to predict on: a file, a folder or a text, as the task's
            DataModule reads it (``predict_dataloader``); None: the test split.
        output: The file to write, ``.csv`` or ``.jsonl``; None:
            ``predictions.csv`` (``.jsonl`` when a column holds more than one
            value per input) in the run folder of the checkpoint loaded.
    """

    input: str | None = None
    output: str | None = None

    def __post_init__(self) -> None:
        if self.output is None:
            return
        path = Path(self.output)
        if path.suffix.lower() not in FORMATS:
            raise ConfigError(
                f"predict.output={self.output!r}: name a .csv or .jsonl file "
                "(the suffix chooses the format)"
            )
        if path.is_dir():
            raise ConfigError(f"predict.output={self.output!r} is a folder; name the file")
        if problem := folder_problem(path.parent):
            raise ConfigError(f"predict.output={self.output!r}: {problem}; choose another place")


def run_folder(checkpoint: Path | None, root: str | Path) -> Path:
    """Where predictions go by default: the run folder that holds ``checkpoint``.

    That is the nearest folder above it with the run's ``config.yaml``
    (``runs/version_3`` for ``runs/version_3/checkpoints/last.ckpt``); without
    one, the checkpoint's own folder; without a checkpoint, ``root``.
    """
    if checkpoint is None:
        return Path(root)
    for folder in list(checkpoint.parents)[:3]:
        if (folder / "config.yaml").is_file():
            return folder
    return checkpoint.parent


def rows(outputs: Sequence[Any]) -> list[dict[str, Any]]:
    """One dict per input from ``predict_step``'s per-batch dicts of columns.

    A batch's output that is not a dict (a tensor, as in Lightning) is the
    column ``prediction``.

    Raises:
        TypeError: A column is neither a tensor nor a list, or the columns
            disagree on the batch size (a bug in ``predict_step``).
    """
    result = []
    for index, output in enumerate(outputs):
        if not isinstance(output, dict):
            output = {"prediction": output}  # a plain tensor, as Lightning's predict returns
        columns = {name: _as_list(value) for name, value in output.items()}
        sizes = {name: len(column) for name, column in columns.items()}
        if len(set(sizes.values())) > 1:
            raise TypeError(f"predict_step's columns differ in length in batch {index}: {sizes}")
        table = zip(*columns.values(), strict=True)
        result += [dict(zip(columns, values, strict=True)) for values in table]
    return result


def _as_list(value: Any) -> list[Any]:
    """A column as plain Python values, one per input (tensors: the batch on dim 0)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.tolist() if value.dim() > 0 else [value.item()]
    if isinstance(value, (list, tuple)):
        return [v.tolist() if isinstance(v, torch.Tensor) else v for v in value]
    raise TypeError(
        f"a predict_step column is a {type(value).__name__}; use a tensor with the batch "
        "on dim 0, or a list with one item per input"
    )


def in_input_order(shares: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The ranks' rows back in input order: rank ``r`` had inputs ``r, r + W, r + 2W, ...``.

    (``ResumableSampler`` shards evaluation that way, unpadded, so each input
    is in exactly one share.)
    """
    longest = max((len(share) for share in shares), default=0)
    return [share[i] for i in range(longest) for share in shares if i < len(share)]


def write(table: list[dict[str, Any]], path: Path) -> Path:
    """Write the rows to ``path`` (CSV or JSONL by its suffix), atomically.

    In a CSV file, a value holding several numbers (an image, a vector) is
    written as its JSON list, so every input is still one row.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as file:
            if path.suffix.lower() == ".jsonl":
                for row in table:
                    file.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                names = list(dict.fromkeys(name for row in table for name in row))
                writer = csv.DictWriter(file, fieldnames=names)
                writer.writeheader()
                writer.writerows({k: _cell(v) for k, v in row.items()} for row in table)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"can't write predictions to {str(path)!r}: {cause(error)}") from None
    return path


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def default_name(table: list[dict[str, Any]]) -> str:
    """``predictions.jsonl`` when some value is a list (a vector per input), else ``.csv``."""
    nested = any(isinstance(v, (list, dict)) for row in table[:1] for v in row.values())
    return "predictions.jsonl" if nested else "predictions.csv"


def save(strategy: Any, outputs: Sequence[Any], output: str | None, folder: Path) -> Path | None:
    """Gather every rank's predictions and write one file from rank zero; its path there.

    Args:
        strategy: The Trainer's strategy (``gather``, ``is_global_zero``).
        outputs: This rank's ``predict_step`` outputs, one per batch.
        output: ``predict.output``, or None for the default name in ``folder``.
        folder: Where the default file goes (``run_folder``).

    Returns:
        The file written (on rank zero), None on the other ranks.
    """
    shares = strategy.gather(rows(outputs))  # a collective: every rank calls it
    if not strategy.is_global_zero:
        return None
    table = in_input_order(shares)
    if table and "id" not in table[0]:  # no ids from predict_step: the input's position
        table = [{"id": number, **row} for number, row in enumerate(table)]
    path = Path(output) if output is not None else folder / default_name(table)
    write(table, path)
    print(f"Wrote {len(table)} predictions to {path}")
    return path
