"""`wtrun pr PLAN`: push and open the PRs of ready tasks, after `run --no-pr` or in the
fan-out's final job; first the follow-ups `wtrun revise --no-pr` made. With `--merged` or
`--closed ID`, it marks a `local` PR as a reviewer would on a forge."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import forge, report
from ..errors import UsageError, WtrunError
from ..forge.local import set_pr_state
from ..git import Git, find_repo
from ..plan import Plan, load, task_by_id
from ..prs import open_prs, ready_provider, refresh_texts
from ..restack import short
from ..revise import answer
from ..state import Store, TaskState, read_records
from ..workspace import check_records


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
