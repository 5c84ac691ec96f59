"""One task's run: its stages in order, each skipped when the records say it is done, and
each recorded the same way, failure or success.

    worktree -> setup -> instructions -> agent -> commit -> scope -> verify -> final check

Each stage is one function of a module of its own (`worktrees`, `steps`, `instructions`,
`agents.launch`, `commit`); the functions below only hand them what they need and tell
the records what they found.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from . import (
    agents,
    followups,
    inputs,
    instructions,
    redact,
    render,
    report,
    steps,
    tasklock,
    worktrees,
)
from .agents.launch import AgentFailed, launch
from .commit import ScopeViolation, check_scope, commit_leftovers, owned_by, resolve_head
from .errors import DiskFull, WtrunError
from .git import Git
from .plan import Plan, Task, base_branch, task_context
from .sandbox import NO_SANDBOX, Sandbox, writable_paths
from .sandbox import Mode as SandboxMode
from .sandbox import choose as choose_sandbox
from .state import Step, Store, TaskRecord, TaskState
from .tasklock import TaskLock
from .workspace import Workspace, workspace


class Spend:
    """What the run's agents reported spending; they finish on several threads."""

    def __init__(self, already: float = 0.0) -> None:
        self._lock = threading.Lock()
        self.total = already

    def add(self, cost: float) -> None:
        with self._lock:
            self.total += cost


@dataclass
class Session:
    """What the tasks of one `wtrun run` (or `prepare`) share."""

    plan: Plan
    git: Git
    store: Store
    reporter: report.Reporter
    base_commit: str
    ports: dict[str, list[int]]
    common_dir: Path
    prepare_only: bool = False
    global_excludes: str = ""
    existing_worktrees: dict[Path, str | None] = field(default_factory=dict)
    identity: dict[str, str] | None = None  # for commits, when git has none configured
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)  # agent.sandbox -> sandbox
    spend: Spend = field(default_factory=Spend)
    stopping: threading.Event = field(default_factory=threading.Event)

    def workspace(self, task: Task) -> Workspace:
        return workspace(self.plan, task, self.git.root, self.ports.get(task.id, []))


class StageFailed(WtrunError):
    """A stage of one task failed: the task ends failed, the run goes on."""

    def __init__(self, step: Step, reason: str) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason


@dataclass
class Job:
    """One task in one session."""

    session: Session
    task: Task
    ws: Workspace
    preset: agents.Preset
    env: dict[str, str]
    lock: TaskLock
    prompt: str = ""  # what the agent is asked this time: the task's prompt, or a follow-up
    resume: str | None = None  # the CLI session to continue, when there is one

    @property
    def record(self) -> TaskRecord:
        return self.session.store.task(self.task.id)

    def say(self, message: str, **fields: Any) -> None:
        self.session.reporter.event(self.task.id, "task", message, **fields)

    @property
    def sandbox(self) -> Sandbox:
        return self.session.sandboxes.get(self.task.agent.sandbox, NO_SANDBOX)

    @functools.cached_property
    def writable(self) -> list[Path]:
        """What code the agent controls may write, in the sandbox (once the worktree is made)."""
        return writable_paths(
            self.session.common_dir,
            worktrees.worktree_git_dir(self.ws.worktree),
            self.ws.worktree,
            self.preset.state_paths(self.env),
            self.preset.state_dirs(self.env),
        )

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """`argv` in the task's sandbox: the agent, setup `run` steps and verify steps."""
        if self.sandbox.kind == "none":
            return list(argv)
        return self.sandbox.wrap(argv, cwd=self.ws.worktree, writable=self.writable, env=self.env)

    def owned(self, path: str) -> bool:
        """The agent CLI's own file (its instructions, its bookkeeping): never committed."""
        return owned_by(self.preset)(path)


# ---------------------------------------------------------------- the stages


def _worktree(job: Job) -> None:
    git, ws, record = job.session.git, job.ws, job.record
    start = _start_commit(job)
    created = worktrees.add(
        git,
        path=ws.worktree,
        branch=ws.branch,
        start=start,
        ours=record.created_branch,
        existing=job.session.existing_worktrees,
    )
    worktrees.hide(ws.worktree, _hidden_paths(job), job.session.global_excludes)
    job.session.store.started_from(job.task.id, start, created_branch=created)


