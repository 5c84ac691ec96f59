"""Generated plans of many tasks, and a command's time and peak memory in a fresh process.

Each task has five scope patterns that overlap no other task's: its own folder, its tests, a
doc, a sibling file, and a glob in a folder ten tasks share (so the overlap check must compare
them and find them disjoint).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def generate(n: int, stack_every: int = 0) -> str:
    """`stack_every` k > 0: every k-th task is stacked on the one before it."""
    lines = ["version: 1", "name: bench", "max_parallel: 8", "tasks:"]
    for i in range(n):
        area = f"src/mod{i // 10}/part{i % 10}"
        lines += [
            f"  - id: task-{i:05d}",
            f"    title: Task {i}",
            f"    prompt: Do thing {i} in {area}.",
            f"    scope: [{area}/**, tests/mod{i // 10}/part{i % 10}/**, "
            f"docs/mod{i}.md, {area}.ts, src/mod{i // 10}/*-{i % 10}.md]",
        ]
        if stack_every and i % stack_every == stack_every - 1:
            lines.append(f"    after: task-{i - 1:05d}")
    return "\n".join(lines) + "\n"


def measure(args: list[str], cwd: Path | None = None) -> tuple[float, float, bytes]:
    """Seconds, peak resident MB and stdout of `python -m wtrun ARGS` in a fresh process
    (interpreter start included)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "wtrun", *args], cwd=cwd, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            raise SystemExit(f"wtrun {' '.join(args)} failed:\n{err.read().decode()}")
        return seconds, usage.ru_maxrss / 1024, out.read()


def fastest(runs: int, work: Callable[[], object]) -> float:
    """The fewest seconds `work` took in `runs` calls, in this process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def best(runs: int, args: list[str], cwd: Path | None = None) -> tuple[float, float, bytes]:
    """The fastest of `runs` fresh processes, and the largest peak memory among them."""
    results = [measure(args, cwd) for _ in range(runs)]
    return min(r[0] for r in results), max(r[1] for r in results), results[0][2]


def growths(now: Sequence[float], before: Sequence[float] | None) -> list[str]:
    """Each figure of `now` as a multiple of the same figure `before` ("3.1x"), or "-" each
    at the first size: with the sizes first, the times' growth reads beside the sizes'."""
    return [f"{a / b:.1f}x" if before else "-" for a, b in zip(now, before or now, strict=True)]


def empty_repo(folder: Path) -> Path:
    """A git repository with one empty commit on `main`."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(
        ["git", *identity, "commit", "-q", "--allow-empty", "-m", "empty"], cwd=folder, check=True
    )
    return folder
