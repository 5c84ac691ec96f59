"""Ports: inside `port_range`, not shared by tasks that may run together, enough of them."""

from __future__ import annotations

from .base import PlanView


def check(view: PlanView) -> None:
    if view.refused(("port_range",)):
        return
    lo, hi = view.plan.port_range
    if lo > hi:
        view.add(
            ("port_range",),
            f"port_range is [{lo}, {hi}], but the low port comes first; write [{hi}, {lo}]",
            "ports",
        )
        return
    owners = _listed(view, lo, hi)
    _shared(view, owners)
    _enough(view, lo, hi, sum(1 for port in owners if lo <= port <= hi))


def _listed(view: PlanView, lo: int, hi: int) -> dict[int, list[tuple[int, int]]]:
    """Each listed port -> (task index, item index) of the tasks that list it."""
    owners: dict[int, list[tuple[int, int]]] = {}
    for k, task in enumerate(view.plan.tasks):
        if not isinstance(task.ports, tuple):
            continue
        for j, port in enumerate(task.ports):
            owners.setdefault(port, []).append((k, j))
            if not lo <= port <= hi:
                view.add(
                    (*view.paths[k], "ports", j),
                    f'port {port} of task "{task.id}" is outside port_range [{lo}, {hi}]; pick '
                    "a port inside it, or widen port_range",
                    "ports",
                )
    return owners


def _shared(view: PlanView, owners: dict[int, list[tuple[int, int]]]) -> None:
    tasks = view.plan.tasks
    for port, users in owners.items():
        for n, (k, j) in enumerate(users):
            tid = tasks[k].id
            for other_k, other_j in users[:n]:
                other = tasks[other_k].id
                if tid == other or not view.together(tid, other):
                    continue
                line = view.line((*view.paths[other_k], "ports", other_j))
                view.add(
                    (*view.paths[k], "ports", j),
                    f'port {port} of task "{tid}" is also a port of task "{other}" (line '
                    f"{line}), and the two may run at the same time; pick another port, use "
                    f"`ports: 1` to have one allocated, or add `after: {other}`",
                    "ports",
                )
                break


def _enough(view: PlanView, lo: int, hi: int, explicit: int) -> None:
    need = sum(t.ports for t in view.plan.tasks if isinstance(t.ports, int))
    size = hi - lo + 1
    if need and need + explicit > size:
        asked = f"{need} to allocate" + (f" and {explicit} listed" if explicit else "")
        view.add(
            ("port_range",),
            f"port_range [{lo}, {hi}] holds {size} port{'s' if size != 1 else ''}, but the "
            f"tasks ask for {need + explicit} ({asked}); widen port_range",
            "ports",
        )
