"""Run records: what each task's steps did, written atomically under the git directory.

One JSON file per plan at `<git common dir>/wtrun/<plan>/state.json`, rewritten whole
(temp file, rename) after a change, so a crash or `kill -9` leaves either the old or the
new record, never half of one; records of pushes, PRs and a run's end are fsynced too.
A lock file with `flock` keeps one run of a plan per repository; the kernel drops the
lock when its holder dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import IO, Any

from . import redact
from .errors import DiskFull, WtrunError


class TaskState(str, Enum):
    """Where a task stands; the values are the records' and `status --json`'s words."""

    PENDING = "pending"
    RUNNING = "running"
    PREPARED = "prepared"  # after `wtrun prepare`
    READY = "ready"  # committed, in scope, verified; not pushed yet
    DONE = "done"  # pushed, and its PR opened or updated where the provider makes PRs
    NO_CHANGES = "no-changes"
    FAILED = "failed"
    BLOCKED = "blocked"  # a parent failed or is not ready
    SKIPPED = "skipped"  # the run's budget was spent before it started

    def __str__(self) -> str:
        return self.value

    @property
    def has_work(self) -> bool:
        """Committed work that passed its checks: a child may build on it."""
        return self in (TaskState.READY, TaskState.DONE)

    @property
    def progress(self) -> int:
        """How far along: a merged record replaces a local one only when it says more."""
        return _PROGRESS[self]


_PROGRESS = {
    TaskState.PENDING: 0,
    TaskState.BLOCKED: 1,
    TaskState.SKIPPED: 1,
    TaskState.RUNNING: 1,
    TaskState.PREPARED: 2,
    TaskState.FAILED: 3,
    TaskState.NO_CHANGES: 4,
    TaskState.READY: 5,
    TaskState.DONE: 6,
}


class Step(str, Enum):
    """The per-task stages, in order; a task's record says which of them are done."""

    WORKTREE = "worktree"
    SETUP = "setup"
    INSTRUCTIONS = "instructions"
    AGENT = "agent"
    COMMIT = "commit"
    SCOPE = "scope"
    VERIFY = "verify"
    FINAL = "final"  # the scope check again, on the commit to push, after verify
    PR = "pr"

    def __str__(self) -> str:
        return self.value


@dataclass
class TaskRecord:
    """One task's record. Read it anywhere; only `Store` writes it."""

    id: str
    state: TaskState = TaskState.PENDING
    step: str | None = None  # the last step reached
    reason: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)  # plan field -> hash, when it ran
    prompt: str | None = None  # what the agent was last asked (a follow-up says what changed)
    branch: str | None = None
    worktree: str | None = None
    start_commit: str | None = None  # what the branch started from (scope check base)
    head: str | None = None  # the branch's head after the commit step
    ports: list[int] = field(default_factory=list)
    cost_usd: float | None = None
    attempts: int = 0  # runs of the agent so far
    sandbox: str | None = None  # where the agent last ran: bwrap | none
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
    # Written after a run and by `wtrun sync`: the files behind `conflicts` (other task ->
    # paths), what conflicts with the base's tip, and how many commits of that tip the
    # branch lacks (None: not known).
    conflict_files: dict[str, list[str]] = field(default_factory=dict)
    base_conflicts: list[str] = field(default_factory=list)
    behind: int | None = None
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    # `wtrun revise`: the feedback keys already given to the agent, its follow-up runs,
    # and when it last pushed one (feedback older than that is not read again).
    addressed: list[str] = field(default_factory=list)
    revisions: int = 0
    revised_at: float | None = None
    # The keys its last follow-up addressed while the follow-up is not pushed and answered on
    # the PR yet (`wtrun revise --no-pr`, then `wtrun pr`).
    unanswered: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        try:
            record.state = TaskState(record.state)
        except ValueError:
            record.state = TaskState.PENDING
        return record

    def done(self, step: Step) -> bool:
        return self.steps.get(step.value, {}).get("outcome") == "ok"


@dataclass(frozen=True)
class PrOpened:
    """What a provider answered for a task's PR, and the text wtrun sent."""

    number: int | None
    url: str | None
    base: str
    title: str
    body: str
    state: str | None


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


