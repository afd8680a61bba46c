"""`scaffold update`, `adopt`, `check` and `diff`: real git repos, real copier renders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import make_project, run_project_tests
from gitrepo import (
    answers,
    commit_all,
    git,
    invoke,
    isolated,  # noqa: F401 (autouse)
    next_release,
    state,
    template_copy,
    template_repo,
    use_bundled,
)

from scaffold import __version__

MODULE = "src/my_exp/module.py"
EDIT = "\n# my note: try a cosine schedule\n"


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Path:
    """One default project (rendered once); tests work on copies of it."""
    return make_project(tmp_path_factory.mktemp("pristine") / "my-exp").path


@pytest.fixture
def project(pristine, tmp_path) -> Path:
    """A copy of the default project, with one edit of the user's committed."""
    path = tmp_path / "my-exp"
    shutil.copytree(pristine, path)
    with (path / MODULE).open("a") as module:
        module.write(EDIT)
    commit_all(path, "my edit")
    return path


def merge_parents(path: Path) -> list[str]:
    return git(path, "rev-list", "--parents", "-n", "1", "HEAD").split()[1:]


def assert_clean_merge(path: Path) -> None:
    assert git(path, "status", "--porcelain") == ""
    assert git(path, "ls-files", "-u") == ""
    assert len(merge_parents(path)) == 2
    assert "Scaffold-Render:" in git(path, "log", "-1", "--format=%B", "HEAD^2")


# Scenario 1: `pip install -U scaffold` changed the bundled template; the old one is gone.


def test_update_after_an_upgrade_brings_changes_and_keeps_edits(tmp_path, monkeypatch) -> None:
    old = template_copy(tmp_path / "old-install")
    use_bundled(monkeypatch, old, "0.1.0")
    path = make_project(tmp_path / "my-exp").path
    sampling = path / "src/my_exp/engine/sampling.py"
    sampling.write_text(sampling.read_text() + "\n# tuned for our cluster\n")
    (path / MODULE).write_text((path / MODULE).read_text() + EDIT)
    (path / "NOTES.md").write_text("mine\n")
    commit_all(path)
    shutil.rmtree(old)  # the old template's files are no longer on disk

    use_bundled(monkeypatch, next_release(tmp_path / "new-install"), "0.2.0")
    result = invoke("check", path)
    assert result.exit_code == 1 and "0.1.0 -> 0.2.0" in result.output

    result = invoke("update", path)
    assert result.exit_code == 0, result.output
    assert "Seeds and RNG state" in (path / "src/my_exp/engine/rng.py").read_text()
    samplers = (path / "src/my_exp/engine/samplers.py").read_text()
    assert "A resumable sampler whose order" in samplers  # the template's edit ...
    assert "# tuned for our cluster" in samplers  # ... and the user's, at the new path
    assert not sampling.exists()
    assert (path / MODULE).read_text().endswith(EDIT)
    assert (path / "NOTES.md").read_text() == "mine\n"
    assert (path / "configs/seed.yaml").read_text() == "seed: 42\n"  # a new question's default
    assert answers(path)["_commit"] == "0.2.0" and answers(path)["seed"] == 42
    made_with = yaml.safe_load((path / "src/my_exp/made_with.yml").read_text())  # runs record it
    assert made_with["template"]["version"] == "0.2.0" and made_with["answers"]["seed"] == 42
    for line in ("updated  src/my_exp/engine/rng.py", "added    configs/seed.yaml"):
        assert line in result.output
    renamed = "samplers.py  (from src/my_exp/engine/sampling.py, with your edits)"
    assert f"renamed  src/my_exp/engine/{renamed}" in result.output
    assert_clean_merge(path)
    assert invoke("check", path).exit_code == 0
    again = invoke("update", path)
    assert again.exit_code == 0 and "Already up to date" in again.output


# Scenario 2: a fresh clone on another machine.