def _setup(job: Job) -> None:
    log = job.session.store.log_path(job.task.id, "setup")
    failure = steps.run_setup(
        job.session.git, job.ws.worktree, job.task.setup, job.env, log, job.wrap
    )
    if failure:
        raise WtrunError(failure.message, failure.position)
    if not job.task.setup:
        return  # nothing ran that could make files (a listing of a large worktree is not free)
    # What setup made and git does not ignore (a virtualenv, a build folder) is the
    # worktree's, not the agent's: hidden like copied files, never committed or blamed.
    made = job.session.git(
        "ls-files", "--others", "--exclude-standard", "--directory", "-z", cwd=job.ws.worktree
    )
    paths = ["/" + p.rstrip("/") for p in made.split("\0") if p]
    if paths:
        worktrees.hide_more(job.ws.worktree, paths)
        job.say(f"setup made {', '.join(p[1:] for p in paths[:5])}: kept out of the task's commits")


def _instructions(job: Job) -> None:
    plan, ws = job.session.plan, job.ws
    text = render.instructions(
        plan,
        job.task,
        ports=ws.ports,
        worktree=str(ws.worktree),
        branch=ws.branch,
        base_ref=base_branch(plan, job.task),
    )
    instructions.write(job.session.git, ws, job.preset, text)


def _agent(job: Job) -> None:
    session, tid = job.session, job.task.id
    if session.stopping.is_set():
        raise WtrunError("the run is stopping")
    run = agents.AgentRun(
        plan=session.plan,
        task=job.task,
        prompt=job.prompt or job.task.prompt,
        worktree=job.ws.worktree,
        instructions=job.ws.instructions,
        env=job.env,
        sandboxed=job.sandbox.kind != "none",
        resume=job.resume,
        budget_usd=_budget_left(job),
    )
    attempt = session.store.agent_started(tid, job.sandbox.kind)
    try:
        launched = launch(
            run,
            job.env,
            session.store.log_path(tid, "agent"),
            attempt=attempt,
            wrap=job.wrap,
            started=job.lock.agent_started,
        )
    except AgentFailed as e:
        if e.result is not None:
            _spent(job, run.prompt, e.result)
        raise
    finally:
        job.lock.agent_ended()
    cost = _spent(job, run.prompt, launched.result)
    job.say(
        f"agent finished in {launched.seconds:.1f}s"
        + (f", ${cost:.2f}" if cost is not None else ""),
        cost_usd=cost,
    )


def _commit(job: Job) -> TaskState | None:
    session, ws, tid = job.session, job.ws, job.task.id
    context = task_context(
        session.plan, job.task, ports=ws.ports, worktree=str(ws.worktree), branch=ws.branch
    )
    message = render.commit_message(session.plan, context)
    head, restored = commit_leftovers(
        session.git, ws.worktree, message, job.owned, session.identity
    )
    if restored:
        job.say(f"restored the agent's own files: {', '.join(restored)}")
    if head == job.record.start_commit:
        branch = ws.branch if job.record.created_branch else None
        worktrees.remove(session.git, ws.worktree, branch, force=True)
        session.store.committed(tid, None)
        return TaskState.NO_CHANGES
    session.store.committed(tid, head)
    return None


def _scope(job: Job) -> None:
    """The scope of every commit of the task; again after verify, on the one commit that
    will be pushed (verify runs code the agent wrote)."""
    start = job.record.start_commit
    assert start is not None
    plan, store, git = job.session.plan, job.session.store, job.session.git
    head = resolve_head(git, job.ws.worktree, job.ws.branch, start)
    try:
        files = check_scope(
            git,
            job.ws.worktree,
            head,
            start,
            job.task.scope,
            plan.shared,
            job.owned,
            job.ws.branch,
        )
    except ScopeViolation as e:
        store.scoped(job.task.id, e.files)
        raise
    store.scoped(job.task.id, files)
    store.committed(job.task.id, head)


