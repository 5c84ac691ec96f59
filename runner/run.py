"""`wtrun run` and `wtrun prepare`: the whole run of a plan.

    validate -> schedule -> (per task: the stages of `pipeline`) -> push -> PR -> report

The records say which stages each task has done, so running the same plan again
resumes: done stages are skipped, a failed task starts again from the stage that failed.
"""

from __future__ import annotations

import concurrent.futures
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from . import dryrun, inputs, ports, proc, report, schedule, worktrees
from .errors import UsageError, WtrunError
from .git import Git, find_repo, resolve_base
from .pipeline import Session, Spend, run_task
from .plan import Plan, graph
from .preflight import preflight
from .sandbox import Mode as SandboxMode
from .sandbox import Sandbox
from .sandbox import choose as choose_sandbox
from .state import Store, TaskState
from .workspace import check_records, workspace


@dataclass(frozen=True)
class Options:
    task_ids: tuple[str, ...] = ()
    stacks: tuple[str, ...] = ()
    dry_run: bool = False
    max_parallel: int | None = None
    no_pr: bool = False
    json: bool = False
    restart: tuple[str, ...] = ()
    prepare_only: bool = False


def select(plan: Plan, options: Options) -> list[str]:
    """The tasks this invocation works on, in plan order. Every flag naming a task is
    checked here, before anything is written."""
    from .plan import task_by_id

    if options.task_ids and options.stacks:
        raise UsageError("use either --task or --stack, not both")
    if options.max_parallel is not None and options.max_parallel < 1:
        raise UsageError(f"--max-parallel must be at least 1, not {options.max_parallel}")
    if options.stacks:
        wanted = [s.strip() for group in options.stacks for s in group.split(",") if s.strip()]
        if not wanted:
            raise UsageError("--stack needs at least one root task id (ROOT[,ROOT...])")
        chosen = task_by_id(plan, wanted)
        for task in chosen:
            if task.after is not None:
                raise UsageError(
                    f'--stack takes root tasks; "{task.id}" comes after "{task.after}" '
                    f"(its root is {graph.root_of(plan, task.id)})"
                )
        selected = graph.descendants(plan, [t.id for t in chosen])
    elif options.task_ids:
        chosen_ids = {t.id for t in task_by_id(plan, options.task_ids)}
        selected = [t.id for t in plan.tasks if t.id in chosen_ids]
    else:
        selected = [t.id for t in plan.tasks]
    task_by_id(plan, options.restart)
    for tid in options.restart:
        if tid not in selected:
            raise UsageError(
                f"--restart {tid}: that task is not part of this run; add --task {tid}"
            )
    return selected


def _identity(git: Git) -> dict[str, str] | None:
    if git("config", "user.email", check=False).strip():
        return None
    return {
        "GIT_AUTHOR_NAME": "wtrun",
        "GIT_AUTHOR_EMAIL": "wtrun@localhost",
        "GIT_COMMITTER_NAME": "wtrun",
        "GIT_COMMITTER_EMAIL": "wtrun@localhost",
    }


# ---------------------------------------------------------------- the run


def run(plan_path: str, options: Options) -> int:
    from .plan import load

    plan = load(plan_path)
    selected = select(plan, options)
    git = find_repo(Path.cwd())
    if options.dry_run:
        return dryrun.preview(plan, git, selected, options)
    preflight(plan, git, selected, agents_needed=not options.prepare_only)
    store = Store(git.common_dir(), plan.name)
    with store.lock():
        store.reload()
        check_records(plan, git.root, store.record.tasks)
        return _run_locked(plan, git, store, selected, options)


def _run_locked(plan: Plan, git: Git, store: Store, selected: list[str], options: Options) -> int:
    _restart(plan, git, store, options.restart)
    _check_changed(plan, store, selected)
    if store.record.base_commit is None:
        store.set_base(resolve_base(git, plan.remote, plan.base, fetch=True))
    base_commit = store.record.base_commit
    assert base_commit is not None
    if git.rev_parse(base_commit) is None:
        raise WtrunError(
            f"the run's recorded base commit {base_commit[:12]} is gone from the "
            "repository; run `wtrun clean PLAN` to start the plan afresh"
        )
    sandboxes = _sandboxes(plan, selected)
    recorded_ports = {tid: t.ports for tid, t in store.record.tasks.items() if t.ports}
    session = Session(
        plan=plan,
        git=git,
        store=store,
        reporter=report.choose(selected, options.json),
        base_commit=base_commit,
        ports=ports.allocate(plan, recorded_ports, selected),
        common_dir=git.common_dir(),
        prepare_only=options.prepare_only,
        global_excludes=worktrees.global_excludes(git),
        spend=Spend(sum(t.cost_usd or 0.0 for t in store.record.tasks.values())),
        sandboxes=sandboxes,
    )
    worktrees.exclude_folder(git, plan.worktrees)
    worktrees.enable_worktree_config(git)
    session.existing_worktrees = worktrees.snapshot(git)
    session.identity = _identity(git)
    makes_prs = not options.prepare_only and not options.no_pr
    provider = None
    if makes_prs:
        from .prs import ready_provider

        # Before any agent spends money: is the repository known, is gh logged in?
        provider = ready_provider(plan, git, store)
    try:
        with _signals_interrupt(), store.batched():
            _schedule(session, selected, options.max_parallel or plan.max_parallel)
            if makes_prs:
                from .prs import open_prs

                open_prs(plan, git, store, selected, session.reporter, provider)
    except KeyboardInterrupt:
        return _interrupted(session, selected)
    session.reporter.close()
    store.save(durable=True)
    report.finish(session.reporter, store.record, selected, plan.budget_usd)
    if not options.prepare_only:
        from .drift import after_run

        after_run(plan, git, store, session.reporter)
    finished = {TaskState.READY, TaskState.DONE, TaskState.NO_CHANGES, TaskState.PREPARED}
    if options.prepare_only:
        finished.add(TaskState.PENDING)  # a stacked task waiting for its parent's agent
    return 0 if all(store.task(t).state in finished for t in selected) else 1


