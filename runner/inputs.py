"""What each stage of a task is given, so that a rerun redoes only the stages whose inputs
changed, and what follows them: a build system's rule, for one task's pipeline.

The records keep a short hash of each plan field a task's work depends on. A field that
changed names the first stage to redo: a new `verify` reruns verify on the same commit, a
new prompt reruns the agent, new `pr` texts update the PR.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from .plan import Plan, Task
from .state import Step

# Field -> the first stage it feeds, in pipeline order. Where the agent runs, how long it
# may and what it may spend are not what it is given: changing them redoes nothing.
FIELDS: dict[str, Step] = {
    "after": Step.WORKTREE,
    "setup": Step.SETUP,
    "env": Step.SETUP,
    "prompt": Step.INSTRUCTIONS,
    "scope": Step.INSTRUCTIONS,
    "conventions": Step.INSTRUCTIONS,
    "agent": Step.INSTRUCTIONS,
    "verify": Step.VERIFY,
    "pr": Step.PR,
}
AGENT_INPUTS = ("prompt", "scope", "conventions", "agent")
_NOT_GIVEN = ("timeout_s", "budget_usd", "sandbox", "attempts")


def fingerprints(plan: Plan, task: Task) -> dict[str, str]:
    values: dict[str, Any] = {
        "after": task.after,
        "setup": [_step(s) for s in task.setup],
        "env": dict(task.env),
        "prompt": task.prompt,
        "scope": list(task.scope),
        "conventions": plan.conventions,
        "agent": {k: v for k, v in asdict(task.agent).items() if k not in _NOT_GIVEN},
        "verify": [_step(s) for s in task.verify],
        "pr": {k: v for k, v in asdict(plan.pr).items() if k not in ("provider", "repository")},
    }
    return {field: _hash(value) for field, value in values.items()}


def stale(plan: Plan, task: Task, recorded: Mapping[str, str]) -> list[str]:
    """The fields of the task that changed since its stages ran, in pipeline order; none
    when nothing was recorded (the task never ran, or ran before wtrun kept inputs)."""
    if not recorded:
        return []
    now = fingerprints(plan, task)
    return [f for f in FIELDS if f in recorded and recorded[f] != now[f]]


def first_stage(fields: list[str]) -> Step | None:
    order = list(Step)
    stages = [FIELDS[f] for f in fields]
    return min(stages, key=order.index) if stages else None


def _step(step: Any) -> dict[str, Any]:
    return {k: v for k, v in asdict(step).items() if k != "position"}


def _hash(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
