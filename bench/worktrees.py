"""Preparing N worktrees: wtrun against bare `git worktree add`, side by side in one run.

    python bench/worktrees.py [--files 5000] [--sizes 8 32] [--parallel 8] [--repeat 3]

A generated repository of --files files; for each N: bare `git worktree add` serially,
bare `git worktree add` from a thread pool of --parallel, and `wtrun prepare` of a plan
with N tasks (worktrees + instructions, no setup steps) at max_parallel --parallel.
Each measurement starts from a clean repository; the best of --repeat is kept. Beside the
wall-clock times, the CPU seconds of the parallel bare git and of wtrun (its own and its
git processes'): on a shared machine they vary less than wall-clock time does.
Target: wtrun at most 1.15x the parallel bare git. On a machine whose disk is shared, the
disk's noise is larger than that (the same 8 bare adds took 7 to 19 s in one afternoon): run
it with TMPDIR=/dev/shm to compare on a file system in memory.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import resource
import tempfile
import time
from pathlib import Path

from common import git, reset, timed_run, worktree_add

from wtrun.run import Options


def make_repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for i in range(files):
        path = repo / "src" / f"pkg{i // 100:03d}" / f"mod{i % 100:03d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# module {i}\nVALUE = {i}\n\n\ndef f():\n    return VALUE * 2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "generated")
    return repo


def cpu() -> float:
    """CPU seconds of this process and its finished children so far."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bare(repo: Path, n: int, parallel: int) -> tuple[float, float]:
    """Seconds and CPU seconds of `git worktree add` N times."""
    reset(repo)
    folder = repo / ".claude" / "worktrees"
    folder.mkdir(parents=True)
    start, used = time.perf_counter(), cpu()

    def add(i: int) -> None:
        worktree_add(repo, folder / f"t{i}", f"worktree-t{i}", "main")

    if parallel == 1:
        for i in range(n):
            add(i)
    else:
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            list(pool.map(add, range(n)))
    return time.perf_counter() - start, cpu() - used


def wtrun(repo: Path, n: int, parallel: int) -> tuple[float, float]:
    """Seconds and CPU seconds of `wtrun prepare` of N tasks."""
    reset(repo)
    plan = repo.parent / f"plan-{n}.yaml"
    tasks = "".join(
        f"  - id: t{i}\n    prompt: task {i}\n    scope: [src/pkg{i:03d}/]\n" for i in range(n)
    )
    plan.write_text(
        f"version: 1\nmax_parallel: {parallel}\nagent: {{preset: command, "
        f'command: ["true"]}}\nconventions: |\n  Only touch {{{{ task.scope[0] }}}}\n'
        f"tasks:\n{tasks}"
    )
    used = cpu()
    return timed_run(repo, plan, Options(prepare_only=True)), cpu() - used


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--files", type=int, default=5000)
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 32])
    p.add_argument("--parallel", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp), args.files)
        print(
            f"repository: {args.files} files; parallelism {args.parallel}; best of "
            f"{args.repeat}; {os.cpu_count()} cores"
        )
        print(
            f"{'N':>4} {'git serial s':>13} {'git parallel s':>15} {'wtrun s':>9} "
            f"{'wtrun/parallel':>15} {'wtrun/serial':>13} {'git cpu s':>8} {'wtrun cpu s':>10} "
            f"{'cpu ratio':>9}"
        )
        for n in args.sizes:
            serial = par = ours = float("inf")
            cpu_par = cpu_ours = float("inf")
            for _ in range(args.repeat):
                # Interleaved, so that a noisy moment hurts all three alike.
                serial = min(serial, bare(repo, n, 1)[0])
                seconds, used = bare(repo, n, args.parallel)
                par, cpu_par = min(par, seconds), min(cpu_par, used)
                seconds, used = wtrun(repo, n, args.parallel)
                ours, cpu_ours = min(ours, seconds), min(cpu_ours, used)
            print(
                f"{n:>4} {serial:>13.3f} {par:>15.3f} {ours:>9.3f} {ours / par:>15.2f}x "
                f"{ours / serial:>12.2f}x {cpu_par:>8.2f} {cpu_ours:>10.2f} "
                f"{cpu_ours / cpu_par:>8.2f}x"
            )


if __name__ == "__main__":
    main()
