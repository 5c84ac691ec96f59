"""The plan's task graph: the forest `after` draws, and which tasks may run together.

Every module that walks `after` (the checks, the schedule, conflict prediction, the plan
diff) asks here, so that a cycle, a missing parent or a repeated id is handled one way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from .model import Plan


def ancestors(plan: Plan) -> dict[str, tuple[str, ...]]:
    """Each task's chain of `after` parents, nearest first (cycles cut where they close)."""
    parent = {t.id: t.after for t in plan.tasks}
    chains: dict[str, tuple[str, ...]] = {}
    for task in plan.tasks:
        chain: list[str] = []
        seen = {task.id}
        current = parent.get(task.id)
        while current is not None and current in parent and current not in seen:
            chain.append(current)
            seen.add(current)
            current = parent[current]
        chains[task.id] = tuple(chain)
    return chains


def may_run_together(chains: Mapping[str, tuple[str, ...]]) -> Callable[[str, str], bool]:
    """Given `ancestors`: whether neither task waits for the other, directly or not."""
    sets = {tid: frozenset(chain) for tid, chain in chains.items()}

    def together(a: str, b: str) -> bool:
        return a not in sets[b] and b not in sets[a]

    return together


def cycles(plan: Plan) -> list[list[str]]:
    """Each cycle of `after` once, as its members in waiting order."""
    parent = {t.id: t.after for t in plan.tasks}
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for task in plan.tasks:
        chain = [task.id]
        current = parent.get(task.id)
        while current is not None and current in parent and current != task.id:
            if current in chain:
                break
            chain.append(current)
            current = parent[current]
        if current != task.id or len(chain) < 2 or frozenset(chain) in seen:
            continue
        seen.add(frozenset(chain))
        found.append(chain)
    return found


def children(plan: Plan) -> dict[str, list[str]]:
    kids: dict[str, list[str]] = {t.id: [] for t in plan.tasks}
    for t in plan.tasks:
        if t.after is not None:
            kids[t.after].append(t.id)
    return kids


def roots(plan: Plan) -> list[str]:
    return [t.id for t in plan.tasks if t.after is None]


def descendants(plan: Plan, task_ids: Iterable[str]) -> list[str]:
    """The tasks and everything stacked on them, in plan order."""
    kids = children(plan)
    chosen: set[str] = set()
    todo = list(task_ids)
    while todo:
        tid = todo.pop()
        if tid not in chosen:
            chosen.add(tid)
            todo.extend(kids[tid])
    return [t.id for t in plan.tasks if t.id in chosen]


def root_of(plan: Plan, task_id: str) -> str:
    parent = {t.id: t.after for t in plan.tasks}
    while (up := parent[task_id]) is not None:
        task_id = up
    return task_id
