"""Task ids and `after`: repeated ids, unknown or self parents, cycles."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from .. import graph
from .base import PlanView


def check(view: PlanView) -> None:
    _repeated_ids(view)
    written = _written_ids(view)
    for k, task in enumerate(view.plan.tasks):
        if task.after is not None:
            _after(view, (*view.paths[k], "after"), task.id, task.after, written)
    for position in view.dropped:  # a task without a usable id still names its parent
        raw = view.doc.data["tasks"][position]
        if not isinstance(raw, dict):
            continue
        after, tid = raw.get("after"), raw.get("id")
        if isinstance(after, str) and ("tasks", position, "after") not in view.pruned:
            name = tid if isinstance(tid, str) else f"task {position + 1}"
            _after(view, ("tasks", position, "after"), name, after, written)
    _cycles(view)


def _written_ids(view: PlanView) -> list[str]:
    """Every id as the file writes it, valid or not, in plan order."""
    tasks: Sequence[Any] = view.doc.data.get("tasks") or ()
    ids = [t.get("id") for t in tasks if isinstance(t, dict)]
    return list(dict.fromkeys(i for i in ids if isinstance(i, str)))


def _repeated_ids(view: PlanView) -> None:
    for k, task in enumerate(view.plan.tasks):
        first = view.first[task.id]
        if first != k:
            line = view.line((*view.paths[first], "id"))
            view.add(
                (*view.paths[k], "id"),
                f'task id "{task.id}" is used twice (first at line {line}); give each task its '
                "own id",
                "id",
            )


def _after(view: PlanView, where: Any, tid: str, after: str, written: list[str]) -> None:
    if after == tid:
        view.add(
            where,
            f'task "{tid}" comes after itself; remove `after`, or name the task it builds on',
            "after",
        )
    elif after not in written:
        others = [t for t in written if t != tid]
        close = difflib.get_close_matches(after, others, n=1, cutoff=0.6)
        hint = (
            f'did you mean "{close[0]}"?' if close else f"the other tasks are: {', '.join(others)}"
        )
        view.add(
            where,
            f'task "{tid}" comes after "{after}", which is not a task of this plan; {hint}',
            "after",
        )


def _cycles(view: PlanView) -> None:
    for chain in graph.cycles(view.plan):
        # Print the cycle from the member that comes first in the plan.
        start = min(chain, key=lambda t: view.first[t])
        k = chain.index(start)
        cycle = " -> ".join([*chain[k:], *chain[:k], start])
        view.add(
            (*view.paths[view.first[start]], "after"),
            f"tasks wait for each other in a cycle: {cycle}; remove `after` from one of them",
            "after",
        )
