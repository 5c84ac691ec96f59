"""Codex CLI (`@openai/codex`), headless: `codex exec --json`, JSONL events on stdout.

A later attempt continues the thread of the first: `codex exec ... resume <thread_id> -- PROMPT`.
Checked against 0.171.0; see docs/agent-clis.md for the runs behind each choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .base import (
    AgentResult,
    AgentRun,
    exited,
    failed,
    home,
    json_lines,
    last_line,
    model_args,
    output_tail,
    session_id,
    timed_out,
)

_TOKENS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
)


class CodexPreset:
    name = "codex"
    executable = "codex"
    # Read instead of AGENTS.md in the same folder, so wtrun never edits a tracked AGENTS.md;
    # the run copies a tracked AGENTS.md's text into it.
    instructions_file = "AGENTS.override.md"
    carries_over: str | None = "AGENTS.md"
    owned_paths: tuple[str, ...] = ()  # its sessions and state live in $CODEX_HOME

    def argv(self, run: AgentRun) -> list[str]:
        # workspace-write: edits inside the worktree, `.git` read-only (wtrun commits). Its
        # sandbox is bubblewrap too and cannot nest inside wtrun's, which is then the boundary.
        # stdin must be /dev/null (run_logged does it): with an open pipe it waits for input.
        # `exec resume` takes neither -s nor most of exec's options, and without -s it runs
        # read-only; given before `resume`, exec's options (the user's too) apply to it.
        resume = ["resume", run.resume] if run.resume else []
        return [
            self.executable,
            "exec",
            "--json",
            "-s",
            "danger-full-access" if run.sandboxed else "workspace-write",
            *model_args("-m", run),
            *run.task.agent.args,
            *resume,
            "--",
            run.prompt,
        ]

    def session(self, details: Mapping[str, object]) -> str | None:
        # The thread kept in $CODEX_HOME/sessions, as `thread.started` reported it.
        return session_id(details.get("thread_id"))

    def state_paths(self, env: Mapping[str, str]) -> list[Path]:
        return self.state_dirs(env)

    def state_dirs(self, env: Mapping[str, str]) -> list[Path]:
        return [Path(env["CODEX_HOME"]) if env.get("CODEX_HOME") else home(env) / ".codex"]

    def env(self, run: AgentRun) -> dict[str, str]:
        return {}

    def result(self, returncode: int | None, output: str, run: AgentRun) -> AgentResult:
        details: dict[str, object] = {}
        tokens = dict.fromkeys(_TOKENS, 0)
        completed = False
        error: str | None = None  # the last error not followed by a completed turn
        seen = False
        for event in json_lines(output):
            kind = event.get("type")
            seen = seen or isinstance(kind, str)
            if kind == "thread.started" and isinstance(event.get("thread_id"), str):
                details.setdefault("thread_id", event["thread_id"])
            elif kind == "turn.completed":
                completed, error = True, None
                # After a resume these count the whole thread, the earlier runs included.
                usage = event.get("usage")
                if isinstance(usage, dict):
                    for key in _TOKENS:
                        value = usage.get(key)
                        if isinstance(value, int):
                            tokens[key] += value
            elif kind == "turn.failed":
                completed = False
                error = _message(event.get("error")) or "turn failed"
            elif kind == "error":
                # Also sent for retries ("Reconnecting... 1/5"): only fatal if no turn completes.
                error = _message(event) or "error"
            elif kind == "item.completed":
                item = event.get("item")
                if isinstance(item, dict) and item.get("type") == "agent_message":
                    details["last_message"] = item.get("text")
        if completed:
            details.update((k, v) for k, v in tokens.items() if v)
        if returncode is None:
            return failed(timed_out(run), None, details)
        if error is not None:
            return failed(f"codex: {error}", None, details)
        if returncode != 0:
            return failed(
                f"{exited('codex', returncode)}: {last_line(output)}",
                None,
                {**details, "output_tail": output_tail(output)},
            )
        if not seen:
            return failed(
                f"codex printed no JSON events: {last_line(output)}",
                None,
                {"output_tail": output_tail(output)},
            )
        if not completed:
            return failed("codex ended without completing its turn", None, details)
        return AgentResult(True, None, None, details)


def _message(value: object) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return str(value["message"])
    return None
