"""`wtrun run` with the real Claude Code CLI against a local Messages API server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fakes.anthropic import AnthropicServer, answer, write_file
from testing import (
    claude_binary,
    git,
    index_of,
    make_repo,
    status_json,
    use_agent_cli,
    write_plan,
    wtrun,
)
from wtrun.agents.base import json_lines

PLAN = """\
version: 1
name: claude-e2e
agent:
  preset: claude
  model: sonnet
  timeout: 3m
  budget_usd: 2
conventions: |
  ## Team conventions
  - Marker WTRUN-CONVENTIONS-51c2 for task {{ task.id }}
  - You may only change: {{ task.scope | join(", ") }}
pr: {provider: none}
tasks:
  - id: greet
    title: Greeting
    prompt: Write src/greet/hello.txt saying hello.
    scope: [src/greet/]
"""


def test_a_plan_runs_with_the_real_claude_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = claude_binary()
    repo = make_repo(tmp_path)
    plan = write_plan(repo, PLAN)
    worktree = repo / ".claude" / "worktrees" / "greet"
    target = worktree / "src" / "greet" / "hello.txt"
    script = [write_file(str(target), "hello from the fake model\n"), answer("Done.")]
    with AnthropicServer(script) as srv:
        use_agent_cli(
            monkeypatch,
            binary,
            {"ANTHROPIC_BASE_URL": srv.url, "ANTHROPIC_API_KEY": "test"},
            unset=("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CONFIG_DIR"),
        )
        code = wtrun("run", str(plan), cwd=repo)
        conversation = [r.text for r in srv.conversation]
    log = repo / ".git" / "wtrun" / "claude-e2e" / "logs" / "greet" / "agent.log"
    assert code == 0, log.read_text() if log.exists() else "no agent log"

    # The file the model wrote is committed on the task's branch, and only that file.
    assert git(repo, "show", "worktree-greet:src/greet/hello.txt") == "hello from the fake model\n"
    assert git(repo, "diff", "--name-only", "main...worktree-greet").split() == [
        "src/greet/hello.txt"
    ]
    # The instructions file reached the model: proof Claude Code read it in the worktree.
    assert "Marker WTRUN-CONVENTIONS-51c2 for task greet" in conversation[0]
    assert "You may only change: src/greet/" in conversation[0]
    # ... and it is neither committed nor visible to git.
    assert "CLAUDE.local.md" not in git(repo, "ls-tree", "-r", "--name-only", "worktree-greet")
    assert git(worktree, "status", "--porcelain") == ""

    (row,) = status_json(repo, plan, capsys)["tasks"]
    assert row["state"] == "done"
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


RESUME_PLAN = """\
version: 1
name: claude-resume
agent:
  preset: claude
  model: sonnet
  timeout: 3m
  attempts: 2
pr: {provider: none}
verify:
  - run: test -f src/greet/checked.txt
tasks:
  - id: greet
    prompt: Write src/greet/hello.txt saying hello.
    scope: [src/greet/]
"""


def said(message: dict[str, Any]) -> str:
    return json.dumps(message["content"], ensure_ascii=False)


def test_a_second_attempt_resumes_the_claude_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In the sandbox, with a HOME the CLI never ran in (as on a CI runner): the session the
    first run kept must still be there for `--resume` on the second."""
    binary = claude_binary()
    repo = make_repo(tmp_path)
    plan = write_plan(repo, RESUME_PLAN)
    src = repo / ".claude" / "worktrees" / "greet" / "src" / "greet"
    # The turn is picked by the number of assistant messages in the request: only a resumed
    # conversation reaches the last two.
    script = [
        write_file(str(src / "hello.txt"), "hello\n"),
        answer("Wrote the greeting."),
        write_file(str(src / "checked.txt"), "checked\n"),
        answer("Added the file the checks want."),
    ]
    with AnthropicServer(script) as srv:
        use_agent_cli(
            monkeypatch,
            binary,
            {"ANTHROPIC_BASE_URL": srv.url, "ANTHROPIC_API_KEY": "test"},
            unset=("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CONFIG_DIR"),
        )
        code = wtrun("run", str(plan), cwd=repo)
        conversation = [r.body for r in srv.conversation]
    log = (repo / ".git" / "wtrun" / "claude-resume" / "logs" / "greet" / "agent.log").read_text()
    assert code == 0, log

    # Two runs of the CLI, the second told the first's session and reporting the same one.
    first, second = [line for line in json_lines(log) if line.get("type") == "result"]
    session = first["session_id"]
    assert second["session_id"] == session
    assert f"agent attempt 2: claude, resuming session {session}" in log

    # The second run's first request carries the first conversation, then the failure.
    resumed = next(body for body in conversation if "did not pass the checks" in json.dumps(body))
    messages = resumed["messages"]
    asked = index_of(
        messages,
        lambda m: m["role"] == "user" and "Write src/greet/hello.txt saying hello." in said(m),
    )
    answered = index_of(
        messages, lambda m: m["role"] == "assistant" and "Wrote the greeting." in said(m)
    )
    assert asked < answered < len(messages) - 1
    assert messages[-1]["role"] == "user"
    assert "verify step 1 (test -f src/greet/checked.txt) failed" in said(messages[-1])

    assert git(repo, "show", "worktree-greet:src/greet/checked.txt") == "checked\n"
    (row,) = status_json(repo, plan, capsys)["tasks"]
    assert (row["state"], row["attempts"]) == ("done", 2)
    costs = [first["total_cost_usd"], second["total_cost_usd"]]
    assert all(cost > 0 for cost in costs)
    assert row["cost_usd"] == pytest.approx(sum(costs))