def test_update_in_a_fresh_clone(project, tmp_path, monkeypatch) -> None:
    clone = tmp_path / "elsewhere" / "my-exp"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    use_bundled(monkeypatch, next_release(tmp_path / "new-install"), "0.2.0")
    result = invoke("update", clone)
    assert result.exit_code == 0, result.output
    assert (clone / "configs/seed.yaml").is_file()
    assert (clone / MODULE).read_text().endswith(EDIT)
    assert_clean_merge(clone)


def test_shallow_clone_says_to_unshallow(project, tmp_path) -> None:
    clone = tmp_path / "shallow"
    url = f"file://{project}"
    subprocess.run(["git", "clone", "-q", "--depth", "1", url, str(clone)], check=True)
    result = invoke("update", clone, "-d", "logger=csv")
    assert result.exit_code == 1 and "git fetch --unshallow" in result.output


# Scenario 3: team templates in git (newest tag, --vcs-ref) and plain folders.


def test_git_template_updates_to_the_newest_tag_or_a_ref(tmp_path, monkeypatch) -> None:
    repo = template_repo(tmp_path / "team-template")
    monkeypatch.chdir(tmp_path)
    result = invoke("new", "my-exp", "--defaults", "--template", "team-template@v1.0.0")
    assert result.exit_code == 0, result.output
    path = tmp_path / "my-exp"
    assert answers(path)["_src_path"] == str(repo)  # absolute, never relative
    assert answers(path)["_commit"] == "v1.0.0"
    (path / MODULE).write_text((path / MODULE).read_text() + EDIT)
    commit_all(path)

    checked = invoke("check", path)
    assert checked.exit_code == 1 and "v1.0.0 -> v1.1.0" in checked.output
    result = invoke("update", path)
    assert result.exit_code == 0, result.output
    rng = path / "src/my_exp/engine/rng.py"
    assert "Seeds (v1.1)" in rng.read_text() and answers(path)["_commit"] == "v1.1.0"
    assert_clean_merge(path)

    result = invoke("update", path, "--vcs-ref", "main")
    assert result.exit_code == 0, result.output
    assert "Seeds (main)" in rng.read_text()
    assert answers(path)["_commit"] == git(repo, "rev-parse", "main").strip()
    assert (path / MODULE).read_text().endswith(EDIT)
    assert_clean_merge(path)


def test_folder_template_not_in_git(tmp_path) -> None:
    folder = template_copy(tmp_path / "tpl")
    result = invoke("new", tmp_path / "my-exp", "--defaults", "--template", folder)
    assert result.exit_code == 0, result.output
    path = tmp_path / "my-exp"
    recorded = answers(path)
    assert recorded["_src_path"] == str(folder) and recorded["_commit"].startswith("sha256-")
    assert invoke("check", path).exit_code == 0

    rng = folder / "project/src/{{package_name}}/engine/rng.py"
    rng.write_text(rng.read_text().replace("Seeds and random-generator state", "Seeds (edited)"))
    assert invoke("check", path).exit_code == 1
    result = invoke("update", path)
    assert result.exit_code == 0, result.output
    assert "Seeds (edited)" in (path / "src/my_exp/engine/rng.py").read_text()
    assert answers(path)["_commit"] != recorded["_commit"]
    assert_clean_merge(path)


def test_relative_src_path_is_relative_to_the_project(tmp_path, monkeypatch) -> None:
    folder = template_copy(tmp_path / "tpl")
    assert invoke("new", tmp_path / "my-exp", "--defaults", "--template", folder).exit_code == 0
    path = tmp_path / "my-exp"
    answers_file = path / ".copier-answers.yml"
    answers_file.write_text(answers_file.read_text().replace(str(folder), "../tpl"))
    commit_all(path, "copier wrote a relative _src_path")
    rng = folder / "project/src/{{package_name}}/engine/rng.py"
    rng.write_text(rng.read_text().replace("Seeds and random-generator state", "Seeds (edited)"))
    monkeypatch.chdir(tmp_path / "tpl" / "project")  # anywhere but the project's parent
    assert invoke("check", path).exit_code == 1
    result = invoke("update", path)
    assert result.exit_code == 0, result.output
    assert "Seeds (edited)" in (path / "src/my_exp/engine/rng.py").read_text()
    assert answers(path)["_src_path"] == str(folder)


