"""`wtrun clean PLAN`: remove the plan's worktrees without losing work.

A worktree goes when nothing in it would be lost: no uncommitted changes, and every
commit of its branch is on a remote-tracking branch, on the plan's base, or was pushed
by wtrun. Otherwise it is kept and listed, unless `--force`. A stack (a root task and the
tasks stacked on it) is cleaned whole or not at all: a child's worktree is built on its
parent's work, and half a stack cannot be run again nor reviewed. `--task` cleans just the
tasks it names. Only worktrees and branches wtrun made are removed (the records say which);
anything else is left alone. A cleaned
task's records and logs are removed, so that a later run starts it afresh, unless its work
was pushed: those are kept (a later run must not redo reviewed work) until `--forget`,
which refuses while the task's PR is open unless `--force`. Once no task has records, the
run's base commit goes too and the next run starts from a fresh base.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..git import Git, find_repo
from ..plan import Plan, load, task_by_id
from ..plan.graph import root_of
from ..proc import CommandError
from ..state import Store, TaskRecord, iter_records
from ..workspace import check_records

_SHOWN = 5


@dataclass
class _Outcome:
    cleaned: bool
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Found:
    """One task's worktree and branch as clean finds them, before it touches anything."""

    path: Path | None
    shown: str
    is_worktree: bool
    branch: str | None  # the task's branch, when it exists
    ours_branch: bool
    adopted: bool  # a worktree that was there before wtrun used it
    unpushed: list[str]
    losses: str  # what removing it would drop; "" when nothing


def clean(plan_path: str, task_ids: Sequence[str], force: bool, *, forget: bool = False) -> int:
    plan = load(plan_path)
    chosen = [t.id for t in task_by_id(plan, task_ids)] if task_ids else None
    git = find_repo(Path.cwd())
    store = Store(git.common_dir(), plan.name)
    with store.lock():
        store.reload()
        check_records(plan, git.root, store.record.tasks)
        return _clean(plan, git, store, chosen, force, forget)


def _clean(
    plan: Plan, git: Git, store: Store, chosen: list[str] | None, force: bool, forget: bool
) -> int:
    git("worktree", "prune")
    registered = {p.resolve() for p in git.worktrees()}
    record = store.record
    if chosen is None:
        # Tasks since removed from the plan may still have records: theirs too.
        in_plan = [t.id for t in plan.tasks]
        ids = in_plan + [t for t in record.tasks if t not in in_plan]
    else:
        ids = chosen
    present = [tid for tid in ids if tid in record.tasks]
    found = {tid: _find(plan, git, store, record.tasks[tid], registered) for tid in present}
    held = {
        tid: why for tid in present if (why := _holds(record.tasks[tid], found[tid], force, forget))
    }
    held_by = _held_by_stack(plan, present, held)
    refused: list[str] = []
    stacked: list[str] = []
    failed: list[str] = []
    mentioned: set[Path] = set()
    for tid in ids:
        r = record.tasks.get(tid)
        if r is None:
            if chosen is not None:
                print(f"{tid}: nothing to clean (no records)")
            continue
        if r.worktree:
            mentioned.add(Path(r.worktree).resolve())
        if tid in held:
            print(f"{tid}: {held[tid]}")
            refused.append(tid)
            continue
        if tid in held_by:
            print(
                f"{tid}: kept: it is in a stack with {_names(held_by[tid])}, which is kept, and "
                f"a stack is cleaned whole; `wtrun clean {plan.path} --task {tid}` cleans "
                f"{tid} alone"
            )
            stacked.append(tid)
            continue
        outcome = _clean_task(git, r, found[tid])
        for line in outcome.lines:
            print(f"{tid}: {line}")
        if outcome.cleaned and r.pushed_head and not forget:
            # Pushed work is under review: a later run must not do it again.
            store.worktree_removed(tid)
            print(f"{tid}: its records are kept (pushed; `--forget` drops them)")
        elif outcome.cleaned:
            if not outcome.lines:
                print(f"{tid}: forgot its records (no worktree or branch left)")
            store.forget(tid)
        else:
            failed.append(tid)
    if not record.tasks and record.base_commit is not None:
        store.set_base(None)
    git("worktree", "prune")
    if chosen is None:
        _mention_strangers(plan, git, store, mentioned)
    if not present and chosen is None:
        print(f'nothing to clean: plan "{plan.name}" has no records in this repository')
    if refused:
        print(
            f"\nwtrun: kept {len(refused)} worktree{'s' if len(refused) > 1 else ''} with "
            f"work that is not pushed ({', '.join(refused)}); push or commit it first, or "
            f"run `wtrun clean {plan.path} --force` to drop it"
        )
    if stacked:
        whole = "their stacks" if len(stacked) > 1 else "its stack"
        print(
            f"\nwtrun: kept {_names(stacked)} as well, to clean {whole} whole later; "
            "`--task ID` cleans one task alone"
        )
    if failed:
        print(f"\nwtrun: could not clean {', '.join(failed)} (see above); their records are kept")
    return 1 if refused or stacked or failed else 0


def _holds(r: TaskRecord, found: _Found, force: bool, forget: bool) -> str | None:
    """Why the task must be kept (and its stack with it), or None."""
    if forget and r.pr_number is not None and r.pr_state in (None, "open") and not force:
        return (
            f"kept: its PR #{r.pr_number} is open; close it first, or add --force "
            "(a later run would open another)"
        )
    if found.losses and not found.adopted and not force:
        where = f"kept {found.shown}" if found.is_worktree else f"kept branch {found.branch}"
        return f"{where}: {found.losses}"
    return None


