"""What templates see: the variables of a task, and the names git accepts for its branch."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import templates
from .model import Plan, Task
from .state import RunRecord, TaskRecord

_REF_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def branch_name_problem(name: str) -> str | None:
    """Why git would refuse `name` as a branch (git check-ref-format rules), or None."""
    if not name:
        return "it is empty"
    m = _REF_BAD.search(name)
    if m:
        shown = {" ": "a space", "\t": "a tab", "\n": "a line break"}.get(m.group())
        return f"it contains {shown or json.dumps(m.group())}"
    if name == "@":
        return 'it is "@"'
    for bad in ("..", "//", "@{"):
        if bad in name:
            return f'it contains "{bad}"'
    if name.startswith(("/", "-")):
        return f'it starts with "{name[0]}"'
    if name.endswith(("/", ".")):
        return f'it ends with "{name[-1]}"'
    for part in name.split("/"):
        if part.startswith("."):
            return f'its part "{part}" starts with "."'
        if part.endswith(".lock"):
            return f'its part "{part}" ends with ".lock"'
    return None


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


def branch_of_record(plan: Plan, task: Task, record: TaskRecord) -> str:
    """The task's branch: the one its records name, else what the template gives."""
    return record.branch or branch_of(plan, task)


def pr_context(plan: Plan, record: RunRecord, task_id: str) -> dict[str, Any]:
    """The PR text's variables as the records stand now. "Stacked on #N" names the PR of the
    branch this PR is based on (none once that one merged); children are the open PRs based
    on this one's branch."""
    task = plan.task(task_id)
    r = record.tasks.get(task_id) or TaskRecord(task_id)
    branch = branch_of_record(plan, task, r)
    base = r.pr_base or base_branch(plan, task)
    branches = {
        t.id: (o.branch or branch_of(plan, t)) for t in plan.tasks if (o := record.tasks.get(t.id))
    }
    under = next((record.tasks[t] for t, b in branches.items() if b == base), None)
    stacked_on = under.pr_number if under is not None and under.pr_state != "merged" else None
    children = [
        o.pr_number
        for t in plan.tasks
        if (o := record.tasks.get(t.id)) is not None
        and o.pr_number is not None
        and o.pr_state not in ("merged", "closed")
        and (o.pr_base or base_branch(plan, t)) == branch
    ]
    run = {
        "files": r.files,
        "verify": r.verify,
        "cost_usd": r.cost_usd,
        "stacked_on": stacked_on,
        "children": children,
        "conflicts": r.conflicts,
    }
    return task_context(
        plan,
        task,
        ports=r.ports,
        worktree=r.worktree or "",
        branch=branch,
        base=base,
        pr=True,
        run=run,
    )
