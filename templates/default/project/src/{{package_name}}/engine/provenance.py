"""Where a run came from: the template and answers that made the project, its
git commit, and the software and hardware it ran on.

Every run writes this as ``provenance.yaml`` into its run folder and gives it
to the loggers with the hyperparameters (``provenance.*``). What can't be
known is ``"unknown"``: the git state of an installed copy (not a checkout),
or of a checkout without git.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import torch
import yaml

UNKNOWN = "unknown"
# Packages whose versions change results, recorded when installed (besides the
# project's own dependencies).
PACKAGES = ("torch", "torchmetrics", "numpy", "torch_xla", "deepspeed")


def provenance() -> dict[str, Any]:
    """The project (template, version, answers), git state, software and hardware."""
    made = made_with()
    return {
        **made,
        "git": git_state(project_root()),
        "software": software(made.get("answers", {}).get("project_name")),
        "hardware": hardware(),
    }


def made_with() -> dict[str, Any]:
    """``made_with.yml`` of this package: the template and answers that made it."""
    package = __package__.rsplit(".", 1)[0]  # "<package>" from "<package>.engine"
    try:
        text = resources.files(package).joinpath("made_with.yml").read_text(encoding="utf-8")
    except (OSError, ModuleNotFoundError):
        return {"template": UNKNOWN, "answers": {}}
    return yaml.safe_load(text) or {"template": UNKNOWN, "answers": {}}


def project_root() -> Path | None:
    """The checkout the package runs from (``<root>/src/<package>``), or None when installed."""
    package = Path(__file__).resolve().parents[1]
    root = package.parents[1]
    if package.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None


def git_state(root: Path | None) -> dict[str, Any]:
    """The checkout's commit and whether files differ from it (untracked ones count)."""
    unknown = {"commit": UNKNOWN, "dirty": UNKNOWN}
    if root is None:
        return unknown
    try:
        head = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return unknown  # no git, or not a repository
    return {"commit": head.strip(), "dirty": bool(status.strip())}


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
    ).stdout


def software(project: str | None) -> dict[str, str]:
    """Python's version and those of the project's dependencies and of ``PACKAGES``."""
    names = list(PACKAGES)
    try:
        required = metadata.requires(project) if project else None
    except metadata.PackageNotFoundError:
        required = None  # run from the source folder, not installed
    for requirement in required or []:
        if "extra ==" not in requirement:
            names.append(requirement.split(";")[0].split("[")[0].strip(" <>=!~,0123456789."))
    versions = {"python": platform.python_version()}
    for name in dict.fromkeys(names):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions["cuda"] = torch.version.cuda or "none"
    return versions


def hardware() -> dict[str, Any]:
    """The machine: its name, OS, CPU and accelerators."""
    found: dict[str, Any] = {
        "host": platform.node(),
        "os": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if torch.cuda.is_available():
        found["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        found["mps"] = True
    return found


def write(folder: Path, record: dict[str, Any]) -> None:
    """``provenance.yaml`` in the run folder."""
    (folder / "provenance.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
