"""Time the scope overlap check on generated plans of 100 to 10,000 tasks.

    python bench/scopes.py [--sizes 100,1000,5000,10000] [--repeat 3]

Each task has five patterns, like a plan for a large monorepo: its own module directory
(``src/mod17/**``), a glob under a per-task directory (``tests/mod17/test_*.py``), files in a
directory every task shares (``src/shared/types/mod17.ts``, ``config/mod17.json``), and a file
at a character-level neighbour of other tasks' paths (``docs/mod17.md``). Five tasks use a
pattern that starts with a wildcard (``*.config.js``, ``*.md``, ``**/*.lock``, ...), which must
be compared with every other pattern; one docs sweep uses ``**/*.md`` and runs after every
other task. Every 40th task also reaches into its neighbour's directory, a real overlap, and
``**/*.lock`` overlaps every module directory; every fourth task is stacked on the one before
it, so those pairs never run together.

Times are for one whole ``find_overlaps`` call: "first" in a fresh process (cold caches), "best"
the best of ``--repeat`` calls.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from wtrun.scopes import OverlapStats, find_overlaps

Plan = list[tuple[str, list[str]]]


def make_plan(tasks: int, seed: int = 12) -> tuple[Plan, Callable[[str, str], bool]]:
    rng = random.Random(seed)
    plan: Plan = []
    for i in range(tasks):
        patterns = [
            f"src/mod{i}/**",
            f"tests/mod{i}/test_*.py",
            f"src/shared/types/mod{i}.ts",
            f"config/mod{i}.json",
            f"docs/mod{i}.md",
        ]
        if i % 40 == 5 and i + 1 < tasks:
            # reaches into the next task's module: a real overlap
            patterns[3] = f"src/mod{i + 1}/api.ts"
        plan.append((f"task-{i:05d}", patterns))
    # a few tasks with patterns that start with a wildcard, wherever they fall in the plan
    for pattern in ["*.config.js", "*.md", "?akefile", "**/*.lock", "[A-Z]*.txt"]:
        patterns = plan[rng.randrange(tasks)][1]
        patterns[rng.randrange(1, 5)] = pattern
    plan.append(("docs-sweep", ["**/*.md", "docs/", "README.md", "CHANGELOG.md", "mkdocs.yml"]))

    stacked = {(f"task-{i - 1:05d}", f"task-{i:05d}") for i in range(4, tasks, 4)}

    def may_run_together(a: str, b: str) -> bool:
        if "docs-sweep" in (a, b):
            return False
        return (a, b) not in stacked and (b, a) not in stacked

    return plan, may_run_together


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(
        f"{'tasks':>7} {'patterns':>9} {'compared':>9} {'naive pairs':>13} {'overlaps':>9} "
        f"{'first s':>8} {'best s':>8}"
    )
    for tasks in (int(size) for size in args.sizes.split(",")):
        plan, may_run_together = make_plan(tasks)
        counts = [len(patterns) for _, patterns in plan]
        naive = (sum(counts) ** 2 - sum(n * n for n in counts)) // 2
        times: list[float] = []
        for _ in range(args.repeat):
            stats = OverlapStats(patterns=0, pairs_compared=0)
            start = time.perf_counter()
            overlaps = find_overlaps(plan, may_run_together, stats)
            times.append(time.perf_counter() - start)
        print(
            f"{len(plan):>7} {stats.patterns:>9} {stats.pairs_compared:>9} {naive:>13} "
            f"{len(overlaps):>9} {times[0]:>8.3f} {min(times):>8.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