# Scenario 4: changed answers add the code they need and remove what only the old ones needed.


def test_changed_answers_add_and_remove_code_and_keep_edits(project) -> None:
    result = invoke("update", project, "-d", "logger=wandb", "-d", "precision=bf16-mixed")
    assert result.exit_code == 0, result.output
    pyproject = (project / "pyproject.toml").read_text()
    assert '"wandb>=' in pyproject and '"tensorboard>=' not in pyproject
    loggers = project / "src/my_exp/engine/loggers"
    assert sorted(p.name for p in loggers.iterdir()) == ["__init__.py", "wandb_logs.py"]
    precision = (project / "src/my_exp/engine/precision.py").read_text()
    assert "bfloat16" in precision and "autocast" in precision
    assert (project / MODULE).read_text().endswith(EDIT)
    recorded = answers(project)
    assert (recorded["logger"], recorded["precision"]) == (["wandb"], "bf16-mixed")
    assert "answer logger: ['tensorboard'] -> ['wandb']" in result.output
    assert "dependency + wandb>=" in result.output and "dependency - tensorboard>=" in result.output
    reinstall = f'dependencies changed: reinstall it, in {project}:\n  pip install -e ".[dev]"'
    assert reinstall in result.output
    assert_clean_merge(project)

    result = invoke("update", project, "-d", "logger=none")
    assert result.exit_code == 0, result.output
    assert not (project / "src/my_exp/engine/loggers").exists()
    assert "removed  src/my_exp/engine/loggers/wandb_logs.py" in result.output
    assert '"wandb>=' not in (project / "pyproject.toml").read_text()
    assert "dependency - wandb>=" in result.output and "reinstall" in result.output

    # Same dependencies: nothing to reinstall.
    result = invoke("update", project, "-d", "precision=bf16-true")
    assert result.exit_code == 0, result.output
    assert "dependency" not in result.output and "reinstall" not in result.output


def test_loggers_go_from_one_to_several_and_back_keeping_edits(project) -> None:
    tensorboard = project / "src/my_exp/engine/loggers/tensorboard_logs.py"
    tensorboard.write_text(tensorboard.read_text() + "\n# flush more often on our cluster\n")
    commit_all(project, "tune the TensorBoard logger")

    result = invoke("update", project, "-d", "logger=tensorboard,csv")
    assert result.exit_code == 0, result.output
    assert "answer logger: ['tensorboard'] -> ['tensorboard', 'csv']" in result.output
    assert "added    src/my_exp/engine/loggers/csv_logs.py" in result.output
    assert '"csv": ("csv_logs", "CSVLogger")' in (tensorboard.parent / "__init__.py").read_text()
    assert tensorboard.read_text().endswith("# flush more often on our cluster\n")
    assert (project / MODULE).read_text().endswith(EDIT)
    assert_clean_merge(project)
    # The project runs with both: each records the same values (its own test).
    ran = run_project_tests(project, "tests/test_loggers.py")
    assert ran.returncode == 0 and " passed" in ran.stdout, ran.stdout[-3000:] + ran.stderr

    result = invoke("update", project, "-d", "logger=tensorboard")
    assert result.exit_code == 0, result.output
    assert not (tensorboard.parent / "csv_logs.py").exists()
    assert "CSVLogger" not in (tensorboard.parent / "__init__.py").read_text()
    assert tensorboard.read_text().endswith("# flush more often on our cluster\n")
    assert answers(project)["logger"] == ["tensorboard"]
    assert_clean_merge(project)


