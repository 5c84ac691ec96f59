"""`wtrun sync PLAN`: after review, stacked PRs follow their parents, and the base.

Each task's PR is read through the provider. When a parent's PR was merged (merge, squash
or rebase), its open children are first retargeted to the branch the parent merged into
(GitHub closes a PR whose base branch is deleted, and only its web UI retargets them), then
rebased onto it (`wtrun.restack`); a task stacked on a rebased task follows it the same way.
A `local` PR has no forge to mark it merged: one whose pushed work is on the base's tip
(`wtrun.landed`) is marked merged here, and followed the same way.
A child whose parent's PR was closed unmerged is blocked until that PR is open again.
`--rebase` also moves tasks on the base that are behind it, when `git merge-tree` says they
apply cleanly; a task stacked on an open PR follows that PR, never the base.
Drift and predicted conflicts are reported as at the end of a run (`wtrun.drift`).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import conflicts, drift, forge, prs, report, schedule
from .errors import WtrunError
from .forge import PrStatus
from .forge.local import LocalProvider
from .git import Git, find_repo, resolve_base
from .landed import landed
from .plan import Plan, branch_of, load
from .restack import Move, Stop, checked_out, restack, short
from .state import Step, Store, TaskRecord, TaskState
from .workspace import check_records

Out = Callable[[str], None]


def sync(plan_path: str, *, rebase: bool, delete_merged: bool) -> int:
    """`wtrun sync PLAN`; 1 when a task could not be synced."""
    plan = load(plan_path)
    git = find_repo(Path.cwd())
    store = Store(git.common_dir(), plan.name)
    with store.lock():
        store.reload()  # what a run wrote before it let go of the lock
        check_records(plan, git.root, store.record.tasks)
        return Syncer(plan, git, store).run(rebase=rebase, delete_merged=delete_merged)


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)  # task -> why it was not synced
    blocked: dict[str, str] = field(default_factory=dict)
    following: dict[str, str] = field(default_factory=dict)  # task -> parent with an open PR
    rebasable: list[str] = field(default_factory=list)  # tasks on the base --rebase may move

    def note(self, tid: str, text: str) -> None:
        self.lines.append(f"  {tid}: {text}")

    def stop(self, tid: str, why: str) -> None:
        self.stopped[tid] = why
        self.note(tid, f"not synced: {why}")


# ---------------------------------------------------------------- the remote


def remote_heads(git: Git, remote: str) -> dict[str, str]:
    """Branch -> commit on the remote (one `git ls-remote`)."""
    r = git.run("ls-remote", "--heads", remote, check=False)
    if r.returncode != 0:
        why = (r.stderr or r.stdout).strip().splitlines()
        raise WtrunError(
            f"cannot list the branches of remote {remote!r}: "
            f"{why[-1] if why else f'exit code {r.returncode}'}; check the network "
            "and the remote's URL (`git remote -v`)"
        )
    heads: dict[str, str] = {}
    for line in r.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            heads[ref[len("refs/heads/") :]] = sha
    return heads


def fetch(git: Git, remote: str, branches: Sequence[str]) -> None:
    """Fetch these branches of `remote` into its remote-tracking refs."""
    if not branches:
        return
    specs = [f"+refs/heads/{b}:refs/remotes/{remote}/{b}" for b in dict.fromkeys(branches)]
    r = git.run("fetch", "--quiet", "--no-tags", remote, *specs, check=False)
    if r.returncode != 0:
        why = (r.stderr or r.stdout).strip().splitlines()
        raise WtrunError(
            f"cannot fetch {', '.join(branches)} from remote {remote!r}: "
            f"{why[-1] if why else f'exit code {r.returncode}'}"
        )


def base_tip(plan: Plan, git: Git, heads: dict[str, str] | None) -> str:
    """The base's commit on the remote now (fetched when it is a branch there), or the local
    ref without a remote."""
    if heads is not None and plan.base in heads:
        sha = git.rev_parse(f"refs/remotes/{plan.remote}/{plan.base}")
        if sha:
            return sha
    return resolve_base(git, plan.remote, plan.base, fetch=True)


# ---------------------------------------------------------------- PR states


def branch(plan: Plan, store: Store, tid: str) -> str:
    """The task's branch, named by the plan (never by the records)."""
    return branch_of(plan, plan.task(tid))


