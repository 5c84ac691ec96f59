"""`wtrun run` with the real Claude Code CLI against a local Messages API server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fakes.anthropic import AnthropicServer, answer, write_file
from testing import claude_binary, git, make_repo, write_plan, wtrun

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
        monkeypatch.setenv("PATH", str(Path(binary).parent) + os.pathsep + os.environ["PATH"])
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
        for name in ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CONFIG_DIR"):
            monkeypatch.delenv(name, raising=False)
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

    capsys.readouterr()
    assert wtrun("status", str(plan), "--json", cwd=repo) == 0
    (row,) = json.loads(capsys.readouterr().out)["tasks"]
    assert row["state"] == "done"
    assert row["cost_usd"] is not None and row["cost_usd"] > 0
