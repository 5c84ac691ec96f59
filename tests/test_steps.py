"""Setup steps through `wtrun prepare`: copy, link and run, in real repositories."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from testing import agent, git, status, write_plan, wtrun


def prepare(repo: Path, setup: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    """Prepare a one-task plan with these setup steps; the exit code and the task's row."""
    plan = write_plan(
        repo,
        f"""\
version: 1
name: demo
agent: {{preset: command, command: {agent("nothing")}}}
pr: {{provider: none}}
setup:
{setup}
tasks:
  - id: t0
    prompt: p
    scope: [src/t0/]
""",
    )
    code = wtrun("prepare", str(plan), cwd=repo)
    return code, status(repo, plan, capsys)["t0"]


def worktree(repo: Path) -> Path:
    return repo / ".claude" / "worktrees" / "t0"


def setup_log(repo: Path) -> str:
    return (repo / ".git" / "wtrun" / "demo" / "logs" / "t0" / "setup.log").read_text()


def reason(repo: Path, row: dict) -> str:
    """The task's reason without the place of the failing step in the plan, checked first."""
    text: str = row["reason"]
    place = f"{repo / 'plans' / 'plan.yaml'}:6:5: "
    assert text.startswith(place), text
    return text.removeprefix(place)


def ignore(repo: Path, *patterns: str) -> None:
    (repo / ".gitignore").write_text("".join(f"{p}\n" for p in patterns))
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore")
    git(repo, "push", "-q", "origin", "main")


