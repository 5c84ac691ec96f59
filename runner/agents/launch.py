"""The agent stage: one run of the task's agent CLI in its worktree, its output appended to
the task's agent log under a header per attempt, and what it reported read from the end of
the output wtrun captured."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import proc
from ..errors import DiskFull, WtrunError
from ..plan import format_duration
from . import get
from .base import AgentResult, AgentRun


@dataclass(frozen=True)
class Launched:
    result: AgentResult
    seconds: float


class AgentFailed(WtrunError):
    """The agent timed out, failed, or spent more than the task's budget."""

    def __init__(self, message: str, result: AgentResult | None) -> None:
        super().__init__(message)
        self.result = result


def launch(
    run: AgentRun,
    env: Mapping[str, str],
    log: Path,
    *,
    attempt: int,
    wrap: Callable[[Sequence[str]], list[str]] = list,
    started: Callable[[int], None] | None = None,
) -> Launched:
    """Run the agent once. Raises `AgentFailed` (after its cost is known) when it timed
    out, reported a failure, or spent more than the task's `budget_usd`."""
    preset = get(run.task.agent.preset)
    agent = run.task.agent
    # The session it continues, for whoever reads the log after a surprising second attempt.
    resuming = f", resuming session {run.resume}" if run.resume else ""
    _header(log, f"agent attempt {attempt}: {preset.name}{resuming}")
    outcome = proc.run_logged(
        wrap(preset.argv(run)),
        cwd=run.worktree,
        env={**env, **preset.env(run)},
        log=log,
        timeout=agent.timeout_s,
        started=started,
    )
    # From wtrun's own capture, never from the log: the agent can write to that file.
    result = preset.result(outcome.returncode, outcome.output_tail, run)
    if outcome.log_error is not None:
        raise AgentFailed(outcome.log_error, result)
    if outcome.timed_out:
        raise AgentFailed(
            f"agent timed out after {format_duration(agent.timeout_s)} and was stopped; log: {log}",
            result,
        )
    if not result.ok:
        raise AgentFailed(f"agent failed: {result.reason}; log: {log}", result)
    cost, budget = result.cost_usd, agent.budget_usd
    if cost is not None and budget is not None and cost > budget:
        raise AgentFailed(
            f"agent spent ${cost:.2f}, over the task's budget ${budget:.2f}; its work is kept "
            f"in {run.worktree}",
            result,
        )
    return Launched(result, outcome.seconds)


def _header(log: Path, text: str) -> None:
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as f:
            gap = "" if f.tell() == 0 else "\n"
            f.write(f"{gap}[wtrun {time.strftime('%Y-%m-%d %H:%M:%S')}] {text}\n")
    except OSError as e:
        if DiskFull.caused(e):
            raise DiskFull(log) from e
        raise
