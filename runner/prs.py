"""The run's last step: push ready branches and open their PRs, parents first.

Pushes never force. A stacked task's PR is based on its parent's branch and says
"Stacked on #N"; once every PR of the run exists, parents' bodies list their children.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import forge, render, schedule
from .errors import WtrunError
from .git import Git
from .plan import Plan, base_branch, branch_of, graph, task_context
from .report import Reporter
from .state import PrOpened, Step, Store, TaskState


def _push(plan: Plan, git: Git, branch: str) -> None:
    if not git.has_remote(plan.remote):
        raise WtrunError(
            f"no remote {plan.remote!r} to push {branch} to; add it with "
            f"`git remote add {plan.remote} URL`, or set `remote:` in the plan"
        )
    r = git.run(
        "push", "--porcelain", plan.remote, f"refs/heads/{branch}:refs/heads/{branch}", check=False
    )
    if r.returncode != 0:
        output = (r.stderr + r.stdout).strip()
        why = (
            "the remote branch has commits this one lacks (someone pushed to it)"
            if ("non-fast-forward" in output or "rejected" in output or "fetch first" in output)
            else output.splitlines()[-1]
            if output
            else f"exit code {r.returncode}"
        )
        raise WtrunError(
            f"push of {branch} to {plan.remote} was refused: {why}. wtrun never force-pushes; "
            f"look at `git log {plan.remote}/{branch}` and merge or rename, then run again"
        )


def _context(plan: Plan, store: Store, tid: str, children: Sequence[int]) -> dict[str, object]:
    task = plan.task(tid)
    record = store.record.task(tid)
    parent = store.record.tasks.get(task.after) if task.after else None
    return task_context(
        plan,
        task,
        ports=record.ports,
        worktree=record.worktree or "",
        branch=record.branch,
        pr=True,
        run={
            "files": record.files,
            "verify": record.verify,
            "cost_usd": record.cost_usd,
            "stacked_on": parent.pr_number if parent else None,
            "children": list(children),
            "conflicts": record.conflicts,
        },
    )


def ready_provider(plan: Plan, git: Git, store: Store) -> forge.Provider:
    """The plan's PR provider, checked (repository known, logged in) before any push."""
    provider = forge.make(plan, git, store)
    provider.preflight()
    return provider


def open_prs(
    plan: Plan,
    git: Git,
    store: Store,
    selected: Sequence[str],
    reporter: Reporter,
    provider: forge.Provider | None = None,
) -> None:
    ready = [t for t in selected if store.task(t).state is TaskState.READY]
    if not ready:
        return
    if provider is None:
        try:
            provider = ready_provider(plan, git, store)
        except WtrunError as e:
            for tid in ready:
                store.set_reason(tid, f"not pushed: {e}")
            raise
    opened: list[str] = []
    for tid in schedule.pr_order(plan, ready):
        task = plan.task(tid)
        record = store.record.task(tid)
        parent = store.record.tasks.get(task.after) if task.after else None
        if parent is not None and task.after in selected and parent.state is not TaskState.DONE:
            store.set_reason(tid, f'not pushed: its parent "{task.after}" has no PR yet')
            continue
        branch = record.branch or branch_of(plan, task)
        try:
            if record.pushed_head != record.head:
                _push(plan, git, branch)
                store.pushed(tid, record.head)
                reporter.event(tid, "task", f"pushed {branch}", step="push")
            base = base_branch(plan, task)
            context = _context(plan, store, tid, [])
            ref = provider.open_or_update(
                tid,
                head=branch,
                base=base,
                title=render.pr_title(plan, context),
                body=render.pr_body(plan, context),
                draft=plan.pr.draft,
                labels=plan.pr.labels,
                reviewers=plan.pr.reviewers,
            )
        except WtrunError as e:
            store.set_state(tid, TaskState.FAILED, str(e), step=Step.PR.value)
            reporter.event(tid, "task", f"failed at pr: {e}", state="failed")
            continue
        store.pr_opened(
            tid,
            PrOpened(
                number=ref.number,
                url=ref.url,
                base=base,
                title=render.pr_title(plan, context),
                body=render.pr_body(plan, context),
                state=ref.state if ref.number else None,
            ),
        )
        opened.append(tid)
        what = f"PR #{ref.number} {ref.url}" if ref.number else "pushed (no PR: provider none)"
        reporter.event(tid, "task", what, state="done", step="pr")
    if not provider.makes_prs:
        return
    # Parents list their stacked children once those have numbers.
    kids = graph.children(plan)
    touched = set(opened) | {a for t in opened if (a := plan.task(t).after) is not None}
    for tid in schedule.pr_order(plan, touched):
        numbers = [n for k in kids[tid] if (n := store.record.task(k).pr_number) is not None]
        record = store.record.task(tid)
        if numbers and record.pr_number is not None:
            body = render.pr_body(plan, _context(plan, store, tid, numbers))
            try:
                provider.update_body(tid, record.pr_number, body)
            except WtrunError as e:
                reporter.event(tid, "task", f"could not list stacked PRs in the body: {e}")
