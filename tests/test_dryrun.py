"""`wtrun run --dry-run`: the preview, and its exit code when a run would stop."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing import agent, make_repo, write_plan, wtrun
from wtrun import ports


def plan_text(scope: str = "src/a/", command: str | None = None, extra: str = "") -> str:
    return f"""\
version: 1
name: demo
agent:
  preset: command
  command: {command or agent("nothing")}
pr: {{provider: none}}
tasks:
  - id: a
    prompt: work on a
    scope: [{scope}]
{extra}"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something on this machine listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def dry_run(repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = wtrun("run", str(plan), "--dry-run", cwd=repo)
    return code, capsys.readouterr().out


def test_a_preview_with_nothing_in_the_way_exits_0(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = dry_run(repo, write_plan(repo, plan_text()), capsys)
    assert code == 0
    assert "1. a  (wave 1)" in out
    assert "would stop" not in out


def test_a_missing_agent_cli_fails_the_preview(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(command='["no-such-agent-cli"]'))
    code, out = dry_run(repo, plan, capsys)
    assert code == 1
    assert "1. a  (wave 1)" in out  # the preview is still printed
    assert out.rstrip().endswith(
        "A run would stop before making any worktree: agent CLI not found on PATH: "
        "'no-such-agent-cli' (tasks a); install it (see the README's 'Agents' section) or "
        "change the task's agent.preset"
    )
    assert not (repo / ".claude").exists()


def test_a_literal_scope_naming_a_directory_fails_the_preview(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = dry_run(repo, write_plan(repo, plan_text(scope="src")), capsys)
    assert code == 1
    assert "   scope:    src\n" in out
    assert out.rstrip().endswith(
        'A run would stop before making any worktree: scope "src" of task "a" names a '
        'directory, but a scope matches whole paths; write "src/" to mean everything below it'
    )


def test_a_port_in_use_fails_the_preview(
    repo: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(
        repo,
        plan_text(extra=f"    ports: [{busy_port}]\n").replace(
            "tasks:", f"port_range: [{busy_port}, {busy_port}]\ntasks:"
        ),
    )
    code, out = dry_run(repo, plan, capsys)
    assert code == 1
    assert out.rstrip().endswith(
        f'A run would stop before making any worktree: port {busy_port} of task "a" is in use '
        "by another process on this machine; stop that process, or pick another port in the plan"
    )


def test_the_env_shown_is_the_env_a_run_sets(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(extra="    ports: 1\n    env: {MODE: 'two words'}\n"))
    code, out = dry_run(repo, plan, capsys)
    assert code == 0
    env = next(line for line in out.splitlines() if line.startswith("   env:"))
    worktree = repo.resolve() / ".claude" / "worktrees" / "a"
    assert env.split(None, 1)[1] == (
        f"COMPOSE_PROJECT_NAME=demo-a WTRUN_PLAN=demo WTRUN_TASK_ID=a WTRUN_WORKTREE={worktree} "
        f"WTRUN_BRANCH=worktree-a WTRUN_INSTRUCTIONS={worktree}/AGENTS.md WTRUN_PORTS=3100 "
        "PORT=3100 MODE='two words'"
    )


def test_a_bug_in_the_port_preview_is_not_swallowed(
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(port: int) -> bool:
        raise ZeroDivisionError("a bug")

    plan = write_plan(repo, plan_text(extra="    ports: 1\n"))
    monkeypatch.setattr(ports, "in_use", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    capsys.readouterr()
    assert wtrun("run", str(plan), "--dry-run", cwd=repo) == 3
    assert capsys.readouterr().err.startswith("wtrun: internal error (a bug in wtrun)")
