"""Ports: counted ones allocated from port_range around what is taken, explicit ones checked."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from wtrun import ports
from wtrun.errors import WtrunError
from wtrun.plan import Plan, Task


def plan_of(*task_ports: int | tuple[int, ...], port_range: tuple[int, int]) -> Plan:
    tasks = tuple(
        Task(id=f"t{i}", title=f"t{i}", prompt="p", scope=(f"d{i}/",), ports=p)
        for i, p in enumerate(task_ports)
    )
    return Plan(path=Path("p.yaml"), name="p", port_range=port_range, tasks=tasks)


def free_block(size: int) -> int:
    """The first port of `size` consecutive ports free on this machine."""
    for start in range(42000, 60000, size):
        if not any(ports.in_use(p) for p in range(start, start + size)):
            return start
    raise RuntimeError("no free block of ports")


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s, s.getsockname()[1]
    s.close()


@pytest.fixture
def ipv6_listener() -> Iterator[int]:
    """A port listened on over IPv6 only (`::` with IPV6_V6ONLY), as some servers do."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::", 0))
    except OSError as e:
        pytest.skip(f"this machine has no IPv6: {e}")
    with s:
        s.listen()
        yield s.getsockname()[1]


def test_counts_skip_explicit_ports_of_other_tasks() -> None:
    lo = free_block(10)
    plan = plan_of(2, (lo, lo + 2), 1, port_range=(lo, lo + 9))
    got = ports.allocate(plan, {}, ["t0", "t1", "t2"])
    assert got == {"t0": [lo + 1, lo + 3], "t1": [lo, lo + 2], "t2": [lo + 4]}


def test_ports_bound_on_this_machine_are_skipped(listener: tuple[socket.socket, int]) -> None:
    _, busy = listener
    plan = plan_of(1, port_range=(busy, busy + 1))
    if ports.in_use(busy + 1):
        pytest.skip("the neighbouring port is taken by something else")
    assert ports.allocate(plan, {}, ["t0"]) == {"t0": [busy + 1]}


def test_recorded_ports_are_kept_on_resume() -> None:
    lo = free_block(10)
    plan = plan_of(1, 1, port_range=(lo, lo + 9))
    got = ports.allocate(plan, {"t1": [lo + 7]}, ["t0", "t1"])
    assert got == {"t0": [lo], "t1": [lo + 7]}


def test_an_exhausted_range_is_a_clear_error(listener: tuple[socket.socket, int]) -> None:
    _, busy = listener
    plan = plan_of(1, port_range=(busy, busy))
    with pytest.raises(WtrunError) as e:
        ports.allocate(plan, {}, ["t0"])
    assert str(e.value) == (
        f'no free port left in port_range [{busy}, {busy}] for task "t0" '
        "(needs 1); widen port_range or free some ports"
    )


def test_an_explicit_port_in_use_names_it(listener: tuple[socket.socket, int]) -> None:
    _, busy = listener
    plan = plan_of((busy,), port_range=(1024, 65535))
    with pytest.raises(WtrunError) as e:
        ports.allocate(plan, {}, ["t0"])
    assert str(e.value) == (
        f'port {busy} of task "t0" is in use by another process on this '
        "machine; stop that process, or pick another port in the plan"
    )


def test_a_port_listened_on_over_ipv6_only_is_skipped(ipv6_listener: int) -> None:
    busy = ipv6_listener
    if ports.in_use(busy + 1):
        pytest.skip("the neighbouring port is taken by something else")
    plan = plan_of(1, port_range=(busy, busy + 1))
    assert ports.allocate(plan, {}, ["t0"]) == {"t0": [busy + 1]}
    with pytest.raises(WtrunError, match=f"port {busy} of task"):
        ports.allocate(plan_of((busy,), port_range=(1024, 65535)), {}, ["t0"])


def test_a_machine_without_ipv6_probes_ipv4_only(
    listener: tuple[socket.socket, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.socket

    def no_ipv6(family: int = socket.AF_INET, *args: object) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real(family, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "socket", no_ipv6)
    _, busy = listener
    lo = free_block(10)
    assert ports.in_use(busy)
    assert ports.allocate(plan_of(2, port_range=(lo, lo + 9)), {}, ["t0"]) == {"t0": [lo, lo + 1]}
