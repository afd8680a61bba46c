"""`scaffold new` and `scaffold --help/--version` through click's CliRunner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT, snapshot

from scaffold import __version__
from scaffold.cli import main

COPIER_YML = yaml.safe_load((ROOT / "templates" / "default" / "copier.yml").read_text())
QUESTIONS = {
    name: spec
    for name, spec in COPIER_YML.items()
    if not name.startswith("_") and str(spec.get("when", "")).lower() != "false"
}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=True
    ).stdout


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_every_question_with_its_choices_and_default() -> None:
    result = invoke("new", "--help")
    assert result.exit_code == 0
    flat = " ".join(result.output.split())
    for name, spec in QUESTIONS.items():
        assert f" {name} " in flat, name
        choices = spec.get("choices") or {}
        values = [v["value"] if isinstance(v, dict) else v for v in choices.values()]
        for value in values:
            assert str(value) in flat, (name, value)
        default = spec.get("default")
        if isinstance(default, list):  # as -d takes it: comma-separated
            default = ",".join(default)
        if "{{" not in str(default):
            assert f"default: {default}" in flat, name


def test_scaffold_help_starts_without_importing_copier_or_torch() -> None:
    code = (
        "import sys; from scaffold.cli import main\n"
        "try: main(['new', '--help'])\n"
        "except SystemExit: pass\n"
        "heavy = [m for m in ('copier', 'torch', 'questionary') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_new_with_defaults_makes_one_clean_commit(tmp_path: Path) -> None:
    result = invoke("new", str(tmp_path / "my-exp"), "--defaults")
    assert result.exit_code == 0, result.output
    project = tmp_path / "my-exp"
    assert "cd " in result.output and "pip install -e" in result.output
    assert "python -m my_exp fit" in result.output
    assert git(project, "log", "--format=%s").splitlines() == [
        f"Generate my-exp with scaffold {__version__}"
    ]
    assert git(project, "status", "--porcelain") == ""  # everything is committed
    tracked = git(project, "ls-files").split()
    assert "src/my_exp/engine/trainer.py" in tracked


def test_answers_file_records_template_identity_without_local_paths(tmp_path: Path) -> None:
    invoke("new", str(tmp_path / "my-exp"), "--defaults", "-d", "logger=csv")
    answers = yaml.safe_load((tmp_path / "my-exp" / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == "scaffold:default"
    assert answers["_commit"] == __version__
    assert answers["logger"] == ["csv"] and answers["project_name"] == "my-exp"
    text = (tmp_path / "my-exp" / ".copier-answers.yml").read_text()
    assert str(tmp_path) not in text and "site-packages" not in text and str(ROOT) not in text


def test_new_fills_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    result = invoke("new", str(tmp_path / "exp"), "--defaults")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "exp" / "src" / "exp" / "module.py").is_file()


def test_new_creates_missing_parent_folders(tmp_path: Path) -> None:
    result = invoke("new", str(tmp_path / "a" / "b" / "exp"), "--defaults")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "b" / "exp" / "pyproject.toml").is_file()


def test_answers_file_then_data_overrides(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yml"
    answers.write_text(yaml.safe_dump({"task": "autoencoder", "logger": "csv", "_src_path": "x"}))
    result = invoke(
        "new",
        str(tmp_path / "ae"),
        "--defaults",
        "--answers-file",
        str(answers),
        "-d",
        "logger=none",
    )
    assert result.exit_code == 0, result.output
    made = yaml.safe_load((tmp_path / "ae" / ".copier-answers.yml").read_text())
    assert (made["task"], made["logger"]) == ("autoencoder", [])
    assert not (tmp_path / "ae" / "src" / "ae" / "engine" / "loggers").exists()


@pytest.mark.parametrize("given", ["logger=wandb,csv", "logger=[wandb, csv]", "logger=csv,wandb"])
def test_several_loggers_at_once(tmp_path: Path, given: str) -> None:
    result = invoke("new", str(tmp_path / "p"), "--defaults", "-d", given)
    assert result.exit_code == 0, result.output
    assert "loggers wandb, csv" in result.output  # in the order the question lists them
    made = yaml.safe_load((tmp_path / "p" / ".copier-answers.yml").read_text())
    assert made["logger"] == ["wandb", "csv"]
    loggers = tmp_path / "p" / "src" / "p" / "engine" / "loggers"
    files = sorted(p.name for p in loggers.iterdir())
    assert files == ["__init__.py", "csv_logs.py", "wandb_logs.py"]
    pyproject = (tmp_path / "p" / "pyproject.toml").read_text()
    assert '"wandb>=' in pyproject and '"tensorboard>=' not in pyproject
    assert '"mlflow' not in pyproject


@pytest.mark.parametrize("given", ["logger=", "logger=none", "logger=[]", "logger=[none]"])
def test_no_logger_renders_no_logger_code(tmp_path: Path, given: str) -> None:
    result = invoke("new", str(tmp_path / "p"), "--defaults", "-d", given)
    assert result.exit_code == 0, result.output
    assert "no logger" in result.output
    assert yaml.safe_load((tmp_path / "p" / ".copier-answers.yml").read_text())["logger"] == []
    src = tmp_path / "p" / "src" / "p"
    assert not (src / "engine" / "loggers").exists()
    code = "".join(path.read_text() for path in src.rglob("*.py"))
    assert "loggers import" not in code and "create_loggers" not in code
    assert not list((tmp_path / "p" / "tests").glob("*records*"))


def test_none_with_a_logger_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    result = invoke("new", str(tmp_path / "p"), "--defaults", "-d", "logger=none,csv")
    assert result.exit_code == 2
    assert "logger=none,csv asks for none and some at once" in result.output
    assert not (tmp_path / "p").exists()


def test_callbacks_are_a_multiselect_answer(tmp_path: Path) -> None:
    result = invoke(
        "new", str(tmp_path / "p"), "--defaults", "-d", "callbacks=early_stopping,model_checkpoint"
    )
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((tmp_path / "p" / ".copier-answers.yml").read_text())
    assert answers["callbacks"] == ["early_stopping", "model_checkpoint"]
    code = (tmp_path / "p" / "src" / "p" / "engine" / "callbacks.py").read_text()
    assert "class EarlyStopping" in code and "class ModelCheckpoint" in code
    assert "class LearningRateMonitor" not in code  # only what was chosen

    result = invoke("new", str(tmp_path / "q"), "--defaults", "-d", "callbacks=[]")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "q" / "src" / "q" / "engine" / "callbacks.py").exists()


def test_deepspeed_stage_is_asked_for_deepspeed_only(tmp_path: Path) -> None:
    result = invoke(
        "new",
        str(tmp_path / "z3"),
        "--defaults",
        *("-d", "hardware=cuda", "-d", "devices=4", "-d", "strategy=deepspeed"),
        *("-d", "deepspeed_stage=3"),
    )
    assert result.exit_code == 0, result.output
    assert 'pip install -e ".[dev,deepspeed]"' in result.output  # its optional dependency
    assert "scripts/train.sh" in result.output  # torchrun starts a process per device
    answers = yaml.safe_load((tmp_path / "z3" / ".copier-answers.yml").read_text())
    assert (answers["strategy"], answers["deepspeed_stage"]) == ("deepspeed", 3)
    config = yaml.safe_load((tmp_path / "z3" / "configs" / "default.yaml").read_text())
    assert config["strategy"]["stage"] == 3
    assert '"deepspeed>=' in (tmp_path / "z3" / "pyproject.toml").read_text()

    result = invoke("new", str(tmp_path / "ddp"), "--defaults", "-d", "devices=2")
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((tmp_path / "ddp" / ".copier-answers.yml").read_text())
    assert answers["strategy"] == "ddp" and "deepspeed_stage" not in answers
    assert "deepspeed" not in (tmp_path / "ddp" / "pyproject.toml").read_text()


def test_no_git(tmp_path: Path) -> None:
    result = invoke("new", str(tmp_path / "p"), "--defaults", "--no-git")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "p" / ".git").exists()
    assert (tmp_path / "p" / "pyproject.toml").is_file()


def test_answer_from_a_previous_project_reproduces_it(tmp_path: Path) -> None:
    invoke("new", str(tmp_path / "one"), "--defaults", "-d", "task=language_model")
    result = invoke(
        "new",
        str(tmp_path / "two"),
        "--defaults",
        "--answers-file",
        str(tmp_path / "one" / ".copier-answers.yml"),
        "-d",
        "project_name=two",
        "-d",
        "package_name=two",
    )
    assert result.exit_code == 0, result.output
    assert "class LanguageModel" in (tmp_path / "two" / "src" / "two" / "module.py").read_text()


BAD_ANSWERS = [
    (["-d", "tsk=image"], "unknown question 'tsk'; did you mean 'task'?"),
    (["-d", "task=segmentation"], "task='segmentation' is not a choice"),
    (["-d", "logger=tensorbord"], "did you mean 'tensorboard'?"),
    (["-d", "devices=two"], "devices='two' is not a whole number"),
    (["-d", "devices=0"], "devices=0 must be at least 1"),
    (["-d", "package_name=class"], "package_name='class' is a Python keyword"),
    (["-d", "package_name=json"], "would shadow the 'json' package"),
    (["-d", "package_name=torch"], "would shadow the 'torch' package"),
    (["-d", "package_name=My-Exp"], "not a valid Python package name"),
    (["-d", "project_name=-exp"], "project_name='-exp' is not a valid project name"),
    (["-d", "module_class=X"], "derived from the other answers"),
    (
        ["-d", "hardware=mps", "-d", "precision=64-true"],
        "precision=64-true is not supported on hardware=mps",
    ),
    (
        ["-d", "strategy=ddp"],
        "strategy=ddp needs more than one process, but devices=1 and num_nodes=1",
    ),
    (["-d", "strategy=deepspeed"], "strategy=deepspeed needs NVIDIA GPUs, but hardware=cpu"),
    (["-d", "strategy=xla"], "strategy=xla runs on TPUs only, but hardware=cpu"),
    (["-d", "strategy=dp"], "strategy=dp was removed from Lightning 2.0"),
    (["-d", "precision=16"], "precision=16 is Lightning 1.x's name; use 16-mixed"),
    (["-d", "hardware=ipu"], "hardware=ipu was removed"),
    (["-d", "hardware=tpu", "-d", "strategy=ddp"], "hardware=tpu runs through torch_xla"),
    (["-d", "hardware=mps", "-d", "devices=2"], "hardware=mps has a single device, but devices=2"),
    (["-d", "devices=2", "-d", "strategy=single_device"], "strategy=single_device trains in one"),
    (
        ["-d", "devices=2", "-d", "strategy=fsdp", "-d", "callbacks=swa"],
        "callbacks=swa (StochasticWeightAveraging) keeps a full copy of the model",
    ),
    (
        ["-d", "hardware=cuda", "-d", "strategy=deepspeed", "-d", "precision=bf16-true"],
        "precision=bf16-true is not how strategy=deepspeed trains",
    ),
    (["-d", "deepspeed_stage=1"], "deepspeed_stage=1 is not a choice; choose one of 2, 3"),
    (
        ["-d", "devices=2", "-d", "deepspeed_stage=3"],
        "deepspeed_stage=3 is for strategy=deepspeed, but strategy=ddp",
    ),
    (["-d", "callbacks=early_stoping"], "did you mean 'early_stopping'?"),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD_ANSWERS, ids=[" ".join(a) for a, _ in BAD_ANSWERS]
)
def test_bad_answers_fail_with_one_message_and_write_nothing(tmp_path: Path, args, message) -> None:
    # A destination whose parents don't exist yet: they must not be left behind.
    before = snapshot(tmp_path)
    result = invoke("new", str(tmp_path / "new" / "exp"), "--defaults", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert snapshot(tmp_path) == before


def test_existing_non_empty_destination_is_refused_and_kept(tmp_path: Path) -> None:
    dest = tmp_path / "exp"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    result = invoke("new", str(dest), "--defaults")
    assert result.exit_code == 1
    assert "already exists and is not empty" in result.output
    assert snapshot(tmp_path) == before


def test_destination_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "exp").write_text("mine")
    before = snapshot(tmp_path)
    result = invoke("new", str(tmp_path / "exp"), "--defaults")
    assert result.exit_code == 1 and "is a file" in result.output
    assert snapshot(tmp_path) == before


def test_destination_inside_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    result = invoke("new", str(tmp_path / "notes.txt" / "exp"), "--defaults")
    assert result.exit_code == 1
    assert "notes.txt is a file, so" in result.output
    assert snapshot(tmp_path) == before


def test_unwritable_parent_is_refused() -> None:
    # /proc refuses new folders even to root, unlike a chmod'ed folder.
    result = invoke("new", "/proc/scaffold-test/exp", "--defaults")
    assert result.exit_code == 1
    assert "can't create /proc/scaffold-test: " in result.output
    assert "so /proc/scaffold-test/exp can't be made" in result.output
    assert not Path("/proc/scaffold-test").exists()


def test_no_terminal_and_no_defaults_says_how_to_answer(tmp_path: Path) -> None:
    result = invoke("new", str(tmp_path / "exp"))
    assert result.exit_code == 2
    assert "pass --defaults" in result.output
    assert not (tmp_path / "exp").exists()


def test_malformed_data_option_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("new", str(tmp_path / "exp"), "--defaults", "-d", "task")
    assert result.exit_code == 2
    assert "is not KEY=VALUE" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "can't read --answers-file"),
        ("task: [unclosed", "is not valid YAML"),
        ("- task\n- logger\n", "is not a mapping of question: answer"),
    ],
)
def test_a_bad_answers_file_fails_with_one_message_and_writes_nothing(
    tmp_path: Path, content, message
) -> None:
    answers = tmp_path / "answers.yml"
    if content is not None:
        answers.write_text(content)
    result = invoke("new", str(tmp_path / "p"), "--defaults", "--answers-file", str(answers))
    assert result.exit_code == 2, result.output
    assert message in result.output and "pass a YAML file of answers" in result.output
    assert not (tmp_path / "p").exists()


def test_help_shows_how_to_give_several_callbacks() -> None:
    result = invoke("new", "--help")
    flat = " ".join(result.output.split())
    assert "default: lr_monitor,model_checkpoint" in flat
    assert "several: -d callbacks=early_stopping,lr_monitor; none: -d callbacks=]" in flat
    assert "['lr_monitor'" not in flat  # never a Python list


def test_strategy_is_asked_only_when_the_answers_leave_a_choice(tmp_path: Path) -> None:
    # copier.yml's `when` lists the choices again: they must stay equal.
    strategy = COPIER_YML["strategy"]
    listed = strategy["when"].split("several_valid(")[1].split(")")[0]
    values = [v["value"] for v in strategy["choices"].values()]
    assert [part.strip(" '") for part in listed.split(",")[1:]] == values

    result = invoke("new", str(tmp_path / "one"), "--defaults")  # one CPU process
    assert result.exit_code == 0, result.output
    assert "(single_device, 32-true)" in result.output
    assert "strategy" not in yaml.safe_load((tmp_path / "one" / ".copier-answers.yml").read_text())
    result = invoke("new", str(tmp_path / "two"), "--defaults", "-d", "devices=2")
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((tmp_path / "two" / ".copier-answers.yml").read_text())
    assert answers["strategy"] == "ddp"


@pytest.mark.parametrize(
    ("folder", "suggested"), [("my exp", "my-exp"), ("_tmp", "tmp"), ("日本", "my-exp")]
)
def test_a_folder_name_that_is_no_project_name_says_how_to_choose_one(
    tmp_path: Path, folder: str, suggested: str
) -> None:
    before = snapshot(tmp_path)
    result = invoke("new", str(tmp_path / folder), "--defaults")
    assert result.exit_code == 2, result.output
    assert f"project_name={folder!r} is not a valid project name" in result.output
    assert f"defaults to the folder's name {folder!r}" in result.output
    assert f"pass -d project_name={suggested}" in result.output
    assert snapshot(tmp_path) == before
    result = invoke("new", str(tmp_path / folder), "--defaults", "-d", f"project_name={suggested}")
    assert result.exit_code == 0, result.output


def test_an_answers_file_from_another_project_keeps_its_choices_not_its_names(
    tmp_path: Path,
) -> None:
    one = tmp_path / "one"
    assert (
        invoke("new", str(one), "--defaults", "--no-git", "-d", "task=autoencoder").exit_code == 0
    )
    other = str(one / ".copier-answers.yml")

    result = CliRunner().invoke(
        main, ["new", str(tmp_path / "two"), "--defaults", "--no-git", "--answers-file", other]
    )
    assert result.exit_code == 0, result.output
    made = yaml.safe_load((tmp_path / "two" / ".copier-answers.yml").read_text())
    assert (made["task"], made["project_name"], made["package_name"]) == ("autoencoder",) + (
        "two",
    ) * 2
    assert "not using the names in" in result.stderr
    assert "package_name='one', project_name='one'" in result.stderr

    # A name given with -d is used; the note names only the one left out.
    result = CliRunner().invoke(
        main,
        ["new", str(tmp_path / "three"), "--defaults", "--no-git", "--answers-file", other]
        + ["-d", "project_name=exp-three"],
    )
    assert result.exit_code == 0, result.output
    made = yaml.safe_load((tmp_path / "three" / ".copier-answers.yml").read_text())
    assert (made["project_name"], made["package_name"]) == ("exp-three", "exp_three")
    assert "package_name='one'" in result.stderr and "project_name=" not in result.stderr
