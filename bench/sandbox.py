"""What the sandbox adds to each launch: `/bin/true` in bubblewrap against `/bin/true` bare.

    python bench/sandbox.py [--launches 200]

The sandboxed launch gets what a task's agent gets: a linked worktree of a small repository
and its writable git data (its own binds and read-only re-binds). The two kinds of launch
alternate, so both see the same machine load. Prints mean and median per launch of each and
the difference. Target: under 20 ms added per launch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import git

from wtrun.sandbox import choose, writable_paths


def make_task(root: Path) -> tuple[Path, list[Path]]:
    """A repository with one linked worktree, as wtrun makes it; the worktree and what its
    processes may write."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# bench\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    worktree = repo / ".claude" / "worktrees" / "t1"
    git(repo, "worktree", "add", "-q", "-b", "t1", str(worktree))
    return worktree, writable_paths(repo / ".git", repo / ".git/worktrees/t1", worktree, [])


def launch(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--launches", type=int, default=200)
    args = parser.parse_args()
    sandbox, warning = choose("bwrap")  # fails with the fix when bwrap is missing
    assert warning is None
    with tempfile.TemporaryDirectory() as tmp:
        worktree, writable = make_task(Path(tmp))
        bare = ["/bin/true"]
        wrapped = sandbox.wrap(bare, cwd=worktree, writable=writable, env=os.environ)
        launch(wrapped, worktree)  # warm the page cache for bwrap itself
        times: dict[str, list[float]] = {"bare": [], "bwrap": []}
        for _ in range(args.launches):
            times["bare"].append(launch(bare, worktree))
            times["bwrap"].append(launch(wrapped, worktree))
    print(f"{args.launches} launches each, interleaved; {len(wrapped) - 2} bwrap arguments")
    for name, samples in times.items():
        mean, median = statistics.mean(samples) * 1000, statistics.median(samples) * 1000
        print(f"  {name:<6} mean {mean:6.2f} ms   median {median:6.2f} ms")
    added_mean = (statistics.mean(times["bwrap"]) - statistics.mean(times["bare"])) * 1000
    added_median = (statistics.median(times["bwrap"]) - statistics.median(times["bare"])) * 1000
    verdict = "within" if added_mean < 20 else "OVER"
    print(f"  added  mean {added_mean:6.2f} ms   median {added_median:6.2f} ms  ({verdict} 20 ms)")


if __name__ == "__main__":
    main()
