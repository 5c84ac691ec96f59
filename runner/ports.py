"""Ports for tasks' dev servers: explicit ones checked, counted ones allocated."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

from .errors import WtrunError
from .plan import Plan

# The wildcard address of each family: binding it fails when anything listens on the port
# at any address of that family. An IPv6 socket with IPV6_V6ONLY leaves IPv4 to its own probe.
_WILDCARDS = ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::"))
# A machine or container without IPv6 answers these; its IPv6 ports are then nobody's.
_NO_FAMILY = {errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.EADDRNOTAVAIL}


def in_use(port: int) -> bool:
    """Whether something on this machine already listens on `port`, over IPv4 or IPv6
    (we try to bind it)."""
    return any(_taken(family, host, port) for family, host in _WILDCARDS)


def _taken(family: socket.AddressFamily, host: str, port: int) -> bool:
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        if e.errno in _NO_FAMILY:
            return False
        raise
    with s:
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            return not (family == socket.AF_INET6 and e.errno in _NO_FAMILY)
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
