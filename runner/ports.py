"""Ports for tasks' dev servers: explicit ones checked, counted ones allocated."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from .errors import WtrunError
from .plan import Plan


def in_use(port: int) -> bool:
    """Whether something on this machine already listens on `port` (we try to bind it)."""
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET, "127.0.0.1")):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                return True
    return False


def allocate(
    plan: Plan, recorded: Mapping[str, list[int]], task_ids: list[str]
) -> dict[str, list[int]]:
    """Ports for each of `task_ids`: recorded ones kept (a resumed run keeps its ports),
    explicit ones checked free, counts allocated from `port_range`."""
    explicit = {p for t in plan.tasks if isinstance(t.ports, tuple) for p in t.ports}
    taken = set(explicit)
    for ports in recorded.values():
        taken.update(ports)
    result: dict[str, list[int]] = {}
    lo, hi = plan.port_range
    candidate = lo
    for tid in task_ids:
        task = plan.task(tid)
        if isinstance(task.ports, tuple):
            for port in task.ports:
                if tid not in recorded and in_use(port):
                    raise WtrunError(
                        f'port {port} of task "{tid}" is in use by another process on this '
                        "machine; stop that process, or pick another port in the plan"
                    )
            result[tid] = list(task.ports)
            continue
        if task.ports == 0:
            result[tid] = []
            continue
        if tid in recorded and len(recorded[tid]) == task.ports:
            result[tid] = list(recorded[tid])
            continue
        chosen: list[int] = []
        while len(chosen) < task.ports:
            if candidate > hi:
                raise WtrunError(
                    f'no free port left in port_range [{lo}, {hi}] for task "{tid}" '
                    f"(needs {task.ports}); widen port_range or free some ports"
                )
            if candidate not in taken and not in_use(candidate):
                chosen.append(candidate)
                taken.add(candidate)
            candidate += 1
        result[tid] = chosen
    return result