def _sandboxes(plan: Plan, selected: Sequence[str]) -> dict[str, Sandbox]:
    """The sandbox for each `agent.sandbox` the run's tasks ask for; refused before anything
    runs when one insists on bubblewrap and it does not work here, a warning once when
    `auto` finds none."""
    chosen = {}
    for mode in sorted({plan.task(t).agent.sandbox for t in selected}):
        chosen[mode], warning = choose_sandbox(cast(SandboxMode, mode))
        if warning:
            print(f"wtrun: {warning}", file=sys.stderr, flush=True)
    return chosen


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM (CI cancelling a job) and SIGHUP (the terminal closed) stop a run as ^C does."""
    stops = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in stops}
    for sig in stops:
        signal.signal(sig, _raise_interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted(session: Session, selected: Sequence[str]) -> int:
    session.stopping.set()
    proc.RUNNING.terminate_all()
    for tid in selected:
        r = session.store.get(tid)
        if r is not None and r.state is TaskState.RUNNING:
            session.store.set_state(tid, TaskState.FAILED, f"interrupted during {r.step}")
    session.reporter.close()
    print("wtrun: interrupted; run the same command again to resume", file=sys.stderr, flush=True)
    return 130


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _check_changed(plan: Plan, store: Store, selected: Sequence[str]) -> None:
    """A task that now builds on another task (or on none) cannot follow up on its work:
    the only change a rerun cannot act on."""
    moved = []
    for tid in selected:
        r = store.get(tid)
        if r is not None and r.steps and "after" in inputs.stale(plan, plan.task(tid), r.inputs):
            moved.append(tid)
    if moved:
        flags = " ".join(f"--restart {t}" for t in moved)
        raise WtrunError(
            f"`after` of task{'s' if len(moved) > 1 else ''} {', '.join(moved)} changed in the "
            "plan since they ran: their work started from another commit. Run again with "
            f"{flags} to discard it and start over"
        )


def _restart(plan: Plan, git: Git, store: Store, task_ids: Sequence[str]) -> None:
    """Discard the tasks' worktrees, branches and records, all or none: every refusal is
    found before anything is removed. Names come from the plan, never from the records."""
    for tid in task_ids:
        r = store.get(tid)
        if r is not None and r.pushed_head:
            _still_under_review(plan, git, store, tid)
    for tid in task_ids:
        r = store.get(tid)
        if r is None:
            continue
        ws = workspace(plan, plan.task(tid), git.root, ())
        if r.worktree and ws.worktree.exists():
            git("worktree", "remove", "--force", str(ws.worktree))
        if r.created_branch and git.branch_exists(ws.branch):
            git("branch", "-D", ws.branch)
        git("worktree", "prune")
        store.forget(tid)


def _still_under_review(plan: Plan, git: Git, store: Store, tid: str) -> None:
    """Pushed work is discarded only once nothing of it is under review any more: its
    remote branch gone and its PR closed. Otherwise: the exact commands to get there."""
    r = store.task(tid)
    branch = workspace(plan, plan.task(tid), git.root, ()).branch
    remote = git.run("ls-remote", "--heads", plan.remote, f"refs/heads/{branch}", check=False)
    steps = []
    if r.pr_number is not None and plan.pr.provider != "none":
        from .forge import make

        status = make(plan, git, store.root).pr_status(tid, r.pr_number)
        if status is not None and status.state == "open":
            close = (
                f"gh pr close {r.pr_number}"
                if plan.pr.provider == "github"
                else f"wtrun pr {plan.path} --closed {tid}"
            )
            steps.append(f"close its PR #{r.pr_number} (`{close}`)")
    if remote.stdout.strip():
        steps.append(f"delete its remote branch (`git push {plan.remote} --delete {branch}`)")
    if steps:
        raise WtrunError(
            f'task "{tid}" was pushed and is under review; --restart would lose that work. '
            f"To discard it, {' and '.join(steps)}, then run again with --restart {tid}; or "
            "edit its prompt instead: the agent then follows up on the pushed work"
        )


class _Waves:
    """Tasks started as the `after` forest and `max_parallel` allow; a child starts once its
    parent is ready, and is blocked (with the reason) when it cannot be."""

    def __init__(self, session: Session, selected: Sequence[str], parallel: int) -> None:
        self.session = session
        self.chosen = frozenset(selected)
        self.order = schedule.Scheduler(session.plan, parallel, only=self.chosen)
        self.running: dict[concurrent.futures.Future[TaskState], str] = {}

    def roots(self, selected: Sequence[str]) -> list[str]:
        """The tasks that may start now: no parent in this run, or one that is ready."""
        starts = []
        for tid in selected:
            parent = self.session.plan.task(tid).after
            if parent is None or parent not in self.chosen:
                if parent is not None and not self._has_work(parent):
                    self.block(tid, f'task "{parent}" it builds on is not ready; run it first')
                    continue
                starts.append(tid)
        return starts

    def _has_work(self, tid: str) -> bool:
        r = self.session.store.get(tid)
        return r is not None and r.state.has_work and r.head is not None

    def block(self, tid: str, reason: str) -> None:
        store, plan = self.session.store, self.session.plan
        for d in graph.descendants(plan, [tid]):
            if d in self.chosen and store.task(d).state is not TaskState.DONE:
                why = reason if d == tid else f'task "{tid}" it builds on is blocked'
                store.set_state(d, TaskState.BLOCKED, why)
                self.session.reporter.event(d, "task", f"blocked: {why}", state="blocked")

    def wait_for_parent(self, tid: str, parent: str) -> None:
        """`wtrun prepare`: a stacked task starts from its parent's commit, which only the
        parent's agent makes. Nothing failed: it waits."""
        for d in graph.descendants(self.session.plan, [tid]):
            why = f'waits for task "{parent}": its agent has not run yet (`wtrun run` runs both)'
            self.session.store.set_state(d, TaskState.PENDING, why)
            self.session.reporter.event(d, "task", why, state="pending")

    def start(self, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        session, store, plan = self.session, self.session.store, self.session.plan
        finished = {TaskState.DONE, TaskState.READY, TaskState.NO_CHANGES}
        if session.prepare_only:
            finished.add(TaskState.PREPARED)
        for tid in self.order.start():
            record = store.task(tid)
            changed = inputs.stale(plan, plan.task(tid), record.inputs)
            if record.state in finished and not changed:
                session.reporter.event(tid, "task", f"already {record.state}", state=record.state)
                self.running[_done(record.state)] = tid
            elif plan.budget_usd is not None and session.spend.total >= plan.budget_usd:
                store.set_state(
                    tid,
                    TaskState.SKIPPED,
                    f"the run's budget ${plan.budget_usd:.2f} was spent "
                    f"(${session.spend.total:.2f}) before it started",
                )
                session.reporter.event(tid, "task", "skipped: budget spent", state="skipped")
                self.running[_done(TaskState.SKIPPED)] = tid
            else:
                self.running[pool.submit(run_task, session, plan.task(tid))] = tid

    def finished(self, tid: str, state: TaskState) -> None:
        self.order.finish(tid)
        kids = self.order.children_of(tid)
        if state.has_work and self.session.store.task(tid).head:
            self.order.push(kids)
            return
        for kid in kids:
            if state is TaskState.PREPARED:
                self.wait_for_parent(kid, tid)
                continue
            why = {
                TaskState.NO_CHANGES: "made no changes",
                TaskState.SKIPPED: "was skipped",
            }.get(state, str(state))
            self.block(kid, f'task "{tid}" it builds on {why}')


def _schedule(session: Session, selected: list[str], parallel: int) -> None:
    waves = _Waves(session, selected, parallel)
    waves.order.push(waves.roots(selected))
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool,
        _stop_on_interrupt(session, waves.running),
    ):
        while True:
            waves.start(pool)
            if not waves.running:
                break
            done, _ = concurrent.futures.wait(waves.running, return_when="FIRST_COMPLETED")
            for future in done:
                waves.finished(waves.running.pop(future), future.result())


@contextmanager
def _stop_on_interrupt(
    session: Session, running: dict[concurrent.futures.Future[TaskState], str]
) -> Iterator[None]:
    """On ^C or SIGTERM, stop the tasks' process groups first: leaving the pool waits for
    its threads, and they wait for their processes."""
    try:
        yield
    except BaseException:
        session.stopping.set()
        for future in running:
            future.cancel()  # not started yet: it never will
        while not all(f.done() for f in running):
            proc.RUNNING.terminate_all()
            concurrent.futures.wait(running, timeout=0.2)
        raise


def _done(state: TaskState) -> concurrent.futures.Future[TaskState]:
    f: concurrent.futures.Future[TaskState] = concurrent.futures.Future()
    f.set_result(state)
    return f
