"""`wtrun run --dry-run`: what a run would do, with nothing run and nothing written."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from . import inputs, ports, schedule
from .errors import WtrunError
from .git import Git
from .plan import Plan, base_branch, branch_of, format_duration
from .preflight import preflight
from .state import Store
from .workspace import workspace

_TYPICAL_S = 1.0


class Options(Protocol):
    """What the preview reads of `wtrun run`'s options."""

    @property
    def max_parallel(self) -> int | None: ...
    @property
    def no_pr(self) -> bool: ...
    @property
    def prepare_only(self) -> bool: ...


def preview(plan: Plan, git: Git, selected: Sequence[str], options: Options) -> int:
    """Print what a run would do. A preview is useful before the agent CLI is installed, so
    what a run would refuse is said after it; then the exit code is 1, for CI to notice."""
    refusals: list[str] = []
    try:
        preflight(plan, git, selected, agents_needed=not options.prepare_only)
    except WtrunError as e:
        refusals.append(str(e))
    try:
        allocated = ports.allocate(plan, {}, list(selected))
    except WtrunError as e:
        allocated = {}
        refusals.append(str(e))
    except OSError as e:  # no socket to probe with
        allocated = {}
        refusals.append(f"could not check which ports are free: {e}")
    print(describe(plan, git, selected, options, allocated))
    for refusal in refusals:
        print(f"\nA run would stop before making any worktree: {refusal}")
    return 1 if refusals else 0


def describe(
    plan: Plan,
    git: Git,
    selected: Sequence[str],
    options: Options,
    allocated: Mapping[str, Sequence[int]],
) -> str:
    max_parallel = options.max_parallel or plan.max_parallel
    base = (
        f"{plan.remote}/{plan.base} (fetched first)"
        if git.has_remote(plan.remote)
        else f"{plan.base} (no remote {plan.remote!r}: the local ref)"
    )
    count = len(selected)
    lines = [
        f"Plan {plan.name}: {count} task{'s' if count != 1 else ''}, "
        f"at most {max_parallel} at once, base {base}. Nothing is run (--dry-run).",
        "",
    ]
    records = Store(git.common_dir(), plan.name).record.tasks
    for n, (tid, wave) in enumerate(_start_order(plan, selected, max_parallel), 1):
        lines += _task_lines(plan, git, n, tid, wave, allocated.get(tid, ()))
        r = records.get(tid)
        changed = inputs.stale(plan, plan.task(tid), r.inputs) if r is not None else []
        if changed:
            first = inputs.first_stage(changed)
            lines.append(f"   changed:  {', '.join(changed)} (a run redoes it from {first})")
    lines += ["", *_pr_lines(plan, selected, options.no_pr)]
    return "\n".join(lines)


def _start_order(plan: Plan, selected: Sequence[str], max_parallel: int) -> list[tuple[str, int]]:
    """The tasks in the order they would start, each with its wave, when all take as long."""
    position = {tid: i for i, tid in enumerate(selected)}
    # A parent outside the selection is treated as already ready.
    sub = replace(
        plan,
        tasks=tuple(
            t if t.after is None or t.after in position else replace(t, after=None)
            for t in (plan.task(tid) for tid in selected)
        ),
    )
    order = schedule.simulate(sub, {t.id: _TYPICAL_S for t in sub.tasks}, max_parallel)
    starts = sorted(order, key=lambda t: (order[t][0], position[t]))
    return [(tid, int(order[tid][0] // _TYPICAL_S) + 1) for tid in starts]


def _task_lines(
    plan: Plan, git: Git, n: int, tid: str, wave: int, task_ports: Sequence[int]
) -> list[str]:
    task = plan.task(tid)
    ws = workspace(plan, task, git.root, task_ports)
    agent = (
        task.agent.preset
        + (f" ({task.agent.model})" if task.agent.model else "")
        + f", timeout {format_duration(task.agent.timeout_s)}"
        + (f", budget ${task.agent.budget_usd:g}" if task.agent.budget_usd else "")
    )
    lines = [
        f"{n}. {tid}  (wave {wave}" + (f", after {task.after}" if task.after else "") + ")",
        f"   worktree: {plan.worktrees}/{tid}",
        f"   branch:   {ws.branch} from {base_branch(plan, task)}",
        f"   agent:    {agent}",
        f"   scope:    {', '.join(task.scope)}",
    ]
    if task_ports:
        lines.append(f"   ports:    {', '.join(map(str, task_ports))}")
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in ws.variables.items())
    lines.append(f"   env:      {env}")
    if task.setup:
        lines.append("   setup:    " + "; ".join(s.describe() for s in task.setup))
    if task.verify:
        lines.append("   verify:   " + "; ".join(s.describe() for s in task.verify))
    return lines


def _pr_lines(plan: Plan, selected: Sequence[str], no_pr: bool) -> list[str]:
    provider = plan.pr.provider
    if no_pr or provider == "none":
        return [
            "Pull requests: none"
            + (" (--no-pr)" if provider != "none" else "")
            + ("; branches are pushed" if provider == "none" else "")
        ]
    lines = [f"Pull requests ({provider}), in this order:"]
    for tid in schedule.pr_order(plan, selected):
        task = plan.task(tid)
        lines.append(
            f"  {branch_of(plan, task)} -> {base_branch(plan, task)}"
            + (" (stacked)" if task.after else "")
        )
    return lines