# What a follow-up made elsewhere changes in a task's record; its PR, branch and pushed head
# stay as this record has them.
_FOLLOW_UP_FIELDS = (
    "head",
    "addressed",
    "revisions",
    "unanswered",
    "attempts",
    "cost_usd",
    "files",
    "verify",
)


def _follows_up(theirs: TaskRecord, ours: TaskRecord) -> bool:
    """`theirs` holds a follow-up (`wtrun revise --no-pr`, in a job that runs agents) made on
    the head `ours` says was pushed, and `ours` has none of its own waiting. A follow-up
    on a head that moved since (`wtrun sync` rebased the branch) is not taken: the next
    revise reads its feedback again."""
    return (
        bool(theirs.unanswered)
        and not ours.unanswered
        and ours.state is TaskState.DONE
        and theirs.revisions > ours.revisions
        and ours.pushed_head is not None
        and theirs.pushed_head == ours.pushed_head == ours.head
    )


def _without_follow_up(record: TaskRecord) -> TaskRecord:
    """A record taken whole, but for a follow-up waiting in it: nothing here says what that
    builds on. Its feedback counts as new again."""
    if record.unanswered:
        record.addressed = [k for k in record.addressed if k not in record.unanswered]
        record.head, record.unanswered = record.pushed_head, []
    return record


class Ledger:
    """A plan's records in memory, and every change made to them: each a method, under
    one lock (tasks run on several threads). `save=False` keeps a change in memory until
    the next save, for what a crash may lose and a rerun redoes (which step is under
    way); `durable` also fsyncs, for what happened outside this machine (a push, a PR)."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self._lock = threading.Lock()

    def _save(self, task_id: str | None, durable: bool, now: bool) -> None:
        """Persist the records after a change of `task_id`'s; called holding the lock."""

    # ------------------------------------------------------------ reading

    def task(self, task_id: str) -> TaskRecord:
        """The task's record, made when missing (under the lock: threads share it)."""
        with self._lock:
            return self.record.task(task_id)

    def get(self, task_id: str) -> TaskRecord | None:
        return self.record.tasks.get(task_id)

    def merge(self, incoming: RunRecord) -> list[str]:
        """Fold another machine's records of this plan in; a task's record is replaced only
        by one further along. Returns the ids taken."""
        taken = []
        with self._edit(None) as run:
            if run.base_commit is None:
                run.base_commit = incoming.base_commit
            for tid, theirs in incoming.tasks.items():
                ours = run.tasks.get(tid)
                if ours is None or theirs.state.progress > ours.state.progress:
                    run.tasks[tid] = _without_follow_up(theirs)
                    taken.append(tid)
                elif _follows_up(theirs, ours):
                    for name in _FOLLOW_UP_FIELDS:
                        setattr(ours, name, getattr(theirs, name))
                    taken.append(tid)
        return taken

    # ------------------------------------------------------------ a task's state and steps

    def set_state(
        self,
        task_id: str,
        state: TaskState,
        reason: str | None = None,
        *,
        step: str | None = None,
        save: bool = True,
    ) -> None:
        with self._edit(task_id, save=save) as r:
            r.state = state
            r.reason = reason
            if step is not None:
                r.step = step

    def set_reason(self, task_id: str, reason: str | None) -> None:
        with self._edit(task_id) as r:
            r.reason = reason

    def begin_step(self, task_id: str, step: Step) -> None:
        with self._edit(task_id, save=False) as r:
            r.state = TaskState.RUNNING
            r.step = step.value

    def end_step(
        self, task_id: str, step: Step, *, ok: bool, started: float, save: bool = True
    ) -> None:
        with self._edit(task_id, save=save) as r:
            r.steps[step.value] = {
                "outcome": "ok" if ok else "failed",
                "started": round(started, 3),
                "ended": round(time.time(), 3),
            }
            r.step = step.value

    def undo_steps(self, task_id: str, steps: Iterable[Step]) -> None:
        """Mark steps to be done again (their work was lost)."""
        with self._edit(task_id, save=False) as r:
            for step in steps:
                r.steps.pop(step.value, None)

    # ------------------------------------------------------------ what the run's stages found

    def claim(
        self,
        task_id: str,
        *,
        branch: str,
        worktree: str,
        ports: list[int],
        inputs: dict[str, str],
        created_branch: bool,
        created_worktree: bool,
    ) -> None:
        """The task's names, recorded before git makes them: a run killed in between still
        knows they are its own (to reuse, restart or clean them)."""
        with self._edit(task_id, now=True) as r:
            r.branch, r.worktree, r.ports, r.inputs = branch, worktree, ports, inputs
            r.created_branch = r.created_branch or created_branch
            r.created_worktree = r.created_worktree or created_worktree

    def started_from(self, task_id: str, commit: str, *, created_branch: bool) -> None:
        with self._edit(task_id, save=False) as r:
            r.start_commit = commit
            r.created_branch = r.created_branch or created_branch

    def agent_started(self, task_id: str, sandbox: str) -> int:
        """Count a run of the task's agent, and where it runs; returns its number. Written
        before the agent starts: a run killed meanwhile still counts the attempt."""
        with self._edit(task_id, now=True) as r:
            r.attempts += 1
            r.sandbox = sandbox
            return int(r.attempts)

    def agent_ran(
        self, task_id: str, prompt: str, cost_usd: float | None, details: dict[str, Any]
    ) -> None:
        """An agent run ended: what it was asked, and what it reported. The costs of the
        task's attempts and follow-ups add up."""
        with self._edit(task_id, save=False) as r:
            r.prompt = prompt
            if cost_usd is not None:
                r.cost_usd = (r.cost_usd or 0.0) + cost_usd
            r.agent = details

    def spent(self, task_id: str, cost_usd: float | None) -> None:
        """A follow-up run's cost (`wtrun revise`), added to the task's; what it was asked
        stays the plan's prompt, which the next plan change is compared with."""
        with self._edit(task_id) as r:
            if cost_usd is not None:
                r.cost_usd = (r.cost_usd or 0.0) + cost_usd

    def committed(self, task_id: str, head: str | None) -> None:
        """The task's head after the commit stage; None: no changes, worktree removed."""
        with self._edit(task_id, save=False) as r:
            r.head = head
            if head is None:
                r.worktree = None

    def scoped(self, task_id: str, files: list[str]) -> None:
        with self._edit(task_id, save=False) as r:
            r.files = files

    def verified(self, task_id: str, results: list[dict[str, Any]]) -> None:
        with self._edit(task_id, save=False) as r:
            r.verify = results

    @contextmanager
    def _edit(
        self, task_id: str | None, *, save: bool = True, durable: bool = False, now: bool = False
    ) -> Iterator[Any]:
        """`now`: written before the caller goes on, even in a batch (see `Store.batched`):
        what a run killed right after must find."""
        with self._lock:
            yield self.record if task_id is None else self.record.task(task_id)
            self._changed(task_id)
            if save:
                self._save(task_id, durable, now or durable)

    def _changed(self, task_id: str | None) -> None:
        """A task's record (None: the run's, or any) changed; called holding the lock."""


