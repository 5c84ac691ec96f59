"""Pull requests: the run's last step, and what `wtrun pr` does. Push ready branches (never
forced), open their PRs parents first, and keep PR texts current.

A stacked task's PR is based on its parent's branch and says "Stacked on #N". A parent
learns its children's numbers only once they exist: `refresh_texts`, which the end of a run
and `wtrun pr` call after every PR is open, edits each text that changed, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import agents, forge, render, report, schedule
from .commit import ScopeViolation, out_of_scope, owned_by
from .errors import WtrunError
from .git import Git, resolve_base
from .plan import Plan, base_branch, branch_of, task_context
from .state import PrOpened, RunRecord, Step, Store, TaskRecord, TaskState


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
