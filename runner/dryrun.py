"""`wtrun run --dry-run`: what a run would do, with nothing run and nothing written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from . import ports, schedule
from .git import Git
from .plan import Plan, base_branch, branch_of, format_duration

_TYPICAL_S = 1.0


def describe(plan: Plan, git: Git, selected: Sequence[str], options: object) -> str:
    chosen = [plan.task(t) for t in selected]
    max_parallel = getattr(options, "max_parallel", None) or plan.max_parallel
    base = (
        f"{plan.remote}/{plan.base} (fetched first)"
        if git.has_remote(plan.remote)
        else f"{plan.base} (no remote {plan.remote!r}: the local ref)"
    )
    # A parent outside the selection is treated as already ready.
    sub = replace(
        plan,
        tasks=tuple(
            t if t.after is None or t.after in selected else replace(t, after=None) for t in chosen
        ),
    )
    order = schedule.simulate(sub, {t.id: _TYPICAL_S for t in sub.tasks}, max_parallel)
    starts = sorted(order, key=lambda t: (order[t][0], selected.index(t)))
    allocated = _ports(plan, selected)
    lines = [
        f"Plan {plan.name}: {len(chosen)} task{'s' if len(chosen) != 1 else ''}, "
        f"at most {max_parallel} at once, base {base}. Nothing is run (--dry-run).",
        "",
    ]
    wave = {t: int(order[t][0] // _TYPICAL_S) + 1 for t in order}
    for n, tid in enumerate(starts, 1):
        task = plan.task(tid)
        branch = branch_of(plan, task)
        parent_branch = branch_of(plan, plan.task(task.after)) if task.after else None
        lines.append(
            f"{n}. {tid}  (wave {wave[tid]}" + (f", after {task.after}" if task.after else "") + ")"
        )
        lines.append(f"   worktree: {plan.worktrees}/{tid}")
        lines.append(f"   branch:   {branch} from {parent_branch or plan.base}")
        lines.append(
            f"   agent:    {task.agent.preset}"
            + (f" ({task.agent.model})" if task.agent.model else "")
            + f", timeout {format_duration(task.agent.timeout_s)}"
            + (f", budget ${task.agent.budget_usd:g}" if task.agent.budget_usd else "")
        )
        lines.append(f"   scope:    {', '.join(task.scope)}")
        if allocated.get(tid):
            lines.append(f"   ports:    {', '.join(map(str, allocated[tid]))}")
        env = {
            "COMPOSE_PROJECT_NAME": f"{plan.name}-{tid}".replace(".", "-"),
            "WTRUN_TASK_ID": tid,
            "WTRUN_BRANCH": branch,
            **({"PORT": str(allocated[tid][0])} if allocated.get(tid) else {}),
            **dict(task.env),
        }
        lines.append("   env:      " + " ".join(f"{k}={v}" for k, v in env.items()))
        if task.setup:
            lines.append("   setup:    " + "; ".join(s.describe() for s in task.setup))
        if task.verify:
            lines.append("   verify:   " + "; ".join(s.describe() for s in task.verify))
    provider = plan.pr.provider
    lines.append("")
    if getattr(options, "no_pr", False) or provider == "none":
        lines.append(
            "Pull requests: none"
            + (" (--no-pr)" if provider != "none" else "")
            + ("; branches are pushed" if provider == "none" else "")
        )
    else:
        lines.append(f"Pull requests ({provider}), in this order:")
        for tid in schedule.pr_order(plan, selected):
            task = plan.task(tid)
            target = base_branch(plan, task)
            lines.append(
                f"  {branch_of(plan, task)} -> {target}" + (" (stacked)" if task.after else "")
            )
    return "\n".join(lines)


def _ports(plan: Plan, selected: Sequence[str]) -> dict[str, list[int]]:
    try:
        return ports.allocate(plan, {}, list(selected))
    except Exception:
        return {}
