"""Destinations and paths: normalised before any check; nothing outside what a call made is touched.

Every case runs `scaffold` in a subprocess inside a sandbox (tests/sandbox.py):
the bugs these tests guard against empty the folder scaffold runs in.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from gitrepo import template_copy
from sandbox import Sandbox, changes, make_sandbox, snapshot


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return make_sandbox(tmp_path)


def git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=True
    ).stdout


def assert_clean_error(result: subprocess.CompletedProcess, *messages: str) -> None:
    """Non-zero, one `Error:` line naming the problem, no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    for message in messages:
        assert message in errors[0], output


def assert_only_added(box: Sandbox, before: dict, *made: str) -> None:
    """Nothing that existed changed; what is new is ``made`` (relative to the sandbox) and below."""
    lost, added = changes(before, snapshot(box.root))
    assert lost == []
    stray = [p for p in added if not any(p == m or p.startswith(m + "/") for m in made)]
    assert stray == []


CWD = "a/b/c"


# The reproductions.


def test_a_missing_folder_then_dotdot_creates_the_project_beside_it(box) -> None:
    before = snapshot(box.root)
    result = box.run("new", "typo/../proj", "--defaults", "--no-git")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (box.cwd / "proj" / "pyproject.toml").is_file()
    assert not (box.cwd / "typo").exists()
    assert_only_added(box, before, f"{CWD}/proj")


def test_dotdot_onto_a_non_empty_folder_is_refused_and_changes_nothing(box) -> None:
    before = snapshot(box.root)
    result = box.run("new", "n1/..", "--defaults", "-d", "project_name=ok")
    assert_clean_error(result, f"{box.cwd} already exists and is not empty")
    assert snapshot(box.root) == before


def test_template_init_dotdot_is_refused_and_changes_nothing(box) -> None:
    before = snapshot(box.root)
    result = box.run("template", "init", "x/..")
    assert_clean_error(result, f"{box.cwd} already exists and is not empty")
    assert snapshot(box.root) == before


def test_template_init_after_a_missing_folder_and_dotdot(box) -> None:
    before = snapshot(box.root)
    result = box.run("template", "init", "typo/../team")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (box.cwd / "team" / "copier.yml").is_file()
    assert_only_added(box, before, f"{CWD}/team")


# Symlinks: `link/..` means one folder to the kernel and another read lexically.


@pytest.mark.parametrize(
    "args", [["new", "deep/../proj", "--defaults"], ["template", "init", "deep/../proj"]]
)
def test_a_symlink_before_dotdot_is_refused_naming_both_readings(box, args) -> None:
    before = snapshot(box.root)
    result = box.run(*args)
    assert_clean_error(result, "deep/../proj", "symbolic link", str(box.cwd / "keep" / "x"))
    assert snapshot(box.root) == before


@pytest.mark.parametrize(
    ("name", "message"),
    [("dangling", "is a symbolic link"), ("to-empty", "is a symbolic link")],
)
def test_a_symlink_as_the_destination_is_refused(box, name, message) -> None:
    before = snapshot(box.root)
    for args in (["new", name, "--defaults"], ["template", "init", name]):
        assert_clean_error(box.run(*args), f"{box.cwd / name}", message)
    assert snapshot(box.root) == before


def test_symlinks_on_the_way_are_followed(box) -> None:
    # `up` points at the parent folder: a plain path through a symlink is fine.
    before = snapshot(box.root)
    result = box.run("new", "up/proj", "--defaults", "--no-git")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (box.cwd.parent / "proj" / "pyproject.toml").is_file()
    assert_only_added(box, before, "a/b/proj")


# `~`, long names, files, read-only places.


def no_user(name: str) -> str:
    from sandbox import no_such_user

    assert no_such_user(name), f"this test needs no user named {name!r}"
    return name


@pytest.mark.parametrize(
    "args",
    [
        ["new", "~{user}/x", "--defaults"],
        ["new", "~{user}", "--defaults"],
        ["template", "init", "~{user}/x"],
        ["update", "~{user}/x"],
        ["adopt", "~{user}/x"],
        ["check", "~{user}/x"],
        ["diff", "~{user}/x"],
        ["new", "p", "--defaults", "--answers-file", "~{user}/answers.yml"],
        ["new", "p", "--defaults", "--template", "~{user}/tpl"],
    ],
)
@pytest.mark.parametrize("user", ["nosuchuser", "x"])
def test_home_of_a_user_that_does_not_exist(box, args, user) -> None:
    before = snapshot(box.root)
    result = box.run(*[a.format(user=no_user(user)) for a in args])
    assert_clean_error(result, f"~{user}", f"no user named {user!r}", f"./~{user}")
    assert snapshot(box.root) == before


def test_tilde_is_the_home_folder(box) -> None:
    before = snapshot(box.root)
    result = box.run("new", "~/proj", "--defaults", "--no-git")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (box.home / "proj" / "pyproject.toml").is_file()
    assert_only_added(box, before, "a/home/proj")


