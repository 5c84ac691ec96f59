"""What templates see: the variables of a task and of the plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import templates
from .model import Plan, Task


def branch_of(plan: Plan, task: Task) -> str:
    return templates.render(plan.branch, branch_context(plan, task))


def base_branch(plan: Plan, task: Task) -> str:
    """The branch a task starts from and its PR targets: its parent's, or the plan's base."""
    return branch_of(plan, plan.task(task.after)) if task.after else plan.base


def branch_context(plan: Plan, task: Task) -> dict[str, Any]:
    """What the branch template sees: the task's own fields, not what the run decides."""
    return {"task": _task_basics(task), "plan": plan_vars(plan)}


def plan_vars(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "base": plan.base,
        "remote": plan.remote,
        "file": str(plan.path),
        "max_parallel": plan.max_parallel,
    }


def _task_basics(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "prompt": task.prompt,
        "scope": list(task.scope),
        "after": task.after,
        "parent": task.after,
    }


def task_context(
    plan: Plan,
    task: Task,
    *,
    ports: Sequence[int],
    worktree: str,
    branch: str | None = None,
    base: str | None = None,
    pr: bool = False,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Variables for the conventions, commit, PR and command templates of `task`.

    `branch` and `base` (the branch the task starts from) are computed when not given.
    `pr=True` adds `run` (files, verify, cost, stacked PRs) with placeholder values
    when the run has not produced them yet, so validation checks PR templates too.
    """
    variables = _task_basics(task)
    if base is None:
        base = base_branch(plan, task)
    variables.update(
        {
            "ports": list(ports),
            "port": ports[0] if ports else None,
            "branch": branch if branch is not None else branch_of(plan, task),
            "base": base,
            "worktree": worktree,
            "env": dict(task.env),
            "agent": {"preset": task.agent.preset, "model": task.agent.model},
        }
    )
    context: dict[str, Any] = {"task": variables, "plan": plan_vars(plan)}
    if pr:
        defaults: dict[str, Any] = {
            "files": [],
            "verify": [],
            "cost_usd": None,
            "stacked_on": None,
            "children": [],
            "conflicts": [],
        }
        defaults.update(run or {})
        context["run"] = defaults
    return context


def sample_context(
    plan: Plan, task: Task, branches: Mapping[str, str | None], *, pr: bool = False
) -> dict[str, Any]:
    """`task_context` with placeholder values where only a run knows the real ones, to check
    templates before anything runs.

    `branches` maps task ids to their rendered branch (None where the branch template
    failed). `pr=True` adds `run`, which only the PR templates see.
    """
    ports = (
        list(task.ports)
        if isinstance(task.ports, tuple)
        else list(range(plan.port_range[0], plan.port_range[0] + task.ports))
    )
    if task.after is None or task.after not in branches:
        base = plan.base  # an unknown `after` is reported on its own
    else:
        base = branches[task.after] or f"worktree-{task.after}"
    return task_context(
        plan,
        task,
        ports=ports,
        worktree=f"{plan.worktrees}/{task.id}",
        branch=branches.get(task.id) or f"worktree-{task.id}",
        base=base,
        pr=pr,
    )
