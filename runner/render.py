"""The texts wtrun writes for a task: its instructions file, commit message and PR text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import redact
from .plan import Plan, Task, task_context, templates

DEFAULT_PR_BODY = """\
{{ task.prompt | trim }}

| | |
|---|---|
| Task | `{{ task.id }}` from plan `{{ plan.name }}` |
| Scope | {% for p in task.scope %}`{{ p }}`{% if not loop.last %}, {% endif %}{% endfor %} |
| Agent | {{ task.agent.preset }}{% if task.agent.model %} ({{ task.agent.model }}){% endif %} |
| Cost | {% if run.cost_usd is not none %}${{ '%.2f' | format(run.cost_usd) }}{% else %}not reported{% endif %} |
{%- if run.verify %}
| Verify | {% for v in run.verify %}{{ '✅' if v.ok else '❌' }} `{{ v.name }}`{% if not loop.last %}<br>{% endif %}{% endfor %} |
{%- endif %}
{% if run.stacked_on %}
Stacked on #{{ run.stacked_on }}: review and merge that one first.
{% endif %}
{%- if run.children %}
Stacked on this PR: {% for c in run.children %}#{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
{% endif %}
{%- if run.conflicts %}
**Predicted conflicts** with: {% for c in run.conflicts %}`{{ c }}`{% if not loop.last %}, {% endif %}{% endfor %}
{% endif %}
{%- if run.files %}
<details><summary>{{ run.files | length }} file{{ 's' if run.files | length != 1 }} changed</summary>

{% for f in run.files %}- `{{ f }}`
{% endfor %}
</details>
{% endif %}
<sub>Opened by wtrun.</sub>
"""


def instructions(
    plan: Plan, task: Task, *, ports: Sequence[int], worktree: str, branch: str, base_ref: str
) -> str:
    """The rendered instructions file: the plan's conventions, then the task itself."""
    context = task_context(plan, task, ports=ports, worktree=worktree, branch=branch)
    conventions = templates.render(plan.conventions, context).strip()
    lines = [f"# Task {task.id}: {task.title}", ""]
    if conventions:
        lines += [conventions, ""]
    lines += ["## What to do", "", task.prompt.strip(), "", "## Limits", ""]
    lines.append(
        "You may change only files matching these patterns (paths from the "
        "repository root; `*` stays within a folder, `**` spans folders):"
    )
    lines += [f"- `{p}`" for p in task.scope]
    if plan.shared:
        lines.append(
            "You may also change these shared files: " + ", ".join(f"`{p}`" for p in plan.shared)
        )
    lines.append(
        "Changes anywhere else fail the task. Do not push; wtrun commits, checks "
        "and opens the pull request."
    )
    lines += ["", f"- Branch: `{branch}`, started from `{base_ref}`"]
    if task.after:
        lines.append(
            f"- This task builds on task `{task.after}`, whose work is already on this branch."
        )
    if ports:
        lines.append(
            f"- Ports reserved for you: {', '.join(map(str, ports))} (the first is in $PORT)"
        )
    return "\n".join(lines) + "\n"


def commit_message(plan: Plan, context: Mapping[str, Any]) -> str:
    return templates.render(plan.commit_message, context).strip()


def pr_title(plan: Plan, context: Mapping[str, Any]) -> str:
    return redact.text(" ".join(templates.render(plan.pr.title, context).split()))


def pr_body(plan: Plan, context: Mapping[str, Any]) -> str:
    return redact.text(templates.render(plan.pr.body or DEFAULT_PR_BODY, context).strip() + "\n")
