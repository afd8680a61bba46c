"""Virtual environments holding only what a generated project declares.

A generated project's suite that passes only because scaffold's dev venv has
extra packages (numpy, say) is a failing suite. So the render tests run each
project's suite with a Python whose packages are exactly the closure of the
project's declared dependencies: ``dependencies`` plus its ``dev`` extra (and
``deepspeed`` when it has one), installed by pip from the project's own
pyproject.toml with the CPU torch pin of ``constraints.txt``.

torch is installed once, into a base folder that every project venv sees
through a ``.pth`` file (a torch install takes most of a minute; the rest of a
project's dependencies, from pip's cache, a few seconds); so is DeepSpeed, for
the projects that declare it (its CPU op is then built once). Projects that declare
the same dependencies share one venv: the closure is the same, and the render
matrix has ~50 projects but ~10 dependency lists. Each venv is built by
``pip install -e <project>[extras]``, so the project's own packaging is
exercised too, and the project is uninstalled again so the next one imports
its own ``src/``.

The venvs live in ``.venvs/`` at the top of the checkout (override with
``SCAFFOLD_TEST_VENVS``), keyed by a hash of what they hold, so a second test
run reuses them; a lock file per venv lets pytest-xdist workers build them
concurrently.

pip installs without compiling bytecode (``--no-compile``): compiling every
module of torch and of a project's dependencies was half of each install
(torch 41 s of which 21 s, a four-logger project's 51 s of which 23 s), and a
test run imports a fraction of them. The processes of the tests compile what
they import, once, into one shared folder (:func:`pycache`, Python's
``PYTHONPYCACHEPREFIX``), which also keeps bytecode out of the projects.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
# Extras installed when a project has them: tpu's torch_xla can't be installed
# beside the CPU torch CI uses (its TPU tests skip with a reason instead).
EXTRAS = ("dev", "deepspeed")
DONE = ".complete"
BASES = "_torch_base.pth"  # in a venv's site-packages: the bases it sees


def home() -> Path:
    """Where the venvs are kept."""
    return Path(os.environ.get("SCAFFOLD_TEST_VENVS", ROOT / ".venvs"))


def pycache() -> Path:
    """Where the tests' processes keep the bytecode they compile (``PYTHONPYCACHEPREFIX``)."""
    return home() / "pycache"


def declared(project: Path) -> tuple[list[str], list[str]]:
    """The project's requirement strings and the extras to install, from its pyproject."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    extras = [name for name in EXTRAS if name in meta.get("optional-dependencies", {})]
    requirements = list(meta.get("dependencies", []))
    for extra in extras:
        requirements += meta["optional-dependencies"][extra]
    return sorted(requirements), extras


def python_for(project: Path) -> Path:
    """A Python that has exactly ``project``'s declared dependencies (built on first use)."""
    bases = [_torch_base()]
    requirements, extras = declared(project)
    if "deepspeed" in extras:  # one DeepSpeed install for every DeepSpeed project
        meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        bases.append(_deepspeed_base(bases[0], meta["optional-dependencies"]["deepspeed"]))
    key = _key([*map(str, bases), *requirements])
    venv = home() / f"project-{key}"
    with locked(venv):
        if not (venv / DONE).is_file():
            _build(venv, bases, project, extras)
    return _python(venv)


def torch_extensions(python: Path | str) -> Path:
    """Where torch keeps the C++ ops ``python``'s packages build at run time.

    DeepSpeed on a CPU builds its shared-memory collective op the first time a
    process initialises it (1.5 to 4 minutes on CI's 2 cores). torch keeps such
    builds in one folder per op name, ``~/.cache/torch_extensions`` by default,
    and rebuilds when the sources' paths change: with the dev venv's DeepSpeed
    and a project venv's taking turns in one folder, each rebuilt the other's
    (15 builds in one day's test runs on this machine). One folder per
    DeepSpeed install builds each once: the project venvs share one
    (:func:`_deepspeed_base`), keyed by the bases they see; any other
    interpreter (the dev venv) has its own.
    """
    bases = _site_packages(Path(python).parent.parent) / BASES
    where = bases.read_text() if bases.is_file() else str(python)
    return home() / "torch_extensions" / _key([where])


def _torch_base() -> Path:
    """A folder holding torch (CPU build, from constraints.txt) and what torch requires."""
    torch_pin = next(
        line.strip() for line in CONSTRAINTS.read_text().splitlines() if line.startswith("torch")
    )
    base = home() / f"torch-{_key([torch_pin])}"
    with locked(base):
        if not (base / DONE).is_file():
            shutil.rmtree(base, ignore_errors=True)
            _venv(base)
            _pip(base, "install", torch_pin)
            (base / DONE).touch()
    return _site_packages(base)


def _deepspeed_base(torch_base: Path, requirements: list[str]) -> Path:
    """A folder holding DeepSpeed (``requirements``, a project's ``deepspeed`` extra)
    and what it requires beside torch, for every DeepSpeed project's venv.

    One install path for them all: DeepSpeed's CPU op is built once per run,
    not once per project venv (:func:`torch_extensions`).
    """
    base = home() / f"deepspeed-{_key([str(torch_base), *requirements])}"
    with locked(base):
        if not (base / DONE).is_file():
            shutil.rmtree(base, ignore_errors=True)
            _venv(base)
            (_site_packages(base) / BASES).write_text(f"{torch_base}\n")  # torch: not again
            _pip(base, "install", *requirements)
            (base / DONE).touch()
    return _site_packages(base)


def _build(venv: Path, bases: list[Path], project: Path, extras: list[str]) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    _venv(venv)
    # torch (and DeepSpeed) from the bases: .pth lines put their site-packages
    # after this venv's, and pip counts what they hold as installed.
    (_site_packages(venv) / BASES).write_text("".join(f"{base}\n" for base in bases))
    spec = f"{project}[{','.join(extras)}]" if extras else str(project)
    _pip(venv, "install", "--editable", spec)
    # Only the dependencies stay: every project sharing this venv imports its
    # own src/ (the generated pytest config puts it first on the path).
    name = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]
    _pip(venv, "uninstall", "--yes", name)
    (venv / DONE).touch()


def _venv(path: Path) -> None:
    # No pip inside: scaffold's own pip installs into it (pip --python).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)


def _pip(venv: Path, *args: str) -> None:
    command = [sys.executable, "-m", "pip", "--python", str(_python(venv)), *args]
    if args[0] == "install":
        command += ["--quiet", "--no-compile", "--constraint", str(CONSTRAINTS)]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command)}` failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _site_packages(venv: Path) -> Path:
    relative = Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)
    return venv / relative


def _key(parts: list[str]) -> str:
    text = "\n".join([sys.version, CONSTRAINTS.read_text(), *parts])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` (pytest-xdist workers may build the same venv at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
