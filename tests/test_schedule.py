"""The scheduler: critical-path list scheduling over the `after` forest."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from wtrun import schedule
from wtrun.plan import Plan, Task, graph


def forest(parents: list[int | None]) -> Plan:
    tasks = tuple(
        Task(
            id=f"t{i}",
            title=f"t{i}",
            prompt="p",
            scope=(f"d{i}/",),
            after=None if p is None else f"t{p}",
        )
        for i, p in enumerate(parents)
    )
    return Plan(path=Path("p.yaml"), name="p", tasks=tasks)


@st.composite
def forests(draw: st.DrawFn) -> tuple[Plan, dict[str, float], int]:
    n = draw(st.integers(1, 14))
    parents: list[int | None] = []
    for i in range(n):
        parents.append(draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None)
    durations = {f"t{i}": float(draw(st.integers(1, 9))) for i in range(n)}
    return forest(parents), durations, draw(st.integers(1, 4))


def reference(plan: Plan, durations: dict[str, float], slots: int) -> dict[str, float]:
    """Time-stepped list scheduling, written independently of the scheduler: at every
    integer instant, free slots go to available tasks with the longest remaining chain."""
    parent = {t.id: t.after for t in plan.tasks}
    index = {t.id: i for i, t in enumerate(plan.tasks)}

    def chain(tid: str) -> float:
        kids = [t for t in parent if parent[t] == tid]
        return durations[tid] + max((chain(k) for k in kids), default=0.0)

    start: dict[str, float] = {}
    end: dict[str, float] = {}
    now = 0.0
    while len(end) < len(parent):
        running = [t for t in start if end[t] > now]
        available = [
            t
            for t in parent
            if t not in start
            and (parent[t] is None or (parent[t] in end and end[parent[t]] <= now))
        ]
        available.sort(key=lambda t: (-chain(t), index[t]))
        for tid in available[: slots - len(running)]:
            start[tid] = now
            end[tid] = now + durations[tid]
        now += 1.0
    return end


@settings(max_examples=300, deadline=None)
@given(forests())
def test_makespan_matches_critical_path_list_scheduling(
    case: tuple[Plan, dict[str, float], int],
) -> None:
    plan, durations, slots = case
    times = schedule.simulate(plan, durations, slots)
    expected = reference(plan, durations, slots)
    assert max(e for _, e in times.values()) == max(expected.values())
    assert {t: e for t, (_, e) in times.items()} == expected


@settings(max_examples=200, deadline=None)
@given(forests())
def test_children_wait_for_parents_and_slots_are_respected(
    case: tuple[Plan, dict[str, float], int],
) -> None:
    plan, durations, slots = case
    times = schedule.simulate(plan, durations, slots)
    assert set(times) == {t.id for t in plan.tasks}
    for task in plan.tasks:
        if task.after:
            assert times[task.id][0] >= times[task.after][1]
    instants = sorted({s for s, _ in times.values()})
    for t in instants:
        assert sum(1 for s, e in times.values() if s <= t < e) <= slots


def test_longest_chain_goes_first() -> None:
    # t4 heads a chain of three (t4 <- t2 <- t3) and is listed last: first come, first served
    # would start the single tasks t0 and t1 before it and end a step later.
    plan = forest([None, None, 4, 2, None])
    durations = dict.fromkeys(("t0", "t1", "t2", "t3", "t4"), 1.0)
    times = schedule.simulate(plan, durations, 2)
    assert {t: start for t, (start, _) in times.items()} == {
        "t4": 0.0,
        "t0": 0.0,
        "t2": 1.0,
        "t1": 1.0,
        "t3": 2.0,
    }
    assert max(end for _, end in times.values()) == 3.0
    assert schedule.simulate(plan, durations, 1)["t4"][0] == 0.0


def test_pr_order_parents_first_then_plan_order() -> None:
    # t2 comes after t3, which is listed later in the plan.
    plan = forest([None, None, 3, None, 0])
    assert schedule.pr_order(plan, ["t0", "t1", "t2", "t3", "t4"]) == ["t0", "t4", "t1", "t3", "t2"]


def test_descendants_and_roots() -> None:
    plan = forest([None, 0, 1, None])
    assert graph.descendants(plan, ["t0"]) == ["t0", "t1", "t2"]
    assert graph.roots(plan) == ["t0", "t3"]
    assert graph.root_of(plan, "t2") == "t0"
