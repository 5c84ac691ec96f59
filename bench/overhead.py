"""Orchestration overhead per task, and the cost of one subprocess call (subprocess vs sh).

    python bench/overhead.py [--tasks 50] [--parallel 3] [--repeat 3]

1. A plan of --tasks tasks whose agent (`true`) exits at once: wtrun's whole run (no PRs)
   against the git commands such a task needs when run bare from a thread pool at the same
   parallelism (worktree add, status, add, diff, rev-parse, worktree remove, branch -D).
   Prints both and the overhead per task. Target: under 30 ms per task beyond git.
2. One `git rev-parse HEAD` through subprocess.run and through the `sh` library (with
   `_tty_out=False`, as a wrapper would need), mean of 200 calls each.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import tempfile
import time
from pathlib import Path

from common import ENV, git, reset, timed_run, worktree_add

from wtrun.run import Options


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for i in range(100):
        (repo / f"f{i}.txt").write_text(f"{i}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    return repo


def bare(repo: Path, n: int, parallel: int) -> float:
    reset(repo)
    folder = repo / ".claude" / "worktrees"
    folder.mkdir(parents=True)

    def task(i: int) -> None:
        wt = folder / f"t{i}"
        worktree_add(repo, wt, f"worktree-t{i}", "main")
        subprocess.run(["true"], cwd=wt, check=True)
        git(wt, "status", "--porcelain", "-z")
        git(wt, "add", "--all")
        subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=wt, env=ENV, check=True)
        git(wt, "rev-parse", "HEAD")
        git(repo, "worktree", "remove", "--force", str(wt))
        git(repo, "branch", "-D", f"worktree-t{i}")

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(task, range(n)))
    return time.perf_counter() - start


def ours(repo: Path, n: int, parallel: int) -> float:
    reset(repo)
    plan = repo.parent / "plan.yaml"
    tasks = "".join(f"  - id: t{i}\n    prompt: p\n    scope: [d{i}/]\n" for i in range(n))
    plan.write_text(
        f"version: 1\nmax_parallel: {parallel}\npr: {{provider: none}}\n"
        f'agent: {{preset: command, command: ["true"], sandbox: none}}\ntasks:\n{tasks}'
    )
    return timed_run(repo, plan, Options(no_pr=True))


def per_call(repo: Path, calls: int = 200) -> tuple[float, float | None]:
    start = time.perf_counter()
    for _ in range(calls):
        subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        )
    plain = (time.perf_counter() - start) / calls
    try:
        import sh
    except ImportError:
        return plain, None
    git_sh = sh.Command("git").bake(_cwd=str(repo), _tty_out=False)
    start = time.perf_counter()
    for _ in range(calls):
        git_sh("rev-parse", "HEAD")
    return plain, (time.perf_counter() - start) / calls


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=50)
    p.add_argument("--parallel", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        best_bare = best_ours = float("inf")
        for _ in range(args.repeat):
            best_bare = min(best_bare, bare(repo, args.tasks, args.parallel))
            best_ours = min(best_ours, ours(repo, args.tasks, args.parallel))
        extra = (best_ours - best_bare) / args.tasks * 1000
        print(
            f"{args.tasks} tasks, parallelism {args.parallel}, best of {args.repeat}, "
            f"{os.cpu_count()} cores"
        )
        print(f"  bare git work:   {best_bare:7.3f} s")
        print(f"  wtrun run:       {best_ours:7.3f} s   ({best_ours / best_bare:.2f}x)")
        print(f"  overhead:        {extra:7.1f} ms per task beyond git (target < 30)")
        plain, with_sh = per_call(repo)
        print(f"one git call:      subprocess {plain * 1000:.2f} ms", end="")
        if with_sh is None:
            print("; sh not installed")
        else:
            print(f", sh {with_sh * 1000:.2f} ms ({with_sh / plain:.2f}x)")


if __name__ == "__main__":
    main()
