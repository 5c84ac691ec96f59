"""One task, one agent: a lock per task worktree, whatever plan names it, and a record of
the agent's process group, so that an agent left running by a killed wtrun is found.

The lock is an `flock` on a file under the repository's git directory, named after the
worktree's path: a copy of the plan under another name that points at the same worktree
meets the same lock. The kernel drops it when wtrun dies; the agent's process group
(and its start time, so that a recycled process id is never mistaken for it) stays
written in the file until the agent is known to be gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import WtrunError


class TaskBusy(WtrunError):
    pass


class TaskLock:
    def __init__(self, file: IO[str], worktree: Path, task_id: str) -> None:
        self._file = file
        self.worktree = worktree
        self.task_id = task_id

    def agent_started(self, pgid: int) -> None:
        self._write({"pid": os.getpid(), "agent_pgid": pgid, "agent_start": _start_time(pgid)})

    def agent_ended(self) -> None:
        self._write({"pid": os.getpid()})

    def _write(self, info: dict[str, object]) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"task": self.task_id, **info}))
        self._file.flush()


@contextlib.contextmanager
def hold(common_dir: Path, worktree: Path, task_id: str) -> Iterator[TaskLock]:
    """Hold the task worktree's lock; refuse when another run holds it, or when an agent
    of an earlier run still runs there."""
    key = hashlib.sha256(str(worktree.resolve()).encode()).hexdigest()[:16]
    path = common_dir / "wtrun" / "worktrees" / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    f = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read(f)
            raise TaskBusy(
                f'task "{task_id}": its worktree {worktree} is in use by another wtrun '
                f"(pid {info.get('pid', '?')}, task {info.get('task', '?')!r}); wait for it to "
                "finish, or stop that process"
            ) from None
        _refuse_if_agent_lives(_read(f), worktree, task_id)
        lock = TaskLock(f, worktree, task_id)
        lock.agent_ended()
        try:
            yield lock
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    finally:
        f.close()


def _refuse_if_agent_lives(info: dict[str, object], worktree: Path, task_id: str) -> None:
    pgid, start = info.get("agent_pgid"), info.get("agent_start")
    if not isinstance(pgid, int) or pgid <= 1 or not _group_alive(pgid):
        return
    leader = _start_time(pgid)
    # Linux never hands out a pid still in use as a process group id, so a live group is
    # the agent's unless its leader's pid was recycled (then the start time differs).
    if leader is not None and leader != start:
        return
    raise TaskBusy(
        f'task "{task_id}": an agent of an earlier run still runs in {worktree} (process '
        f"group {pgid}); stop it with `kill -TERM -- -{pgid}`, then run again"
    )


def _read(f: IO[str]) -> dict[str, object]:
    f.seek(0)
    try:
        data = json.loads(f.read() or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _group_alive(pgid: int) -> bool:
    """Whether a live process (not a zombie waiting to be reaped) is in the group."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text(encoding="utf-8")
        except OSError:
            continue
        state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            return True
    return False


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])
