"""Run records: what each task's steps did, written atomically under the git directory.

One JSON file per plan at `<git common dir>/wtrun/<plan>/state.json`, rewritten whole
(temp file, fsync, rename) after every change, so a crash or `kill -9` leaves either
the old or the new record, never half of one. A lock file with `flock` keeps one run
of a plan per repository; the kernel drops the lock when its holder dies.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import WtrunError

STATES = (
    "pending",
    "running",
    "prepared",
    "ready",
    "done",
    "no-changes",
    "failed",
    "blocked",
    "skipped",
)


@dataclass
class TaskRecord:
    id: str
    state: str = "pending"
    step: str | None = None  # the last step reached
    reason: str | None = None
    fingerprint: str | None = None
    branch: str | None = None
    worktree: str | None = None
    start_commit: str | None = None  # what the branch started from (scope check base)
    head: str | None = None  # the branch's head after the commit step
    ports: list[int] = field(default_factory=list)
    cost_usd: float | None = None
    agent: dict[str, Any] = field(default_factory=dict)  # details the CLI reported
    files: list[str] = field(default_factory=list)
    verify: list[dict[str, Any]] = field(default_factory=list)  # [{name, ok}]
    created_branch: bool = False
    created_worktree: bool = False  # False: the worktree was there already (adopted)
    pushed_head: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    pr_base: str | None = None
    pr_title: str | None = None
    pr_body: str | None = None
    pr_state: str | None = None  # open | merged | closed
    conflicts: list[str] = field(default_factory=list)
    # Written by `wtrun sync` and at the end of a run (wtrun.sync): the files behind
    # `conflicts` (other task -> paths), what conflicts with the base's tip, and how many
    # commits of that tip the branch lacks (None: not known).
    conflict_files: dict[str, list[str]] = field(default_factory=dict)
    base_conflicts: list[str] = field(default_factory=list)
    behind: int | None = None
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RunRecord:
    plan: str
    base_commit: str | None = None
    started: float | None = None
    tasks: dict[str, TaskRecord] = field(default_factory=dict)

    def task(self, task_id: str) -> TaskRecord:
        if task_id not in self.tasks:
            self.tasks[task_id] = TaskRecord(task_id)
        return self.tasks[task_id]


class Store:
    """The records and logs of one plan in one repository."""

    def __init__(self, common_dir: Path, plan_name: str) -> None:
        self.root = common_dir / "wtrun" / plan_name
        self.path = self.root / "state.json"
        self._lock = threading.Lock()
        self.record = self._read(plan_name)
        if not self.lock().held():
            self._settle()

    def reload(self) -> None:
        """Read the records again; call it holding the plan's lock, so that what another
        run wrote before it let go is seen, and tasks it left "running" are settled."""
        with self._lock:
            self.record = self._read(self.record.plan)
            self._settle()

    def _settle(self) -> None:
        # "running" in the records while no run holds the lock: that run was killed
        # (kill -9, a crash, a lost machine) and its tasks were interrupted.
        for r in self.record.tasks.values():
            if r.state == "running":
                r.state = "failed"
                r.reason = f"interrupted during {r.step}" if r.step else "interrupted"

    def _read(self, plan_name: str) -> RunRecord:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return RunRecord(plan_name)
        except (OSError, ValueError) as e:
            raise WtrunError(
                f"the run records at {self.path} cannot be read ({e}); move the file away "
                "to start the plan's records afresh"
            ) from None
        tasks = {tid: TaskRecord.from_json(t) for tid, t in data.get("tasks", {}).items()}
        return RunRecord(plan_name, data.get("base_commit"), data.get("started"), tasks)

    def task(self, task_id: str) -> TaskRecord:
        """The task's record, made when missing (under the lock: threads share it)."""
        with self._lock:
            return self.record.task(task_id)

    def log_path(self, task_id: str, step: str) -> Path:
        return self.root / "logs" / task_id / f"{step}.log"

    def forget(self, task_id: str) -> None:
        """Drop a task's records and logs (saved with the next `save`)."""
        import shutil

        with self._lock:
            self.record.tasks.pop(task_id, None)
            shutil.rmtree(self.root / "logs" / task_id, ignore_errors=True)

    def update(
        self,
        task_id: str | None = None,
        *,
        save: bool = True,
        durable: bool = False,
        **changes: Any,
    ) -> None:
        """Change one task's record (or the run's, with task_id None) and save at once;
        `save=False` keeps the change in memory until the next save (for what a crash
        may lose, such as which step is under way). `durable` also fsyncs: for what
        happened outside this machine (a push, a PR), which must survive a power cut."""
        with self._lock:
            target: Any = self.record if task_id is None else self.record.task(task_id)
            for key, value in changes.items():
                setattr(target, key, value)
            if save:
                self._save(durable)

    def step(
        self,
        task_id: str,
        step: str,
        outcome: str,
        started: float,
        *,
        save: bool = True,
        **extra: Any,
    ) -> None:
        with self._lock:
            record = self.record.task(task_id)
            record.steps[step] = {
                "outcome": outcome,
                "started": round(started, 3),
                "ended": round(time.time(), 3),
                **extra,
            }
            record.step = step
            if save:
                self._save()

    def save(self, *, durable: bool = False) -> None:
        with self._lock:
            self._save(durable)

    def _save(self, durable: bool = False) -> None:
        """Replace the records atomically (a rename: a killed process leaves the old or
        the new file). Only `durable` saves fsync: an fsync while worktrees are being
        checked out waits for all of their writes, which made preparing 8 worktrees
        up to 1.5x slower than git alone."""
        self.root.mkdir(parents=True, exist_ok=True)
        data = {
            "plan": self.record.plan,
            "base_commit": self.record.base_commit,
            "started": self.record.started,
            # vars(), not dataclasses.asdict (a deep copy), and no indent, which would leave
            # json's C encoder: records are saved after every step of every task.
            "tasks": {tid: vars(t) for tid, t in dict(self.record.tasks).items()},
        }
        write_atomic(self.path, json.dumps(data, sort_keys=True) + "\n", durable=durable)

    def lock(self) -> RunLock:
        return RunLock(self.root / "lock", self.record.plan)


def write_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


class RunLock:
    """One run of a plan per repository. The kernel frees it when the holder dies."""

    def __init__(self, path: Path, plan: str) -> None:
        self.path = path
        self.plan = plan
        self._file: IO[str] | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+", encoding="utf-8")
        # `held()` (status, logs -f) takes the lock shared for an instant: wait that out.
        deadline = time.monotonic() + _LOCK_PATIENCE_S
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                f.seek(0)
                holder = f.read().strip()
                f.close()
                raise WtrunError(
                    f'plan "{self.plan}" is already running in this repository '
                    f"({_holder(holder)}); wait for it to finish, or stop that process"
                ) from None
        f.seek(0)
        f.truncate()
        f.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
        )
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def held(self) -> bool:
        """Whether a run of the plan holds the lock now (without taking it)."""
        try:
            f = self.path.open("r", encoding="utf-8")
        except FileNotFoundError:
            return False
        with f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return False


_LOCK_PATIENCE_S = 0.5


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}, since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


def iter_records(common_dir: Path) -> Iterator[Path]:
    root = common_dir / "wtrun"
    if root.is_dir():
        yield from sorted(p for p in root.iterdir() if (p / "state.json").exists())