class Reviewed(Ledger):
    """The changes to a task's records after its stages ran: its push, its PR, what review
    and `wtrun sync` make of them."""

    def pushed(self, task_id: str, head: str | None) -> None:
        with self._edit(task_id, durable=True) as r:
            r.pushed_head = head

    def pr_opened(self, task_id: str, pr: PrOpened) -> None:
        with self._edit(task_id, durable=True) as r:
            r.state, r.step, r.reason = TaskState.DONE, Step.PR.value, None
            r.pr_number, r.pr_url, r.pr_base = pr.number, pr.url, pr.base
            r.pr_title, r.pr_body, r.pr_state = pr.title, pr.body, pr.state

    def pr_changed(
        self,
        task_id: str,
        *,
        state: str | None = None,
        base: str | None = None,
        body: str | None = None,
    ) -> None:
        """What a PR became since it was opened (merged, retargeted, its text edited)."""
        with self._edit(task_id) as r:
            if state is not None:
                r.pr_state = state
            if base is not None:
                r.pr_base = base
            if body is not None:
                r.pr_body = body

    def restacked(
        self, task_id: str, *, head: str, pushed_head: str | None, start_commit: str
    ) -> None:
        """A task rebased by `wtrun sync`."""
        with self._edit(task_id, durable=pushed_head is not None) as r:
            r.head, r.pushed_head, r.start_commit = head, pushed_head, start_commit

    def revised(self, task_id: str, *, addressed: list[str], head: str | None) -> None:
        """A follow-up run of `wtrun revise` that addressed `addressed`; `head` is its commit
        (None: the agent changed nothing). It waits to be pushed and answered (`answered`)."""
        with self._edit(task_id, durable=True) as r:
            new = [k for k in addressed if k not in r.addressed]
            r.addressed = [*r.addressed, *new]
            r.unanswered = [*r.unanswered, *(k for k in new if k not in r.unanswered)]
            r.revisions += 1
            if head is not None:
                r.head = head

    def answered(self, task_id: str) -> None:
        """The follow-up's head pushed (when it made one) and its feedback answered on the PR;
        feedback older than now is not read again."""
        with self._edit(task_id, durable=True) as r:
            if r.head != r.pushed_head:
                r.pushed_head, r.revised_at = r.head, time.time()
            r.unanswered = []

    def follow_up_dropped(self, task_id: str, reason: str) -> None:
        """A follow-up that could not be pushed: its feedback counts as new again."""
        with self._edit(task_id, durable=True) as r:
            _without_follow_up(r)
            r.reason = reason

    def worktree_removed(self, task_id: str) -> None:
        with self._edit(task_id) as r:
            r.worktree = None

    def predicted(
        self,
        task_id: str,
        *,
        conflicts: list[str],
        conflict_files: dict[str, list[str]],
        base_conflicts: list[str],
    ) -> bool:
        """Predicted conflicts of the task; saved with the next save. True when changed."""
        with self._edit(task_id, save=False) as r:
            new = (conflicts, conflict_files, base_conflicts)
            if (r.conflicts, r.conflict_files, r.base_conflicts) == new:
                return False
            r.conflicts, r.conflict_files, r.base_conflicts = new
            return True

    def drifted(self, task_id: str, behind: int | None) -> None:
        with self._edit(task_id, save=False) as r:
            r.behind = behind


