"""Scope and shared patterns: each valid, and no two tasks that may run together can
write the same path."""

from __future__ import annotations

from ... import scopes
from .. import schema
from ..yaml_source import NodePath
from .base import PlanView


def check(view: PlanView) -> None:
    _overlaps(view, _invalid_patterns(view))


def _invalid_patterns(view: PlanView) -> set[str]:
    items: list[tuple[NodePath, str]] = [
        ((*view.paths[k], "scope", j), pattern)
        for k, task in enumerate(view.plan.tasks)
        for j, pattern in enumerate(task.scope)
    ]
    items += [(("shared", j), pattern) for j, pattern in enumerate(view.plan.shared)]
    invalid: set[str] = set()
    for where, pattern in items:
        try:
            scopes.validate(pattern)
        except scopes.ScopeError:
            invalid.add(pattern)
            view.add(where, schema.scope_message(view.doc, where, pattern), "scope")
    return invalid


def _overlaps(view: PlanView, invalid: set[str]) -> None:
    plan = view.plan
    # A repeated id is reported by the id rule; its second task is left out here.
    kept = [k for k, t in enumerate(plan.tasks) if view.first[t.id] == k]
    valid = [
        (plan.tasks[k].id, tuple(p for p in plan.tasks[k].scope if p not in invalid)) for k in kept
    ]
    for o in scopes.find_overlaps(valid, view.together):
        ka, kb = view.first[o.task_a], view.first[o.task_b]
        a, b = plan.tasks[ka], plan.tasks[kb]
        ja, jb = a.scope.index(o.pattern_a), b.scope.index(o.pattern_b)
        line = view.line((*view.paths[ka], "scope", ja))
        example = _friendly_example(o.example, o.pattern_a, o.pattern_b)
        view.add(
            (*view.paths[kb], "scope", jb),
            f'scope "{o.pattern_b}" of task "{b.id}" overlaps scope "{o.pattern_a}" of task '
            f'"{a.id}" (line {line}): both match "{example}", and the two tasks may run at the '
            f'same time; add `after: {a.id}` to task "{b.id}", or narrow one of the scopes',
            "overlap",
        )


def _friendly_example(example: str, a: str, b: str) -> str:
    """`src/api/x.ts` rather than the shortest witness `src/api/.ts`, when both still match."""
    parts = example.split("/")
    for i, part in enumerate(parts):
        if part.startswith("."):
            candidate = [*parts[:i], "x" + part, *parts[i + 1 :]]
            path = "/".join(candidate)
            if scopes.matches(a, path) and scopes.matches(b, path):
                parts = candidate
    return "/".join(parts)
