"""Pull requests: `wtrun pr`, and the run's last step. Push ready branches (never forced),
open their PRs parents first, and keep PR texts current.

A stacked task's PR is based on its parent's branch and says "Stacked on #N". A parent
learns its children's numbers only once they exist: `refresh_texts`, which the end of a run
and `wtrun pr` call after every PR is open, edits each text that changed, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import agents, forge, render, report, schedule
from .commit import ScopeViolation, out_of_scope, owned_by
from .errors import UsageError, WtrunError
from .forge.local import set_pr_state
from .git import Git, find_repo, resolve_base
from .plan import Plan, base_branch, branch_of, load, task_by_id, task_context
from .restack import short
from .state import PrOpened, RunRecord, Step, Store, TaskRecord, TaskState, read_records
from .workspace import check_records


def pr_context(plan: Plan, record: RunRecord, task_id: str) -> dict[str, Any]:
    """The PR text's variables as the records stand now (branch names from the plan, never
    from the records). "Stacked on #N" names the PR of the
    branch this PR is based on (none once that one merged); children are the open PRs based
    on this one's branch."""
    task = plan.task(task_id)
    r = record.tasks.get(task_id) or TaskRecord(task_id)
    branch = branch_of(plan, task)
    base = r.pr_base or base_branch(plan, task)
    branches = {t.id: branch_of(plan, t) for t in plan.tasks if t.id in record.tasks}
    under = next((record.tasks[t] for t, b in branches.items() if b == base), None)
    stacked_on = under.pr_number if under is not None and under.pr_state != "merged" else None
    children = [
        o.pr_number
        for t in plan.tasks
        if (o := record.tasks.get(t.id)) is not None
        and o.pr_number is not None
        and o.pr_state not in ("merged", "closed")
        and (o.pr_base or base_branch(plan, t)) == branch
    ]
    run = {
        "files": r.files,
        "verify": r.verify,
        "cost_usd": r.cost_usd,
        "stacked_on": stacked_on,
        "children": children,
        "conflicts": r.conflicts,
    }
    return task_context(
        plan,
        task,
        ports=r.ports,
        worktree=r.worktree or "",
        branch=branch,
        base=base,
        pr=True,
        run=run,
    )


def pr_command(
    plan_path: str,
    task_ids: Sequence[str],
    merge: Sequence[str],
    marks: dict[str, str] | None = None,
) -> int:
    """`wtrun pr PLAN`: PRs for ready tasks (after `run --no-pr`, or in the fan-out's final
    job, with the records of every stack merged in first)."""
    plan = load(plan_path)
    git = find_repo(Path.cwd())
    chosen = task_by_id(plan, task_ids) if task_ids else plan.tasks
    selected = [t.id for t in chosen]
    store = Store(git.common_dir(), plan.name)
    with store.lock():
        store.reload()
        check_records(plan, git.root, store.record.tasks)
        if marks:
            return _mark_local_prs(plan, store, marks)
        if merge:
            merged = merge_records(plan, git.root, store, merge)
            print(
                f"wtrun: merged the records of {_plural(len(merged), 'task')} "
                f"from {_plural(len(merge), 'file')}"
            )
        _missing_branches(git, store, selected)
        # Follow-ups first: a task run now may build on one (its parent's pushed head).
        provider, unanswered = _answer_follow_ups(plan, git, store, selected)
        provider = open_prs(plan, git, store, selected, report.Reporter(), provider) or provider
        if provider is not None:
            refresh_texts(plan, store, provider, [t.id for t in plan.tasks], print)
        print(report.summary_text(store.record, selected, plan.budget_usd))
        report.write_step_summary(report.summary_markdown(store.record, selected, plan.budget_usd))
    finished = (TaskState.DONE, TaskState.NO_CHANGES)
    bad = [t for t in selected if (r := store.get(t)) is None or r.state not in finished]
    return 1 if bad or unanswered else 0


def _answer_follow_ups(
    plan: Plan, git: Git, store: Store, selected: Sequence[str]
) -> tuple[forge.Provider | None, list[str]]:
    """Push the follow-ups `wtrun revise --no-pr` made and answer on their PRs; the provider
    (None: there were none) and the tasks whose follow-up failed."""
    waiting = [t for t in selected if (r := store.get(t)) and r.unanswered and r.pr_number]
    if not waiting:
        return None, []
    from .revise import answer

    provider = ready_provider(plan, git, store)
    failed = []
    for tid in waiting:
        try:
            print(f"  {tid}: {answer(plan, git, store, provider, tid)}")
        except WtrunError as e:
            print(f"  {tid}: failed: {e}")
            failed.append(tid)
    return provider, failed


