"""`wtrun review PLAN... --against REF`: the plan review a pull request gets, as Markdown.

For each changed plan: whether it validates (each problem linked to its line), what it can
cost and do (the budgets it allows, or "unbounded" and the tasks without one; its tasks, waves
and `max_parallel`), then its semantic diff against REF, which names the scopes that newly
overlap. The first line is a marker, so that the comment is found and edited, not repeated.
Exit 0 whatever the plans hold: failing on an invalid plan is `wtrun validate`'s job.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ..plan import Plan, PlanError, diagnostics, load
from ..schedule import simulate
from .diff import against_ref

MARKER = "<!-- wtrun-plan-review -->"
_LISTED = 10  # tasks named before "and N more"


def review(paths: Sequence[str], against: str, link: str | None) -> int:
    lines = [MARKER, "## wtrun plan review", ""]
    if not paths:
        lines.append("No plan changed.")
    for path in paths:
        lines += _section(path, against, link)
    sys.stdout.write("\n".join(lines).rstrip() + "\n")
    return 0


def _section(path: str, against: str, link: str | None) -> list[str]:
    lines = [f"### `{path}`", ""]
    try:
        plan = load(path)
    except PlanError as e:
        found = diagnostics.sort(e.diagnostics)
        n = len(found)
        lines.append(f"**Invalid**: {n} problem{'s' if n != 1 else ''}; not diffed.")
        lines.append("")
        lines += [f"- {_place(d, link)}: {d.message} [{d.rule}]" for d in found]
        return [*lines, ""]
    lines += ["**Valid.**", "", *bounds(plan), "", against_ref(Path(path), against, plan), ""]
    return lines


def bounds(plan: Plan) -> list[str]:
    """What the plan can cost and do, as Markdown bullets."""
    uncapped = [t.id for t in plan.tasks if t.agent.budget_usd is None]
    total = sum(t.agent.budget_usd or 0.0 for t in plan.tasks)
    if plan.budget_usd is not None:
        cost = f"at most {_money(plan.budget_usd)} (the plan's `budget_usd`)"
        if not uncapped and total < plan.budget_usd:
            cost = f"at most {_money(total)} (the tasks' budgets; the plan allows more)"
    elif not uncapped:
        cost = f"at most {_money(total)} (the sum of the tasks' budgets)"
    else:
        cost = (
            f"**unbounded**: the plan has no `budget_usd` and {len(uncapped)} "
            f"task{'s' if len(uncapped) != 1 else ''} no budget ({_names(uncapped)})"
        )
    n = len(plan.tasks)
    start = simulate(plan, {t.id: 1.0 for t in plan.tasks}, plan.max_parallel)
    waves = len({round(begin) for begin, _ in start.values()})
    return [
        f"- **Can cost**: {cost}",
        f"- **Runs**: {n} task{'s' if n != 1 else ''} in {waves} wave{'s' if waves != 1 else ''}, "
        f"at most {plan.max_parallel} at once (`max_parallel`)",
    ]


def _place(d: diagnostics.Diagnostic, link: str | None) -> str:
    where = f"{d.file}:{d.line}:{d.col}" if d.line else d.file
    if not link:
        return f"`{where}`"
    anchor = f"#L{d.line}" if d.line else ""
    return f"[`{where}`]({link.rstrip('/')}/{d.file}{anchor})"


def _names(ids: Sequence[str]) -> str:
    shown = ", ".join(f"`{i}`" for i in ids[:_LISTED])
    more = len(ids) - _LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _money(value: float) -> str:
    return f"${value:,.2f}"