def read_states(
    store: Store, provider: forge.Provider, worked: Sequence[str], outcome: Outcome
) -> dict[str, PrStatus]:
    """Each task's PR as the provider sees it now; what changed goes into the records."""
    found: dict[str, PrStatus] = {}
    for tid in worked:
        r = store.task(tid)
        if r.pr_number is None:
            continue
        if r.pr_state == "merged":  # final: no need to ask again
            found[tid] = PrStatus("merged", r.pr_base)
            continue
        try:
            status = provider.pr_status(tid, r.pr_number)
        except WtrunError as e:
            outcome.stop(tid, f"cannot read PR #{r.pr_number}: {e}")
            continue
        if status is None:
            continue
        found[tid] = status
        new_state = status.state if status.state != r.pr_state else None
        if new_state == "merged":
            outcome.note(tid, f"PR #{r.pr_number} was merged into {status.base}")
        elif new_state == "closed":
            outcome.note(tid, f"PR #{r.pr_number} was closed without merging")
        new_base = status.base if status.base and status.base != r.pr_base else None
        if new_state or new_base:
            store.pr_changed(tid, state=new_state, base=new_base)
    return found


def target(
    plan: Plan, store: Store, status: dict[str, PrStatus], blocked: Sequence[str], tid: str
) -> tuple[str, str]:
    """Where the task's PR belongs now: ("parent", TASK) while its parent's PR is open;
    ("merged", BRANCH) once its parents merged, BRANCH being where the last of them went;
    ("blocked", TASK) when a parent was closed unmerged; ("root", plan base)."""
    parent = plan.task(tid).after
    if parent is None:
        return "root", plan.base
    while True:
        state = status[parent].state if parent in status else None
        if parent in blocked or state == "closed":
            return "blocked", parent
        if state != "merged":
            return "parent", parent
        into = status[parent].base or plan.base
        owner = next((t.id for t in plan.tasks if branch(plan, store, t.id) == into), None)
        if owner is None or status.get(owner, PrStatus("open", None)).state != "merged":
            return "merged", into
        parent = owner


# ---------------------------------------------------------------- merged branches


def delete_merged_branches(
    git: Git,
    plan: Plan,
    store: Store,
    provider: forge.Provider,
    heads: dict[str, str],
    order: Sequence[str],
    outcome: Outcome,
) -> None:
    """Delete the remote branches of merged PRs that nothing is based on any more, and
    their worktrees and local branches when nothing would be lost."""
    for tid in order:
        r = store.task(tid)
        name = branch(plan, store, tid)
        if r.pr_state != "merged" or not r.created_branch or name not in heads:
            continue
        try:
            based = provider.open_prs_into(name)
            if based:
                numbers = ", ".join(f"#{n}" for n in based)
                outcome.note(tid, f"branch {name} kept: open PR {numbers} is based on it")
                continue
            provider.delete_branch(name)
        except WtrunError as e:
            outcome.stop(tid, f"cannot delete branch {name}: {e}")
            continue
        heads.pop(name, None)
        here = _delete_local(git, store, tid, name)
        outcome.note(tid, f"deleted the merged branch {name} on {plan.remote}{here}")


def _delete_local(git: Git, store: Store, tid: str, branch: str) -> str:
    worktree = checked_out(git, branch)
    if worktree is not None:
        if git.run("worktree", "remove", str(worktree), check=False).returncode != 0:
            return (
                f"; its worktree {worktree} has changes and is kept (`git worktree "
                f"remove --force {shlex.quote(str(worktree))}` drops them)"
            )
        store.worktree_removed(tid)
    local = git.rev_parse(f"refs/heads/{branch}")
    if local is None:
        return ""
    if local != store.task(tid).head:
        return "; the local branch has commits wtrun did not record and is kept"
    git("branch", "-D", branch)
    return " and here" if worktree is None else ", its worktree and local branch"


# ---------------------------------------------------------------- the report


def show(
    plan: Plan,
    store: Store,
    outcome: Outcome,
    checked: tuple[str, drift.Drift | None, conflicts.Prediction],
    *,
    rebase: bool,
    out: Out,
) -> None:
    """What the sync did, and what it found, on `out` and in the step summary. `--rebase` is
    suggested only when it would move a task: one on the base, behind it, applying cleanly."""
    tip, found, p = checked
    out(f"wtrun sync: plan {plan.name}; base {plan.base} at {short(tip)}")
    for line in outcome.lines or ["  every stacked PR is where it belongs"]:
        out(line)
    for line in drift.drift_lines(plan, found, store, outcome.following) if found else []:
        out(line)
    movable = [
        t
        for t in outcome.rebasable
        if found is not None and found.behind.get(t) and not store.task(t).base_conflicts
    ]
    if movable and not rebase:
        out(f"  `wtrun sync {plan.path} --rebase` rebases the tasks that apply cleanly")
    for line in drift.conflict_lines(p, plan):
        out(line)
    if outcome.stopped:
        out(
            f"wtrun sync: {drift.plural(len(outcome.stopped), 'task')} not synced: "
            f"{', '.join(outcome.stopped)}"
        )
    actions = "".join(f"- {line.strip()}\n" for line in outcome.lines)
    summary = f"### wtrun sync: plan `{plan.name}`\n\n" + (
        actions or "Every stacked PR is where it belongs.\n"
    )
    report.write_step_summary(summary + "\n" + drift.markdown(plan, found, p, store))