class Store(Reviewed):
    """The records and logs of one plan in one repository, on disk; the only writer of
    the records file."""

    def __init__(self, common_dir: Path, plan_name: str) -> None:
        self.root = common_dir / "wtrun" / plan_name
        self.path = self.root / "state.json"
        super().__init__(self._read(plan_name))
        self._encoded: dict[str, str] = {}  # task -> its JSON, as last saved
        self._told_full: set[str] = set()  # tasks told the disk is full since the last save
        self._every: float | None = None  # see `batched`
        self._due: threading.Timer | None = None  # the batched write waiting to happen
        if not self.lock().held():
            self._settle()

    def reload(self) -> None:
        """Read the records again; call it holding the plan's lock, so that what another
        run wrote before it let go is seen, and tasks it left "running" are settled."""
        with self._lock:
            self.record = self._read(self.record.plan)
            self._settle()
            self._encoded.clear()

    def _settle(self) -> None:
        # "running" in the records while no run holds the lock: that run was killed
        # (kill -9, a crash, a lost machine) and its tasks were interrupted.
        for r in self.record.tasks.values():
            if r.state is TaskState.RUNNING:
                r.state = TaskState.FAILED
                r.reason = f"interrupted during {r.step}" if r.step else "interrupted"

    def _read(self, plan_name: str) -> RunRecord:
        try:
            return replace(read_records(self.path), plan=plan_name)
        except FileNotFoundError:
            return RunRecord(plan_name)
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise WtrunError(
                f"the run records at {self.path} cannot be read ({e}); move the file away "
                "to start the plan's records afresh"
            ) from None

    def log_path(self, task_id: str, step: str) -> Path:
        return self.root / "logs" / task_id / f"{step}.log"

    def _forget_logs(self, task_id: str) -> None:
        shutil.rmtree(self.root / "logs" / task_id, ignore_errors=True)

    def save(self, *, durable: bool = False) -> None:
        with self._lock:
            if self._due is not None:
                self._due.cancel()
                self._due = None
            self._write(durable)

    @contextmanager
    def batched(self, every: float = 0.2) -> Iterator[None]:
        """Within, a save that need not be durable is written with the others of the next
        `every` seconds, by a timer; a durable save writes at once, with what waits. A file
        rewritten whole at each of a task's saves cost more per task the larger the plan
        (31 ms per task at 400 tasks). A killed run loses at most `every` seconds of
        records, as it could lose the last change before any save. Leaving writes what
        waits."""
        self._every = every
        try:
            yield
        finally:
            with self._lock:
                self._every = None
                if self._due is not None:
                    self._due.cancel()
                    self._due = None
                    self._write()

    def _write_due(self) -> None:
        with self._lock:
            if self._due is None:  # written meanwhile
                return
            self._due = None
            with contextlib.suppress(DiskFull):  # kept in memory: the next save tells
                self._write()

    def _save(self, task_id: str | None, durable: bool, now: bool) -> None:
        """On a full disk the change stays in memory for the next save to write, and the
        task is told once (the step under way fails); recording that failure then works."""
        if self._every is not None and not now:
            if self._due is None:
                self._due = threading.Timer(self._every, self._write_due)
                self._due.daemon = True
                self._due.start()
            return
        if self._due is not None:
            self._due.cancel()
            self._due = None
        try:
            self._write(durable)
        except DiskFull:
            if task_id is None or task_id not in self._told_full:
                if task_id is not None:
                    self._told_full.add(task_id)
                raise
            return
        self._told_full.clear()

    def _changed(self, task_id: str | None) -> None:
        if task_id is None:
            self._encoded.clear()
        else:
            self._encoded.pop(task_id, None)

    def _write(self, durable: bool = False) -> None:
        """Replace the records atomically (a rename: a killed process leaves the old or
        the new file). Only `durable` saves fsync: an fsync while worktrees are being
        checked out waits for all of their writes, which made preparing 8 worktrees
        up to 1.5x slower than git alone. Only the tasks that changed since the last save
        are encoded again: encoding every task at every save grew with the plan."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, records_json(self.record, self._encoded), durable=durable)

    # ------------------------------------------------------------ the run as a whole

    def set_base(self, commit: str | None) -> None:
        """The commit every task of the run starts from (None: forget it, for `clean`)."""
        with self._edit(None) as run:
            run.base_commit = commit
            run.started = time.time() if commit else None

    def forget(self, task_id: str) -> None:
        """Drop a task's records and logs."""
        with self._edit(None):
            self.record.tasks.pop(task_id, None)
            self._forget_logs(task_id)

    def lock(self) -> RunLock:
        return RunLock(self.root / "lock", self.record.plan)


