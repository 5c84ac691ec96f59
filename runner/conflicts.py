"""Conflicts that scopes cannot see, predicted with `git merge-tree --write-tree`.

Scopes keep tasks that run side by side apart, yet two branches can still collide: both
changed a `shared` file (a lockfile, a changelog), or the base moved on under them. Each pair
of open tasks that may run together is merged in memory (no worktree, no index), and so is
each task with the base's current tip; a conflicted-file list means a conflict.

Git is the cost: 1,225 pairs for 50 tasks. A process per merge costs more than most merges,
so `git merge-tree --stdin` takes them in batches, one process per core (git 2.38, which has
no `--stdin`, gets a process per merge from a thread pool). `--write-tree` writes the merged
trees and blobs into the object store: they go to a throw-away object directory instead (the
real one serves reads as an alternate), so thousands of predictions leave no loose objects
behind.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from . import proc
from .errors import WtrunError
from .git import Git
from .plan import Plan
from .plan.graph import ancestors, may_run_together
from .state import RunRecord, Store

_MOVED = re.compile(r"~[0-9a-f]{40,64}$")
_MERGE_TREE = ("merge-tree", "--write-tree", "--name-only", "--no-messages", "-z")
_PER_PROCESS = 200  # fewer merges than this per process: starting another costs more


@dataclass(frozen=True)
class Prediction:
    pairs: dict[tuple[str, str], tuple[str, ...]]  # (a, b), a first in the plan -> files
    base: dict[str, tuple[str, ...]]  # task -> files that conflict with the base's tip
    merges: int  # merges computed

    def others(self, task_id: str) -> dict[str, tuple[str, ...]]:
        """The tasks `task_id` conflicts with, in plan order, and the files of each."""
        found: dict[str, tuple[str, ...]] = {}
        for (a, b), files in self.pairs.items():
            if task_id == a:
                found[b] = files
            elif task_id == b:
                found[a] = files
        return found


def merge_conflicts(
    git: Git, ours: str, theirs: str, env: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Files that conflict when `ours` and `theirs` are merged; () when they merge cleanly."""
    r = git.run(*_MERGE_TREE, ours, theirs, check=False, env=dict(env) if env else None)
    if r.returncode in (0, 1):
        # <merged tree> NUL <path> NUL <path> NUL ...
        return _conflicted(r.returncode == 1, r.stdout.split("\0")[1:])
    raise _failed(r, f"{ours[:12]} {theirs[:12]}")


