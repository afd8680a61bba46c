"""`scaffold new` answered by hand, in a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect
import pytest
import yaml

DOWN, ENTER, BACKSPACE = "\x1b[B", "\r", "\x7f"
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")

pytestmark = pytest.mark.interactive


class Terminal:
    """A scaffold process behind a pty; `answer` waits for a prompt, then types."""

    def __init__(self, *args: str, columns: int = 200) -> None:
        env = {**os.environ, "TERM": "xterm", "COLUMNS": str(columns), "LINES": "50"}
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "scaffold", *args],
            encoding="utf-8",
            timeout=30,
            dimensions=(50, columns),
            env=env,
        )
        self.screen = ""

    def expect(self, text: str) -> str:
        self.child.expect(re.escape(text))
        shown = ANSI.sub("", self.child.before + self.child.after)
        self.screen += shown
        return shown

    def answer(self, prompt: str, keys: str) -> str:
        shown = self.expect(prompt)
        self.child.send(keys)
        return shown

    def finish(self) -> int:
        self.child.expect(pexpect.EOF)
        self.screen += ANSI.sub("", self.child.before)
        self.child.close()
        return self.child.exitstatus


def test_interactive_new_offers_only_valid_choices(tmp_path: Path) -> None:
    dest = tmp_path / "lab-exp"
    term = Terminal("new", str(dest))
    term.answer("Project name", ENTER)  # default: the folder's name
    # A wrong answer first: a package name that would shadow torch.
    term.answer("Python package name", BACKSPACE * 20 + "torch" + ENTER)
    term.expect("would shadow the 'torch' package")
    term.child.send(BACKSPACE * 10 + "lab" + ENTER)
    term.answer("What the model learns", DOWN * 4 + ENTER)  # language_model
    term.expect("Where it trains")
    term.expect("TPU (torch_xla)")
    term.child.send(DOWN * 2 + ENTER)  # mps
    term.answer("Devices", ENTER)
    term.answer("Number of machines", ENTER)
    # One mps device leaves one strategy: not asked.
    assert "How training is distributed" not in term.expect("Numeric precision")
    # On mps, 64-true is shown but disabled, with the reason.
    term.expect("precision=64-true is not supported on hardware=mps")
    term.child.send(DOWN * 2 + ENTER)  # bf16-mixed
    # Multiselects: the defaults come ticked. Space unticks TensorBoard, ticks CSV.
    term.answer("Where metrics go", " " + DOWN * 3 + " " + ENTER)
    # Space ticks EarlyStopping too.
    term.answer("Callbacks to include", " " + ENTER)
    term.answer("How runs are configured", DOWN + ENTER)  # hydra
    assert term.finish() == 0, term.screen
    assert "Created lab-exp" in term.screen
    assert "(single_device, bf16-mixed)" in term.screen
    assert "python -m lab fit" in term.screen

    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert answers["package_name"] == "lab"
    assert (answers["task"], answers["hardware"]) == ("language_model", "mps")
    assert (answers["precision"], answers["logger"]) == ("bf16-mixed", ["csv"])
    assert "strategy" not in answers  # not asked, so not recorded
    assert answers["callbacks"] == ["early_stopping", "lr_monitor", "model_checkpoint"]
    assert answers["config"] == "hydra" and (dest / "configs" / "config.yaml").is_file()


def test_interactive_strategy_choices_follow_the_device_count(tmp_path: Path) -> None:
    term = Terminal("new", str(tmp_path / "exp"))
    for prompt in ("Project name", "Python package name", "What the model learns"):
        term.answer(prompt, ENTER)
    term.answer("Where it trains", ENTER)
    term.answer("Devices", BACKSPACE * 3 + "2" + ENTER)
    term.answer("Number of machines", ENTER)
    shown = term.expect("DeepSpeed")
    assert "strategy=single_device trains in one process" in shown
    assert "strategy=deepspeed needs NVIDIA GPUs" in shown + term.expect("XLA")
    term.child.sendcontrol("c")
    term.finish()
    assert not (tmp_path / "exp").exists()  # interrupted: nothing written


def test_interactive_deepspeed_asks_its_stage(tmp_path: Path) -> None:
    dest = tmp_path / "zero"
    term = Terminal("new", str(dest))
    for prompt in ("Project name", "Python package name", "What the model learns"):
        term.answer(prompt, ENTER)
    term.answer("Where it trains", DOWN + ENTER)  # cuda
    term.answer("Devices", BACKSPACE * 3 + "2" + ENTER)
    term.answer("Number of machines", ENTER)
    term.answer("How training is distributed", DOWN * 2 + ENTER)  # ddp is offered first
    term.answer("DeepSpeed ZeRO stage", DOWN + ENTER)  # 3
    term.expect("Numeric precision")
    term.expect("precision=bf16-true is not how strategy=deepspeed trains")
    term.child.send(ENTER)  # 32-true
    term.answer("Where metrics go", ENTER)
    term.answer("Callbacks to include", ENTER)
    term.answer("How runs are configured", ENTER)  # cli, the default
    assert term.finish() == 0, term.screen
    assert 'pip install -e ".[dev,deepspeed]"' in term.screen
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert (answers["strategy"], answers["deepspeed_stage"]) == ("deepspeed", 3)


def flat(text: str) -> str:
    """Text without whitespace: a message wrapped over several rows reads as one."""
    return re.sub(r"\s", "", text)


def test_messages_are_whole_in_an_80_column_terminal(tmp_path: Path) -> None:
    term = Terminal("new", str(tmp_path / "exp"), columns=80)
    term.answer("Project name", BACKSPACE * 5 + "-bad" + ENTER)
    shown = term.expect("ending with a letter or digit")
    message = (
        "project_name='-bad' is not a valid project name; use letters, digits, '-', '_' "
        "and '.', starting and ending with a letter or digit"
    )
    assert flat(message) in flat(shown)
    assert "Validation error for question" not in shown  # as -d says it, without copier's prefix
    term.child.send(BACKSPACE * 5 + "ok" + ENTER)
    for prompt in ("Python package name", "What the model learns", "Where it trains"):
        term.answer(prompt, ENTER)
    # A value that is no number: the reason -d gives, not copier's "Invalid input".
    term.answer("Devices", BACKSPACE * 3 + "two" + ENTER)
    shown = term.expect("devices=1")
    assert "devices='two' is not a whole number; e.g. devices=1" in shown
    assert "Invalid input" not in shown
    term.child.send(BACKSPACE * 3 + "2" + ENTER)
    term.answer("Number of machines", ENTER)
    # A disabled choice's reason, longer than the terminal is wide, whole.
    shown = term.expect("XLA") + term.expect("strategy=single_device/ddp")
    reason = (
        "strategy=single_device trains in one process, but devices=2 and num_nodes=1 ask "
        "for 2; use strategy=ddp or fsdp, or devices=1 and num_nodes=1"
    )
    assert flat(reason) in flat(shown)
    assert flat("hardware=cpu; use hardware=tpu, or strategy=single_device/ddp") in flat(shown)
    term.child.sendcontrol("c")
    term.finish()
    assert not (tmp_path / "exp").exists()
