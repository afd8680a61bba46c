"""Run Lightning code in a generated project after only an import change (the port tests).

:func:`load` executes a file of pytorch_lightning code as it is, or with its
one ``from pytorch_lightning import ...`` line swapped for the generated
project's classes (:data:`PORTED`), and returns what it defined.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

HELPERS = Path(__file__).resolve().parent / "helpers"
LIGHTNING_IMPORT = re.compile(r"^from pytorch_lightning import (.+)$", re.MULTILINE)
# Lightning's names, and where a generated project has them.
PORTED = {
    "LightningModule": "engine.module import Module as LightningModule",
    "LightningDataModule": "engine.module import DataModule as LightningDataModule",
    "Trainer": "engine.trainer import Trainer",
}


def port(source: str, package: str) -> str:
    """``source`` with its pytorch_lightning import replaced by ``package``'s classes."""
    imports = LIGHTNING_IMPORT.findall(source)
    if len(imports) != 1:
        raise ValueError(f"expected one 'from pytorch_lightning import' line, found {imports}")
    names = [name.strip() for name in imports[0].split(",")]
    lines = "\n".join(f"from {package}.{PORTED[name]}" for name in names)
    return LIGHTNING_IMPORT.sub(lines, source)


def load(path: Path, package: str | None = None) -> dict[str, Any]:
    """Execute ``path`` (ported to ``package`` if given); return the names it defined."""
    source = path.read_text()
    if package is not None:
        source = port(source, package)
    namespace: dict[str, Any] = {"__name__": f"{path.stem}_{package or 'lightning'}"}
    exec(compile(source, str(path), "exec"), namespace)  # this repository's own test code
    return namespace
