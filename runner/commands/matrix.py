"""`wtrun matrix PLAN`: the plan's independent stacks as a GitHub Actions job matrix.

Prints `{"include": [{"stack": "ROOT[,ROOT...]", "tasks": [ID, ...]}, ...]}` on one line,
for `echo "matrix=$(wtrun matrix PLAN)" >> "$GITHUB_OUTPUT"`. A stack is a root task and
everything stacked on it; it never spans two entries. GitHub runs at most 256 jobs from one
matrix, so with more stacks than that, stacks share entries: each (largest first, plan order
among equals) goes to the entry with the fewest tasks so far (the lowest index among equals).
Inside an entry, roots and tasks keep plan order; entries are ordered by their first task.
"""

from __future__ import annotations

import heapq
import json

from ..plan import Plan, load

MAX_JOBS = 256  # GitHub Actions' limit of jobs per matrix


def matrix(plan_path: str) -> int:
    plan = load(plan_path)
    print(json.dumps({"include": entries(plan)}, separators=(",", ":")))
    return 0


def entries(plan: Plan, limit: int = MAX_JOBS) -> list[dict[str, object]]:
    return pack(plan, _stacks(plan), limit)


def pack(
    plan: Plan, stacks: list[tuple[str, list[str]]], limit: int = MAX_JOBS
) -> list[dict[str, object]]:
    """The `stacks` (each a root and its tasks) in at most `limit` entries, each stack
    whole, the largest placed first on the emptiest entry; entries in plan order."""
    position = {t.id: i for i, t in enumerate(plan.tasks)}
    bins: list[list[tuple[str, list[str]]]]
    if len(stacks) <= limit:
        bins = [[stack] for stack in stacks]
    else:
        bins = [[] for _ in range(limit)]
        heap = [(0, k) for k in range(limit)]
        for stack in sorted(stacks, key=lambda s: (-len(s[1]), position[s[0]])):
            size, k = heapq.heappop(heap)
            bins[k].append(stack)
            heapq.heappush(heap, (size + len(stack[1]), k))
    out: list[tuple[int, dict[str, object]]] = []
    for chosen in bins:
        chosen.sort(key=lambda s: position[s[0]])
        tasks = sorted((tid for _, ids in chosen for tid in ids), key=position.__getitem__)
        entry: dict[str, object] = {"stack": ",".join(r for r, _ in chosen), "tasks": tasks}
        out.append((position[tasks[0]], entry))
    return [entry for _, entry in sorted(out, key=lambda e: e[0])]


def _stacks(plan: Plan) -> list[tuple[str, list[str]]]:
    """Each root with its stack's tasks in plan order, roots in plan order: one pass over the
    plan, each task's root found once (a walk per root over the whole plan is quadratic)."""
    parent = {t.id: t.after for t in plan.tasks}
    root_of: dict[str, str] = {}
    members: dict[str, list[str]] = {t.id: [] for t in plan.tasks if t.after is None}
    for task in plan.tasks:
        chain = [task.id]
        while chain[-1] not in root_of and (up := parent[chain[-1]]) is not None:
            chain.append(up)
        root = root_of.get(chain[-1], chain[-1])
        for tid in chain:
            root_of[tid] = root
        members[root].append(task.id)
    return list(members.items())
