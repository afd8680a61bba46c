"""The registry of team templates, and which template sources are trusted.

Read from TOML files, later ones overriding earlier ones entry by entry:

1. the user's file, ``$XDG_CONFIG_HOME/scaffold/templates.toml``
   (``~/.config/scaffold/templates.toml`` when ``XDG_CONFIG_HOME`` is unset);
2. every file named in ``SCAFFOLD_CONFIG`` (paths separated by ``os.pathsep``):
   a team's shared file, checked into a repository everyone clones.

A file looks like::

    trusted = ["https://git.example.com/ml-team/"]   # sources (or prefixes ending in /)

    [templates.vision]
    src = "https://git.example.com/ml-team/vision-template.git"
    ref = "v2.1.0"        # optional: pin a tag, branch or commit
    trusted = true        # optional: allow its tasks, migrations, Jinja extensions
    description = "Image models on the team cluster"
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaffold import paths
from scaffold.errors import PathError, ScaffoldError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_ENV = "SCAFFOLD_CONFIG"


@dataclass(frozen=True)
class Entry:
    """One named template of the registry."""

    name: str
    src: str
    ref: str | None = None
    trusted: bool = False
    description: str = ""


@dataclass(frozen=True)
class Config:
    """The merged registry and trust list."""

    templates: dict[str, Entry]
    trusted: tuple[str, ...]
    files: tuple[Path, ...]

    def is_trusted(self, source: str) -> bool:
        """Whether ``source`` (a URL or absolute path) is trusted by the config."""
        if any(entry.trusted and entry.src == source for entry in self.templates.values()):
            return True
        for pattern in self.trusted:
            if pattern.endswith("/") and source.startswith(pattern):
                return True
            if source == pattern:
                return True
        return False


def user_config_file() -> Path:
    """The user's registry file (honours ``XDG_CONFIG_HOME``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "scaffold" / "templates.toml"


def config_files() -> list[Path]:
    """Every registry file that is read, in order (later ones win)."""
    files = [user_config_file()]
    extra = os.environ.get(CONFIG_ENV, "")
    try:
        files += [Path(paths.expand_user(item)) for item in extra.split(os.pathsep) if item]
    except PathError as error:
        raise PathError(f"${CONFIG_ENV}: {error.message}") from None
    return files


def load() -> Config:
    """Read and merge the registry files; missing files are skipped.

    Raises:
        ScaffoldError: A file that exists but is not valid.
    """
    templates: dict[str, Entry] = {}
    trusted: list[str] = []
    read = []
    for path in config_files():
        if not path.is_file():
            continue
        data = _read(path)
        read.append(path)
        trusted += [_source(path, item) for item in _list(path, data.get("trusted", []))]
        for name, spec in _table(path, data.get("templates", {})).items():
            templates[name] = _entry(path, name, spec)
    return Config(templates, tuple(trusted), tuple(read))


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as error:
        raise ScaffoldError(f"can't read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScaffoldError(f"{path} is not valid TOML: {error}") from None


def _list(path: Path, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ScaffoldError(f'{path}: `trusted` must be a list of sources, e.g. ["/srv/tpl"]')
    return value


def _table(path: Path, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScaffoldError(f"{path}: `templates` must be a table of [templates.<name>] entries")
    return value


def _entry(path: Path, name: str, spec: Any) -> Entry:
    if name == "default":
        raise ScaffoldError(f"{path}: the name 'default' is scaffold's bundled template")
    if not isinstance(spec, dict) or not isinstance(spec.get("src"), str):
        raise ScaffoldError(f'{path}: [templates.{name}] needs src = "<git URL or path>"')
    ref = spec.get("ref")
    return Entry(
        name=name,
        src=_source(path, spec["src"]),
        ref=str(ref) if ref is not None else None,
        trusted=bool(spec.get("trusted", False)),
        description=str(spec.get("description", "")),
    )


def _source(config_path: Path, src: str) -> str:
    """Local paths are relative to the file that names them; URLs stay as written."""
    if "://" in src or src.startswith("git@") or ":" in src.split("/", 1)[0]:
        return src
    try:
        path = Path(paths.expand_user(src))
    except PathError as error:
        raise PathError(f"{config_path}: {error.message}") from None
    if not path.is_absolute():
        path = config_path.parent / path
    # A trailing slash makes a trusted entry a prefix: keep it.
    return str(path.resolve()) + ("/" if src.endswith("/") else "")
