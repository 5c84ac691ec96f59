"""What the benchmarks share: git with a pinned identity, retried as wtrun retries it."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from wtrun.run import Options, run

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}


def git(cwd: Path, *args: str) -> str:
    """Bare git, with the retry wtrun needs too: parallel worktree commands read each other's
    half-written metadata ("failed to read .../commondir") and lock files."""
    for attempt in range(6):
        r = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout
        transient = "commondir" in r.stderr or "gitdir" in r.stderr or ".lock" in r.stderr
        if attempt < 5 and transient:
            time.sleep(0.05 * 2**attempt)
            continue
        raise GitFailed(f"git {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    raise AssertionError("unreachable")


class GitFailed(Exception):
    pass


def worktree_add(repo: Path, path: Path, branch: str, start: str) -> None:
    """`git worktree add -b`, finished on the branch when a retried add finds that the
    first attempt made the branch before failing (what wtrun does too)."""
    for attempt in range(5):
        try:
            git(repo, "worktree", "add", "--quiet", "-b", branch, str(path), start)
            return
        except GitFailed as e:
            if "already exists" in str(e):
                break
            # `.git/worktrees` removed meanwhile by the `worktree remove` of the last other one
            if "could not create directory of" not in str(e) or attempt == 4:
                raise
    git(repo, "worktree", "add", "--quiet", str(path), branch)


def reset(repo: Path) -> None:
    """Back to the bare repository: no worktrees, no task branches, no wtrun records."""
    shutil.rmtree(repo / ".claude", ignore_errors=True)
    shutil.rmtree(repo / ".git" / "wtrun", ignore_errors=True)
    git(repo, "worktree", "prune")
    extra = [b for b in git(repo, "branch", "--format=%(refname:short)").split() if b != "main"]
    if extra:
        git(repo, "branch", "-D", *extra)


def timed_run(repo: Path, plan: Path, options: Options) -> float:
    """Seconds of one in-process `wtrun run` (or prepare) from `repo`, its output discarded."""
    old = os.getcwd()
    os.chdir(repo)
    sink = io.StringIO()
    try:
        start = time.perf_counter()
        with redirect_stdout(sink), redirect_stderr(sink):
            code = run(str(plan), options)
        elapsed = time.perf_counter() - start
    finally:
        os.chdir(old)
    if code != 0:
        raise SystemExit(f"wtrun failed:\n{sink.getvalue()}")
    return elapsed