def _mark_local_prs(plan: Plan, store: Store, marks: dict[str, str]) -> int:
    """`wtrun pr PLAN --merged ID`: what a reviewer does on a forge, for the local provider."""
    if plan.pr.provider != "local":
        raise UsageError(
            f"--merged and --closed are for pr.provider local; with {plan.pr.provider!r} "
            "merge or close the PR where it lives, and `wtrun sync` reads it"
        )
    for tid, state in marks.items():
        task_by_id(plan, [tid])
        number = store.task(tid).pr_number
        if number is None:
            raise WtrunError(f'task "{tid}" has no PR yet; run the plan first')
        set_pr_state(store.root / "prs", number, state)
        store.pr_changed(tid, state=state)
        print(f"{tid}: PR #{number} marked {state}")
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _missing_branches(git: Git, store: Store, selected: Sequence[str]) -> None:
    for tid in selected:
        r = store.get(tid)
        if r and r.state is TaskState.READY and r.branch and not git.branch_exists(r.branch):
            store.set_state(
                tid,
                TaskState.FAILED,
                f"branch {r.branch} is not in this repository; fetch it first (in the "
                "fan-out, from the stack job's branches.bundle)",
                step="push",
            )


def merge_records(plan: Plan, root: Path, store: Store, files: Sequence[str]) -> list[str]:
    """Fold other machines' records of this plan into the local ones; returns task ids taken.
    They come from jobs that ran agents: every one is held against the plan first, and what
    is pushed from them is checked again (`_checked_head`)."""
    taken: list[str] = []
    known = {t.id for t in plan.tasks}
    for name in files:
        path = Path(name)
        try:
            incoming = read_records(path)
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise WtrunError(f"{path}: not a wtrun records file ({e})") from None
        if incoming.plan != store.record.plan:
            raise WtrunError(
                f"{path} holds records of plan {incoming.plan!r}, not {store.record.plan!r}"
            )
        ours = store.record.base_commit
        if ours and incoming.base_commit and incoming.base_commit != ours:
            raise WtrunError(
                f"{path} ran from base {incoming.base_commit[:12]}, but other records from "
                f"{ours[:12]}; every stack of a run must start from the same base commit"
            )
        incoming.tasks = {t: r for t, r in incoming.tasks.items() if t in known}
        for r in incoming.tasks.values():
            r.worktree = None  # another machine's folder: nothing of it is here
        try:
            check_records(plan, root, incoming.tasks)
        except WtrunError as e:
            raise WtrunError(f"{path}: {e}") from None
        offered = {t: r.pushed_head for t, r in incoming.tasks.items() if r.unanswered}
        taken += store.merge(incoming)
        for tid, on in offered.items():
            if not store.task(tid).unanswered:
                print(
                    f"wtrun: {path}: the follow-up of task {tid} on {short(on)} is not taken: "
                    "these records do not say that head was pushed (`wtrun sync` moved the "
                    "branch since, say); the next revise reads its feedback again"
                )
    return taken


def ready_provider(plan: Plan, git: Git, store: Store) -> forge.Provider:
    """The plan's PR provider, checked (repository known, logged in) before any push."""
    provider = forge.make(plan, git, store.root)
    provider.preflight()
    return provider


def open_prs(
    plan: Plan,
    git: Git,
    store: Store,
    selected: Sequence[str],
    reporter: report.Reporter,
    provider: forge.Provider | None = None,
) -> forge.Provider | None:
    """Push the selected ready tasks and open (or update) their PRs, parents first. Returns
    the provider used (None: no task was ready)."""
    ready = [t for t in selected if store.task(t).state is TaskState.READY]
    if not ready:
        return None
    if provider is None:
        try:
            provider = ready_provider(plan, git, store)
        except WtrunError as e:
            for tid in ready:
                store.set_reason(tid, f"not pushed: {e}")
            raise
    # What the base is on the remote now, not what records say it was: they may come from
    # a job that ran agents.
    base_tip = resolve_base(git, plan.remote, plan.base, fetch=True)
    for tid in schedule.pr_order(plan, ready):
        parent = plan.task(tid).after
        if (
            parent is not None
            and parent in selected
            and store.task(parent).state is not TaskState.DONE
        ):
            store.set_reason(tid, f'not pushed: its parent "{parent}" has no PR yet')
            continue
        try:
            _push_and_open(plan, git, store, provider, tid, reporter, base_tip)
        except WtrunError as e:
            store.set_state(tid, TaskState.FAILED, str(e), step=Step.PR.value)
            reporter.event(tid, "task", f"failed at pr: {e}", state="failed")
    return provider


def _push_and_open(
    plan: Plan,
    git: Git,
    store: Store,
    provider: forge.Provider,
    tid: str,
    reporter: report.Reporter,
    base_tip: str,
) -> None:
    task = plan.task(tid)
    record = store.task(tid)
    branch = branch_of(plan, task)
    if record.pushed_head != record.head:
        head = checked_head(plan, git, store, tid, base_tip)
        push(plan, git, branch, head)
        store.pushed(tid, head)
        reporter.event(tid, "task", f"pushed {branch} at {head[:12]}", step="push")
    context = pr_context(plan, store.record, tid)
    request = forge.PrRequest(
        task_id=tid,
        head=branch,
        base=base_branch(plan, task),
        title=render.pr_title(plan, context),
        body=render.pr_body(plan, context),
        draft=plan.pr.draft,
        labels=tuple(plan.pr.labels),
        reviewers=tuple(plan.pr.reviewers),
    )
    if record.pr_number is not None and (request.base, request.title, request.body) == (
        record.pr_base,
        record.pr_title,
        record.pr_body,
    ):
        # Nothing new to say: no request (a rerun of verify on the same commit, say).
        store.set_state(tid, TaskState.DONE, step=Step.PR.value)
        reporter.event(tid, "task", f"PR #{record.pr_number} unchanged", state="done", step="pr")
        return
    ref = provider.open_or_update(request)
    opened = PrOpened(
        number=ref.number,
        url=ref.url,
        base=request.base,
        title=request.title,
        body=request.body,
        state=ref.state if ref.number else None,
    )
    store.pr_opened(tid, opened)
    what = f"PR #{ref.number} {ref.url}" if ref.number else "pushed (no PR: provider none)"
    reporter.event(tid, "task", what, state="done", step="pr")


