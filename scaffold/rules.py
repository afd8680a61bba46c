"""Which answers go together: the one table of cross-question rules.

copier asks the questions; this module decides which combinations are valid.
The same table is used three ways:

* inside copier's prompts, through :mod:`scaffold.jinja_ext`, so an invalid
  choice is shown disabled with its reason and cannot be picked;
* by :func:`check` on a complete set of answers (``-d``, ``--answers-file``,
  ``scaffold update``), before anything is written;
* by the tests, which walk the whole answer matrix.

Every rule is attached to the *later* of the questions it relates, so it can
be evaluated as soon as that question is asked. Messages name both answers and
say what to do instead.
"""

from __future__ import annotations

import keyword
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Answers = Mapping[str, Any]

# The order copier asks the questions in (copier.yml); rules only look back.
ORDER = (
    "project_name",
    "package_name",
    "task",
    "hardware",
    "devices",
    "num_nodes",
    "strategy",
    "deepspeed_stage",
    "precision",
    "logger",
    "callbacks",
    "config",
)


def processes(answers: Answers) -> int:
    """Number of training processes the answers ask for (devices × nodes)."""
    return int(answers["devices"]) * int(answers["num_nodes"])


@dataclass(frozen=True)
class Rule:
    """One invalid combination and what to do instead.

    Attributes:
        question: The question the rule constrains (the later one asked).
        broken: True when the answers break the rule.
        message: ``str.format`` template over the answers; names the answers
            involved and the fix.
    """

    question: str
    broken: Callable[[Answers], bool]
    message: str

    def explain(self, answers: Answers) -> str:
        """The rule's message for these answers."""
        return self.message.format(processes=_safe_processes(answers), **answers)


def _safe_processes(answers: Answers) -> int | str:
    try:
        return processes(answers)
    except (KeyError, TypeError, ValueError):
        return "?"


RULES: tuple[Rule, ...] = (
    Rule(
        "devices",
        lambda a: int(a["devices"]) < 1,
        "devices={devices} must be at least 1",
    ),
    Rule(
        "devices",
        lambda a: a["hardware"] == "mps" and int(a["devices"]) > 1,
        "hardware=mps has a single device, but devices={devices}; use devices=1",
    ),
    Rule(
        "num_nodes",
        lambda a: int(a["num_nodes"]) < 1,
        "num_nodes={num_nodes} must be at least 1",
    ),
    Rule(
        "num_nodes",
        lambda a: a["hardware"] == "mps" and int(a["num_nodes"]) > 1,
        "hardware=mps runs on one Mac, but num_nodes={num_nodes}; use num_nodes=1",
    ),
    Rule(
        "strategy",
        lambda a: a["strategy"] == "xla" and a["hardware"] != "tpu",
        "strategy=xla runs on TPUs only, but hardware={hardware}; "
        "use hardware=tpu, or strategy=single_device/ddp",
    ),
    Rule(
        "strategy",
        lambda a: a["hardware"] == "tpu" and a["strategy"] != "xla",
        "hardware=tpu runs through torch_xla, but strategy={strategy}; use strategy=xla",
    ),
    Rule(
        "strategy",
        lambda a: a["strategy"] == "deepspeed" and a["hardware"] != "cuda",
        "strategy=deepspeed needs NVIDIA GPUs, but hardware={hardware}; "
        "use hardware=cuda, or strategy=ddp/fsdp",
    ),
    Rule(
        "strategy",
        lambda a: a["strategy"] in {"ddp", "fsdp"} and processes(a) == 1,
        "strategy={strategy} needs more than one process, but devices={devices} "
        "and num_nodes={num_nodes} give one; use strategy=single_device, "
        "or devices=2 or more",
    ),
    Rule(
        "strategy",
        lambda a: a["strategy"] == "single_device" and processes(a) > 1,
        "strategy=single_device trains in one process, but devices={devices} "
        "and num_nodes={num_nodes} ask for {processes}; use strategy=ddp or fsdp, "
        "or devices=1 and num_nodes=1",
    ),
    Rule(
        "deepspeed_stage",
        lambda a: a.get("deepspeed_stage") is not None and a["strategy"] != "deepspeed",
        "deepspeed_stage={deepspeed_stage} is for strategy=deepspeed, but strategy={strategy}; "
        "drop deepspeed_stage, or use strategy=deepspeed",
    ),
    Rule(
        "precision",
        lambda a: a["hardware"] == "tpu" and a["precision"] in {"16-mixed", "16-true"},
        "precision={precision} is not supported on hardware=tpu (TPUs compute "
        "in bfloat16, not float16); use precision=bf16-mixed or bf16-true",
    ),
    Rule(
        "precision",
        lambda a: a["hardware"] in {"tpu", "mps"} and a["precision"] == "64-true",
        "precision=64-true is not supported on hardware={hardware} (no float64 "
        "there); use precision=32-true",
    ),
    Rule(
        "precision",
        lambda a: a["strategy"] in {"fsdp", "deepspeed"} and a["precision"] == "64-true",
        "precision=64-true is not supported with strategy={strategy}; "
        "use precision=32-true, or strategy=ddp",
    ),
    Rule(
        "precision",
        lambda a: a["strategy"] == "deepspeed" and a["precision"] in {"16-true", "bf16-true"},
        "precision={precision} is not how strategy=deepspeed trains: DeepSpeed keeps "
        "float32 master weights beside the half-precision ones, which is "
        "precision=16-mixed or bf16-mixed here; use one of those",
    ),
    Rule(
        "callbacks",
        lambda a: "swa" in a.get("callbacks", ()) and a["strategy"] in {"fsdp", "deepspeed"},
        "callbacks=swa (StochasticWeightAveraging) keeps a full copy of the model, "
        "which strategy={strategy} shards; drop swa from the callbacks, or use strategy=ddp",
    ),
    Rule(
        "config",
        lambda a: a.get("config") == "hydra" and a["hardware"] == "tpu",
        "config=hydra is not generated for hardware=tpu yet (its TPU processes are "
        "started by torch_xla's launcher, which Hydra's entry point does not drive); "
        "use config=cli",
    ),
)

