"""What only a whole plan can tell, rule family by rule family (see `rules/`).

The schema has already refused what it could; its refused values are left out of the
plan the rules see, so each mistake is reported once, by the rule that knows it best.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import graph
from .diagnostics import Diagnostic
from .model import Plan
from .rules import agents, env, ids, ports, scopes, templates
from .rules.base import PlanView
from .yaml_source import Document, NodePath

RULES: tuple[Callable[[PlanView], None], ...] = (
    ids.check,
    agents.check,
    env.check,
    scopes.check,
    ports.check,
    templates.check,
)


def problems(
    doc: Document, data: dict[str, Any], plan: Plan, positions: Sequence[int], pruned: set[NodePath]
) -> list[Diagnostic]:
    kept = set(positions)
    written = doc.data.get("tasks")
    dropped = [i for i in range(len(written)) if i not in kept] if isinstance(written, list) else []
    view = PlanView(
        doc=doc,
        data=data,
        plan=plan,
        paths=[("tasks", p) for p in positions],
        pruned=pruned,
        dropped=dropped,
        together=graph.may_run_together(graph.ancestors(plan)),
    )
    for rule in RULES:
        rule(view)
    return view.problems
