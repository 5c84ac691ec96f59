"""`wtrun render PLAN TASK`: the task's instructions file and PR text; runs nothing."""

from __future__ import annotations

from .. import agents, render
from ..plan import base_branch, branch_of, load, task_by_id, task_context


def render_task(plan_path: str, task_id: str) -> int:
    plan = load(plan_path)
    (task,) = task_by_id(plan, [task_id])
    preset = agents.get(task.agent.preset)
    ports = (
        list(task.ports)
        if isinstance(task.ports, tuple)
        else [plan.port_range[0] + i for i in range(task.ports)]
    )
    worktree = f"{plan.worktrees}/{task.id}"
    branch = branch_of(plan, task)
    base = base_branch(plan, task)
    text = render.instructions(
        plan, task, ports=ports, worktree=worktree, branch=branch, base_ref=base
    )
    context = task_context(plan, task, ports=ports, worktree=worktree, branch=branch, pr=True)
    note = (
        " (ports are examples: a run allocates free ones)"
        if isinstance(task.ports, int) and task.ports
        else ""
    )
    print(f"==> {worktree}/{preset.instructions_file}{note}")
    print(text)
    print(f"==> pull request: {branch} -> {base}")
    print(f"title: {render.pr_title(plan, context)}")
    print()
    print(render.pr_body(plan, context))
    return 0
