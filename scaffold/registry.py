"""``scaffold templates``: the templates you can name, with their current versions."""

from __future__ import annotations

from scaffold import config, sources
from scaffold.errors import ScaffoldError


def listing() -> list[str]:
    """One line per template: name, version, source, and whether it is trusted."""
    registry = config.load()
    rows = [("default", sources.latest_version(sources.parse(None)), "bundled with scaffold", "")]
    for name, entry in sorted(registry.templates.items()):
        try:
            spec = sources.parse(entry.src, vcs_ref=entry.ref)
            version = sources.latest_version(spec)
        except ScaffoldError:
            version = "unreachable"
        trusted = "trusted" if entry.trusted or registry.is_trusted(entry.src) else ""
        rows.append((name, version, entry.src, trusted))
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"{name:<{width[0]}}  {version:<{width[1]}}  {src:<{width[2]}}  {trusted}".rstrip()
        for name, version, src, trusted in rows
    ]
    files = ", ".join(map(str, registry.files)) or f"none ({config.user_config_file()} to add)"
    return [*lines, f"(registry files: {files})"]
