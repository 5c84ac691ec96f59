"""`wtrun revise PLAN`: review feedback and failed checks on open PRs, back to the agent.

For each task with an open PR: the feedback since wtrun last pushed it (line comments,
review bodies, conversation comments, failed check runs and statuses on its head), of
authors who may write to the repository (or bots the plan lists), not addressed before.
With any, the agent runs once more on it, the result is pushed as a fast-forward, and
one comment on the PR says what was addressed. Without any, nothing runs and nothing is
written.

In CI the three parts run apart, so that no agent shares a step with a token:
`--save-feedback FILE` only reads (GET requests, with a read-only token), `--feedback FILE
--no-pr` runs the agents on what was read (no token at all), and `wtrun pr` pushes the
follow-ups and answers on their PRs (with the token that can write, and no agent).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import feedback, forge
from ..errors import UsageError, WtrunError
from ..git import Git, find_repo
from ..plan import Plan, branch_of, load, task_by_id
from ..revise import answer, follow_up
from ..state import Store, TaskRecord
from ..workspace import check_records


def revise(
    plan_path: str,
    task_ids: Sequence[str],
    *,
    no_pr: bool = False,
    save_to: str | None = None,
    saved: str | None = None,
) -> int:
    if save_to is not None and (saved is not None or no_pr):
        raise UsageError("--save-feedback only reads the feedback: use it without other options")
    plan = load(plan_path)
    git = find_repo(Path.cwd())
    chosen = task_by_id(plan, task_ids) if task_ids else plan.tasks
    store = Store(git.common_dir(), plan.name)
    with store.lock():
        store.reload()
        check_records(plan, git.root, store.record.tasks)
        open_prs = [t.id for t in chosen if _has_open_pr(store.get(t.id))]
        if not open_prs:
            print("wtrun: no task has an open PR to revise")
            if save_to is not None:
                feedback.save(Path(save_to), plan, {})
            return 0
        given = feedback.load(Path(saved), plan) if saved is not None else None
        # Reading needs the forge's token; a follow-up that only uses what was read does not.
        provider = None if given is not None and no_pr else forge.make(plan, git, store.root)
        if save_to is not None:
            assert provider is not None
            return _save(plan, git, store, provider, open_prs, Path(save_to))
        failed = 0
        for tid in open_prs:
            try:
                said = _revise_task(plan, git, store, provider, tid, given, no_pr=no_pr)
            except WtrunError as e:
                said = f"failed: {e}"
                failed += 1
            print(f"  {tid}: {said}")
    return 1 if failed else 0


def _has_open_pr(record: TaskRecord | None) -> bool:
    return (
        record is not None
        and record.pr_number is not None
        and record.pr_state in (None, "open")
        and record.pushed_head is not None
    )


def _save(
    plan: Plan,
    git: Git,
    store: Store,
    provider: forge.Provider,
    open_prs: Sequence[str],
    path: Path,
) -> int:
    """Read the feedback of each open PR into `path`; run nothing, write nothing else."""
    found: dict[str, feedback.Found] = {}
    failed = 0
    for tid in open_prs:
        record = store.task(tid)
        try:
            said = _waits(plan, store, provider, tid)
            if said is None:
                found[tid] = feedback.read(plan, git, provider, record)
                new = feedback.new(found[tid].items, record)
                counted = [f for f in new if feedback.counts(f, plan.revise.bots)]
                said = f"{_plural(len(counted), 'new item')} on PR #{record.pr_number}"
        except WtrunError as e:
            said = f"failed: {e}"
            failed += 1
        print(f"  {tid}: {said}")
    feedback.save(path, plan, found)
    print(f"wtrun: wrote the feedback to {path}")
    return 1 if failed else 0


def _revise_task(
    plan: Plan,
    git: Git,
    store: Store,
    provider: forge.Provider | None,
    tid: str,
    given: dict[str, feedback.Found] | None,
    *,
    no_pr: bool,
) -> str:
    record = store.task(tid)
    assert record.pr_number is not None and record.pushed_head is not None
    if given is None:
        assert provider is not None
        waits = _waits(plan, store, provider, tid)
        if waits is not None:
            return waits
        found = feedback.read(plan, git, provider, record)
    elif tid not in given:
        return f"no feedback was read for PR #{record.pr_number}"
    else:
        found = given[tid]
        if (found.pr, found.head) != (record.pr_number, record.pushed_head):
            raise WtrunError(
                f"the feedback given was read for PR #{found.pr} at {found.head[:12]}, but the "
                f"records say PR #{record.pr_number} at {record.pushed_head[:12]}; read it "
                "again with --save-feedback"
            )
    new = feedback.new(found.items, record)
    counted = [f for f in new if feedback.counts(f, plan.revise.bots)]
    ignored = sorted({f.author or "?" for f in new if f not in counted})
    note = f" (ignored feedback of {', '.join(ignored)}: no write permission)" if ignored else ""
    if not counted:
        return f"nothing new on PR #{record.pr_number}{note}"
    if record.revisions >= plan.revise.max_rounds:
        return (
            f"{_plural(len(counted), 'item')} of feedback left to people: revise.max_rounds "
            f"({plan.revise.max_rounds}) follow-ups already ran{note}"
        )
    message = f"fix({tid}): address review feedback"
    head = follow_up(plan, git, store, tid, feedback.prompt(counted), message=message)
    store.revised(tid, addressed=[f.key for f in counted], head=head)
    if no_pr:
        done = "committed" if head else "the agent changed nothing"
        return (
            f"{_plural(len(counted), 'item')} addressed, {done}; `wtrun pr {plan.path}` "
            f"pushes it and answers on PR #{record.pr_number}{note}"
        )
    assert provider is not None
    return answer(plan, git, store, provider, tid, counted) + note


def _waits(plan: Plan, store: Store, provider: forge.Provider, tid: str) -> str | None:
    """Why the task is not revised now: a follow-up of its own still to push, its PR no
    longer open, or a PR it is stacked on merged or closed, which `wtrun sync` acts on first
    (the follow-up would be made on a branch that sync then moves)."""
    record = store.task(tid)
    assert record.pr_number is not None
    if record.unanswered:
        return (
            f"its last follow-up is not pushed yet; `wtrun pr {plan.path}` pushes it and "
            f"answers on PR #{record.pr_number}"
        )
    status = provider.pr_status(tid, record.pr_number)
    if status is not None and status.state != "open":
        store.pr_changed(tid, state=status.state)
        return f"PR #{record.pr_number} was {status.state}: nothing to revise"
    task = plan.task(tid)
    if task.after is None:
        return None
    parent = store.get(task.after)
    parent_branch = branch_of(plan, plan.task(task.after))
    if parent is None or parent.pr_number is None or record.pr_base != parent_branch:
        return None
    above = provider.pr_status(parent.id, parent.pr_number)
    if above is None or above.state == "open":
        return None
    return (
        f'the PR #{parent.pr_number} of "{parent.id}" it is stacked on was {above.state}: '
        f"`wtrun sync {plan.path}` moves this task first"
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