def records_json(record: RunRecord, encoded: dict[str, str] | None = None) -> str:
    """The records as `state.json` holds them (before `write_atomic` masks secrets): the
    text `json.dumps(..., sort_keys=True)` gives. `encoded` keeps each task's JSON between
    calls; the caller drops a task's entry when its record changes."""
    cache = {} if encoded is None else encoded
    tasks = dict(record.tasks)
    for tid, task in tasks.items():
        if tid not in cache:
            # vars(), not dataclasses.asdict (a deep copy), and no indent, which would leave
            # json's C encoder.
            cache[tid] = json.dumps(vars(task), sort_keys=True)
    for gone in set(cache) - set(tasks):
        del cache[gone]
    body = ", ".join(f"{json.dumps(tid)}: {cache[tid]}" for tid in sorted(tasks))
    head = json.dumps(
        {"base_commit": record.base_commit, "plan": record.plan, "started": record.started}
    )
    return f'{head[:-1]}, "tasks": {{{body}}}}}\n'


def read_records(path: Path) -> RunRecord:
    """Records written by another machine (a fan-out job), as they are on disk."""
    return parse_records(path.read_text(encoding="utf-8"))


def parse_records(text: str) -> RunRecord:
    """Records from the text of a `state.json`; ValueError, TypeError or AttributeError when
    it is not one."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    tasks = {tid: TaskRecord.from_json(t) for tid, t in data.get("tasks", {}).items()}
    return RunRecord(str(data.get("plan")), data.get("base_commit"), data.get("started"), tasks)


def write_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """Replace `path` with `text`, secrets masked, by a rename: the file holds the old or
    the new text, whatever happens. A full disk is a `DiskFull`, the old text kept."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as e:
        if DiskFull.caused(e):
            raise DiskFull(path) from e
        raise
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(redact.text(text))
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and DiskFull.caused(e):
            raise DiskFull(path) from e
        raise


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