@pytest.mark.parametrize(
    "name",
    ["a" * 256, "é" * 128, "deeper/" + "b" * 300 + "/proj"],
    ids=["256 bytes", "128 two-byte letters", "a long middle folder"],
)
def test_names_longer_than_the_filesystem_allows(box, name) -> None:
    before = snapshot(box.root)
    for args in (["new", name, "--defaults"], ["template", "init", name]):
        result = box.run(*args)
        assert_clean_error(result, "bytes", "longer than the filesystem allows")
    assert snapshot(box.root) == before


def test_a_name_of_exactly_255_bytes_works(box) -> None:
    before = snapshot(box.root)
    name = "n" * 255
    result = box.run("new", name, "--defaults", "--no-git", "-d", "project_name=ok")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (box.cwd / name / "src" / "ok" / "module.py").is_file()
    assert_only_added(box, before, f"{CWD}/{name}")


def test_a_file_as_destination_or_parent(box) -> None:
    before = snapshot(box.root)
    assert_clean_error(box.run("new", "README.md", "--defaults"), "README.md is a file")
    assert_clean_error(box.run("new", "README.md/p", "--defaults"), "README.md is a file, so")
    assert_clean_error(box.run("template", "init", "README.md"), "README.md is a file")
    assert snapshot(box.root) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent(box) -> None:
    (box.cwd / "locked").mkdir()
    (box.cwd / "locked").chmod(0o555)
    before = snapshot(box.root)
    try:
        result = box.run("new", "locked/p", "--defaults")
        assert_clean_error(result, "locked is not writable")
    finally:
        (box.cwd / "locked").chmod(0o755)
    assert snapshot(box.root) == before


def test_a_folder_that_can_not_be_created_leaves_nothing(box) -> None:
    # /proc refuses new folders even to root, unlike a chmod'ed folder.
    result = box.run("new", "/proc/scaffold-test/deeper/p", "--defaults")
    assert_clean_error(result, "can't create /proc/scaffold-test")
    assert not Path("/proc/scaffold-test").exists()


# Clean-up removes only what this call created.


def broken_template(box: Sandbox) -> Path:
    """A template whose render fails midway (after the destination's parents were made)."""
    folder = template_copy(box.root / "tpl")
    (folder / "project" / "broken.txt.jinja").write_text("{% if %}\n")  # a syntax error
    return folder


@pytest.mark.parametrize(
    "dest",
    ["new1/new2/p", "empty", "keep/p"],
    ids=["parents it made", "an empty folder that existed", "a parent that existed"],
)
def test_a_failed_render_removes_only_what_it_made(box, dest) -> None:
    template = broken_template(box)
    before = snapshot(box.root)
    result = box.run("new", dest, "--defaults", "--template", str(template))
    assert_clean_error(result, "failed to render", "broken.txt.jinja")
    assert snapshot(box.root) == before


# A folder holding only a fresh `git init`.


def test_new_into_a_fresh_git_init_commits_the_render_there(box) -> None:
    repo = box.cwd / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    result = box.run("new", "fresh", "--defaults")
    assert result.returncode == 0, result.stdout + result.stderr
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "trunk"  # the user's branch
    assert "Scaffold-Render:" in git(repo, "log", "-1", "--format=%B")
    assert git(repo, "status", "--porcelain") == ""
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["project_name"] == "fresh"
    again = box.run("update", "fresh", "-d", "logger=csv")
    assert again.returncode == 0, again.stdout + again.stderr


def test_new_into_a_fresh_git_init_without_git_leaves_the_files_uncommitted(box) -> None:
    repo = box.cwd / "fresh"
    repo.mkdir()
    git(repo, "init", "-q")
    result = box.run("new", "fresh", "--defaults", "--no-git")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (repo / "pyproject.toml").is_file()
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True).returncode


@pytest.mark.parametrize("extra", ["a commit", "a file"])
def test_a_git_folder_with_history_or_files_is_refused(box, extra) -> None:
    repo = box.cwd / "used"
    repo.mkdir()
    git(repo, "init", "-q")
    if extra == "a commit":
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
            "-m", "x")  # fmt: skip
        message = "has commits"
    else:
        (repo / "notes.txt").write_text("mine\n")
        message = "already exists and is not empty"
    before = snapshot(box.root)
    assert_clean_error(box.run("new", "used", "--defaults"), str(repo), message)
    assert snapshot(box.root) == before


# The other commands normalise their paths too.


def test_update_check_diff_and_answers_file_normalise_dotdot(box) -> None:
    made = box.run("new", "proj", "--defaults")
    assert made.returncode == 0, made.stderr
    for args in (["check", "typo/../proj"], ["diff", "typo/../proj"]):
        result = box.run(*args)
        assert result.returncode == 0, result.stdout + result.stderr
    result = box.run("update", "typo/../proj", "--dry-run", "-d", "logger=csv")
    assert result.returncode == 0, result.stdout + result.stderr
    result = box.run(
        "new", "other", "--defaults", "--no-git",
        "--answers-file", "typo/../proj/.copier-answers.yml",
        "-d", "project_name=other", "-d", "package_name=other",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