def test_config_goes_to_hydra_and_back_keeping_edits(project) -> None:
    data, model = project / "src/my_exp/data.py", project / "src/my_exp/model.py"
    for path in (data, model):
        path.write_text(path.read_text() + "\n# ours: kept across the config system\n")
    commit_all(project, "edit the data and the network")

    result = invoke("update", project, "-d", "config=hydra")
    assert result.exit_code == 0, result.output
    assert "dependency + hydra-core" in result.output
    assert (project / "configs/config.yaml").is_file()
    assert (project / "configs/model/default.yaml").is_file()
    assert not (project / "configs/default.yaml").exists()
    assert "import hydra" in (project / "src/my_exp/__main__.py").read_text()
    assert answers(project)["config"] == "hydra"
    for path in (data, model):
        assert path.read_text().endswith("# ours: kept across the config system\n")
    assert (project / MODULE).read_text().endswith(EDIT)
    assert_clean_merge(project)
    # The converted project composes its config with Hydra and trains (its own tests).
    ran = run_project_tests(project, "tests/test_config.py")
    assert ran.returncode == 0 and " passed" in ran.stdout, ran.stdout[-3000:] + ran.stderr

    result = invoke("update", project, "-d", "config=cli")
    assert result.exit_code == 0, result.output
    assert (project / "configs/default.yaml").is_file()
    assert not (project / "configs/config.yaml").exists()
    assert not (project / "configs/model").exists()
    assert "import hydra" not in (project / "src/my_exp/__main__.py").read_text()
    for path in (data, model):
        assert path.read_text().endswith("# ours: kept across the config system\n")
    assert_clean_merge(project)


# The logger question as releases before 0.2 asked it: one choice, or none.
SINGLE_LOGGER = """logger:
  type: str
  help: Where metrics go
  default: tensorboard
  choices:
    "TensorBoard": tensorboard
    "Weights & Biases": wandb
    "MLflow": mlflow
    "CSV files": csv
    "None": none
"""


@pytest.mark.parametrize("logger", ["csv", "none"])
def test_an_answers_file_from_single_logger_releases_updates_as_it_is(
    tmp_path, monkeypatch, logger: str
) -> None:
    old = template_copy(tmp_path / "old-install")
    config = old / "copier.yml"
    question = re.search(r"^logger:\n(?:  .*\n|    .*\n)+", config.read_text(), re.MULTILINE)
    config.write_text(config.read_text().replace(question.group(0), SINGLE_LOGGER))
    use_bundled(monkeypatch, old, "0.1.0")
    path = make_project(tmp_path / "my-exp", logger=logger).path
    assert answers(path)["logger"] == logger  # what those releases wrote

    use_bundled(monkeypatch, template_copy(tmp_path / "new-install"), "0.2.0")
    result = invoke("update", path)  # no -d
    assert result.exit_code == 0, result.output
    assert "answer logger" not in result.output  # the same answer, read as a list
    assert answers(path)["logger"] == ([] if logger == "none" else [logger])
    loggers = path / "src/my_exp/engine/loggers"
    if logger == "none":
        assert not loggers.exists()
    else:
        assert sorted(p.name for p in loggers.iterdir()) == ["__init__.py", "csv_logs.py"]
    assert_clean_merge(path)


def test_a_conditional_answer_follows_the_strategy(project) -> None:
    # To DeepSpeed: its stage question appears; away from it, the stage goes.
    result = invoke(
        "update",
        project,
        *("-d", "hardware=cuda", "-d", "devices=2"),
        *("-d", "strategy=deepspeed", "-d", "deepspeed_stage=3"),
    )
    assert result.exit_code == 0, result.output
    assert (answers(project)["strategy"], answers(project)["deepspeed_stage"]) == ("deepspeed", 3)
    assert "answer deepspeed_stage: 3 (asked now)" in result.output
    assert "answer strategy: 'ddp' (asked now)" not in result.output  # given with -d
    assert "dependency + [deepspeed] deepspeed>=" in result.output
    assert 'pip install -e ".[dev,deepspeed]"' in result.output
    assert "stage: 3" in (project / "configs/default.yaml").read_text()
    assert (project / MODULE).read_text().endswith(EDIT)

    result = invoke("update", project, "-d", "logger=csv")  # the stage is kept
    assert result.exit_code == 0, result.output
    assert answers(project)["deepspeed_stage"] == 3

    result = invoke("update", project, "-d", "strategy=fsdp")
    assert result.exit_code == 0, result.output
    assert answers(project)["strategy"] == "fsdp" and "deepspeed_stage" not in answers(project)
    assert "answer deepspeed_stage: 3 (no longer asked)" in result.output
    assert "deepspeed" not in (project / "pyproject.toml").read_text()
    assert (project / MODULE).read_text().endswith(EDIT)


