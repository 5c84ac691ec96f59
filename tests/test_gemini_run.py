"""`wtrun run` with the real Gemini CLI against a local Gemini API server: a verify failure
sends the agent back into the same Gemini session."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from fakes.gemini import KEY_VARIABLE, URL_VARIABLE, GeminiServer, answer, write_file
from testing import (
    SANDBOXES,
    gemini_binary,
    git,
    index_of,
    make_repo,
    status_json,
    use_agent_cli,
    write_plan,
    wtrun,
)
from wtrun.agents.base import last_json_object

PLAN = """\
version: 1
name: gemini-resume
agent:
  preset: gemini
  model: gemini-test
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


def said(content: dict[str, Any]) -> str:
    return json.dumps(content.get("parts", ""), ensure_ascii=False)


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_a_second_attempt_resumes_the_gemini_session(
    sandbox: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With a HOME the CLI never ran in (as on a CI runner): the chat the first run kept in
    ~/.gemini must still be there for `--resume` on the second, the sandbox included."""
    binary = gemini_binary()
    repo = make_repo(tmp_path)
    plan = write_plan(repo, PLAN.format(sandbox=sandbox))
    # The turn is picked by the number of model turns in the request's contents: only a
    # resumed session reaches the last two.
    script = [
        write_file("src/greet/hello.txt", "hello\n"),
        answer("Wrote the greeting."),
        write_file("src/greet/checked.txt", "checked\n"),
        answer("Added the file the checks want."),
    ]
    with GeminiServer(script) as srv:
        srv.write_gemini_settings(Path(os.environ["HOME"]) / ".gemini")
        use_agent_cli(
            monkeypatch,
            binary,
            {KEY_VARIABLE: "test", URL_VARIABLE: srv.url},
            unset=("GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT"),
        )
        code = wtrun("run", str(plan), cwd=repo)
        conversation = [r.body for r in srv.conversation]
        unknown = list(srv.unknown)
    log = (repo / ".git" / "wtrun" / "gemini-resume" / "logs" / "greet" / "agent.log").read_text()
    assert code == 0, log
    assert unknown == []

    # Two runs of the CLI, the second told the first's session and reporting the same one.
    first_run, second_run = log.split("agent attempt 2: gemini")
    first = last_json_object(first_run, "response", "session_id")
    second = last_json_object(second_run, "response", "session_id")
    assert first is not None and second is not None
    assert second["session_id"] == first["session_id"]
    assert "agent attempt 1: gemini\n" in log
    assert f", resuming session {first['session_id']}" in second_run.splitlines()[0]

    # The second run's first request carries the first run's turn, then the failure.
    resumed = next(body for body in conversation if "did not pass the checks" in json.dumps(body))
    contents = resumed["contents"]
    asked = index_of(
        contents,
        lambda c: c.get("role") == "user" and "Write src/greet/hello.txt saying hello." in said(c),
    )
    wrote = index_of(
        contents,
        lambda c: c.get("role") == "model" and "functionCall" in said(c) and "hello.txt" in said(c),
    )
    answered = index_of(
        contents, lambda c: c.get("role") == "model" and "Wrote the greeting." in said(c)
    )
    assert asked < wrote < answered < len(contents) - 1
    assert contents[-1]["role"] == "user"
    assert "verify step 1 (test -f src/greet/checked.txt) failed" in said(contents[-1])

    assert git(repo, "show", "worktree-greet:src/greet/hello.txt") == "hello\n"
    assert git(repo, "show", "worktree-greet:src/greet/checked.txt") == "checked\n"
    (row,) = status_json(repo, plan, capsys)["tasks"]
    assert (row["state"], row["attempts"], row["sandbox"]) == ("done", 2, sandbox)