def merge_many(
    git: Git,
    jobs: Sequence[tuple[str, str]],
    env: Mapping[str, str] | None = None,
    *,
    processes: int = 1,
) -> list[tuple[str, ...]]:
    """`merge_conflicts` of each (ours, theirs), in order, in at most `processes` runs of
    `git merge-tree --stdin`: a process per merge costs more than most merges do."""
    count = max(1, min(processes, len(jobs) // _PER_PROCESS))
    size = -(-len(jobs) // count)
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(chunks))) as pool:
        done = list(pool.map(lambda chunk: _merge_batch(git, chunk, env), chunks))
    if any(chunk is None for chunk in done):  # git 2.38: no --stdin, a process per merge
        with concurrent.futures.ThreadPoolExecutor(max_workers=2 * max(1, processes)) as pool:
            return list(pool.map(lambda job: merge_conflicts(git, job[0], job[1], env=env), jobs))
    return [files for chunk in done if chunk is not None for files in chunk]


def _merge_batch(
    git: Git, jobs: Sequence[tuple[str, str]], env: Mapping[str, str] | None
) -> list[tuple[str, ...]] | None:
    lines = "".join(f"{ours} {theirs}\n" for ours, theirs in jobs)
    r = git.run(*_MERGE_TREE, "--stdin", input=lines, check=False, env=dict(env) if env else None)
    if r.returncode != 0 and "stdin" in r.stderr and "unknown option" in r.stderr:
        return None
    # Per merge: <status> NUL <merged tree> NUL <path> NUL ... NUL, where status 1 is clean
    # and 0 has conflicts; exit code 0 whether or not any merge conflicted.
    fields = r.stdout.split("\0")
    results: list[tuple[str, ...]] = []
    at = 0
    while len(results) < len(jobs) and fields[at : at + 1] in (["0"], ["1"]):
        try:
            end = fields.index("", at + 2)
        except ValueError:
            break
        results.append(_conflicted(fields[at] == "0", fields[at + 2 : end]))
        at = end + 1
    if r.returncode != 0 or len(results) != len(jobs):
        ours, theirs = jobs[min(len(results), len(jobs) - 1)]
        raise _failed(r, f"{ours[:12]} {theirs[:12]}")
    return results


def _conflicted(conflicts: bool, listed: Sequence[str]) -> tuple[str, ...]:
    if not conflicts:
        return ()
    # A file moved out of a directory's way is listed as "<path>~<commit>": the user's
    # name for it is <path>.
    paths = [_MOVED.sub("", p) for p in listed if p]
    return tuple(dict.fromkeys(paths)) or ("(no file named)",)


def _failed(r: proc.Result, merging: str) -> WtrunError:
    output = (r.stderr or r.stdout).strip()
    if "--write-tree" in output or "unknown option" in output:
        return WtrunError(
            "predicting conflicts needs git 2.38 or newer (`git merge-tree "
            "--write-tree`); update git"
        )
    return WtrunError(
        f"git merge-tree {merging} failed (exit code "
        f"{r.returncode}): {output.splitlines()[-1] if output else 'no output'}"
    )


@contextmanager
def quarantine(git: Git) -> Iterator[dict[str, str]]:
    """Environment that sends the objects git writes into a temporary directory."""
    objects = git("rev-parse", "--path-format=absolute", "--git-path", "objects").strip()
    folder = tempfile.mkdtemp(prefix="wtrun-merge-tree-", dir=_in_memory())
    try:
        yield {"GIT_OBJECT_DIRECTORY": folder, "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _in_memory() -> str | None:
    """A RAM-backed folder when there is one: thousands of small loose objects written to a
    shared disk took 1 to 3 s for 1,275 merges, in memory 0.4 s; nothing of them is kept."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def default_workers() -> int:
    """Processes of `git merge-tree --stdin`: one per core, each merging a share."""
    return max(1, min(8, os.cpu_count() or 1))


def predict(
    git: Git,
    heads: Mapping[str, str],
    together: Callable[[str, str], bool],
    base_tip: str | None = None,
    *,
    workers: int | None = None,
) -> Prediction:
    """Merge every pair of `heads` (task -> commit, in plan order) that may run together,
    and each head with `base_tip` when given."""
    ids = list(heads)
    pairs = [
        (a, b)
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
        if heads[a] != heads[b] and together(a, b)
    ]
    against_base = [tid for tid in ids if base_tip is not None and heads[tid] != base_tip]
    jobs: list[tuple[str, str]] = [(heads[a], heads[b]) for a, b in pairs]
    jobs += [(base_tip, heads[tid]) for tid in against_base if base_tip is not None]
    if not jobs:
        return Prediction({}, {}, 0)
    with quarantine(git) as env:
        results = merge_many(git, jobs, env, processes=workers or default_workers())
    found = {pair: files for pair, files in zip(pairs, results[: len(pairs)], strict=True) if files}
    base = {
        tid: files for tid, files in zip(against_base, results[len(pairs) :], strict=True) if files
    }
    return Prediction(found, base, len(jobs))


def open_heads(plan: Plan, record: RunRecord) -> dict[str, str]:
    """Tasks with finished work that is not merged or closed yet -> their heads, in plan
    order."""
    heads: dict[str, str] = {}
    for task in plan.tasks:
        r = record.tasks.get(task.id)
        if r is None or not r.state.has_work or r.head is None:
            continue
        if r.pr_state in ("merged", "closed"):
            continue
        heads[task.id] = r.head
    return heads


def predict_plan(
    plan: Plan, git: Git, record: RunRecord, base_tip: str | None, *, workers: int | None = None
) -> Prediction:
    return predict(
        git, open_heads(plan, record), may_run_together(ancestors(plan)), base_tip, workers=workers
    )


def record_prediction(
    plan: Plan, store: Store, prediction: Prediction, checked_base: bool
) -> list[str]:
    """Write each task's `conflicts` (other task ids, plan order) and files into the records;
    returns the tasks whose `conflicts` list changed."""
    changed: list[str] = []
    dirty = False
    order = {t.id: i for i, t in enumerate(plan.tasks)}
    for task in plan.tasks:
        r = store.get(task.id)
        if r is None:
            continue
        others = prediction.others(task.id)
        ids = sorted(others, key=order.__getitem__)
        files = {other: list(others[other]) for other in ids}
        base = list(prediction.base.get(task.id, ())) if checked_base else r.base_conflicts
        if r.conflicts != ids:
            changed.append(task.id)
        # One save for all of them: each save rewrites the whole records file.
        dirty |= store.predicted(task.id, conflicts=ids, conflict_files=files, base_conflicts=base)
    if dirty:
        store.save()
    return changed


def describe(prediction: Prediction, base_name: str) -> list[str]:
    """Lines for a summary: each conflicting pair and each conflict with the base."""
    lines = []
    for (a, b), files in prediction.pairs.items():
        lines.append(f"{a} <-> {b}: {_files(files)}")
    for tid, files in prediction.base.items():
        lines.append(f"{tid} <-> {base_name} (the base's tip): {_files(files)}")
    return lines


def _files(files: Sequence[str]) -> str:
    shown = ", ".join(files[:8])
    return shown + (f" and {len(files) - 8} more" if len(files) > 8 else "")