def test_copy_keeps_symlinks_as_links_and_file_modes(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ignore(repo, "cache/", "current", "dangling")
    cache = repo / "cache"
    (cache / "bin").mkdir(parents=True)
    (cache / "bin" / "tool").write_text("#!/bin/sh\n")
    (cache / "bin" / "tool").chmod(0o750)
    (cache / "latest").symlink_to("bin/tool")
    (repo / "current").symlink_to("cache")
    (repo / "dangling").symlink_to("nowhere")
    code, row = prepare(repo, "  - copy: [cache, current, dangling]", capsys)
    assert (code, row["state"]) == (0, "prepared")
    wt = worktree(repo)
    assert (wt / "cache" / "bin" / "tool").read_text() == "#!/bin/sh\n"
    assert (wt / "cache" / "bin" / "tool").stat().st_mode & 0o777 == 0o750
    assert os.readlink(wt / "cache" / "latest") == "bin/tool"
    assert os.readlink(wt / "current") == "cache"
    assert os.readlink(wt / "dangling") == "nowhere"
    assert not (wt / "cache").is_symlink()
    assert git(wt, "status", "--porcelain") == ""


def test_link_points_into_the_main_checkout(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ignore(repo, "node_modules/")
    (repo / "node_modules" / "left-pad").mkdir(parents=True)
    code, row = prepare(repo, "  - link: node_modules/left-pad", capsys)
    assert (code, row["state"]) == (0, "prepared")
    link = worktree(repo) / "node_modules" / "left-pad"
    assert os.readlink(link) == str((repo / "node_modules" / "left-pad").resolve())


def test_missing_and_tracked_sources_are_skipped_and_logged(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "README.md").write_text("changed in the main checkout only\n")
    code, row = prepare(repo, "  - copy: [.env, README.md]\n  - link: [.venv]", capsys)
    assert (code, row["state"]) == (0, "prepared")
    wt = worktree(repo)
    assert not (wt / ".env").exists() and not (wt / ".venv").exists()
    assert (wt / "README.md").read_text() == "# shop\n"
    log = setup_log(repo)
    assert "copy .env: not in the main checkout, skipped" in log
    assert "copy README.md: tracked by git, already in the worktree" in log
    assert "link .venv: not in the main checkout, skipped" in log


def test_a_copy_that_cannot_be_made_fails_the_task_naming_the_path(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The base has a file `data`; the main checkout has a folder there instead (not yet
    # committed), so the copy needs a folder where the worktree has a file.
    (repo / "data").write_text("a file on main\n")
    git(repo, "add", "data")
    git(repo, "commit", "-qm", "data")
    git(repo, "push", "-q", "origin", "main")
    git(repo, "rm", "-q", "--cached", "data")
    (repo / "data").unlink()
    (repo / "data").mkdir()
    (repo / "data" / "seed.sql").write_text("insert\n")
    code, row = prepare(repo, "  - copy: data/seed.sql", capsys)
    assert code == 1
    assert row["state"] == "failed"
    assert reason(repo, row).startswith(
        'setup step 1 (copy data/seed.sql) could not copy "data/seed.sql" from the main '
        "checkout into the worktree; log: "
    )
    assert "File exists" in row["reason"] or "Not a directory" in row["reason"]
    assert "could not copy data/seed.sql" in setup_log(repo)


def test_run_steps_stop_at_the_first_failing_command(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, row = prepare(repo, "  - run: false; touch ran-on", capsys)
    assert (code, row["state"]) == (1, "failed")
    assert reason(repo, row).startswith(
        "setup step 1 (false; touch ran-on) failed with exit code 1"
    )
    assert not (worktree(repo) / "ran-on").exists()


def test_without_bash_run_steps_use_sh_and_still_stop_at_a_failure(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A PATH with git but no bash, as on a minimal image.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git_path = shutil.which("git")
    assert git_path
    (bin_dir / "git").symlink_to(git_path)
    monkeypatch.setenv("PATH", str(bin_dir))
    script = "echo $0 > shell.txt; false; echo on > ran-on"  # builtins only
    code, row = prepare(repo, f"  - run: {script}", capsys)
    assert (code, row["state"]) == (1, "failed")
    wt = worktree(repo)
    assert (wt / "shell.txt").read_text() == "/bin/sh\n"
    assert not (wt / "ran-on").exists()


# ---------------------------------------------------------------- nothing outside the repository


@pytest.mark.parametrize("kind", ["copy", "link"])
def test_an_untracked_link_to_a_file_outside_is_refused(
    kind: str, repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ignore(repo, ".env")
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's own file\n")
    (repo / ".env").symlink_to(secret)
    code, row = prepare(repo, f"  - {kind}: [.env]", capsys)
    assert (code, row["state"]) == (1, "failed")
    assert reason(repo, row).startswith(
        f'setup step 1 ({kind} .env) refused ".env": in the main checkout it leads to {secret}, '
        "outside the repository; copy and link take files of the repository only: remove the "
        "link, or fetch the file in a `run` step; log: "
    )
    wt = worktree(repo)
    assert not (wt / ".env").exists() and not (wt / ".env").is_symlink()
    assert f"refused .env: in the main checkout it leads to {secret}" in setup_log(repo)


def test_a_copy_is_never_written_through_a_tracked_link_to_a_folder_outside(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The base tracks `conf` as a link to a folder elsewhere; the main checkout has a real
    # folder there (not committed), so a copy into the worktree would write through the link.
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "conf").symlink_to(outside)
    git(repo, "add", "conf")
    git(repo, "commit", "-qm", "conf")
    git(repo, "push", "-q", "origin", "main")
    git(repo, "rm", "-q", "--cached", "conf")
    (repo / "conf").unlink()
    (repo / "conf").mkdir()
    (repo / "conf" / "app.env").write_text("KEY=1\n")
    code, row = prepare(repo, "  - copy: conf/app.env", capsys)
    assert (code, row["state"]) == (1, "failed")
    assert reason(repo, row).startswith(
        f'setup step 1 (copy conf/app.env) refused "conf/app.env": in the worktree it would be '
        f"written into {outside}, outside the worktree (a tracked symbolic link leads there); "
    )
    assert list(outside.iterdir()) == []


def test_worktreeinclude_refuses_a_link_to_a_file_outside(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ignore(repo, ".env")
    (repo / ".worktreeinclude").write_text(".env\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's own file\n")
    (repo / ".env").symlink_to(secret)
    code, row = prepare(repo, "  - run: 'true'", capsys)
    assert (code, row["state"]) == (1, "failed")
    assert row["reason"].startswith(  # no step of the plan: no place in it
        f'setup (.worktreeinclude) refused ".env": in the main checkout it leads to {secret}'
    )
    assert not (worktree(repo) / ".env").is_symlink()


def test_links_inside_the_repository_are_still_copied_and_linked(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ignore(repo, "env.local", "cache/", "shared")
    (repo / "cache").mkdir()
    (repo / "cache" / "x").write_text("x\n")
    (repo / "env.local").symlink_to("src/app.py")
    (repo / "shared").symlink_to("cache")
    code, row = prepare(repo, "  - copy: [env.local]\n  - link: [shared]", capsys)
    assert (code, row["state"]) == (0, "prepared")
    wt = worktree(repo)
    assert os.readlink(wt / "env.local") == "src/app.py"
    assert os.readlink(wt / "shared") == str((repo / "cache").resolve())
