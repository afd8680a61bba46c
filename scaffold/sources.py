"""Where a template comes from: the bundled one, a git repository, a folder, or a name.

A template *source* is what ``--template`` takes and what the answers file
records as ``_src_path``:

* ``scaffold:default`` (or nothing, or ``default``): the template shipped inside
  scaffold; its version is scaffold's own.
* a git repository, local (``/srv/tpl``) or remote (``https://...``,
  ``git@host:org/tpl.git``), optionally with ``@ref``: the newest version tag
  (PEP 440, pre-releases skipped) unless a tag, branch or commit is asked for;
  the version recorded is the tag, or the commit hash.
* a local folder that is not the top of a git repository: its version is a
  hash of its files, so ``scaffold check`` notices any change.
* a name from the registry (:mod:`scaffold.config`).

Local paths are always recorded absolute, so the project never depends on the
directory scaffold ran in.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from scaffold import config, git, paths
from scaffold import template as bundled
from scaffold.errors import TemplateError

BUNDLED_SOURCE = bundled.BUNDLED_SOURCE
ANSWERS_FILE = ".copier-answers.yml"
# scaffold's own Jinja extensions: its code, so no more trust is needed to load them.
SAFE_EXTENSIONS = ("scaffold.jinja_ext.",)
ALIASES = {"gh:": "https://github.com/", "gl:": "https://gitlab.com/"}


@dataclass(frozen=True)
class Spec:
    """A parsed template source, not fetched yet.

    Attributes:
        kind: ``bundled``, ``git`` or ``folder``.
        source: What the answers file records: ``scaffold:default``, a URL, or
            an absolute path.
        ref: The git tag, branch or commit asked for (None: the newest tag).
        trusted: The registry trusts it (or it is the bundled template).
    """

    kind: str
    source: str
    ref: str | None = None
    trusted: bool = False


@dataclass(frozen=True)
class Template:
    """A template ready to render.

    Attributes:
        source: As recorded in ``_src_path``.
        version: As recorded in ``_commit``.
        path: A local folder holding its copier.yml.
        trusted: May run tasks, migrations and any Jinja extension.
    """

    source: str
    version: str
    path: Path
    trusted: bool = False


def parse(text: str | None, *, vcs_ref: str | None = None) -> Spec:
    """Turn ``--template``'s value (or ``_src_path``) into a :class:`Spec`.

    Raises:
        TemplateError: Not a folder, a git URL, or a registry name.
    """
    if text in (None, "", "default", BUNDLED_SOURCE):
        if vcs_ref:
            raise TemplateError("--vcs-ref needs a git template; the bundled one has no refs")
        return Spec("bundled", BUNDLED_SOURCE, trusted=True)
    base, at_ref = split_ref(text)
    ref = vcs_ref or at_ref
    registry = config.load()
    if is_url(base):
        url = _expand_alias(base)
        return Spec("git", url, ref, registry.is_trusted(url))
    path = paths.normalise(base)
    if path.exists():
        return _local(path.resolve(), ref, registry)
    entry = registry.templates.get(base)
    if entry is None:
        names = ", ".join(sorted(registry.templates)) or "none yet"
        raise TemplateError(
            f"no template {text!r}: not a folder, a git URL, or a name in "
            f"{config.user_config_file()} or ${config.CONFIG_ENV} (names: {names})"
        )
    spec = parse(entry.src, vcs_ref=ref or entry.ref)
    return Spec(spec.kind, spec.source, spec.ref, spec.trusted or entry.trusted)


def split_ref(text: str) -> tuple[str, str | None]:
    """``"URL@v2"`` -> ``("URL", "v2")``; an ``@`` of ``git@host:`` or ``ssh://user@`` stays."""
    if Path(paths.expand_user(text)).exists():
        return text, None
    head, at, ref = text.rpartition("@")
    if not at or not head or not ref or ":" in ref:
        return text, None
    if "://" in head and "/" not in head.split("://", 1)[1]:
        return text, None  # ssh://git@host/...: the @ belongs to the user name
    return head, ref


def is_url(text: str) -> bool:
    """Whether ``text`` names a remote git repository rather than a local path."""
    if "://" in text or text.startswith(tuple(ALIASES)):
        return True
    first = text.split("/", 1)[0]
    return "@" in first and ":" in first  # scp-like git@host:org/repo


def _expand_alias(url: str) -> str:
    """``gh:org/repo`` -> ``https://github.com/org/repo.git`` (copier's aliases)."""
    for alias, host in ALIASES.items():
        if url.startswith(alias):
            rest = url.removeprefix(alias).lstrip("/")
            return f"{host}{rest}" + ("" if rest.endswith(".git") else ".git")
    return url


def _local(path: Path, ref: str | None, registry: config.Config) -> Spec:
    trusted = registry.is_trusted(str(path))
    if _is_git_repo(path):
        return Spec("git", str(path), ref, trusted)
    if not (path / "copier.yml").is_file():
        raise TemplateError(f"{path} is not a template: it has no copier.yml")
    if ref:
        raise TemplateError(f"--vcs-ref {ref} needs a git repository, but {path} is not one")
    return Spec("folder", str(path), None, trusted)


def _is_git_repo(path: Path) -> bool:
    if not path.is_dir():
        return False
    if git.toplevel(path) == path:
        return True
    bare = git.call(path, "rev-parse", "--is-bare-repository")
    return bare.returncode == 0 and bare.stdout.strip() == "true" and path.suffix == ".git"