def _verify(job: Job) -> None:
    store = job.session.store
    log = store.log_path(job.task.id, "verify")
    results, failure = steps.run_verify(job.task.verify, job.ws.worktree, job.env, log, job.wrap)
    store.verified(job.task.id, results)
    if failure:
        raise WtrunError(failure.message, failure.position)


@dataclass(frozen=True)
class Stage:
    step: Step
    run: Callable[[Job], TaskState | None]
    # Whether its outcome is saved at once. Quick stages that are safe to repeat are
    # saved with the next record that is (a save while other worktrees are being
    # checked out competes with their writes).
    save: Callable[[Job], bool]


STAGES = (
    Stage(Step.WORKTREE, _worktree, lambda job: True),
    Stage(Step.SETUP, _setup, lambda job: bool(job.task.setup)),
    Stage(Step.INSTRUCTIONS, _instructions, lambda job: False),
    Stage(Step.AGENT, _agent, lambda job: True),
    Stage(Step.COMMIT, _commit, lambda job: True),
    Stage(Step.SCOPE, _scope, lambda job: True),
    Stage(Step.VERIFY, _verify, lambda job: True),
    Stage(Step.FINAL, _scope, lambda job: True),
)
PREPARED_AFTER = Step.INSTRUCTIONS


def run_stages(job: Job) -> TaskState:
    """Run the task's remaining stages; returns the state it ends in. A stage whose inputs
    changed since it ran is redone, with those after it; a verify failure goes back to the
    agent while the task has attempts and budget left."""
    _recover_lost_worktree(job)
    _replan(job)
    _claim(job)
    while True:
        try:
            return _stages(job)
        except StageFailed as e:
            if not _another_attempt(job, e):
                raise


def _stages(job: Job) -> TaskState:
    for stage in STAGES:
        if job.record.done(stage.step):
            pass
        elif (outcome := _run_stage(job, stage)) is not None:
            return outcome
        if job.session.prepare_only and stage.step is PREPARED_AFTER:
            return TaskState.PREPARED
    return TaskState.READY


def _another_attempt(job: Job, failure: StageFailed) -> bool:
    """After a verify failure: the agent again, in the same worktree, told what failed."""
    record, spec = job.record, job.task.agent
    left = _budget_left(job)
    if failure.step is not Step.VERIFY or record.attempts >= spec.attempts:
        return False
    if (left is not None and left <= 0) or job.session.stopping.is_set():
        return False
    job.prompt = followups.after_verify(job.task, failure.reason)
    job.resume = job.preset.session(record.agent)
    job.session.store.undo_steps(job.task.id, [Step.AGENT, Step.COMMIT, Step.SCOPE, Step.VERIFY])
    job.say(f"verify failed: attempt {record.attempts + 1} of {spec.attempts}, back to the agent")
    return True


def _replan(job: Job) -> None:
    """Undo the stages whose inputs changed in the plan since they ran (and those after
    them). Work that was pushed is kept: the agent follows up on top of it, told what
    changed; work that was not is kept under a backup ref, and the agent starts afresh."""
    record = job.record
    changed = [f for f in inputs.stale(job.session.plan, job.task, record.inputs) if f != "pr"]
    first = inputs.first_stage(changed)
    if first is None or not record.steps:
        return
    order = list(Step)
    redo = [s for s in order if order.index(first) <= order.index(s) < order.index(Step.PR)]
    given = [f for f in changed if f in inputs.AGENT_INPUTS]
    if given and record.done(Step.AGENT):
        if record.pushed_head:
            job.prompt = followups.after_change(job.task, given, record.prompt)
        else:
            _back_up_and_reset(job)
    job.session.store.undo_steps(job.task.id, redo)
    job.say(f"{', '.join(changed)} changed in the plan: {' -> '.join(redo)} again")


def _back_up_and_reset(job: Job) -> None:
    """Unpushed work of an agent that was given something else: kept under a ref the
    output names, and the worktree back at the task's start."""
    git, record = job.session.git, job.record
    if record.start_commit is None or record.head is None:
        return
    ref = f"refs/wtrun/backup/{job.session.plan.name}/{job.task.id}"
    git("update-ref", ref, record.head)
    git("reset", "--quiet", "--hard", record.start_commit, cwd=job.ws.worktree)
    job.session.store.committed(job.task.id, record.start_commit)
    job.say(f"its earlier work is kept at {ref} ({record.head[:12]}); the agent starts afresh")


