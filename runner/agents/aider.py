"""aider (`aider-chat`), headless: `aider --message=... --yes-always`, plain text output.

Checked against 0.86.2; see docs/agent-clis.md for the runs behind each choice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from .base import (
    AgentResult,
    AgentRun,
    exited,
    failed,
    last_line,
    model_args,
    one_line,
    output_tail,
    timed_out,
)

# str() of a litellm exception, as aider prints it: "litellm.InternalServerError: ...".
_API_ERROR = re.compile(r"^litellm\.(\w+):\s*(.*)$")
_RETRYING = re.compile(r"^Retrying in [\d.]+ seconds")
# aider's output is wrapped at 80 columns even into a file, so a match may span lines.
_COST = re.compile(r"Cost:\s*\$([\d.]+)\s+message,\s*\$([\d.]+)\s+session")
_N = r"[\d.]+[kM]?"
_TOKENS = re.compile(
    rf"Tokens:\s*({_N})\s+sent,(?:\s*{_N}\s+cache\s+write,)?"
    rf"(?:\s*{_N}\s+cache\s+hit,)?\s*({_N})\s+received"
)
_EXHAUSTED = re.compile(r"has hit a token limit!")


class AiderPreset:
    name = "aider"
    executable = "aider"
    # aider reads no instructions file by itself; this one is given with --read.
    instructions_file = ".wtrun/instructions.md"
    carries_over: str | None = None
    owned_paths: tuple[str, ...] = (
        ".aider.chat.history.md",
        ".aider.input.history",
        ".aider.llm.history",
        ".aider.tags.cache.v*/",
    )

    def argv(self, run: AgentRun) -> list[str]:
        return [
            self.executable,
            # "=" keeps a prompt that starts with "-" from reading as an option.
            f"--message={run.prompt}",
            f"--read={run.instructions}",
            "--yes-always",  # shell commands still need an explicit yes: they are not run
            *model_args("--model", run),
            # wtrun commits once, with the plan's message, after the scope check; aider's
            # own commits would each cost a call to its weak model for the message.
            "--no-auto-commits",
            # Otherwise it appends .aider* to .gitignore: a change outside the scope.
            "--no-gitignore",
            "--no-check-update",
            "--no-show-release-notes",
            "--no-show-model-warnings",
            # Not --analytics-disable, which rewrites ~/.aider; without either, the opt-in
            # question may come and --yes-always would answer yes.
            "--no-analytics",
            "--no-pretty",
            *run.task.agent.args,
        ]

    def session(self, details: Mapping[str, object]) -> str | None:
        # A later attempt starts a new session, told what failed. aider 0.86.2 has no session
        # id to resume: only `--restore-chat-history`, which parses the worktree's
        # .aider.chat.history.md (markdown, a file the agent can write) back into earlier
        # messages, summarized when long; a lossy copy, not the conversation itself.
        return None

    def state_paths(self, env: Mapping[str, str]) -> list[Path]:
        return []  # it writes only into the worktree (`.aider*` files, ignored there)

    def state_dirs(self, env: Mapping[str, str]) -> list[Path]:
        return []

    def env(self, run: AgentRun) -> dict[str, str]:
        return {}

    def result(self, returncode: int | None, output: str, run: AgentRun) -> AgentResult:
        cost = _cost(output)
        details = _details(output)
        if returncode is None:
            return failed(timed_out(run), cost, details)
        # aider exits 0 when the API fails (its issue #5552): the output tells.
        error = _final_api_error(output)
        if error is not None:
            return failed(f"aider got an API error: {error}", cost, details)
        if _EXHAUSTED.search(output):
            return failed("aider: the model hit its token limit", cost, details)
        if returncode != 0:
            return failed(
                f"{exited('aider', returncode)}: {last_line(output)}",
                cost,
                {**details, "output_tail": output_tail(output)},
            )
        return AgentResult(True, None, cost, details)


def _final_api_error(output: str) -> str | None:
    """The API error aider gave up on: the last one that no "Retrying in" follows."""
    lines = output.splitlines()
    last: int | None = None
    for i, line in enumerate(lines):
        if _API_ERROR.match(line.strip()):
            last = i
    if last is None:
        return None
    if any(_RETRYING.match(line.strip()) for line in lines[last + 1 :]):
        return None
    text = lines[last].strip()
    for line in lines[last + 1 : last + 4]:
        line = line.strip()
        # the wrapped rest of the message, up to aider's explanation line or a blank line
        if not line or line.startswith(("The API provider", "litellm.", "Retrying in")):
            break
        text += " " + line
    return one_line(text)


def _cost(output: str) -> float | None:
    found = _COST.findall(output)
    if not found:
        return None
    try:
        return float(found[-1][1])  # the session total of the last report
    except ValueError:
        return None


def _count(text: str) -> int:
    scale = {"k": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    try:
        return round(float(text.rstrip("kM")) * scale)
    except ValueError:
        return 0


def _details(output: str) -> dict[str, object]:
    reports = _TOKENS.findall(output)
    if not reports:
        return {}
    return {
        "messages": len(reports),
        "tokens_sent": sum(_count(sent) for sent, _ in reports),
        "tokens_received": sum(_count(received) for _, received in reports),
    }
