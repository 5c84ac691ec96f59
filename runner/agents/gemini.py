"""Gemini CLI (`@google/gemini-cli`), headless: `gemini --prompt=... -o json`.

A later attempt continues the session of the first: `gemini --resume <session_id> --prompt=...`.
Checked against 0.61.0; see docs/agent-clis.md for the runs behind each choice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from .base import (
    AgentResult,
    AgentRun,
    exited,
    failed,
    home,
    last_json_object,
    last_line,
    model_args,
    one_line,
    output_tail,
    session_id,
    timed_out,
)

UNTRUSTED_EXIT = 55


class GeminiPreset:
    name = "gemini"
    executable = "gemini"
    instructions_file = "GEMINI.md"
    carries_over: str | None = None
    owned_paths: tuple[str, ...] = ()  # its chats, history and settings live in ~/.gemini

    def argv(self, run: AgentRun) -> list[str]:
        # `--resume` finds the chat under ~/.gemini/tmp/<project>/chats, per working folder:
        # the same worktree. Its --help names only "latest" and an index; it takes the UUID too.
        resume = ["--resume", run.resume] if run.resume else []
        return [
            self.executable,
            *resume,
            # One argument, so a prompt starting with "-" stays the prompt.
            f"--prompt={run.prompt}",
            "-o",
            "json",
            # Without it a new folder (every worktree) exits 55 before any request.
            "--skip-trust",
            # The default mode does not even offer the file-writing tools headless: the
            # CLI exits 0 having written nothing.
            "--approval-mode",
            "auto_edit",
            *model_args("-m", run),
            *run.task.agent.args,
        ]

    def session(self, details: Mapping[str, object]) -> str | None:
        # The `session_id` of the JSON result it printed on stdout.
        return session_id(details.get("session_id"))

    def state_paths(self, env: Mapping[str, str]) -> list[Path]:
        return self.state_dirs(env)

    def state_dirs(self, env: Mapping[str, str]) -> list[Path]:
        return [home(env) / ".gemini"]

    def env(self, run: AgentRun) -> dict[str, str]:
        return {}

    def result(self, returncode: int | None, output: str, run: AgentRun) -> AgentResult:
        # -o json prints one indented object: on stdout when it worked, on stderr (after a
        # stack trace) when it did not; the log holds both.
        final = last_json_object(output, "response", "error", "session_id")
        details = _details(final) if final is not None else {}
        if returncode is None:
            return failed(timed_out(run), None, details)
        error = final.get("error") if final is not None else None
        if isinstance(error, dict):
            code = f" (exit code {returncode})" if returncode else ""
            return failed(f"gemini reported an error{code}: {_error_text(error)}", None, details)
        if returncode == UNTRUSTED_EXIT:
            return failed(
                f"gemini does not trust the worktree (exit code {UNTRUSTED_EXIT}): "
                f"{last_line(output)}",
                None,
                details,
            )
        if returncode != 0:
            # The CLI exits with the API's HTTP status, modulo 256 (a 400 exits 144).
            return failed(
                f"{exited('gemini', returncode)}: {last_line(output)}",
                None,
                {**details, "output_tail": output_tail(output)},
            )
        if final is None:
            return failed(
                f"gemini printed no JSON result: {last_line(output)}",
                None,
                {"output_tail": output_tail(output)},
            )
        return AgentResult(True, None, None, details)


def _error_text(error: dict[str, object]) -> str:
    message = str(error.get("message") or error.get("type") or "no message")
    # API errors arrive as the API's own JSON body, as a string.
    try:
        body = json.loads(message)
    except ValueError:
        return one_line(message)
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict) and inner.get("message"):
        status = " ".join(str(inner[k]) for k in ("code", "status") if inner.get(k))
        return one_line(f"{inner['message']} ({status})" if status else str(inner["message"]))
    return one_line(message)


def _details(final: dict[str, object]) -> dict[str, object]:
    details: dict[str, object] = {}
    if isinstance(final.get("session_id"), str):
        details["session_id"] = final["session_id"]
    if isinstance(final.get("response"), str):
        details["response"] = final["response"]
    stats = final.get("stats")
    if not isinstance(stats, dict):
        return details
    models = stats.get("models")
    if isinstance(models, dict):
        totals: dict[str, int] = {}
        requests = 0
        for model in models.values():
            if not isinstance(model, dict):
                continue
            api = model.get("api")
            if isinstance(api, dict) and isinstance(api.get("totalRequests"), int):
                requests += api["totalRequests"]
            tokens = model.get("tokens")
            if isinstance(tokens, dict):
                for key in ("input", "candidates", "cached", "thoughts", "total"):
                    if isinstance(tokens.get(key), int):
                        totals[key] = totals.get(key, 0) + tokens[key]
        details["models"] = sorted(models)
        details["requests"] = requests
        details.update({f"{key}_tokens": value for key, value in totals.items()})
    tools = stats.get("tools")
    if isinstance(tools, dict) and isinstance(tools.get("totalCalls"), int):
        details["tool_calls"] = tools["totalCalls"]
    return details