def _run_stage(job: Job, stage: Stage) -> TaskState | None:
    store, tid = job.session.store, job.task.id
    if job.session.stopping.is_set():
        raise StageFailed(stage.step, "interrupted")
    started = time.time()
    store.begin_step(tid, stage.step)
    job.say(f"{stage.step}...", state=TaskState.RUNNING.value, step=stage.step.value)
    try:
        outcome = stage.run(job)
    except WtrunError as e:
        store.end_step(tid, stage.step, ok=False, started=started)
        # The plan's line leads the reason: it is what to look at, or to change.
        where = f"{e.position}: " if e.position else ""
        raise StageFailed(stage.step, f"{where}{e}") from e
    store.end_step(tid, stage.step, ok=True, started=started, save=stage.save(job))
    return outcome


# ---------------------------------------------------------------- before the stages


def _claim(job: Job) -> None:
    session, ws = job.session, job.ws
    new = not job.record.done(Step.WORKTREE)
    session.store.claim(
        job.task.id,
        branch=ws.branch,
        worktree=str(ws.worktree),
        ports=list(ws.ports),
        inputs=inputs.fingerprints(session.plan, job.task),
        created_branch=new and not session.git.branch_exists(ws.branch),
        created_worktree=new and ws.worktree.resolve() not in session.existing_worktrees,
    )


def _start_commit(job: Job) -> str:
    record = job.record
    if record.start_commit:
        return record.start_commit
    if job.task.after is None:
        return job.session.base_commit
    parent = job.session.store.get(job.task.after)
    if parent is None or parent.head is None:
        raise WtrunError(f'parent task "{job.task.after}" has no commit yet')
    return parent.head


def _recover_lost_worktree(job: Job) -> None:
    """The records say the worktree was made, but it is gone (removed by hand, or a fresh
    clone with restored records, as in CI): make it again from the branch. Work that was
    only in the worktree (not committed yet) is gone, so those stages run again."""
    record, ws, git = job.record, job.ws, job.session.git
    if not record.done(Step.WORKTREE) or ws.worktree.exists():
        return
    lost = [Step.WORKTREE, Step.SETUP, Step.INSTRUCTIONS]
    if not record.done(Step.COMMIT):
        lost.append(Step.AGENT)
    elif not git.branch_exists(ws.branch):
        remote = job.session.plan.remote
        remote_ref = f"refs/remotes/{remote}/{ws.branch}"
        git.run("fetch", "--quiet", remote, f"+refs/heads/{ws.branch}:{remote_ref}", check=False)
        sha = git.rev_parse(remote_ref)
        if sha is None or sha != record.head:
            raise StageFailed(
                Step.WORKTREE,
                f"the worktree and branch {ws.branch} of this task are gone and the remote has "
                f"{'no such branch' if sha is None else 'another head'}; run again with "
                f"--restart {job.task.id} to start it afresh",
            )
        git("branch", ws.branch, sha)
    job.session.store.undo_steps(job.task.id, lost)
    job.say(f"worktree {ws.worktree} is gone; making it again from {ws.branch}")


def _hidden_paths(job: Job) -> list[str]:
    """Paths ignored in the task's worktree only: the instructions file, the agent's own
    files, and what setup copies or links in (a symlinked `node_modules` does not match
    the usual `node_modules/` ignore rule, and a copied `.env` must never be committed)."""
    paths = [job.preset.instructions_file, *job.preset.owned_paths]
    paths += [p for step in job.task.setup if step.kind in ("copy", "link") for p in step.paths]
    return ["/" + p.strip("/") for p in paths]


def _spent(job: Job, prompt: str, result: agents.AgentResult) -> float | None:
    cost = result.cost_usd
    if cost is not None:
        job.session.spend.add(cost)
    job.session.store.agent_ran(job.task.id, prompt, cost, dict(result.details))
    return cost


def _budget_left(job: Job) -> float | None:
    """What the task may still spend: its attempts and follow-ups share its budget."""
    budget = job.task.agent.budget_usd
    return None if budget is None else max(budget - (job.record.cost_usd or 0.0), 0.0)