def test_a_bad_answer_changes_nothing(project) -> None:
    before = state(project)
    result = invoke("update", project, "-d", "strategy=ddp")
    assert result.exit_code == 2
    assert "strategy=ddp needs more than one process" in result.output
    result = invoke("update", project, "-d", "loger=csv")
    assert result.exit_code == 2 and "did you mean 'logger'?" in result.output
    assert state(project) == before


# Scenario 5: renames carry the user's edits (answer-driven here; template-made in scenario 1).


def test_package_rename_carries_edits_and_added_files(project) -> None:
    (project / "src/my_exp/extra.py").write_text("EXTRA = 1\n")
    commit_all(project)
    result = invoke("update", project, "-d", "package_name=vision_exp")
    assert result.exit_code == 0, result.output
    assert not (project / "src/my_exp").exists()
    assert (project / "src/vision_exp/module.py").read_text().endswith(EDIT)
    assert (project / "src/vision_exp/extra.py").read_text() == "EXTRA = 1\n"
    assert "vision_exp" in (project / "pyproject.toml").read_text()
    assert "from vision_exp" in (project / "tests/conftest.py").read_text()
    assert "(from src/my_exp/module.py, with your edits)" in result.output
    assert_clean_merge(project)


# Scenario 6: deleted files stay deleted, added files untouched, ignored outputs never read.


