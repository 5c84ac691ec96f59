"""After the run: stacks that survive review and merge, a moving base, predicted conflicts.

`wtrun sync PLAN` reads each task's PR through the provider. When a parent's PR was merged
(merge, squash or rebase), its open children are first retargeted to the branch the parent
merged into (GitHub closes a PR whose base branch is deleted, and only its web UI retargets
them), then rebased with `git rebase --onto NEW-BASE OLD-PARENT-HEAD`: only the child's own
commits are replayed, so a squash merge of the parent causes no phantom conflicts. A task
stacked on a rebased task follows it the same way. A rebased branch is pushed with
`--force-with-lease` on the head wtrun recorded: the one force push wtrun makes, only on
branches it created, and refused when anybody else pushed to them.

Also here: base drift (how far the base moved under the open tasks; `--rebase` moves those
that `git merge-tree` says apply cleanly) and the cross-task conflict prediction of
`wtrun.conflicts`, which the end of every run (`after_run`) repeats.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import conflicts, forge, render, report, schedule
from .errors import WtrunError
from .forge import PrStatus
from .git import Git, resolve_base
from .plan import Plan, base_branch, branch_of, task_context
from .state import Store, TaskRecord

Out = Callable[[str], None]


class _Stop(WtrunError):
    """This task cannot be synced now; the message says why and what to do."""


@dataclass
class Drift:
    base_tip: str | None
    moved: int | None  # commits on the base since the run's base commit
    behind: dict[str, int] = field(default_factory=dict)


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)  # task -> why it was not synced
    blocked: dict[str, str] = field(default_factory=dict)
    drift: Drift | None = None
    prediction: conflicts.Prediction | None = None


# ---------------------------------------------------------------- git helpers


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


def is_ancestor(git: Git, commit: str, of: str) -> bool:
    return git.ok("merge-base", "--is-ancestor", commit, of)


def count(git: Git, revisions: str) -> int:
    return int(git("rev-list", "--count", revisions).strip() or 0)


def _identity(git: Git) -> dict[str, str] | None:
    """A committer for the rebased commits when the repository has none configured."""
    if git("config", "user.email", check=False).strip():
        return None
    return {"GIT_COMMITTER_NAME": "wtrun", "GIT_COMMITTER_EMAIL": "wtrun@localhost"}


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------- PR bodies


def body_context(plan: Plan, store: Store, tid: str) -> dict[str, Any]:
    """The PR text's variables as they stand now: "Stacked on #N" names the PR of the branch
    the PR is based on (none once that one merged), children are the open PRs based on it."""
    task = plan.task(tid)
    record = store.record.task(tid)
    branch = record.branch or branch_of(plan, task)
    default_base = base_branch(plan, task)
    base = record.pr_base or default_base
    by_branch = {
        (r.branch or branch_of(plan, t)): r
        for t in plan.tasks
        if (r := store.record.tasks.get(t.id)) is not None
    }
    under = by_branch.get(base)
    stacked_on = under.pr_number if under is not None and under.pr_state != "merged" else None
    children = []
    for t in plan.tasks:
        r = store.record.tasks.get(t.id)
        if r is None or r.pr_number is None or r.pr_state in ("merged", "closed"):
            continue
        r_base = r.pr_base or base_branch(plan, t)
        if r_base == branch:
            children.append(r.pr_number)
    return task_context(
        plan,
        task,
        ports=record.ports,
        worktree=record.worktree or "",
        branch=branch,
        base=base,
        pr=True,
        run={
            "files": record.files,
            "verify": record.verify,
            "cost_usd": record.cost_usd,
            "stacked_on": stacked_on,
            "children": children,
            "conflicts": record.conflicts,
        },
    )


def update_bodies(
    plan: Plan, store: Store, provider: forge.Provider, task_ids: Sequence[str], out: Out
) -> list[str]:
    """Re-render the PR text of these tasks' open PRs; send it where it changed. Returns the
    tasks whose PR could not be updated, with the reason printed."""
    failed = []
    for tid in task_ids:
        r = store.record.tasks.get(tid)
        if r is None or r.pr_number is None or r.pr_state not in (None, "open"):
            continue
        body = render.pr_body(plan, body_context(plan, store, tid))
        if body == r.pr_body:
            continue
        try:
            provider.update_body(tid, r.pr_number, body)
        except WtrunError as e:
            out(f"  {tid}: could not update the text of PR #{r.pr_number}: {e}")
            failed.append(tid)
            continue
        store.pr_changed(tid, body=body)
    return failed


# ---------------------------------------------------------------- drift and conflicts


def base_tip(plan: Plan, git: Git, heads: dict[str, str] | None) -> str:
    """The base's commit on the remote now (`Syncer._fetch` fetched it when it is a branch
    there), or the local ref without a remote."""
    if heads is not None and plan.base in heads:
        sha = git.rev_parse(f"refs/remotes/{plan.remote}/{plan.base}")
        if sha:
            return sha
    return resolve_base(git, plan.remote, plan.base, fetch=True)


def measure_drift(plan: Plan, git: Git, store: Store, tip: str) -> Drift:
    base_commit = store.record.base_commit
    moved = None
    if base_commit and git.rev_parse(base_commit):
        moved = count(git, f"{base_commit}..{tip}")
    drift = Drift(tip, moved)
    heads = conflicts.open_heads(plan, store.record)
    dirty = False
    for tid, r in store.record.tasks.items():
        behind = count(git, f"{heads[tid]}..{tip}") if tid in heads else None
        if behind is not None:
            drift.behind[tid] = behind
        if r.behind != behind:
            store.drifted(tid, behind)
            dirty = True
    if dirty:
        store.save()
    drift.behind = {t.id: drift.behind[t.id] for t in plan.tasks if t.id in drift.behind}
    return drift


def drift_lines(plan: Plan, drift: Drift, store: Store) -> list[str]:
    if not drift.behind or not any(drift.behind.values()):
        return []
    since = store.record.base_commit
    moved = (
        ""
        if drift.moved is None
        else (f" ({_plural(drift.moved, 'commit')} since the run's base {_short(since)})")
    )
    lines = [f"base {plan.base} is at {_short(drift.base_tip)}{moved}:"]
    for tid, behind in drift.behind.items():
        if not behind:
            continue
        clash = store.record.task(tid).base_conflicts
        tail = (
            f"; conflicts with {plan.base} in {', '.join(clash)}" if clash else "; applies cleanly"
        )
        lines.append(f"  {tid}: {_plural(behind, 'commit')} behind{tail}")
    return lines


def check(
    plan: Plan, git: Git, store: Store, tip: str | None
) -> tuple[Drift | None, conflicts.Prediction, list[str]]:
    """Drift (when the base's tip is known) and the conflict prediction, written into the
    records; returns them and the tasks whose `conflicts` changed."""
    drift = measure_drift(plan, git, store, tip) if tip else None
    prediction = conflicts.predict_plan(plan, git, store.record, tip)
    changed = conflicts.record_prediction(plan, store, prediction, checked_base=tip is not None)
    return drift, prediction, changed


def conflict_lines(prediction: conflicts.Prediction, plan: Plan) -> list[str]:
    described = conflicts.describe(prediction, plan.base)
    if not described:
        return []
    return ["predicted conflicts (git merge-tree):", *(f"  {line}" for line in described)]


def _markdown(
    plan: Plan, drift: Drift | None, prediction: conflicts.Prediction, store: Store
) -> str:
    out = []
    if prediction.pairs or prediction.base:
        out += ["#### Predicted conflicts", "", "| tasks | files |", "|---|---|"]
        for (a, b), files in prediction.pairs.items():
            out.append(f"| `{a}` and `{b}` | {', '.join(f'`{f}`' for f in files)} |")
        for tid, files in prediction.base.items():
            out.append(f"| `{tid}` and `{plan.base}` | {', '.join(f'`{f}`' for f in files)} |")
        out.append("")
    if drift is not None and any(drift.behind.values()):
        out += [
            f"#### Base `{plan.base}` moved",
            "",
            "| task | behind | conflicts |",
            "|---|---|---|",
        ]
        for tid, behind in drift.behind.items():
            if behind:
                clash = ", ".join(f"`{f}`" for f in store.record.task(tid).base_conflicts)
                out.append(f"| `{tid}` | {behind} | {clash or 'none'} |")
        out.append("")
    return "\n".join(out) + "\n" if out else ""


def after_run(plan: Plan, git: Git, store: Store, reporter: report.Reporter) -> None:
    """The end of `wtrun run`: base drift and predicted conflicts, in the summary, the records
    (`status --json`) and the PR texts. Never fails the run: a problem is one line."""

    say = reporter.note

    if not conflicts.open_heads(plan, store.record):
        return
    try:
        tip = None
        if git.has_remote(plan.remote):
            try:
                tip = resolve_base(git, plan.remote, plan.base, fetch=True)
            except WtrunError as e:  # offline: the tasks can still be compared
                say(f"wtrun: base drift not checked: {e}")
        else:
            tip = git.rev_parse(plan.base)
        drift, prediction, changed = check(plan, git, store, tip)
        if drift:
            reporter.section(
                "drift",
                f"base {plan.base} moved",
                drift_lines(plan, drift, store),
                base_tip=drift.base_tip,
                behind=drift.behind,
            )
        reporter.section(
            "conflicts",
            "predicted conflicts",
            conflict_lines(prediction, plan),
            pairs=[{"tasks": list(p), "files": list(f)} for p, f in prediction.pairs.items()],
            base={t: list(f) for t, f in prediction.base.items()},
        )
        report.write_step_summary(_markdown(plan, drift, prediction, store))
        with_prs = [t for t in changed if store.record.task(t).pr_number is not None]
        if with_prs and plan.pr.provider != "none":
            update_bodies(
                plan, store, forge.make(plan, git, store), with_prs, lambda text: say(text.strip())
            )
    except WtrunError as e:
        say(f"wtrun: could not check base drift and conflicts: {e}")
    except Exception:  # the run itself is over and recorded: report, do not crash
        log = store.log_path("_wtrun", "after-run-error")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(traceback.format_exc(), encoding="utf-8")
        say(f"wtrun: could not check base drift and conflicts (internal error; details in {log})")


# ---------------------------------------------------------------- sync


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

    # -- small helpers ---------------------------------------------------------------------

    def record(self, tid: str) -> TaskRecord:
        return self.store.record.task(tid)

    def branch(self, tid: str) -> str:
        r = self.store.record.tasks.get(tid)
        return r.branch if r is not None and r.branch else branch_of(self.plan, self.plan.task(tid))

    def note(self, tid: str, text: str) -> None:
        self.outcome.lines.append(f"  {tid}: {text}")

    def stop(self, tid: str, why: str) -> None:
        self.outcome.stopped[tid] = why
        self.note(tid, f"not synced: {why}")

    def pr_open(self, tid: str) -> bool:
        r = self.store.record.tasks.get(tid)
        if r is None or r.state != "done" or r.head is None:
            return False
        if r.pr_number is None:  # provider none: a pushed branch stands for its PR
            return r.pushed_head is not None and self.plan.pr.provider == "none"
        return (r.pr_state or "open") == "open"

    # -- the whole sync --------------------------------------------------------------------

    def run(self, *, rebase: bool, delete_merged: bool) -> int:
        plan, git = self.plan, self.git
        self.rebase = rebase
        worked = [
            t.id
            for t in plan.tasks
            if (r := self.store.record.tasks.get(t.id)) is not None and r.head
        ]
        if not worked:
            self.out(
                f"wtrun sync: plan {plan.name} has no finished tasks recorded in this "
                "repository; nothing to sync"
            )
            return 0
        if git.has_remote(plan.remote):
            self.heads = remote_heads(git, plan.remote)
        if plan.pr.provider != "none":
            self.provider = forge.make(plan, git, self.store)
            self._read_states(worked)
        self._fetch(worked)
        tip = base_tip(plan, git, self.heads)
        order = schedule.pr_order(plan, worked)
        for tid in order:
            try:
                self._sync_task(tid, tip)
            except WtrunError as e:
                self.stop(tid, str(e))
        if delete_merged:
            self._delete_merged(order)
        drift, prediction, _ = check(plan, git, self.store, tip)
        self.outcome.drift, self.outcome.prediction = drift, prediction
        if self.provider is not None:
            texts = [t for t in order if t not in self.outcome.blocked]
            failed = update_bodies(
                plan, self.store, self.provider, texts, self.outcome.lines.append
            )
            for tid in failed:
                self.outcome.stopped.setdefault(tid, "its PR text could not be updated")
        self._print(tip, drift, prediction)
        actions = [line.strip() for line in self.outcome.lines]
        summary = f"### wtrun sync: plan `{plan.name}`\n\n" + (
            "".join(f"- {line}\n" for line in actions)
            if actions
            else "Every stacked PR is where it belongs.\n"
        )
        report.write_step_summary(summary + "\n" + _markdown(plan, drift, prediction, self.store))
        return 1 if self.outcome.stopped else 0

    def _read_states(self, worked: Sequence[str]) -> None:
        assert self.provider is not None
        for tid in worked:
            r = self.record(tid)
            if r.pr_number is None:
                continue
            if r.pr_state == "merged":  # final: no need to ask again
                self.status[tid] = PrStatus("merged", r.pr_base)
                continue
            try:
                status = self.provider.pr_status(tid, r.pr_number)
            except WtrunError as e:
                self.stop(tid, f"cannot read PR #{r.pr_number}: {e}")
                continue
            if status is None:
                continue
            self.status[tid] = status
            new_state = status.state if status.state != r.pr_state else None
            if new_state == "merged":
                self.note(tid, f"PR #{r.pr_number} was merged into {status.base}")
            elif new_state == "closed":
                self.note(tid, f"PR #{r.pr_number} was closed without merging")
            new_base = status.base if status.base and status.base != r.pr_base else None
            if new_state or new_base:
                self.store.pr_changed(tid, state=new_state, base=new_base)

    def _fetch(self, worked: Sequence[str]) -> None:
        """The task branches, and the branches merged PRs went into: their commits must be
        here to rebase onto them (a fresh clone in CI has none of them)."""
        if self.heads is None:
            return
        wanted = [self.plan.base, *(self.branch(t) for t in worked)]
        wanted += [s.base for s in self.status.values() if s.state == "merged" and s.base]
        fetch(self.git, self.plan.remote, [b for b in dict.fromkeys(wanted) if b in self.heads])

    # -- one task --------------------------------------------------------------------------

    def _target(self, tid: str) -> tuple[str, str]:
        """Where the task's PR belongs now: ("parent", TASK) while its parent's PR is open;
        ("merged", BRANCH) once its parents merged, BRANCH being where the last of them went;
        ("blocked", TASK) when a parent was closed unmerged; ("root", plan base)."""
        parent = self.plan.task(tid).after
        if parent is None:
            return "root", self.plan.base
        while True:
            status = self.status.get(parent)
            if parent in self.outcome.blocked or (status is not None and status.state == "closed"):
                return "blocked", parent
            if status is None or status.state != "merged":
                return "parent", parent
            into = status.base or self.plan.base
            owner = next((t.id for t in self.plan.tasks if self.branch(t.id) == into), None)
            if owner is None or self.status.get(owner, PrStatus("open", None)).state != "merged":
                return "merged", into
            parent = owner

    def _sync_task(self, tid: str, tip: str) -> None:
        if tid in self.outcome.stopped or not self.pr_open(tid):
            return
        kind, where = self._target(tid)
        r = self.record(tid)
        if kind == "blocked":
            because = (
                f"its parent's PR #{self.record(where).pr_number} ({where}) was closed "
                "without merging"
                if where not in self.outcome.blocked
                else f'task "{where}" it builds on is blocked'
            )
            self.outcome.blocked[tid] = because
            self.note(tid, f"blocked: {because}; its PR and branch are left as they are")
            return
        upstream = r.start_commit
        if kind == "parent":
            onto = self.record(where).head
            if onto and upstream and not is_ancestor(self.git, upstream, onto):
                self._restack(tid, onto, self.branch(where), upstream)
            return
        target = where
        onto = (
            tip
            if target == self.plan.base
            else (self.moved.get(target) or self._remote_tip(target))
        )
        if onto is None:
            raise _Stop(f"cannot find branch {target} on {self.plan.remote}")
        if kind == "merged":
            # Retarget first: deleting the merged parent's branch would close this PR.
            current = self.status.get(tid)
            was = current.base if current is not None else r.pr_base
            if r.pr_number is not None and self.provider is not None and was != target:
                self.provider.retarget(tid, r.pr_number, target)
                self.store.pr_changed(tid, base=target)
                self.status[tid] = PrStatus("open", target)
                self.note(tid, f"PR #{r.pr_number} now targets {target} (was {was})")
            if upstream and not is_ancestor(self.git, upstream, onto):
                self._restack(tid, onto, target, upstream)
                return
        if (
            self.rebase
            and target == self.plan.base
            and r.head
            and not is_ancestor(self.git, onto, r.head)
        ):
            clash = conflicts.merge_conflicts(self.git, onto, r.head)
            if clash:
                self.note(tid, f"not rebased: conflicts with {target} in {', '.join(clash)}")
                return
            self._restack(tid, onto, target, upstream or onto)

    def _remote_tip(self, branch: str) -> str | None:
        return self.git.rev_parse(f"refs/remotes/{self.plan.remote}/{branch}")

    def _checked_out(self, branch: str) -> Path | None:
        for path, name in self.git.worktrees().items():
            if name == branch:
                return path
        return None

    def _restack(self, tid: str, onto: str, onto_name: str, upstream: str) -> None:
        """Replay the task's own commits (upstream..head) onto `onto` and push them with a
        lease on the recorded remote head."""
        git, plan = self.git, self.plan
        r = self.record(tid)
        branch = self.branch(tid)
        by_hand = f"`git rebase --onto {onto_name} {upstream[:12]} {branch}`"
        if not r.created_branch:
            raise _Stop(
                f"branch {branch} was not made by wtrun, which force-pushes only its "
                f"own branches; rebase it yourself: {by_hand}"
            )
        old = r.head
        assert old is not None
        local = git.rev_parse(f"refs/heads/{branch}")
        if local is not None and local != old:
            raise _Stop(
                f"branch {branch} is at {_short(local)}, not at {_short(old)} where "
                "wtrun left it (commits were added or it was reset); push or drop "
                f"them, then rebase it yourself: {by_hand}"
            )
        if git.rev_parse(old) is None:
            raise _Stop(
                f"commit {_short(old)} of {branch} is not in this repository; fetch "
                f"it (`git fetch {plan.remote} {branch}`) and run `wtrun sync` again"
            )
        worktree = self._checked_out(branch) if local is not None else None
        if worktree is not None:
            dirty = git("status", "--porcelain", "--untracked-files=no", cwd=worktree).strip()
            if dirty:
                raise _Stop(
                    f"its worktree {worktree} has uncommitted changes; commit or stash "
                    "them, then run `wtrun sync` again"
                )
            new = self._rebase(worktree, tid, onto, onto_name, upstream)
            try:
                self._push(tid, branch, new, onto_name, upstream)
            except _Stop:
                # Nothing may be lost: put the branch and its worktree back where they were.
                git("reset", "--quiet", "--keep", old, cwd=worktree)
                raise
        else:
            folder = Path(tempfile.mkdtemp(prefix=f"wtrun-sync-{tid}-"))
            temp = folder / "worktree"
            try:
                git("worktree", "add", "--quiet", "--detach", str(temp), old)
                new = self._rebase(temp, tid, onto, onto_name, upstream)
                self._push(tid, branch, new, onto_name, upstream)
                git("update-ref", f"refs/heads/{branch}", new, *([old] if local else []))
            finally:
                git.run("worktree", "remove", "--force", str(temp), check=False)
                shutil.rmtree(folder, ignore_errors=True)
                git.run("worktree", "prune", check=False)
        leased = r.pushed_head
        self.store.restacked(tid, head=new, pushed_head=new if leased else None, start_commit=onto)
        self.moved[branch] = new
        pushed = f"pushed (lease on {_short(leased)})" if leased else "not pushed"
        self.note(
            tid,
            f"rebased onto {onto_name} ({_short(onto)}): {branch} is now at "
            f"{_short(new)}, {pushed}",
        )

    def _rebase(self, workdir: Path, tid: str, onto: str, onto_name: str, upstream: str) -> str:
        git = self.git
        r = git.run(
            "rebase",
            "--quiet",
            "--no-verify",
            "--no-update-refs",
            "--onto",
            onto,
            upstream,
            cwd=workdir,
            check=False,
            env=_identity(git),
        )
        if r.returncode != 0:
            files = git("diff", "--name-only", "--diff-filter=U", cwd=workdir, check=False).split()
            git.run("rebase", "--abort", cwd=workdir, check=False)
            if files:
                raise _Stop(
                    f"rebasing onto {onto_name} conflicts in {', '.join(files)}; the "
                    "rebase was aborted and the branch is as it was. Rebase it by "
                    f"hand: `git rebase --onto {onto_name} {upstream[:12]}` in its "
                    "worktree, then push"
                )
            output = (r.stderr or r.stdout).strip().splitlines()
            raise _Stop(
                f"git rebase failed ({output[-1] if output else r.returncode}); the "
                "rebase was aborted and the branch is as it was"
            )
        new = git("rev-parse", "HEAD", cwd=workdir).strip()
        return new

    def _push(self, tid: str, branch: str, new: str, onto_name: str, upstream: str) -> None:
        r = self.record(tid)
        if r.pushed_head is None:
            return
        remote = self.plan.remote
        if self.heads is None:
            raise _Stop(f"no remote {remote!r} to push {branch} to")
        # The lease: the remote branch must still be where wtrun pushed it.
        lease = f"--force-with-lease=refs/heads/{branch}:{r.pushed_head}"
        result = self.git.run(
            "push", "--porcelain", lease, remote, f"{new}:refs/heads/{branch}", check=False
        )
        if result.returncode == 0:
            return
        output = (result.stderr + result.stdout).strip()
        if "stale info" in output or "rejected" in output:
            raise _Stop(
                f"the push to {remote}/{branch} was refused: it is no longer at "
                f"{_short(r.pushed_head)}, where wtrun pushed it (someone pushed to it). "
                "wtrun overwrites nobody's commits: the rebase was undone, the branch and the "
                f"remote are as they were. Rebase it by hand with their commits (`git rebase "
                f"--onto {onto_name} {_short(upstream)} {remote}/{branch}`), then push"
            )
        raise _Stop(
            f"the push to {remote}/{branch} failed; the rebase was undone"
            + "".join(f"\n    {line}" for line in output.splitlines()[-5:])
        )

    # -- merged branches -------------------------------------------------------------------

    def _delete_merged(self, order: Sequence[str]) -> None:
        if self.provider is None or self.heads is None:
            return
        for tid in order:
            r = self.record(tid)
            branch = self.branch(tid)
            if r.pr_state != "merged" or not r.created_branch or branch not in self.heads:
                continue
            try:
                based = self.provider.open_prs_into(branch)
                if based:
                    numbers = ", ".join(f"#{n}" for n in based)
                    self.note(tid, f"branch {branch} kept: open PR {numbers} is based on it")
                    continue
                self.provider.delete_branch(branch)
            except WtrunError as e:
                self.stop(tid, f"cannot delete branch {branch}: {e}")
                continue
            self.heads.pop(branch, None)
            self.note(
                tid,
                f"deleted the merged branch {branch} on {self.plan.remote}"
                + self._delete_local(tid, branch),
            )

    def _delete_local(self, tid: str, branch: str) -> str:
        git = self.git
        r = self.record(tid)
        worktree = self._checked_out(branch)
        if worktree is not None:
            done = git.run("worktree", "remove", str(worktree), check=False)
            if done.returncode != 0:
                return (
                    f"; its worktree {worktree} has changes and is kept (`git worktree "
                    f"remove --force {shlex.quote(str(worktree))}` drops them)"
                )
            self.store.worktree_removed(tid)
        local = git.rev_parse(f"refs/heads/{branch}")
        if local is None:
            return ""
        if local != r.head:
            return "; the local branch has commits wtrun did not record and is kept"
        git("branch", "-D", branch)
        return " and here" if worktree is None else ", its worktree and local branch"

    # -- the report ------------------------------------------------------------------------

    def _print(self, tip: str, drift: Drift | None, prediction: conflicts.Prediction) -> None:
        plan = self.plan
        self.out(f"wtrun sync: plan {plan.name}; base {plan.base} at {_short(tip)}")
        lines = list(self.outcome.lines) or ["  every stacked PR is where it belongs"]
        for line in lines:
            self.out(line)
        for line in drift_lines(plan, drift, self.store) if drift else []:
            self.out(line)
        behind = drift is not None and any(drift.behind.values())
        if behind and not self.rebase:
            self.out(f"  `wtrun sync {plan.path} --rebase` rebases the tasks that apply cleanly")
        for line in conflict_lines(prediction, plan):
            self.out(line)
        if self.outcome.stopped:
            self.out(
                f"wtrun sync: {_plural(len(self.outcome.stopped), 'task')} not synced: "
                f"{', '.join(self.outcome.stopped)}"
            )
