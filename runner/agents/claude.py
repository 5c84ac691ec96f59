"""Claude Code (`@anthropic-ai/claude-code`), headless: `claude -p --output-format json`.

Checked against 2.1.197; see docs/agent-clis.md for the runs behind each choice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .base import (
    AgentResult,
    AgentRun,
    exited,
    failed,
    flag_number,
    home,
    json_lines,
    last_line,
    model_args,
    number,
    one_line,
    only_missing,
    output_tail,
    session_id,
    timed_out,
)

_BYPASS = ("--dangerously-skip-permissions", "bypassPermissions")


class ClaudePreset:
    name = "claude"
    executable = "claude"
    # The personal, untracked member of the CLAUDE.md family; Claude Code reads it in its working
    # folder (and in the folders above), next to the worktree's own CLAUDE.md.
    instructions_file = "CLAUDE.local.md"
    carries_over: str | None = None
    owned_paths: tuple[str, ...] = (".claude/settings.local.json",)

    def argv(self, run: AgentRun) -> list[str]:
        spec = run.task.agent
        argv = [
            self.executable,
            "-p",
            "--output-format",
            "json",
            # Edits are allowed, most Bash (git commit included) is not: wtrun commits.
            "--permission-mode",
            "acceptEdits",
            *model_args("--model", run),
        ]
        budget = run.budget_usd if run.budget_usd is not None else spec.budget_usd
        if budget is not None:
            argv += ["--max-budget-usd", flag_number(budget)]
        if run.resume:
            argv += ["--resume", run.resume]
        # "--" ends the options: a user argument such as `--allowed-tools Edit` takes every
        # value that follows it, and a prompt starting with "-" is not an option.
        return [*argv, *spec.args, "--", run.prompt]

    def session(self, details: Mapping[str, object]) -> str | None:
        return session_id(details.get("session_id"))

    def state_paths(self, env: Mapping[str, str]) -> list[Path]:
        # With CLAUDE_CONFIG_DIR set, `.claude.json` lives in that folder too.
        config = self.state_dirs(env)[0]
        files = [] if env.get("CLAUDE_CONFIG_DIR") else [home(env) / ".claude.json"]
        return [config, *files, home(env) / ".local" / "state" / "claude"]

    def state_dirs(self, env: Mapping[str, str]) -> list[Path]:
        # Sessions are kept in <config>/projects/: `--resume` finds them there.
        configured = env.get("CLAUDE_CONFIG_DIR")
        return [Path(configured) if configured else home(env) / ".claude"]

    def env(self, run: AgentRun) -> dict[str, str]:
        extra = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
        # As root the CLI refuses the bypass modes unless told it runs in a sandbox; a plan that
        # asks for them (in agent.args) usually runs in a CI container as root.
        if (
            hasattr(os, "geteuid")
            and os.geteuid() == 0
            and any(
                a in _BYPASS or a == "--permission-mode=bypassPermissions"
                for a in run.task.agent.args
            )
        ):
            extra["IS_SANDBOX"] = "1"
        return only_missing(extra, run)

    def result(self, returncode: int | None, output: str, run: AgentRun) -> AgentResult:
        final = None
        for obj in json_lines(output):
            if obj.get("type") == "result":
                final = obj
        if final is None:
            tail: dict[str, object] = {"output_tail": output_tail(output)}
            if returncode is None:
                return failed(timed_out(run), details=tail)
            code = f"exit code {returncode}"
            return failed(f"claude printed no result ({code}): {last_line(output)}", details=tail)
        cost = number(final.get("total_cost_usd"))
        details = _details(final)
        if returncode is None:
            return failed(timed_out(run), cost, details)
        # `subtype` says "success" on API errors: only `is_error` tells.
        if final.get("is_error") is True:
            return failed(f"claude reported an error: {_error_text(final)}", cost, details)
        if returncode != 0:
            return failed(exited("claude", returncode), cost, details)
        return AgentResult(True, None, cost, details)


def _error_text(final: dict[str, object]) -> str:
    subtype = final.get("subtype")
    errors = final.get("errors")
    # error_max_turns and error_max_budget_usd carry `errors`, not `result`.
    if isinstance(errors, list) and errors:
        text = "; ".join(str(e) for e in errors)
    elif isinstance(final.get("result"), str) and final["result"]:
        text = str(final["result"])
    else:
        text = "no message"
    if isinstance(subtype, str) and subtype != "success":
        text = f"{text} ({subtype})"
    return one_line(text)


def _details(final: dict[str, object]) -> dict[str, object]:
    details: dict[str, object] = {}
    for key in (
        "session_id",
        "num_turns",
        "subtype",
        "duration_ms",
        "stop_reason",
        "terminal_reason",
        "api_error_status",
    ):
        if final.get(key) is not None:
            details[key] = final[key]
    usage = final.get("usage")
    if isinstance(usage, dict):
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            if isinstance(usage.get(key), int):
                details[key] = usage[key]
    models = final.get("modelUsage")
    if isinstance(models, dict) and models:
        details["models"] = sorted(models)
    denials = final.get("permission_denials")
    if isinstance(denials, list) and denials:
        details["permission_denials"] = len(denials)
    if isinstance(final.get("result"), str):
        details["result"] = final["result"]
    return details
