"""The run: validate -> schedule -> worktree -> setup -> instructions -> agent -> commit
-> scope check -> verify -> push -> PR.

Each step's outcome goes into the records as soon as it is known, so running the same
plan again resumes: steps recorded "ok" are skipped, a failed task starts again from
the step that failed.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import agents, ports, proc, render, report, schedule, scopes, steps, worktrees
from .context import base_branch, branch_of, task_context
from .errors import UsageError, WtrunError
from .git import Git, find_repo, resolve_base
from .model import Plan, Task
from .state import Step, Store, TaskRecord, TaskState

# Steps in order; a task's record says which of them are done.
STEPS = ("worktree", "setup", "instructions", "agent", "commit", "scope", "verify")
FINISHED = ("ready", "done", "no-changes", "prepared")
GITHUB_TOKENS = ("GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN")


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


class TaskFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason


def fingerprint(plan: Plan, task: Task) -> str:
    """What the task's work depends on; a change means old work does not fit any more."""
    data = {
        "prompt": task.prompt,
        "scope": task.scope,
        "after": task.after,
        "agent": asdict(task.agent),
        "setup": [asdict(s) | {"line": 0} for s in task.setup],
        "verify": [asdict(s) | {"line": 0} for s in task.verify],
        "env": task.env,
        "conventions": plan.conventions,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def select(plan: Plan, options: Options) -> list[str]:
    """The tasks this invocation works on, in plan order."""
    from .plan import task_by_id

    if options.task_ids and options.stacks:
        raise UsageError("use either --task or --stack, not both")
    if options.stacks:
        wanted = [s.strip() for group in options.stacks for s in group.split(",") if s.strip()]
        chosen = task_by_id(plan, wanted)
        for task in chosen:
            if task.after is not None:
                raise UsageError(
                    f'--stack takes root tasks; "{task.id}" comes after "{task.after}" '
                    f"(its root is {schedule.root_of(plan, task.id)})"
                )
        return schedule.descendants(plan, [t.id for t in chosen])
    if options.task_ids:
        chosen_ids = {t.id for t in task_by_id(plan, options.task_ids)}
        return [t.id for t in plan.tasks if t.id in chosen_ids]
    return [t.id for t in plan.tasks]


@dataclass
class Context:
    """Everything the steps of one run share."""

    plan: Plan
    git: Git
    store: Store
    reporter: report.Reporter
    options: Options
    base_commit: str
    global_excludes: str
    ports: dict[str, list[int]]
    existing_worktrees: dict[Path, str | None] = field(default_factory=dict)
    identity: dict[str, str] | None = None  # for commits, when git has none configured
    spent: float = 0.0
    _spend_lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: bool = False
    selected: list[str] = field(default_factory=list)

    def worktree_path(self, task: Task) -> Path:
        return self.git.root / self.plan.worktrees / task.id

    def event(self, task: str | None, kind: str, message: str, **fields: Any) -> None:
        self.reporter.event(task, kind, message, **fields)


def _task_env(
    ctx: Context, task: Task, worktree: Path, branch: str, instructions: Path
) -> dict[str, str]:
    task_ports = ctx.ports.get(task.id, [])
    extra = {
        "COMPOSE_PROJECT_NAME": f"{ctx.plan.name}-{task.id}".replace(".", "-"),
        "WTRUN_PLAN": ctx.plan.name,
        "WTRUN_TASK_ID": task.id,
        "WTRUN_WORKTREE": str(worktree),
        "WTRUN_BRANCH": branch,
        "WTRUN_INSTRUCTIONS": str(instructions),
        "WTRUN_PORTS": ",".join(map(str, task_ports)),
    }
    if task_ports:
        extra["PORT"] = str(task_ports[0])
    extra.update(dict(task.env))
    return proc.clean_env(extra)


def _hidden_paths(preset: agents.Preset, task: Task) -> list[str]:
    """Paths ignored in the task's worktree only: the instructions file, the agent's own
    files, and what setup copies or links in (a symlinked `node_modules` does not match
    the usual `node_modules/` ignore rule, and a copied `.env` must never be committed)."""
    paths = [preset.instructions_file, *preset.owned_paths]
    paths += [p for step in task.setup if step.kind in ("copy", "link") for p in step.paths]
    return ["/" + p.strip("/") for p in paths]


class TaskRun:
    """The steps of one task, each skipped when the records say it is done."""

    def __init__(self, ctx: Context, task: Task) -> None:
        self.ctx = ctx
        self.task = task
        self.plan = ctx.plan
        self.git = ctx.git
        self.store = ctx.store
        self.record: TaskRecord = ctx.store.task(task.id)
        self.preset = agents.get(task.agent.preset)
        self.worktree = ctx.worktree_path(task)
        self.branch = branch_of(self.plan, task)
        self.instructions = self.worktree / self.preset.instructions_file
        self.env = _task_env(ctx, task, self.worktree, self.branch, self.instructions)

    def done(self, step: str) -> bool:
        return self.record.steps.get(step, {}).get("outcome") == "ok"

    def say(self, message: str, **fields: Any) -> None:
        self.ctx.event(self.task.id, "task", message, **fields)

    @contextmanager
    def step(self, name: str, *, save: bool = True) -> Iterator[None]:
        """Run one step, recording its outcome. `save=False` for quick steps that are safe
        to repeat: their outcome is written with the next record that is saved (each save
        is an fsync, which costs most while other worktrees are being checked out)."""
        if self.ctx.stopping:
            raise TaskFailed(name, "interrupted")
        started = time.time()
        self.store.begin_step(self.task.id, Step(name))
        self.say(f"{name}...", state="running", step=name)
        try:
            yield
        except TaskFailed:
            raise
        except WtrunError as e:
            self.store.end_step(self.task.id, Step(name), ok=False, started=started)
            raise TaskFailed(name, str(e)) from e
        else:
            self.store.end_step(self.task.id, Step(name), ok=True, started=started, save=save)

    def run(self) -> str:
        """Run the remaining steps; returns the final state."""
        self._recover_lost_worktree()
        start = self._start_commit()
        new = not self.done("worktree")
        self.store.claim(
            self.task.id,
            branch=self.branch,
            worktree=str(self.worktree),
            ports=self.ctx.ports.get(self.task.id, []),
            fingerprint=fingerprint(self.plan, self.task),
            created_branch=new and not self.git.branch_exists(self.branch),
            created_worktree=new and self.worktree.resolve() not in self.ctx.existing_worktrees,
        )
        if not self.done("worktree"):
            with self.step("worktree"):
                created = worktrees.add(
                    self.git,
                    path=self.worktree,
                    branch=self.branch,
                    start=start,
                    ours=self.record.created_branch,
                    existing=self.ctx.existing_worktrees,
                )
                worktrees.hide(
                    self.worktree, _hidden_paths(self.preset, self.task), self.ctx.global_excludes
                )
                self.store.started_from(self.task.id, start, created_branch=created)
        if not self.done("setup"):
            with self.step("setup", save=bool(self.task.setup)):
                failure = steps.run_setup(
                    self.git,
                    self.worktree,
                    self.task.setup,
                    self.env,
                    self.store.log_path(self.task.id, "setup"),
                )
                if failure:
                    raise TaskFailed("setup", failure.message)
        if not self.done("instructions"):
            with self.step("instructions", save=False):
                self._write_instructions()
        if self.ctx.options.prepare_only:
            return "prepared"
        if not self.done("agent"):
            with self.step("agent"):
                self._agent()
        if not self.done("commit"):
            with self.step("commit"):
                if not self._commit():
                    return "no-changes"
        if not self.done("scope"):
            with self.step("scope"):
                self._scope_check()
        if not self.done("verify"):
            with self.step("verify"):
                results, failure = steps.run_verify(
                    self.task.verify,
                    self.worktree,
                    self.env,
                    self.store.log_path(self.task.id, "verify"),
                )
                self.store.verified(self.task.id, results)
                if failure:
                    raise TaskFailed("verify", failure.message)
        return "ready"

    def _recover_lost_worktree(self) -> None:
        """The records say the worktree was made, but it is gone (removed by hand, or a
        fresh clone with restored records, as in CI): make it again from the branch. Work
        that was only in the worktree (not committed yet) is gone, so those steps run again."""
        if not self.done("worktree") or self.worktree.exists():
            return
        lost = ["worktree", "setup", "instructions"]
        if not self.done("commit"):
            lost += ["agent"]
        elif not self.git.branch_exists(self.branch):
            remote_ref = f"refs/remotes/{self.plan.remote}/{self.branch}"
            self.git.run(
                "fetch",
                "--quiet",
                self.plan.remote,
                f"+refs/heads/{self.branch}:{remote_ref}",
                check=False,
            )
            sha = self.git.rev_parse(remote_ref)
            if sha is None or sha != self.record.head:
                raise TaskFailed(
                    "worktree",
                    (
                        f"the worktree and branch {self.branch} of this task are gone and the "
                        f"remote has {'no such branch' if sha is None else 'another head'}; run "
                        f"again with --restart {self.task.id} to start it afresh"
                    ),
                )
            self.git("branch", self.branch, sha)
        self.store.undo_steps(self.task.id, [Step(s) for s in lost])
        self.say(f"worktree {self.worktree} is gone; making it again from {self.branch}")

    def _start_commit(self) -> str:
        if self.record.start_commit:
            return self.record.start_commit
        if self.task.after is None:
            return self.ctx.base_commit
        parent = self.store.record.tasks.get(self.task.after)
        if parent is None or parent.head is None:
            raise TaskFailed("worktree", f'parent task "{self.task.after}" has no commit yet')
        return parent.head

    def _write_instructions(self) -> None:
        task_ports = self.ctx.ports.get(self.task.id, [])
        base_ref = base_branch(self.plan, self.task)
        text = render.instructions(
            self.plan,
            self.task,
            ports=task_ports,
            worktree=str(self.worktree),
            branch=self.branch,
            base_ref=base_ref,
        )
        rel = self.preset.instructions_file
        target = self.instructions
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.git.tracked([rel], cwd=self.worktree):
            # Keep the tracked text, add the task's below it; git is told not to look.
            original = self.git("show", f"HEAD:{rel}", cwd=self.worktree)
            self.git("update-index", "--skip-worktree", "--", rel, cwd=self.worktree)
            text = original.rstrip("\n") + "\n\n" + text
        elif self.preset.name == "codex" and self.git.tracked(["AGENTS.md"], cwd=self.worktree):
            # AGENTS.override.md replaces AGENTS.md for Codex: carry the team's text along.
            original = (self.worktree / "AGENTS.md").read_text(encoding="utf-8")
            text = original.rstrip("\n") + "\n\n" + text
        target.write_text(text, encoding="utf-8")

    def _agent(self) -> None:
        if self.ctx.stopping:
            raise TaskFailed("agent", "the run is stopping")
        run = agents.AgentRun(
            plan=self.plan,
            task=self.task,
            prompt=self.task.prompt,
            worktree=self.worktree,
            instructions=self.instructions,
            env=self.env,
        )
        env = {k: v for k, v in self.env.items() if k not in GITHUB_TOKENS}
        env.update(self.preset.env(run))
        argv = self.preset.argv(run)
        log = self.store.log_path(self.task.id, "agent")
        log.parent.mkdir(parents=True, exist_ok=True)
        offset = log.stat().st_size if log.exists() else 0
        outcome = proc.run_logged(
            argv, cwd=self.worktree, env=env, log=log, timeout=self.task.agent.timeout_s
        )
        with log.open("r", encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            output = f.read()
        result = self.preset.result(outcome.returncode, output, run)
        cost = result.cost_usd
        if cost is not None:
            with self.ctx._spend_lock:  # agents finish on several threads
                self.ctx.spent += cost
        self.store.agent_ran(self.task.id, cost, dict(result.details))
        self.say(
            f"agent finished in {outcome.seconds:.1f}s"
            + (f", ${cost:.2f}" if cost is not None else ""),
            cost_usd=cost,
        )
        if outcome.timed_out:
            raise TaskFailed(
                "agent",
                f"agent timed out after {self.task.agent.timeout_s:g}s and was stopped; log: {log}",
            )
        if not result.ok:
            raise TaskFailed("agent", f"agent failed: {result.reason}; log: {log}")
        budget = self.task.agent.budget_usd
        if cost is not None and budget is not None and cost > budget:
            raise TaskFailed(
                "agent",
                f"agent spent ${cost:.2f}, over the task's budget "
                f"${budget:.2f}; its work is kept in {self.worktree}",
            )

    def _owned(self, path: str) -> bool:
        return path == self.preset.instructions_file or any(
            scopes.matches(p, path) for p in self.preset.owned_paths
        )

    def _commit(self) -> bool:
        """Commit leftovers; False (and the worktree removed) when the task changed nothing."""
        wt = self.worktree
        changed = self.git.status_paths(wt)
        # Untracked files of the agent's own are ignored in this worktree; tracked ones
        # it changed show here, and are put back.
        tracked_owned = sorted(self.git.tracked([p for p in changed if self._owned(p)], cwd=wt))
        if tracked_owned:
            self.git("checkout", "HEAD", "--", *tracked_owned, cwd=wt)
            self.say(f"restored the agent's own files: {', '.join(tracked_owned)}")
        if any(p not in tracked_owned for p in changed):
            self.git("add", "--all", cwd=wt)
            context = task_context(
                self.plan,
                self.task,
                ports=self.ctx.ports.get(self.task.id, []),
                worktree=str(wt),
                branch=self.branch,
            )
            message = render.commit_message(self.plan, self.task, context)
            self.git(
                "commit", "--quiet", "--no-verify", "-m", message, cwd=wt, env=self.ctx.identity
            )
        head = self.git("rev-parse", "HEAD", cwd=wt).strip()
        start = self.record.start_commit
        if head == start:
            worktrees.remove(
                self.git, wt, self.branch if self.record.created_branch else None, force=True
            )
            self.store.committed(self.task.id, None)
            return False
        self.store.committed(self.task.id, head)
        return True

    def _scope_check(self) -> None:
        assert self.record.start_commit is not None
        changed = self.git.changed_paths(self.record.start_commit, "HEAD", cwd=self.worktree)
        allowed = (*self.task.scope, *self.plan.shared)
        counted = [p for p in changed if not self._owned(p)]
        outside = [p for p in counted if not any(scopes.matches(s, p) for s in allowed)]
        self.store.scoped(self.task.id, counted)
        if outside:
            shown = ", ".join(outside[:10]) + (
                f" and {len(outside) - 10} more" if len(outside) > 10 else ""
            )
            raise TaskFailed(
                "scope",
                (
                    f"changed {len(outside)} path{'s' if len(outside) != 1 else ''} outside its "
                    f"scope: {shown}; scope is {', '.join(self.task.scope)}. Nothing was pushed; "
                    f"the work is kept on branch {self.branch}"
                ),
            )


def _identity(git: Git) -> dict[str, str] | None:
    if git("config", "user.email", check=False).strip():
        return None
    return {
        "GIT_AUTHOR_NAME": "wtrun",
        "GIT_AUTHOR_EMAIL": "wtrun@localhost",
        "GIT_COMMITTER_NAME": "wtrun",
        "GIT_COMMITTER_EMAIL": "wtrun@localhost",
    }


# ---------------------------------------------------------------- preflight


def preflight(plan: Plan, git: Git | None, selected: Sequence[str], *, agents_needed: bool) -> None:
    """What a run can refuse before it makes any worktree."""
    import shutil

    if agents_needed:
        missing: dict[str, list[str]] = {}
        for tid in selected:
            preset = agents.get(plan.task(tid).agent.preset)
            if preset.name == "command":
                command = plan.task(tid).agent.command or ("",)
                exe = command[0]
                if "{" in exe or shutil.which(exe) or os.path.exists(exe):
                    continue
                missing.setdefault(exe, []).append(tid)
            elif shutil.which(preset.executable) is None:
                missing.setdefault(preset.executable, []).append(tid)
        if missing:
            parts = [f"{exe!r} (tasks {', '.join(ids)})" for exe, ids in missing.items()]
            raise WtrunError(
                f"agent CLI not found on PATH: {'; '.join(parts)}; install it (see the README's "
                "'Agents' section) or change the task's agent.preset"
            )
    if git is None:
        return
    for tid in selected:
        for pattern in plan.task(tid).scope:
            if scopes.is_literal(pattern) and (git.root / pattern).is_dir():
                raise WtrunError(
                    f'scope "{pattern}" of task "{tid}" names a directory, but a scope matches '
                    f'whole paths; write "{pattern.rstrip("/")}/" to mean everything below it'
                )


# ---------------------------------------------------------------- the run


def run(plan_path: str, options: Options) -> int:
    from .plan import load

    plan = load(plan_path)
    selected = select(plan, options)
    git = find_repo(Path.cwd())
    if options.dry_run:
        from .dryrun import describe

        # A preview is useful before the agent CLI is installed: say what a run would refuse.
        try:
            preflight(plan, git, selected, agents_needed=not options.prepare_only)
            refusal = None
        except WtrunError as e:
            refusal = str(e)
        print(describe(plan, git, selected, options))
        if refusal:
            print(f"\nA run would stop before making any worktree: {refusal}")
        return 0
    preflight(plan, git, selected, agents_needed=not options.prepare_only)
    store = Store(git.common_dir(), plan.name)
    with store.lock():
        store.reload()
        return _run_locked(plan, git, store, selected, options)


def _run_locked(plan: Plan, git: Git, store: Store, selected: list[str], options: Options) -> int:
    record = store.record
    for tid in options.restart:
        if tid not in selected:
            raise UsageError(f"--restart {tid}: no such task in this run")
        _restart(git, store, plan, tid)
    _check_changed(plan, store, selected)
    if record.base_commit is None:
        store.set_base(resolve_base(git, plan.remote, plan.base, fetch=True))
    assert record.base_commit is not None
    if git.rev_parse(record.base_commit) is None:
        raise WtrunError(
            f"the run's recorded base commit {record.base_commit[:12]} is gone from the "
            "repository; run `wtrun clean PLAN` to start the plan afresh"
        )

    recorded_ports = {tid: t.ports for tid, t in record.tasks.items() if t.ports}
    ctx = Context(
        plan=plan,
        git=git,
        store=store,
        reporter=report.choose(selected, options.json),
        options=options,
        base_commit=record.base_commit,
        global_excludes=worktrees.global_excludes(git),
        ports=ports.allocate(plan, recorded_ports, selected),
        selected=selected,
    )
    ctx.spent = sum(record.tasks[t].cost_usd or 0.0 for t in record.tasks)
    worktrees.exclude_folder(git, plan.worktrees)
    worktrees.enable_worktree_config(git)
    ctx.existing_worktrees = worktrees.snapshot(git)
    ctx.identity = _identity(git)

    provider = None
    if not options.prepare_only and not options.no_pr:
        from .prs import ready_provider

        # Before any agent spends money: is the repository known, is gh logged in?
        provider = ready_provider(plan, git, store)

    # SIGTERM (CI cancelling a job) and SIGHUP (the terminal closed) stop a run as ^C does.
    stops = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in stops}
    for sig in stops:
        signal.signal(sig, _raise_interrupt)
    try:
        _schedule(ctx, selected, options)
        if not options.prepare_only and not options.no_pr:
            from .prs import open_prs

            open_prs(ctx.plan, ctx.git, ctx.store, selected, ctx.reporter, provider)
    except KeyboardInterrupt:
        ctx.stopping = True
        proc.RUNNING.terminate_all()
        for tid in selected:
            r = store.record.tasks.get(tid)
            if r is not None and r.state is TaskState.RUNNING:
                store.set_state(tid, TaskState.FAILED, f"interrupted during {r.step}")
        ctx.reporter.close()
        print(
            "wtrun: interrupted; run the same command again to resume", file=sys.stderr, flush=True
        )
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    ctx.reporter.close()
    store.save(durable=True)
    report.finish(ctx.reporter, store.record, selected, plan.budget_usd)
    # -- wtrun.sync: base drift and predicted conflicts after the run (never fails it) --
    if not options.prepare_only:
        from .sync import after_run

        after_run(plan, git, store, ctx.reporter)
    bad = [t for t in selected if store.task(t).state not in FINISHED]
    return 1 if bad else 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _check_changed(plan: Plan, store: Store, selected: Sequence[str]) -> None:
    changed = []
    for tid in selected:
        r = store.record.tasks.get(tid)
        if r is None or r.fingerprint is None or not r.steps:
            continue
        if r.fingerprint != fingerprint(plan, plan.task(tid)):
            changed.append(tid)
    if changed:
        flags = " ".join(f"--restart {t}" for t in changed)
        raise WtrunError(
            f"task{'s' if len(changed) > 1 else ''} {', '.join(changed)} changed in the plan "
            "since they ran (prompt, scope, agent, setup, verify, env or conventions); their "
            f"old work would not match. Run again with {flags} to discard it and start over"
        )


def _restart(git: Git, store: Store, plan: Plan, tid: str) -> None:
    r = store.record.tasks.get(tid)
    if r is None:
        return
    if r.pushed_head:
        raise WtrunError(
            f'task "{tid}" was already pushed ({r.branch}); --restart would lose reviewed work.'
            " Close its PR and delete the branch first, or give the task a new id"
        )
    if r.worktree:
        path = Path(r.worktree)
        if path.exists():
            git("worktree", "remove", "--force", str(path))
    if r.created_branch and r.branch and git.branch_exists(r.branch):
        git("branch", "-D", r.branch)
    git("worktree", "prune")
    store.forget(tid)


def _schedule(ctx: Context, selected: list[str], options: Options) -> None:
    plan, store = ctx.plan, ctx.store
    parallel = options.max_parallel or plan.max_parallel
    if parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    chosen = frozenset(selected)
    sched = schedule.Scheduler(plan, parallel, only=chosen)
    finished = ("done", "ready", "no-changes", *(("prepared",) if options.prepare_only else ()))

    def satisfied(tid: str) -> bool:
        r = store.record.tasks.get(tid)
        return r is not None and r.state in ("ready", "done") and r.head is not None

    def block(tid: str, reason: str) -> None:
        for d in schedule.descendants(plan, [tid]):
            if d in chosen and store.task(d).state not in ("done",):
                store.set_state(
                    d,
                    TaskState.BLOCKED,
                    reason if d == tid else f'task "{tid}" it builds on is blocked',
                )
                ctx.event(d, "task", f"blocked: {reason}", state="blocked")

    starts = []
    for tid in selected:
        task = plan.task(tid)
        if task.after is None or task.after not in chosen:
            if task.after is not None and not satisfied(task.after):
                block(tid, f'task "{task.after}" it builds on is not ready; run it first')
                continue
            starts.append(tid)
    sched.push(starts)

    running: dict[concurrent.futures.Future[str], str] = {}
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool,
        _stop_on_interrupt(ctx, running),
    ):
        while True:
            for tid in sched.start():
                record = store.task(tid)
                if record.state in finished:
                    ctx.event(tid, "task", f"already {record.state}", state=record.state)
                    running[_done_future(record.state)] = tid
                    continue
                if plan.budget_usd is not None and ctx.spent >= plan.budget_usd:
                    store.set_state(
                        tid,
                        TaskState.SKIPPED,
                        f"the run's budget ${plan.budget_usd:.2f} was spent "
                        f"(${ctx.spent:.2f}) before it started",
                    )
                    ctx.event(tid, "task", "skipped: budget spent", state="skipped")
                    running[_done_future("skipped")] = tid
                    continue
                running[pool.submit(_run_task, ctx, tid)] = tid
            if not running:
                break
            done, _ = concurrent.futures.wait(running, return_when="FIRST_COMPLETED")
            for future in done:
                tid = running.pop(future)
                state = future.result()
                sched.finish(tid)
                kids = sched.children_of(tid)
                if state in ("ready", "done") and store.task(tid).head:
                    sched.push(kids)
                    continue
                why = {
                    "no-changes": "made no changes",
                    "prepared": "is only prepared (no agent ran yet)",
                    "skipped": "was skipped",
                }.get(state, state)
                for kid in kids:
                    block(kid, f'task "{tid}" it builds on {why}')