# Names that older Lightning material uses and that no longer exist upstream.
RETIRED = {
    ("strategy", "dp"): "strategy=dp was removed from Lightning 2.0 (it was slower "
    "than DDP even on one machine); use strategy=ddp",
    ("strategy", "ddp2"): "strategy=ddp2 was removed from Lightning 2.0; use strategy=ddp",
    ("strategy", "ddp_spawn"): "strategy=ddp_spawn is not generated: scaffold "
    "projects launch with torchrun; use strategy=ddp",
    ("hardware", "ipu"): "hardware=ipu was removed from Lightning 2.0 with "
    "Graphcore's IPU support; use hardware=cuda",
    ("hardware", "hpu"): "hardware=hpu is not supported; use hardware=cuda",
    ("hardware", "gpu"): "hardware=gpu is spelled hardware=cuda here (or mps on Apple silicon)",
    ("precision", "16"): "precision=16 is Lightning 1.x's name; use 16-mixed",
    ("precision", "bf16"): "precision=bf16 is Lightning 1.x's name; use bf16-mixed",
    ("precision", "32"): "precision=32 is Lightning 1.x's name; use 32-true",
    ("precision", "64"): "precision=64 is Lightning 1.x's name; use 64-true",
}


def why_invalid(question: str, answers: Answers) -> str:
    """The first broken rule's message for ``question``, or ``""`` if none.

    Args:
        question: The question being answered.
        answers: Every answer so far, including the one to ``question``.
    """
    for rule in RULES:
        if rule.question == question and rule.broken(answers):
            return rule.explain(answers)
    return ""


def check(answers: Answers) -> str:
    """Check a complete set of answers, in question order.

    Args:
        answers: Answers to every question in :data:`ORDER` that rules use.

    Returns:
        The message of the first broken rule, or ``""`` when all hold.
    """
    for question in ORDER:
        if question == "package_name" and question in answers:
            if message := package_name_problem(answers[question]):
                return message
        for rule in RULES:
            if rule.question != question:
                continue
            if rule.broken(answers):
                return rule.explain(answers)
    return ""


def default_strategy(answers: Answers) -> str:
    """The strategy Lightning's ``strategy="auto"`` would pick for the answers."""
    if answers["hardware"] == "tpu":
        return "xla"
    return "ddp" if processes(answers) > 1 else "single_device"


def retired(question: str, value: Any) -> str:
    """The message for a name retired upstream, or ``""``."""
    return RETIRED.get((question, str(value).lower()), "")


# ---------------------------------------------------------------- names

# Top-level packages a project's package must not shadow: importing any of them
# from inside the project would pick up the project instead.
COMMON_PACKAGES = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "torchtext",
        "torchmetrics",
        "lightning",
        "pytorch_lightning",
        "numpy",
        "scipy",
        "pandas",
        "sklearn",
        "matplotlib",
        "yaml",
        "tqdm",
        "wandb",
        "mlflow",
        "tensorboard",
        "transformers",
        "datasets",
        "tokenizers",
        "accelerate",
        "deepspeed",
        "jax",
        "tensorflow",
        "keras",
        "hydra",
        "omegaconf",
        "pytest",
        "setuptools",
        "pip",
        "click",
        "copier",
        "jinja2",
        "scaffold",
        "src",
        "tests",
        "test",
    }
)


def package_name_for(project_name: str) -> str:
    """Derive an importable package name from a project name (``My-Exp`` → ``my_exp``)."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", str(project_name)).strip("_").lower()
    if name and name[0].isdigit():
        name = f"exp_{name}"
    return name[:MAX_NAME_LENGTH] or "experiment"


def project_name_for(folder: str) -> str:
    """A valid project name close to a folder's name (``my exp`` → ``my-exp``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(folder)).strip("-._")
    return name[:MAX_NAME_LENGTH].rstrip("-._") or "my-exp"


# Names are written into generated code; longer ones would push lines past
# the formatter's width. 40 characters is far beyond any usual package name.
MAX_NAME_LENGTH = 40


def package_name_problem(name: str) -> str:
    """Why ``name`` can't be the project's Python package, or ``""``."""
    if len(name or "") > MAX_NAME_LENGTH:
        return (
            f"package_name={name!r} is longer than {MAX_NAME_LENGTH} characters; "
            "choose a shorter one"
        )
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name or ""):
        return (
            f"package_name={name!r} is not a valid Python package name; use "
            "lowercase letters, digits and underscores, not starting with a digit "
            f"(for example {package_name_for(name)!r})"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"package_name={name!r} is a Python keyword; use e.g. {name + '_exp'!r}"
    if name in sys.stdlib_module_names or name in COMMON_PACKAGES:
        return (
            f"package_name={name!r} would shadow the {name!r} package that the "
            f"project imports; use e.g. {name + '_exp'!r}"
        )
    return ""


def project_name_problem(name: str) -> str:
    """Why ``name`` can't be the project's distribution name, or ``""``."""
    if len(name or "") > MAX_NAME_LENGTH:
        return (
            f"project_name={name!r} is longer than {MAX_NAME_LENGTH} characters; "
            "choose a shorter one"
        )
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name or ""):
        return (
            f"project_name={name!r} is not a valid project name; use letters, "
            "digits, '-', '_' and '.', starting and ending with a letter or digit"
        )
    return ""
