"""What templates see: the variables of a task, and the names git accepts for its branch."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import templates
from .model import Plan, Task

_REF_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def branch_name_problem(name: str) -> str | None:
    """Why git would refuse `name` as a branch (git check-ref-format rules), or None."""
    if not name:
        return "it is empty"
    m = _REF_BAD.search(name)
    if m:
        return f"it contains {m.group()!r}"
    if name == "@":
        return 'it is "@"'
    if name.startswith(("/", "-")) or name.endswith("/"):
        return "it starts with '/' or '-', or ends with '/'"
    if "//" in name or ".." in name or "@{" in name:
        return "it contains '//', '..' or '@{'"
    if name.endswith("."):
        return "it ends with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return f"a part of it starts with '.': {part!r}"
        if part.endswith(".lock"):
            return f"a part of it ends with '.lock': {part!r}"
    return None


def branch_of(plan: Plan, task: Task) -> str:
    return templates.render(plan.branch, {"task": _task_basics(task), "plan": plan_vars(plan)})


def plan_vars(plan: Plan) -> dict[str, Any]:
    return {"name": plan.name, "base": plan.base, "remote": plan.remote,
            "file": str(plan.path), "max_parallel": plan.max_parallel}


def _task_basics(task: Task) -> dict[str, Any]:
    return {"id": task.id, "title": task.title, "prompt": task.prompt,
            "scope": list(task.scope), "after": task.after, "parent": task.after}


def task_context(
    plan: Plan,
    task: Task,
    *,
    ports: Sequence[int],
    worktree: str,
    branch: str | None = None,
    pr: bool = False,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Variables for the conventions, commit, PR and command templates of `task`.

    `pr=True` adds `run` (files, verify, cost, stacked PRs) with placeholder values
    when the run has not produced them yet, so validation checks PR templates too.
    """
    variables = _task_basics(task)
    parent = plan.task(task.after) if task.after else None
    variables.update({
        "ports": list(ports),
        "port": ports[0] if ports else None,
        "branch": branch if branch is not None else branch_of(plan, task),
        "base": branch_of(plan, parent) if parent else plan.base,
        "worktree": worktree,
        "env": dict(task.env),
        "agent": {"preset": task.agent.preset, "model": task.agent.model},
    })
    context: dict[str, Any] = {"task": variables, "plan": plan_vars(plan)}
    if pr:
        defaults: dict[str, Any] = {"files": [], "verify": [], "cost_usd": None,
                                    "stacked_on": None, "children": [], "conflicts": []}
        defaults.update(run or {})
        context["run"] = defaults
    return context
