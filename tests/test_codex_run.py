"""`wtrun run` with the real Codex CLI against a local Responses API server: a verify failure
sends the agent back into the same Codex thread."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from fakes.openai import KEY_VARIABLE, OpenAIServer, answer, run_command
from testing import (
    SANDBOXES,
    codex_binary,
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
name: codex-resume
agent:
  preset: codex
  timeout: 3m
  attempts: 2
  sandbox: {sandbox}
pr: {{provider: none}}
verify:
  - run: test -f src/greet/checked.txt
tasks:
  - id: greet
    prompt: Write src/greet/hello.txt saying hello.
    scope: [src/greet/]
"""


def said(item: dict[str, Any]) -> str:
    return json.dumps(item.get("content", item.get("arguments", "")), ensure_ascii=False)


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_second_attempt_resumes_the_codex_thread(
    sandbox: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With a HOME the CLI never ran in (as on a CI runner): the thread the first run kept in
    $CODEX_HOME must still be there for `resume` on the second, the sandbox included."""
    binary = codex_binary()
    repo = make_repo(tmp_path)
    plan = write_plan(repo, PLAN.format(sandbox=sandbox))
    # The turn is picked by the number of model outputs in the request's input: only a
    # resumed thread reaches the last two.
    script = [
        run_command("mkdir -p src/greet && printf 'hello\\n' > src/greet/hello.txt"),
        answer("Wrote the greeting."),
        run_command("printf 'checked\\n' > src/greet/checked.txt"),
        answer("Added the file the checks want."),
    ]
    with OpenAIServer(script) as srv:
        # Not under /tmp, where Codex will not make its helper binaries: the test HOME.
        srv.write_codex_config(Path(os.environ["HOME"]) / ".codex")
        use_agent_cli(
            monkeypatch,
            binary,
            {KEY_VARIABLE: "test"},
            unset=("CODEX_HOME", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
        )
        code = wtrun("run", str(plan), cwd=repo)
        conversation = [r.body for r in srv.conversation]
        unknown = list(srv.unknown)
    log = (repo / ".git" / "wtrun" / "codex-resume" / "logs" / "greet" / "agent.log").read_text()
    assert code == 0, log
    assert unknown == []

    # Two runs of the CLI, the second told the first's thread and reporting the same one.
    first, second = [e["thread_id"] for e in json_lines(log) if e.get("type") == "thread.started"]
    assert second == first
    assert "agent attempt 1: codex\n" in log
    assert f"agent attempt 2: codex, resuming session {first}" in log

    # Every request of both runs belongs to that thread...
    assert {body["prompt_cache_key"] for body in conversation} == {first}
    # ... and the second run's first request carries the first run's turn, then the failure.
    resumed = next(body for body in conversation if "did not pass the checks" in json.dumps(body))
    items = resumed["input"]
    asked = index_of(
        items,
        lambda i: i.get("role") == "user" and "Write src/greet/hello.txt saying hello." in said(i),
    )
    ran = index_of(
        items, lambda i: i.get("type") == "function_call" and "src/greet/hello.txt" in said(i)
    )
    answered = index_of(
        items, lambda i: i.get("role") == "assistant" and "Wrote the greeting." in said(i)
    )
    assert asked < ran < answered < len(items) - 1
    assert items[-1]["role"] == "user"
    assert "verify step 1 (test -f src/greet/checked.txt) failed" in said(items[-1])

    assert git(repo, "show", "worktree-greet:src/greet/hello.txt") == "hello\n"
    assert git(repo, "show", "worktree-greet:src/greet/checked.txt") == "checked\n"
    (row,) = status_json(repo, plan, capsys)["tasks"]
    assert (row["state"], row["attempts"], row["sandbox"]) == ("done", 2, sandbox)