# ---------------------------------------------------------------- a follow-up on finished work


@contextlib.contextmanager
def follow_up_job(plan: Plan, git: Git, store: Store, task: Task) -> Iterator[Job]:
    """A finished task's job for a follow-up (`wtrun revise`), its lock held: its sandbox,
    environment and worktree, made again from its branch when it is gone (a fresh clone,
    as in CI) with its setup run and its instructions written as the run did."""
    sandbox, warning = choose_sandbox(cast(SandboxMode, task.agent.sandbox))
    if warning:
        print(f"wtrun: {warning}", file=sys.stderr, flush=True)
    record = store.task(task.id)
    assert record.start_commit is not None
    session = Session(
        plan=plan,
        git=git,
        store=store,
        reporter=report.Reporter(),
        base_commit=record.start_commit,
        ports={task.id: record.ports},
        common_dir=git.common_dir(),
        sandboxes={task.agent.sandbox: sandbox},
    )
    ws = session.workspace(task)
    with tasklock.hold(session.common_dir, ws.worktree, task.id) as lock:
        job = Job(session, task, ws, agents.get(task.agent.preset), ws.env(), lock)
        if not ws.worktree.is_dir():
            _make_again(job)
        yield job


def _make_again(job: Job) -> None:
    session, git = job.session, job.session.git
    worktrees.exclude_folder(git, session.plan.worktrees)
    worktrees.enable_worktree_config(git)
    session.existing_worktrees = worktrees.snapshot(git)
    session.global_excludes = worktrees.global_excludes(git)
    _recover_lost_worktree(job)
    record, ws = job.record, job.ws
    session.store.claim(
        job.task.id,
        branch=ws.branch,
        worktree=str(ws.worktree),
        ports=list(ws.ports),
        inputs=record.inputs,  # what the task's work was made from: unchanged
        created_branch=False,
        created_worktree=True,
    )
    for stage in STAGES:
        if stage.step in (Step.WORKTREE, Step.SETUP, Step.INSTRUCTIONS):
            started = time.time()
            stage.run(job)
            session.store.end_step(job.task.id, stage.step, ok=True, started=started)


# ---------------------------------------------------------------- one task, whole


def run_task(session: Session, task: Task) -> TaskState:
    """Run one task's stages and record how it ended; a bug in one task never takes the
    others down."""
    store, tid = session.store, task.id
    store.set_state(tid, TaskState.RUNNING, save=False)
    ws = session.workspace(task)
    try:
        with tasklock.hold(session.common_dir, ws.worktree, tid) as lock:
            job = Job(session, task, ws, agents.get(task.agent.preset), ws.env(), lock)
            state = run_stages(job)
    except StageFailed as e:
        reason = f"interrupted during {e.step}" if session.stopping.is_set() else e.reason
        return _ended(session, tid, TaskState.FAILED, reason, f"failed at {e.step}: {reason}")
    except WtrunError as e:
        return _ended(session, tid, TaskState.FAILED, str(e), f"failed: {e}")
    except Exception as e:
        if isinstance(e, OSError) and DiskFull.caused(e):
            full = str(DiskFull(e.filename or "a file"))
            return _ended(session, tid, TaskState.FAILED, full, f"failed: {full}")
        log = store.log_path(tid, "wtrun-error")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(redact.text(traceback.format_exc()), encoding="utf-8")
        reason = redact.text(f"internal error ({e!r}); details in {log}")
        return _ended(session, tid, TaskState.FAILED, reason, f"internal error; details in {log}")
    if state is TaskState.NO_CHANGES:
        message = "no changes: worktree and branch removed"
        return _ended(session, tid, state, "the agent made no changes", message)
    if state is TaskState.PREPARED:
        return _ended(session, tid, state, None, f"prepared in {ws.worktree}")
    checks = "verified" if task.verify else "no verify steps"
    return _ended(session, tid, state, None, f"ready (committed, in scope, {checks})")


def _ended(
    session: Session, tid: str, state: TaskState, reason: str | None, message: str
) -> TaskState:
    session.store.set_state(tid, state, reason)
    session.reporter.event(tid, "task", message, state=state.value)
    return state