# ---------------------------------------------------------------- one sync


def is_ancestor(git: Git, commit: str, of: str) -> bool:
    return git.ok("merge-base", "--is-ancestor", commit, of)


class Syncer:
    """One `wtrun sync`: PR states, retargets, rebases, drift, conflicts, PR texts."""

    def __init__(self, plan: Plan, git: Git, store: Store, out: Out = print) -> None:
        self.plan = plan
        self.git = git
        self.store = store
        self.out = out
        self.outcome = Outcome()
        self.status: dict[str, PrStatus] = {}
        self.heads: dict[str, str] | None = None  # the remote's branches, when there is one
        self.provider: forge.Provider | None = None
        self.moved: dict[str, str] = {}  # branch -> the head this sync pushed
        self.rebase = False

    def branch(self, tid: str) -> str:
        return branch(self.plan, self.store, tid)

    def run(self, *, rebase: bool, delete_merged: bool) -> int:
        plan, git, store = self.plan, self.git, self.store
        self.rebase = rebase
        worked = [t.id for t in plan.tasks if (r := store.get(t.id)) is not None and r.head]
        if not worked:
            self.out(
                f"wtrun sync: plan {plan.name} has no finished tasks recorded in this "
                "repository; nothing to sync"
            )
            return 0
        if git.has_remote(plan.remote):
            self.heads = remote_heads(git, plan.remote)
        if plan.pr.provider != "none":
            self.provider = forge.make(plan, git, store.root)
            self.status = read_states(store, self.provider, worked, self.outcome)
        self._fetch(worked)
        tip = base_tip(plan, git, self.heads)
        self._find_merges(tip)
        order = schedule.pr_order(plan, worked)
        for tid in order:
            try:
                self._sync_task(tid, tip)
            except WtrunError as e:
                self.outcome.stop(tid, str(e))
        if delete_merged and self.provider is not None and self.heads is not None:
            delete_merged_branches(git, plan, store, self.provider, self.heads, order, self.outcome)
        found, prediction = drift.check(plan, git, store, tip)
        if self.provider is not None:
            texts = [t for t in order if t not in self.outcome.blocked]
            failed = prs.refresh_texts(plan, store, self.provider, texts, self.outcome.lines.append)
            for tid in failed:
                self.outcome.stopped.setdefault(tid, "its PR text could not be updated")
        show(plan, store, self.outcome, (tip, found, prediction), rebase=rebase, out=self.out)
        return 1 if self.outcome.stopped else 0

    def _fetch(self, worked: Sequence[str]) -> None:
        """The task branches, and the branches merged PRs went into: their commits must be
        here to rebase onto them (a fresh clone in CI has none of them)."""
        if self.heads is None:
            return
        wanted = [self.plan.base, *(self.branch(t) for t in worked)]
        wanted += [s.base for s in self.status.values() if s.state == "merged" and s.base]
        fetch(self.git, self.plan.remote, [b for b in dict.fromkeys(wanted) if b in self.heads])

    def _find_merges(self, tip: str) -> None:
        """`local` PRs whose pushed work a reviewer merged into the base by hand: marked
        merged, as `wtrun pr --merged` would, and synced from here on as a merged GitHub PR.
        With no PRs (provider `none`), the pushed branch stands for one. Only the fetched
        base and the commits here are read: no request per task."""
        provider = self.provider
        if self.plan.pr.provider == "none":
            self._find_merged_branches(tip)
        if not isinstance(provider, LocalProvider):
            return
        base = self.plan.base
        for tid, status in list(self.status.items()):
            r = self.store.task(tid)
            if status.state != "open" or r.pr_number is None:
                continue
            if r.pushed_head is None or r.start_commit is None:
                continue
            try:
                found = landed(self.git, r.pushed_head, r.start_commit, tip)
                if found is None:
                    continue
                provider.merged(r.pr_number, base)
            except WtrunError as e:
                self.outcome.stop(tid, f"cannot tell whether PR #{r.pr_number} was merged: {e}")
                continue
            self.store.pr_changed(tid, state="merged", base=base)
            self.status[tid] = PrStatus("merged", base)
            self.outcome.note(
                tid, f"PR #{r.pr_number} was merged into {base}: {found.describe(base)}"
            )

    def _find_merged_branches(self, tip: str) -> None:
        base = self.plan.base
        for task in self.plan.tasks:
            r = self.store.get(task.id)
            if r is not None and r.pr_number is None and r.pr_state == "merged":
                self.status[task.id] = PrStatus("merged", r.pr_base or base)  # found earlier
                continue
            if r is None or not self._in_review(r) or r.start_commit is None:
                continue
            assert r.pushed_head is not None
            try:
                found = landed(self.git, r.pushed_head, r.start_commit, tip)
            except WtrunError as e:
                self.outcome.stop(task.id, f"cannot tell whether it was merged: {e}")
                continue
            if found is None:
                continue
            self.store.pr_changed(task.id, state="merged", base=base)
            self.status[task.id] = PrStatus("merged", base)
            self.outcome.note(
                task.id, f"branch {r.branch} was merged into {base}: {found.describe(base)}"
            )

    def _in_review(self, r: TaskRecord) -> bool:
        """Whether the task's PR is open (blocked ones too: they may be unblocked)."""
        after_pr = r.state is TaskState.BLOCKED and r.step == Step.PR.value
        if r.head is None or not (r.state is TaskState.DONE or after_pr):
            return False
        if r.pr_number is None:  # provider none: a pushed branch stands for its PR
            pushed = r.pushed_head is not None and self.plan.pr.provider == "none"
            return pushed and r.pr_state != "merged"
        return (r.pr_state or "open") == "open"

    def _sync_task(self, tid: str, tip: str) -> None:
        r = self.store.task(tid)
        if tid in self.outcome.stopped or not self._in_review(r):
            return
        kind, where = target(self.plan, self.store, self.status, list(self.outcome.blocked), tid)
        if kind == "blocked":
            self._block(tid, where)
            return
        if r.state is TaskState.BLOCKED:
            self.store.set_state(tid, TaskState.DONE)
            self.outcome.note(tid, "no longer blocked: the PRs it builds on are open or merged")
        if kind == "parent":
            self.outcome.following[tid] = where
            onto = self.store.task(where).head
            if onto and r.start_commit and not is_ancestor(self.git, r.start_commit, onto):
                self._restack(tid, Move(self.branch(tid), onto, self.branch(where), r.start_commit))
            return
        base = where == self.plan.base
        onto = tip if base else (self.moved.get(where) or self._remote_tip(where))
        if onto is None:
            raise Stop(f"cannot find branch {where} on {self.plan.remote}")
        if kind == "merged" and self._follow_merge(tid, where, onto):
            return
        if base:
            self.outcome.rebasable.append(tid)
        if self.rebase and base and r.head and not is_ancestor(self.git, onto, r.head):
            clash = conflicts.merge_conflicts(self.git, onto, r.head)
            if clash:
                self.outcome.note(tid, f"not rebased: conflicts with {where} in {', '.join(clash)}")
                return
            self._restack(tid, Move(self.branch(tid), onto, where, r.start_commit or onto))

    def _block(self, tid: str, parent: str) -> None:
        because = (
            f'task "{parent}" it builds on is blocked'
            if parent in self.outcome.blocked
            else f"its parent's PR #{self.store.task(parent).pr_number} ({parent}) was closed "
            "without merging"
        )
        self.outcome.blocked[tid] = because
        self.outcome.note(tid, f"blocked: {because}; its PR and branch are left as they are")
        r = self.store.task(tid)
        if (r.state, r.reason) != (TaskState.BLOCKED, because):
            self.store.set_state(tid, TaskState.BLOCKED, because)

    def _follow_merge(self, tid: str, into: str, onto: str) -> bool:
        """Retarget the PR to where its parents merged, then rebase onto it; True when the
        branch was rebased."""
        r = self.store.task(tid)
        current = self.status.get(tid)
        was = current.base if current is not None else r.pr_base
        # Retarget first: deleting the merged parent's branch would close this PR.
        if r.pr_number is not None and self.provider is not None and was != into:
            self.provider.retarget(tid, r.pr_number, into)
            self.store.pr_changed(tid, base=into)
            self.status[tid] = PrStatus("open", into)
            self.outcome.note(tid, f"PR #{r.pr_number} now targets {into} (was {was})")
        upstream = r.start_commit
        if upstream and not is_ancestor(self.git, upstream, onto):
            self._restack(tid, Move(self.branch(tid), onto, into, upstream))
            return True
        return False

    def _remote_tip(self, branch: str) -> str | None:
        return self.git.rev_parse(f"refs/remotes/{self.plan.remote}/{branch}")

    def _restack(self, tid: str, move: Move) -> None:
        r = self.store.task(tid)
        leased = r.pushed_head
        exists = self.heads is not None
        new = restack(self.git, r, move, self.plan.remote, remote_exists=exists)
        pushed = new if leased else None
        self.store.restacked(tid, head=new, pushed_head=pushed, start_commit=move.onto)
        self.moved[move.branch] = new
        how = f"pushed (lease on {short(leased)})" if leased else "not pushed"
        self.outcome.note(
            tid,
            f"rebased onto {move.onto_name} ({short(move.onto)}): {move.branch} is now at "
            f"{short(new)}, {how}",
        )