@contextmanager
def _stop_on_interrupt(
    ctx: Context, running: dict[concurrent.futures.Future[str], str]
) -> Iterator[None]:
    """On ^C or SIGTERM, stop the tasks' process groups first: leaving the pool waits for
    its threads, and they wait for their processes."""
    try:
        yield
    except BaseException:
        ctx.stopping = True
        for future in running:
            future.cancel()  # not started yet: it never will
        while not all(f.done() for f in running):
            proc.RUNNING.terminate_all()
            concurrent.futures.wait(running, timeout=0.2)
        raise


def _done_future(state: str) -> concurrent.futures.Future[str]:
    f: concurrent.futures.Future[str] = concurrent.futures.Future()
    f.set_result(state)
    return f


def _run_task(ctx: Context, tid: str) -> str:
    task = ctx.plan.task(tid)
    store = ctx.store
    store.set_state(tid, TaskState.RUNNING, save=False)
    try:
        state = TaskRun(ctx, task).run()
    except TaskFailed as e:
        reason = f"interrupted during {e.step}" if ctx.stopping else e.reason
        store.set_state(tid, TaskState.FAILED, reason)
        ctx.event(tid, "task", f"failed at {e.step}: {reason}", state="failed")
        return "failed"
    except WtrunError as e:
        store.set_state(tid, TaskState.FAILED, str(e))
        ctx.event(tid, "task", f"failed: {e}", state="failed")
        return "failed"
    except Exception as e:  # a bug in one task must not take the others down
        import traceback

        log = store.log_path(tid, "wtrun-error")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(traceback.format_exc(), encoding="utf-8")
        store.set_state(tid, TaskState.FAILED, f"internal error ({e!r}); details in {log}")
        ctx.event(tid, "task", f"internal error; details in {log}", state="failed")
        return "failed"
    message = {
        "ready": "ready (committed, in scope, verified)",
        "no-changes": "no changes: worktree and branch removed",
        "prepared": f"prepared in {ctx.worktree_path(task)}",
    }[state]
    store.set_state(
        tid, TaskState(state), "the agent made no changes" if state == "no-changes" else None
    )
    ctx.event(tid, "task", message, state=state)
    return state
