"""Moving a task's own commits onto a new base: `git rebase --onto NEW UPSTREAM`, then a
push with `--force-with-lease` on the head wtrun recorded.

Only the commits after UPSTREAM (what the branch started from) are replayed, so a squash
merge of the parent causes no phantom conflicts. This is the one force push wtrun makes:
only on branches it created, and refused when anybody else pushed to them. Whatever goes
wrong, the branch, its worktree and the remote are left as they were.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import WtrunError
from .git import Git
from .state import TaskRecord


class Stop(WtrunError):
    """This task cannot be synced now; the message says why and what to do."""


@dataclass(frozen=True)
class Move:
    branch: str
    onto: str  # the commit to replay onto
    onto_name: str  # what the user knows it as (a branch)
    upstream: str  # the branch's own commits are upstream..head

    def by_hand(self) -> str:
        return f"`git rebase --onto {self.onto_name} {self.upstream[:12]} {self.branch}`"


def short(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"


def checked_out(git: Git, branch: str) -> Path | None:
    """The worktree that has `branch` checked out, if any."""
    return next((path for path, name in git.worktrees().items() if name == branch), None)


def restack(git: Git, record: TaskRecord, move: Move, remote: str, *, remote_exists: bool) -> str:
    """Rebase the task's branch as `move` says and push it to `remote` when wtrun pushed it
    before. Returns the branch's new head."""
    _check(git, record, move, remote)
    if record.pushed_head is not None and not remote_exists:
        raise Stop(f"no remote {remote!r} to push {move.branch} to")
    old = record.head
    assert old is not None
    local = git.rev_parse(f"refs/heads/{move.branch}")
    worktree = checked_out(git, move.branch) if local is not None else None
    if worktree is None:
        return _in_temporary_worktree(git, record, move, remote, has_local=local is not None)
    if git("status", "--porcelain", "--untracked-files=no", cwd=worktree).strip():
        raise Stop(
            f"its worktree {worktree} has uncommitted changes; commit or stash them, then "
            "run `wtrun sync` again"
        )
    new = _rebase(git, worktree, move)
    try:
        _not_emptied(move, new)
        _push(git, record, move, new, remote)
    except Stop:
        # Nothing may be lost: put the branch and its worktree back where they were.
        git("reset", "--quiet", "--keep", old, cwd=worktree)
        raise
    return new


def _check(git: Git, record: TaskRecord, move: Move, remote: str) -> None:
    if not record.created_branch:
        raise Stop(
            f"branch {move.branch} was not made by wtrun, which force-pushes only its own "
            f"branches; rebase it yourself: {move.by_hand()}"
        )
    local = git.rev_parse(f"refs/heads/{move.branch}")
    if local is not None and local != record.head:
        raise Stop(
            f"branch {move.branch} is at {short(local)}, not at {short(record.head)} where "
            "wtrun left it (commits were added or it was reset); push or drop them, then "
            f"rebase it yourself: {move.by_hand()}"
        )
    if record.head is None or git.rev_parse(record.head) is None:
        raise Stop(
            f"commit {short(record.head)} of {move.branch} is not in this repository; fetch "
            f"it (`git fetch {remote} {move.branch}`) and run `wtrun sync` again"
        )


def _in_temporary_worktree(
    git: Git, record: TaskRecord, move: Move, remote: str, *, has_local: bool
) -> str:
    old = record.head
    assert old is not None
    folder = Path(tempfile.mkdtemp(prefix="wtrun-sync-"))
    temp = folder / "worktree"
    try:
        git("worktree", "add", "--quiet", "--detach", str(temp), old)
        new = _rebase(git, temp, move)
        _not_emptied(move, new)
        _push(git, record, move, new, remote)
        git("update-ref", f"refs/heads/{move.branch}", new, *([old] if has_local else []))
        return new
    finally:
        git.run("worktree", "remove", "--force", str(temp), check=False)
        shutil.rmtree(folder, ignore_errors=True)
        git.run("worktree", "prune", check=False)


def _identity(git: Git) -> dict[str, str] | None:
    """A committer for the rebased commits when the repository has none configured."""
    if git("config", "user.email", check=False).strip():
        return None
    return {"GIT_COMMITTER_NAME": "wtrun", "GIT_COMMITTER_EMAIL": "wtrun@localhost"}


def _rebase(git: Git, workdir: Path, move: Move) -> str:
    r = git.run(
        *("rebase", "--quiet", "--no-verify", "--no-update-refs"),
        *("--onto", move.onto, move.upstream),
        cwd=workdir,
        check=False,
        env=_identity(git),
    )
    if r.returncode == 0:
        return git("rev-parse", "HEAD", cwd=workdir).strip()
    files = git("diff", "--name-only", "--diff-filter=U", cwd=workdir, check=False).split()
    git.run("rebase", "--abort", cwd=workdir, check=False)
    if files:
        raise Stop(
            f"rebasing onto {move.onto_name} conflicts in {', '.join(files)}; the rebase was "
            "aborted and the branch is as it was. Rebase it by hand: `git rebase --onto "
            f"{move.onto_name} {move.upstream[:12]}` in its worktree, then push"
        )
    output = (r.stderr or r.stdout).strip().splitlines()
    raise Stop(
        f"git rebase failed ({output[-1] if output else r.returncode}); the rebase was "
        "aborted and the branch is as it was"
    )


def _not_emptied(move: Move, new: str) -> None:
    """A rebase that drops every commit of the branch (each is on the new base already)
    found work merged some other way: pushing it would leave an empty PR open."""
    if new == move.onto:
        raise Stop(
            f"its changes are all on {move.onto_name} already, so a rebase would leave "
            f"nothing of {move.branch}; it was not rebased nor pushed. If it was merged, "
            "mark its PR merged or close it"
        )


def _push(git: Git, record: TaskRecord, move: Move, new: str, remote: str) -> None:
    if record.pushed_head is None:
        return
    # The lease: the remote branch must still be where wtrun pushed it.
    lease = f"--force-with-lease=refs/heads/{move.branch}:{record.pushed_head}"
    result = git.run(
        "push", "--porcelain", lease, remote, f"{new}:refs/heads/{move.branch}", check=False
    )
    if result.returncode == 0:
        return
    output = (result.stderr + result.stdout).strip()
    if "stale info" in output or "rejected" in output:
        raise Stop(
            f"the push to {remote}/{move.branch} was refused: it is no longer at "
            f"{short(record.pushed_head)}, where wtrun pushed it (someone pushed to it). "
            "wtrun overwrites nobody's commits: the rebase was undone, the branch and the "
            f"remote are as they were. Rebase it by hand with their commits (`git rebase "
            f"--onto {move.onto_name} {short(move.upstream)} {remote}/{move.branch}`), "
            "then push"
        )
    raise Stop(
        f"the push to {remote}/{move.branch} failed; the rebase was undone"
        + "".join(f"\n    {line}" for line in output.splitlines()[-5:])
    )