def test_deleted_added_and_ignored_files(project) -> None:
    (project / "tests/test_loggers.py").unlink()  # the logger change edits it
    (project / "tests/test_model.py").unlink()  # the logger change leaves it alone
    (project / "tools").mkdir()
    (project / "tools/sweep.sh").write_text("echo sweep\n")
    commit_all(project)
    # Run outputs, as FIFOs: anything that opened one to read or hash it would hang.
    for name in ("data/train.bin", "runs/version_0/fifo", "last.ckpt"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(project / name)
    result = subprocess.run(
        [sys.executable, "-m", "scaffold", "update", "-d", "logger=csv"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kept deleted  tests/test_loggers.py" in result.stdout
    assert not (project / "tests/test_loggers.py").exists()
    message = git(project, "log", "-1", "--format=%B")
    assert "Conflicts" not in message and "test_loggers.py" not in message
    assert not (project / "tests/test_model.py").exists()
    assert (project / "tools/sweep.sh").read_text() == "echo sweep\n"
    assert all((project / n).is_fifo() for n in ("data/train.bin", "runs/version_0/fifo"))
    assert_clean_merge(project)


def test_restore_deleted_brings_template_files_back(project) -> None:
    (project / "tests/test_loggers.py").unlink()
    (project / "tests/test_model.py").unlink()
    commit_all(project)
    result = invoke("update", project, "-d", "logger=csv", "--restore-deleted")
    assert result.exit_code == 0, result.output
    for name in ("tests/test_loggers.py", "tests/test_model.py"):
        assert (project / name).read_text() == git(project, "show", f"HEAD^2:{name}")
    assert "restored  tests/test_loggers.py" in result.output
    assert_clean_merge(project)


# Conflicts, --abort, --dry-run, a dirty tree.


def make_conflict(project: Path) -> None:
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("logger `tensorboard`", "logger `mine`"))
    commit_all(project)


def test_conflict_leaves_a_git_merge_in_progress(project) -> None:
    (project / "tests/test_loggers.py").unlink()  # the logger change edits it: kept deleted
    make_conflict(project)
    result = invoke("update", project, "-d", "logger=csv")
    assert result.exit_code == 1
    # git's message for the commit that ends the merge lists only the real conflict.
    merge_message = (project / ".git" / "MERGE_MSG").read_text()
    assert "# Conflicts:\n#\tREADME.md\n" in merge_message
    assert "test_loggers.py" not in merge_message
    assert "conflict" in result.output and "README.md" in result.output
    assert "scaffold update --abort" in result.output and "git commit" in result.output
    readme = (project / "README.md").read_text()
    assert "<<<<<<<" in readme and ">>>>>>>" in readme and "logger `mine`" in readme
    assert git(project, "ls-files", "-u").count("README.md") == 3
    assert git(project, "rev-parse", "-q", "--verify", "MERGE_HEAD", check=False)
    assert '"tensorboard>=' not in (project / "pyproject.toml").read_text()  # merged cleanly
    assert "UU README.md" in git(project, "status", "--porcelain")

    # A second update while this one is unresolved is refused.
    again = invoke("update", project, "-d", "logger=csv")
    assert again.exit_code == 1 and "in progress" in again.output

    # Resolve as git users do; the next update starts from the new render.
    (project / "README.md").write_text(readme.split("<<<<<<<")[0] + "resolved\n")
    git(project, "add", "README.md")
    git(project, "commit", "-q", "--no-edit")
    assert answers(project)["logger"] == ["csv"]
    result = invoke("update", project)
    assert result.exit_code == 0 and "Already up to date" in result.output


def test_abort_restores_the_exact_state_before_the_update(project) -> None:
    make_conflict(project)
    (project / "data").mkdir()
    (project / "data/train.bin").write_bytes(b"\0" * 1000)  # ignored: must survive
    before = state(project)
    assert invoke("update", project, "-d", "logger=csv", "-d", "package_name=p2").exit_code == 1
    assert state(project) != before
    result = invoke("update", project, "--abort")
    assert result.exit_code == 0, result.output
    assert state(project) == before
    assert invoke("update", project, "--abort").exit_code == 1  # nothing left to abort


def test_dry_run_prints_summary_and_diff_and_changes_nothing(project) -> None:
    make_conflict(project)
    before = state(project)
    result = invoke("update", project, "-d", "logger=csv", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "conflict  README.md" in result.output
    assert "updated   pyproject.toml" in result.output
    assert "-- tensorboard" in result.output and "+- csv" in result.output  # the answers file
    assert "Dry run: nothing was changed." in result.output
    assert state(project) == before


def test_dirty_tree_is_refused(project) -> None:
    (project / "README.md").write_text("uncommitted\n")
    (project / "scratch.py").write_text("x = 1\n")
    before = state(project)
    result = invoke("update", project, "-d", "logger=csv")
    assert result.exit_code == 1
    assert "uncommitted changes (README.md, scratch.py)" in result.output
    assert "commit or stash" in result.output
    assert state(project) == before

    # A dry run changes nothing, so it works on a dirty tree, and says what it leaves out.
    result = invoke("update", project, "-d", "logger=csv", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "answer logger: ['tensorboard'] -> ['csv']" in result.output
    assert "uncommitted changes (README.md, scratch.py) are not part of this preview" in (
        result.output
    )
    assert "Dry run: nothing was changed." in result.output
    assert state(project) == before


# Projects without git, answers or pristine render: clear messages, and `scaffold adopt`.


def test_a_broken_answers_file_is_named_and_nothing_changes(project) -> None:
    (project / ".copier-answers.yml").write_text("task: [unclosed\n")
    commit_all(project, "an edit gone wrong")
    before = state(project)
    result = invoke("update", project, "-d", "logger=csv")
    assert result.exit_code == 1, result.output
    assert ".copier-answers.yml is not valid YAML" in result.output
    assert "restore it from git" in result.output
    assert state(project) == before


def test_a_fresh_project_updates_to_nothing_and_says_nothing_changed(project) -> None:
    for args in (["--dry-run"], []):
        result = invoke("update", project, *args)
        assert result.exit_code == 0, result.output
        assert result.output.splitlines() == [
            f"scaffold:default {__version__}",
            "Already up to date: the template renders what it rendered.",
        ]


@pytest.mark.parametrize("in_git", [False, True], ids=["a folder", "a git repository"])
def test_update_outside_a_project_says_it_is_not_one_and_how_to_adopt(tmp_path, in_git) -> None:
    path = tmp_path / "notes"
    path.mkdir()
    (path / "todo.txt").write_text("mine\n")
    if in_git:
        git(path, "init", "-q")
        commit_all(path, "import")
    before = sorted(p.name for p in path.iterdir())
    result = invoke("update", path)
    assert result.exit_code == 1
    assert f"{path} is not a scaffold project: it has no .copier-answers.yml" in result.output
    assert "scaffold adopt -d task=" in result.output and "docs/updating.md" in result.output
    assert sorted(p.name for p in path.iterdir()) == before

    # adopt then needs to be told how scaffold would have made it.
    if in_git:
        before = state(path)
        result = invoke("adopt", path)
        assert result.exit_code == 1
        assert "has no .copier-answers.yml, so scaffold can't tell" in result.output
        assert "-d task=" in result.output and "--defaults" in result.output
        assert state(path) == before
        result = invoke("adopt", path, "--defaults")
        assert result.exit_code == 0, result.output
        assert answers(path)["task"] == "image_classification"


def test_not_in_git_says_how_to_start(tmp_path) -> None:
    path = tmp_path / "p"
    assert invoke("new", path, "--defaults", "--no-git").exit_code == 0
    result = invoke("update", path)
    assert result.exit_code == 1
    assert "git init && git add -A && git commit" in result.output
    assert "scaffold adopt" in result.output


def test_adopt_a_project_made_without_git_then_update(tmp_path) -> None:
    path = tmp_path / "my-exp"
    assert invoke("new", path, "--defaults", "--no-git").exit_code == 0
    (path / MODULE).write_text((path / MODULE).read_text() + EDIT)
    git(path, "init", "-q")
    commit_all(path, "import")
    result = invoke("update", path)
    assert result.exit_code == 1 and "scaffold adopt" in result.output

    before = state(path)["files"]
    result = invoke("adopt", path)
    assert result.exit_code == 0, result.output
    assert state(path)["files"] == before  # no file changed
    assert git(path, "status", "--porcelain") == ""

    result = invoke("update", path, "-d", "logger=csv")
    assert result.exit_code == 0, result.output
    assert (path / MODULE).read_text().endswith(EDIT)
    assert "updated  pyproject.toml" in result.output
    assert "merged" not in result.output  # the edit is the user's, the rest is pristine


def test_adopt_a_project_without_answers_file(project) -> None:
    git(project, "rm", "-q", ".copier-answers.yml")
    git(project, "commit", "-q", "-m", "lost the answers")
    result = invoke("update", project)
    assert result.exit_code == 1 and "is not a scaffold project" in result.output
    # Squash the history, so there is no pristine render either.
    git(project, "checkout", "-q", "--orphan", "squashed")
    git(project, "commit", "-q", "-m", "squashed")
    result = invoke("adopt", project, "-d", "logger=tensorboard")
    assert result.exit_code == 0, result.output
    recorded = answers(project)
    assert recorded["_src_path"] == "scaffold:default" and recorded["_commit"] == __version__
    assert recorded["project_name"] == "my-exp"
    assert invoke("adopt", project).exit_code == 1  # already adopted


def test_diff_shows_the_users_drift(project) -> None:
    result = invoke("diff", project)
    assert result.exit_code == 0
    assert "+# my note: try a cosine schedule" in result.output
    assert "src/my_exp/module.py" in invoke("diff", project, "--stat").output


def test_check_without_history(tmp_path) -> None:
    path = tmp_path / "p"
    invoke("new", path, "--defaults", "--no-git")
    result = invoke("check", path)
    assert result.exit_code == 0 and f"Up to date: scaffold:default {__version__}" in result.output