def refresh_texts(
    plan: Plan,
    store: Store,
    provider: forge.Provider,
    task_ids: Sequence[str],
    out: Callable[[str], None],
) -> list[str]:
    """Send the texts of these tasks' open PRs that changed; see `send_texts`."""
    return send_texts(store, provider, stale_texts(plan, store, task_ids), out)


def stale_texts(plan: Plan, store: Store, task_ids: Sequence[str]) -> dict[str, str]:
    """Task -> its open PR's text rendered again, where it differs from the text last sent."""
    stale = {}
    for tid in task_ids:
        r = store.get(tid)
        if r is None or r.pr_number is None or r.pr_state not in (None, "open"):
            continue
        body = render.pr_body(plan, pr_context(plan, store.record, tid))
        if body != r.pr_body:
            stale[tid] = body
    return stale


def send_texts(
    store: Store, provider: forge.Provider, texts: dict[str, str], out: Callable[[str], None]
) -> list[str]:
    """Send each PR text and record it; returns the tasks whose PR could not be updated,
    each said in `out`."""
    failed = []
    for tid, body in texts.items():
        number = store.task(tid).pr_number
        assert number is not None
        try:
            provider.update_body(tid, number, body)
        except WtrunError as e:
            out(f"  {tid}: could not update the text of PR #{number}: {e}")
            failed.append(tid)
            continue
        store.pr_changed(tid, body=body)
    return failed


def checked_head(plan: Plan, git: Git, store: Store, tid: str, base_tip: str) -> str:
    """The commit to push for the task, checked again here, where the push happens: it is
    the commit the records name, and every commit it brings that the base (and the parent
    task's pushed head) lacks touches only the task's scope and the plan's shared paths,
    never the agent CLI's own files. Nothing is taken on the records' word: in a fan-out
    they come from the job that ran the agent."""
    task, record = plan.task(tid), store.task(tid)
    head = git.rev_parse(record.head) if record.head else None
    if head is None or head != record.head:
        raise WtrunError(
            f"the commit the records name for the task ({record.head or 'none'}) is not in "
            "this repository; fetch the task's branch (in a fan-out, from the stack job's "
            "bundle), then run again"
        )
    exclude = [base_tip]
    if task.after is not None:
        parent = store.get(task.after)
        pushed = parent.pushed_head if parent is not None else None
        if pushed is None or not git.ok("merge-base", "--is-ancestor", pushed, head):
            raise WtrunError(
                f'the task does not build on the pushed work of "{task.after}"; push that '
                "task first, or rerun this one with --restart"
            )
        exclude.append(pushed)
    preset = agents.get(task.agent.preset)
    touched = git.paths_in_commits(head, *(f"^{commit}" for commit in exclude))
    outside, theirs = out_of_scope(touched, task.scope, plan.shared, owned_by(preset))
    if outside or theirs:
        raise ScopeViolation([], outside, theirs, task.scope, branch_of(plan, task))
    return head


def push(plan: Plan, git: Git, branch: str, sha: str) -> None:
    """Push exactly `sha` to the branch; never force. A refusal says the remote's words."""
    if not git.has_remote(plan.remote):
        raise WtrunError(
            f"no remote {plan.remote!r} to push {branch} to; add it with "
            f"`git remote add {plan.remote} URL`, or set `remote:` in the plan"
        )
    refspec = f"{sha}:refs/heads/{branch}"
    r = git.run("push", "--porcelain", "--end-of-options", plan.remote, refspec, check=False)
    if r.returncode == 0:
        return
    lines = (r.stderr + r.stdout).strip().splitlines()
    remote = [line.removeprefix("remote:").strip() for line in lines if line.startswith("remote:")]
    if any("non-fast-forward" in line or "fetch first" in line for line in lines):
        why = "the remote branch has commits this one lacks (someone pushed to it)"
        fix = f"look at `git log {plan.remote}/{branch}` and merge or rename, then run again"
    else:
        rejected = [line.strip() for line in lines if line.startswith("!")]
        said = [line for line in remote if line] or rejected or lines[-1:]
        why = "; ".join(said) or f"exit code {r.returncode}"
        fix = "the remote's own rules refused it (branch protection, a pre-receive hook)"
    raise WtrunError(
        f"push of {branch} to {plan.remote} was refused: {why}. wtrun never force-pushes; {fix}"
    )
