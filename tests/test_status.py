"""`wtrun status PLAN` as a person reads it: the table, and nothing a terminal would obey."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from testing import agent, make_repo, write_plan, wtrun
from wtrun.plan import templates

# An agent's output that sets the clipboard (OSC 52) and moves the cursor up two lines.
HOSTILE = r"printf '\\033]52;c;aGk=\\007\\033[2Aoops\\n'; exit 3"
SHOWN = r"\x1b]52;c;aGk=\x07\x1b[2Aoops"


def plan_text(command: str, branch: str = "worktree-{{ task.id }}") -> str:
    return f"""\
version: 1
name: demo
branch: "{branch}"
agent:
  preset: command
  command: {command}
pr: {{provider: none}}
tasks:
  - id: a
    prompt: work on a
    scope: [src/a/]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def status_text(repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert wtrun("status", str(plan), cwd=repo) == 0
    return capsys.readouterr().out


def test_a_reason_quoting_escape_sequences_is_shown_not_sent(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(f'[sh, -c, "{HOSTILE}"]'))
    assert wtrun("run", str(plan), cwd=repo) == 1
    out = status_text(repo, plan, capsys)
    assert "\x1b" not in out and "\x07" not in out
    row = out.splitlines()[1]
    assert row.split()[:3] == ["a", "failed", "agent"]
    assert SHOWN in row


def test_a_branch_template_beyond_task_basics_still_gives_a_status(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The pattern of the plan's branch names cannot be derived: leftovers by name are skipped.
    plan = write_plan(
        repo, plan_text(agent("nothing"), "wt-{{ task.scope[0] | replace('/', '-') }}")
    )
    out = status_text(repo, plan, capsys)
    assert out.splitlines()[1].split() == ["a", "pending", "wt-src-a-"]


def test_a_bug_in_the_leftovers_check_is_not_swallowed(
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = write_plan(repo, plan_text(agent("nothing")))
    real = templates.render

    def buggy(source: str, context: dict[str, dict[str, object]]) -> str:
        if context["task"]["id"] != "a":  # a task the plan does not have
            raise ZeroDivisionError("a bug")
        return real(source, context)

    monkeypatch.setattr(templates, "render", buggy)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    capsys.readouterr()
    assert wtrun("status", str(plan), cwd=repo) == 3
    assert capsys.readouterr().err.startswith("wtrun: internal error (a bug in wtrun)")
