"""What every agent preset is: the command line, extra environment and result reading of one CLI.

The caller runs `argv(run)` in the task's worktree through `wtrun.proc.run_logged` (own process
group, stdin from /dev/null, stdout and stderr into the task's log) with the task's environment
plus `env(run)`, then hands the end of the output it captured (not the log file, which the agent
can write) to `result()`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..plan import Plan, Task, format_duration

_REASON_MAX = 300
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class AgentRun:
    plan: Plan
    task: Task  # task.agent is already merged over the plan's agent
    prompt: str  # the task's prompt
    worktree: Path
    instructions: Path  # absolute path of the rendered instructions file in the worktree
    env: Mapping[str, str]  # the task's environment (PORT, WTRUN_*, plan/task env...)
    sandboxed: bool = False  # inside wtrun's sandbox, where the CLI's own cannot nest
    resume: str | None = None  # the CLI's session to continue (a later attempt), if it can
    budget_usd: float | None = None  # what the task may still spend (None: no budget)


@dataclass(frozen=True)
class AgentResult:
    ok: bool
    reason: str | None  # one line: why it failed (None when ok)
    cost_usd: float | None  # None when the CLI reports no cost
    details: Mapping[str, object] = field(default_factory=dict)  # turns, session, tokens...


class Preset(Protocol):
    name: str
    executable: str  # checked on PATH before any worktree is made ("" when the plan names it)
    instructions_file: str  # relative to the worktree: where wtrun writes the instructions
    # A tracked file the CLI reads no more once `instructions_file` exists (Codex's
    # AGENTS.override.md replaces AGENTS.md): its text is carried into the instructions.
    carries_over: str | None
    owned_paths: tuple[str, ...]  # scope-style patterns of the CLI's own bookkeeping files

    def argv(self, run: AgentRun) -> list[str]: ...

    def env(self, run: AgentRun) -> dict[str, str]: ...

    # The CLI's own state that it must write (in $HOME): writable inside the sandbox.
    def state_paths(self, env: Mapping[str, str]) -> list[Path]: ...

    # The folders among `state_paths` that wtrun makes when missing, before the sandbox starts:
    # the CLI cannot make them inside it, and would lose the session a later attempt resumes.
    def state_dirs(self, env: Mapping[str, str]) -> list[Path]: ...

    # The session a later run can continue, from what the CLI reported (None: it cannot).
    def session(self, details: Mapping[str, object]) -> str | None: ...

    # returncode None: killed for the timeout
    def result(self, returncode: int | None, output: str, run: AgentRun) -> AgentResult: ...


def home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def model_args(flag: str, run: AgentRun) -> list[str]:
    model = run.task.agent.model
    return [flag, model] if model else []


def only_missing(defaults: Mapping[str, str], run: AgentRun) -> dict[str, str]:
    """The preset's variables that the plan or task did not set: theirs win."""
    return {k: v for k, v in defaults.items() if k not in run.env}


def failed(
    reason: str, cost_usd: float | None = None, details: Mapping[str, object] | None = None
) -> AgentResult:
    return AgentResult(False, one_line(reason), cost_usd, dict(details or {}))


def timed_out(run: AgentRun) -> str:
    return f"timed out after {format_duration(run.task.agent.timeout_s)}"


def exited(name: str, returncode: int) -> str:
    return f"{name} exited with code {returncode}"


def one_line(text: str, limit: int = _REASON_MAX) -> str:
    """`text` with its whitespace runs (newlines included) collapsed, cut to `limit`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def output_tail(output: str, lines: int = 15) -> str:
    return "\n".join([line for line in output.rstrip().splitlines() if line.strip()][-lines:])


def json_lines(output: str) -> Iterator[dict[str, object]]:
    """The lines of `output` that are JSON objects, in order; other lines are skipped."""
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


_OBJECT_START = re.compile(r"^\{", re.MULTILINE)


def last_json_object(output: str, *keys: str) -> dict[str, object] | None:
    """The last JSON object in `output` that starts a line (it may span lines) and has one of
    `keys`; the text around it (warnings, stack traces on stderr) is ignored."""
    decoder = json.JSONDecoder()
    for match in reversed(list(_OBJECT_START.finditer(output))):
        try:
            value, _ = decoder.raw_decode(output, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) and any(key in value for key in keys):
            return value
    return None


def session_id(value: object) -> str | None:
    """A session id a CLI reported, when it is a UUID: what goes back on its command line to
    resume can then never read as an option, "latest" or an index."""
    return value if isinstance(value, str) and _UUID.fullmatch(value) else None


def number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def flag_number(value: float) -> str:
    """A number for a command-line flag: `5`, `0.25`, never `1e-05`."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"