@contextmanager
def fetch(spec: Spec, *, trust: bool = False) -> Iterator[Template]:
    """Make ``spec``'s template available as a local folder for as long as needed.

    A git template is cloned into a temporary folder, checked out at its ref,
    and removed afterwards.

    Args:
        spec: From :func:`parse`.
        trust: The user passed ``--trust``.

    Raises:
        TemplateError: It can't be fetched, it isn't a template, or it needs
            trust it wasn't given.
    """
    trusted = trust or spec.trusted
    if spec.kind == "bundled":
        yield Template(BUNDLED_SOURCE, bundled.bundled_version(), bundled.bundled_template(), True)
        return
    if spec.kind == "folder":
        path = Path(spec.source)
        yield _checked(Template(spec.source, content_hash(path), path, trusted))
        return
    tmp = Path(tempfile.mkdtemp(prefix="scaffold-template-"))
    try:
        checkout = tmp / "template"
        version = _clone(spec.source, spec.ref, checkout)
        yield _checked(Template(spec.source, version, checkout, trusted))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _clone(url: str, ref: str | None, dest: Path) -> str:
    """Clone ``url`` into ``dest`` at ``ref`` (or its newest tag); return the version."""
    cloned = git.call(dest.parent, "clone", "--quiet", "--no-checkout", "--", url, str(dest))
    if cloned.returncode != 0:
        raise TemplateError(f"can't clone the template {url}: {cloned.stderr.strip()}")
    if ref is None:
        ref = newest_tag(git.run(dest, "tag", "--list").split())
    commit = None
    for candidate in (ref, f"origin/{ref}") if ref else ("HEAD",):
        commit = git.rev(dest, candidate)
        if commit:
            break
    if commit is None:
        raise TemplateError(f"the template {url} has no tag, branch or commit {ref!r}")
    git.run(dest, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--force", commit)
    is_tag = ref and git.call(dest, "rev-parse", "--verify", "--quiet", f"refs/tags/{ref}")
    # A plain folder from here on: copier, given a git repository, would pick
    # its newest tag itself instead of the commit checked out.
    shutil.rmtree(dest / ".git")
    return ref if is_tag and is_tag.returncode == 0 else commit


def newest_tag(tags: list[str]) -> str | None:
    """The highest PEP 440 version among ``tags`` (``v`` prefix allowed), pre-releases skipped."""
    from packaging.version import InvalidVersion, Version

    versions = []
    for tag in tags:
        try:
            version = Version(tag)
        except InvalidVersion:
            continue
        if not version.is_prerelease:
            versions.append((version, tag))
    return max(versions)[1] if versions else None


def latest_version(spec: Spec) -> str:
    """The version an update would move to now, without cloning (``git ls-remote``)."""
    if spec.kind == "bundled":
        return bundled.bundled_version()
    if spec.kind == "folder":
        return content_hash(Path(spec.source))
    if spec.ref:
        return spec.ref
    listed = git.call(Path.cwd(), "ls-remote", "--tags", "--refs", "--", spec.source)
    if listed.returncode != 0:
        raise TemplateError(f"can't reach the template {spec.source}: {listed.stderr.strip()}")
    tags = [line.split("refs/tags/", 1)[1] for line in listed.stdout.splitlines() if line]
    newest = newest_tag(tags)
    if newest:
        return newest
    head = git.run(Path.cwd(), "ls-remote", "--", spec.source, "HEAD").split()
    return head[0] if head else "HEAD"


def content_hash(folder: Path) -> str:
    """A short hash of every file of a template folder (the version of an unversioned one)."""
    digest = hashlib.sha256()
    skip = {".git", "__pycache__", ".ruff_cache", ".pytest_cache"}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if skip & set(relative.parts) or not path.is_file() or path.suffix in (".pyc", ".pyo"):
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"sha256-{digest.hexdigest()[:16]}"


def settings(path: Path) -> dict:
    """The ``_``-prefixed settings of a template's copier.yml."""
    config_path = path / "copier.yml"
    try:
        data = yaml.safe_load(config_path.read_text()) or {}
    except OSError:
        raise TemplateError(f"{path} is not a template: it has no copier.yml") from None
    except yaml.YAMLError as error:
        raise TemplateError(f"can't read {config_path}: {error}") from None
    return {k: v for k, v in data.items() if str(k).startswith("_")}


def unsafe_features(path: Path) -> list[str]:
    """What the template would run or load beyond rendering files (copier's "unsafe")."""
    found = settings(path)
    features = []
    if found.get("_tasks"):
        features.append("tasks")
    if found.get("_migrations"):
        features.append("migrations")
    extensions = [
        str(name)
        for name in found.get("_jinja_extensions") or []
        if not str(name).startswith(SAFE_EXTENSIONS)
    ]
    if extensions:
        features.append(f"Jinja extensions ({', '.join(extensions)})")
    if found.get("_external_data"):
        features.append("external data files")
    return features


def _checked(template: Template) -> Template:
    """Refuse templates that could write outside the project or run untrusted code."""
    found = settings(template.path)
    for key in ("_subdirectory", "_answers_file"):
        value = str(found.get(key) or "")
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise TemplateError(
                f"the template {template.source} sets {key}: {value!r}, which points outside "
                "it or the project; scaffold refuses paths with '..' or absolute paths"
            )
    if found.get("_answers_file", ANSWERS_FILE) != ANSWERS_FILE:
        raise TemplateError(
            f"the template {template.source} sets _answers_file: {found['_answers_file']!r}; "
            f"scaffold updates projects through {ANSWERS_FILE}: remove the setting"
        )
    features = unsafe_features(template.path)
    if features and not template.trusted:
        raise TemplateError(
            f"the template {template.source} uses {', '.join(features)}, which run code on "
            "your machine; scaffold refuses them unless you trust the template: pass --trust, "
            f"or list it as trusted in {config.user_config_file()}"
        )
    return template
