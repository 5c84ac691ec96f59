"""A follow-up on pushed work, in two halves that may run in two jobs.

`follow_up`: the task's agent once more, in the task's own worktree (made again from its
branch in a fresh clone), on top of its pushed head, with a new prompt; its commits checked
like the first run's (scope of every commit since the task started, verify). It pushes
nothing and needs no token.

`answer`: the follow-up's head checked again where the push happens and pushed as a
fast-forward, and one comment on the PR saying what it addressed. Nothing pushed is
rewritten or lost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from . import agents, feedback, forge, steps
from .agents.launch import AgentFailed, launch
from .commit import check_scope, commit_leftovers, resolve_head
from .errors import WtrunError
from .forge import Feedback
from .git import Git, resolve_base
from .pipeline import follow_up_job
from .plan import Plan, branch_of
from .prs import checked_head, push, refresh_texts
from .state import Store


def follow_up(
    plan: Plan, git: Git, store: Store, task_id: str, prompt: str, *, message: str
) -> str | None:
    """Run the task's agent once with `prompt` in its worktree; commit what it left with
    `message` and check it. Returns the new head (None: the agent changed nothing).
    Raises `WtrunError` when a check fails: the work then stays in the worktree."""
    task, record = plan.task(task_id), store.task(task_id)
    previous, start = record.pushed_head, record.start_commit
    if previous is None or start is None:
        raise WtrunError(f'task "{task_id}" has nothing pushed to follow up on')
    with follow_up_job(plan, git, store, task) as job:
        ws = job.ws
        if resolve_head(git, ws.worktree, ws.branch, start) != previous:
            raise WtrunError(
                f"branch {ws.branch} is not at the head wtrun pushed ({previous[:12]}); push "
                f"or undo its other commits (`git -C {ws.worktree} log {previous[:12]}..`), "
                "then run again"
            )
        budget = task.agent.budget_usd
        left = None if budget is None else budget - (record.cost_usd or 0.0)
        if left is not None and left <= 0:
            raise WtrunError(
                f'task "{task_id}" has spent its budget (${record.cost_usd or 0.0:.2f} of '
                f"${budget:.2f}); raise its agent.budget_usd in the plan to address more feedback"
            )
        # The command preset reads the prompt as `{{ task.prompt }}`: it is the follow-up's.
        run = agents.AgentRun(
            plan=plan,
            task=dataclasses.replace(task, prompt=prompt),
            prompt=prompt,
            worktree=ws.worktree,
            instructions=ws.instructions,
            env=job.env,
            sandboxed=job.sandbox.kind != "none",
            budget_usd=left,
        )
        attempt = store.agent_started(task_id, job.sandbox.kind)
        try:
            launched = launch(
                run, job.env, store.log_path(task_id, "agent"), attempt=attempt, wrap=job.wrap
            )
        except AgentFailed as e:
            store.spent(task_id, e.result.cost_usd if e.result is not None else None)
            raise
        store.spent(task_id, launched.result.cost_usd)
        commit_leftovers(git, ws.worktree, message, job.owned, None)
        head = resolve_head(git, ws.worktree, ws.branch, previous)
        if head == previous:
            return None
        files = check_scope(
            git, ws.worktree, head, start, task.scope, plan.shared, job.owned, ws.branch
        )
        results, failure = steps.run_verify(
            task.verify, ws.worktree, job.env, store.log_path(task_id, "verify"), job.wrap
        )
        store.verified(task_id, results)
        if failure:
            raise WtrunError(failure.message, failure.position)
        if resolve_head(git, ws.worktree, ws.branch, previous) != head:
            raise WtrunError(
                f"code that verify ran moved branch {ws.branch}; see `git -C {ws.worktree} "
                "log`, put the branch back, run again"
            )
    store.scoped(task_id, files)
    store.committed(task_id, head)
    return head


def answer(
    plan: Plan,
    git: Git,
    store: Store,
    provider: forge.Provider,
    task_id: str,
    items: Sequence[Feedback] | None = None,
) -> str:
    """Push the task's follow-up and answer on its PR what it addressed; returns one line
    saying so.

    `items` is the feedback it addressed; without them it is read again, and only the keys
    of the records pick from it: they may come from a job that ran agents, as may the head,
    which is checked again here. A follow-up that cannot be pushed is dropped, and the next
    revise reads its feedback again."""
    record = store.task(task_id)
    number, previous = record.pr_number, record.pushed_head
    assert number is not None and previous is not None
    if items is None:
        wanted = set(record.unanswered)
        found = feedback.read(plan, git, provider, record).items
        items = [f for f in found if f.key in wanted and feedback.counts(f, plan.revise.bots)]
    try:
        pushed = _push(plan, git, store, provider, task_id)
    except WtrunError as e:
        dropped = f"its follow-up was not pushed: {e}; the next revise reads its feedback again"
        store.follow_up_dropped(task_id, dropped)
        raise WtrunError(dropped) from e
    store.answered(task_id)
    provider.comment(
        task_id, number, feedback.answer(items, previous, pushed, record.revisions, plan)
    )
    if pushed is None:
        return f"the agent changed nothing for {_plural(len(items), 'item')}"
    refresh_texts(plan, store, provider, [task_id], print)
    return f"addressed {_plural(len(items), 'item')}, pushed {pushed[:12]}"


def _push(plan: Plan, git: Git, store: Store, provider: forge.Provider, task_id: str) -> str | None:
    """The follow-up's head pushed onto the PR's branch, if it made one."""
    record = store.task(task_id)
    assert record.pr_number is not None and record.pushed_head is not None
    status = provider.pr_status(task_id, record.pr_number)
    if status is not None and status.state != "open":
        raise WtrunError(f"PR #{record.pr_number} was {status.state} in the meantime")
    if record.head is None or record.head == record.pushed_head:
        return None
    base_tip = resolve_base(git, plan.remote, plan.base, fetch=True)
    head = checked_head(plan, git, store, task_id, base_tip)
    if not git.ok("merge-base", "--is-ancestor", record.pushed_head, head):
        raise WtrunError(
            f"the follow-up {head[:12]} does not build on the pushed head {record.pushed_head[:12]}"
        )
    push(plan, git, branch_of(plan, plan.task(task_id)), head)
    return head


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
