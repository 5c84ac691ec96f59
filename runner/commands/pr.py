"""`wtrun pr PLAN`: push and open PRs for ready tasks (after `run --no-pr`, or in the
fan-out's final job, with the records of every stack merged in first)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import report
from ..errors import UsageError, WtrunError
from ..git import find_repo
from ..plan import load, task_by_id
from ..state import Store, TaskState, read_records


def merge_records(store: Store, task_ids: Sequence[str], files: Sequence[str]) -> list[str]:
    """Fold other machines' records of this plan into the local ones; returns task ids taken."""
    taken: list[str] = []
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
        incoming.tasks = {t: r for t, r in incoming.tasks.items() if t in task_ids}
        taken += store.merge(incoming)
    return taken


def open_pull_requests(plan_path: str, task_ids: Sequence[str], merge: Sequence[str]) -> int:
    from ..prs import open_prs

    plan = load(plan_path)
    git = find_repo(Path.cwd())
    selected = (
        [t.id for t in task_by_id(plan, task_ids)] if task_ids else [t.id for t in plan.tasks]
    )
    store = Store(git.common_dir(), plan.name)
    with store.lock():
        if merge:
            merged = merge_records(store, [t.id for t in plan.tasks], merge)
            print(
                f"wtrun: merged the records of {len(merged)} task"
                f"{'s' if len(merged) != 1 else ''} from {len(merge)} file"
                f"{'s' if len(merge) != 1 else ''}"
            )
        for tid in selected:
            record = store.record.tasks.get(tid)
            if (
                record
                and record.state is TaskState.READY
                and record.branch
                and not git.branch_exists(record.branch)
            ):
                store.set_state(
                    tid,
                    TaskState.FAILED,
                    f"branch {record.branch} is not in this repository; fetch it first (in the "
                    "fan-out, from the stack job's branches.bundle)",
                    step="push",
                )
        reporter = report.Reporter()
        open_prs(plan, git, store, selected, reporter)
        print(report.summary_text(store.record, selected, plan.budget_usd))
        report.write_step_summary(report.summary_markdown(store.record, selected, plan.budget_usd))
    bad = [
        t
        for t in selected
        if (r := store.record.tasks.get(t)) is None or r.state not in ("done", "no-changes")
    ]
    return 1 if bad else 0