def _held_by_stack(
    plan: Plan, present: Sequence[str], held: Mapping[str, str]
) -> dict[str, list[str]]:
    """Tasks kept because a task of their stack is: task -> those tasks. Tasks no longer
    in the plan stand alone."""
    in_plan = {t.id for t in plan.tasks}
    stack = {tid: root_of(plan, tid) if tid in in_plan else tid for tid in present}
    return {
        tid: holders
        for tid in present
        if tid not in held and (holders := [h for h in held if stack[h] == stack[tid]])
    }


def _names(ids: Sequence[str]) -> str:
    return ids[0] if len(ids) == 1 else f"{', '.join(ids[:-1])} and {ids[-1]}"


def _find(plan: Plan, git: Git, store: Store, r: TaskRecord, registered: set[Path]) -> _Found:
    path = Path(r.worktree) if r.worktree else None
    is_worktree = path is not None and path.resolve() in registered and path.exists()
    branch = r.branch if r.branch and git.branch_exists(r.branch) else None
    ours_branch = branch is not None and r.created_branch
    adopted = is_worktree and not (r.created_worktree or r.created_branch)
    dirty = git.status_paths(path) if is_worktree and path is not None and not adopted else []
    heads = [
        h for h in (_head(git, path) if is_worktree else None, branch if ours_branch else None) if h
    ]
    unpushed = _unpushed(plan, git, store, r, heads) if heads and not adopted else []
    return _Found(
        path=path,
        shown=_rel(git, path) if path else "",
        is_worktree=is_worktree,
        branch=branch,
        ours_branch=ours_branch,
        adopted=adopted,
        unpushed=unpushed,
        losses=_describe(dirty, unpushed, branch),
    )


def _clean_task(git: Git, r: TaskRecord, found: _Found) -> _Outcome:
    """Remove what `found` says is the task's (its losses were allowed: none, or --force);
    no lines when there was nothing left to remove."""
    path, shown, branch, losses = found.path, found.shown, found.branch, found.losses
    if found.adopted:
        return _Outcome(
            True,
            [f"left {shown} alone: it was there before wtrun used it; its records are removed"],
        )
    lines: list[str] = []
    if found.is_worktree and path is not None:
        try:
            git("worktree", "remove", "--force", str(path))
        except CommandError as e:
            return _Outcome(False, [f"could not remove {shown}: {e}"])
        lines.append(f"removed {shown}" + (f", dropping {losses}" if losses else ""))
    elif path is not None and path.exists():
        lines.append(f"left {shown} alone: it is no longer a git worktree")
    if branch is not None:
        if not found.ours_branch:
            lines.append(f"kept branch {branch}: wtrun did not make it")
        else:
            try:
                git("branch", "-D", branch)
            except CommandError as e:
                lines.append(f"could not delete branch {branch}: {e}")
                return _Outcome(False, lines)
            why = (
                "dropped with --force"
                if found.unpushed
                else "pushed"
                if r.pushed_head
                else "nothing unpushed on it"
            )
            if not found.is_worktree and losses:
                why = f"dropping {losses}"
            lines.append(f"deleted branch {branch} ({why})")
    return _Outcome(True, lines)


def _head(git: Git, path: Path | None) -> str | None:
    if path is None:
        return None
    return git.rev_parse("HEAD", cwd=path)


def _unpushed(plan: Plan, git: Git, store: Store, r: TaskRecord, heads: list[str]) -> list[str]:
    """Commits of `heads` found nowhere else: not on a remote-tracking branch, the plan's
    base, the commit the task started from, nor the head wtrun pushed."""
    known = [c for c in (r.start_commit, store.record.base_commit, r.pushed_head) if c]
    known = [c for c in known if git.rev_parse(c)]
    if git.rev_parse(plan.base):
        known.append(plan.base)
    out = git("rev-list", *heads, "--not", *known, "--remotes")
    return out.split()


def _describe(dirty: list[str], unpushed: list[str], branch: str | None) -> str:
    parts = []
    if dirty:
        shown = ", ".join(dirty[:_SHOWN]) + (
            f" and {len(dirty) - _SHOWN} more" if len(dirty) > _SHOWN else ""
        )
        parts.append(f"{len(dirty)} uncommitted change{'s' if len(dirty) > 1 else ''} ({shown})")
    if unpushed:
        on = f" on {branch}" if branch else ""
        parts.append(f"{len(unpushed)} unpushed commit{'s' if len(unpushed) > 1 else ''}{on}")
    return " and ".join(parts)


def _rel(git: Git, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(git.root.resolve()))
    except ValueError:
        return str(path)


def _mention_strangers(plan: Plan, git: Git, store: Store, mentioned: set[Path]) -> None:
    """Worktrees in the plan's folder that no plan's records own are someone's own."""
    folder = (git.root / plan.worktrees).resolve()
    owned: set[Path] = set()
    for root in iter_records(git.common_dir()):
        other = store if root == store.root else Store(git.common_dir(), root.name)
        owned |= {Path(t.worktree).resolve() for t in other.record.tasks.values() if t.worktree}
    for path in sorted(p.resolve() for p in git.worktrees()):
        if path.is_relative_to(folder) and path not in owned | mentioned:
            print(f"left {_rel(git, path)} alone: wtrun did not make it")
