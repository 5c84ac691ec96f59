"""Scope and shared patterns: each valid, none includes the task's own instructions file,
and no two tasks that may run together can write the same path."""

from __future__ import annotations

from ... import scopes
from .. import schema
from ..yaml_source import NodePath
from .base import PlanView

# The file each agent preset's instructions are written to (the presets live above the
# plan and import it, so their names are repeated here; a test keeps the two equal).
INSTRUCTIONS_FILES = {
    "claude": "CLAUDE.local.md",
    "codex": "AGENTS.override.md",
    "gemini": "GEMINI.md",
    "aider": ".wtrun/instructions.md",
    "command": "AGENTS.md",
}


def check(view: PlanView) -> None:
    invalid = _invalid_patterns(view)
    _own_instructions(view, invalid)
    _overlaps(view, invalid)


def _own_instructions(view: PlanView, invalid: set[str]) -> None:
    """The agent's edits to its instructions file are never committed: wtrun owns it."""
    for k, task in enumerate(view.plan.tasks):
        preset = task.agent.preset
        name = INSTRUCTIONS_FILES.get(preset)
        if name is None:
            continue
        for j, pattern in enumerate(task.scope):
            if pattern in invalid or not scopes.matches(pattern, name):
                continue
            fix = (
                "remove it from the scope"
                if pattern == name
                else f'narrow the pattern to leave "{name}" out'
            )
            view.add(
                (*view.paths[k], "scope", j),
                f'scope "{pattern}" of task "{task.id}" includes "{name}", the instructions file '
                f'wtrun writes for its agent (preset "{preset}"), which is never committed, so '
                f"the agent's changes to it would be lost; {fix}, or choose another agent.preset",
                "scope",
            )


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
