"""The order of a run: a forest from `after`, at most `max_parallel` tasks in flight.

Among tasks that may start, the one heading the longest remaining chain goes first
(list scheduling with critical-path priority), so a deep stack does not wait behind
a crowd of one-task stacks.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .plan import Plan
from .plan.graph import children, roots


def chain_lengths(plan: Plan, durations: Mapping[str, float] | None = None) -> dict[str, float]:
    """For each task, the longest total duration from its start to the end of its stack."""
    kids = children(plan)
    memo: dict[str, float] = {}
    order = [t.id for t in plan.tasks]
    # Children may appear before their parents in the plan: resolve bottom-up iteratively.
    pending = list(reversed(order))
    while pending:
        tid = pending[-1]
        missing = [k for k in kids[tid] if k not in memo]
        if missing:
            pending.extend(missing)
            continue
        pending.pop()
        own = 1.0 if durations is None else durations[tid]
        memo[tid] = own + max((memo[k] for k in kids[tid]), default=0.0)
    return memo


@dataclass
class Scheduler:
    """Decides which tasks start next; the caller runs them and reports back."""

    plan: Plan
    max_parallel: int
    only: frozenset[str] | None = None  # tasks of this run; others are left alone
    durations: Mapping[str, float] | None = None
    _priority: dict[str, float] = field(init=False)
    _position: dict[str, int] = field(init=False)
    _heap: list[tuple[float, int, str]] = field(init=False, default_factory=list)
    _kids: dict[str, list[str]] = field(init=False)
    running: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._priority = chain_lengths(self.plan, self.durations)
        self._position = {t.id: i for i, t in enumerate(self.plan.tasks)}
        self._kids = children(self.plan)

    def _include(self, task_id: str) -> bool:
        return self.only is None or task_id in self.only

    def push(self, task_ids: Iterable[str]) -> None:
        for tid in task_ids:
            if self._include(tid):
                heapq.heappush(self._heap, (-self._priority[tid], self._position[tid], tid))

    def start(self) -> list[str]:
        """Tasks to start now, in priority order, within max_parallel."""
        started = []
        while self._heap and len(self.running) < self.max_parallel:
            _, _, tid = heapq.heappop(self._heap)
            self.running.add(tid)
            started.append(tid)
        return started

    def finish(self, task_id: str) -> None:
        self.running.discard(task_id)

    def children_of(self, task_id: str) -> Sequence[str]:
        return [k for k in self._kids[task_id] if self._include(k)]


def simulate(
    plan: Plan, durations: Mapping[str, float], max_parallel: int
) -> dict[str, tuple[float, float]]:
    """(start, end) of each task under the scheduler, for given durations: used by
    `--dry-run` for the start order and by tests to check the policy."""
    sched = Scheduler(plan, max_parallel, durations=durations)
    sched.push(roots(plan))
    now = 0.0
    times: dict[str, tuple[float, float]] = {}
    events: list[tuple[float, int, str]] = []
    seq = 0
    while True:
        for tid in sched.start():
            times[tid] = (now, now + durations[tid])
            heapq.heappush(events, (now + durations[tid], seq, tid))
            seq += 1
        if not events:
            break
        now = events[0][0]
        # Everything that ends at this instant frees its slot before anything starts.
        while events and events[0][0] == now:
            _, _, tid = heapq.heappop(events)
            sched.finish(tid)
            sched.push(sched.children_of(tid))
    return times


def pr_order(plan: Plan, task_ids: Iterable[str]) -> list[str]:
    """Parents before children, plan order among siblings."""
    wanted = set(task_ids)
    position = {t.id: i for i, t in enumerate(plan.tasks)}
    kids = children(plan)
    order: list[str] = []

    def visit(tid: str) -> None:
        if tid in wanted:
            order.append(tid)
        for kid in sorted(kids[tid], key=position.__getitem__):
            visit(kid)

    for root in roots(plan):
        visit(root)
    return order
