"""The commit and scope stages: the agent's leftovers committed by wtrun, then every path
the task's commits changed held against its scope."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from . import scopes
from .agents import Preset
from .errors import WtrunError
from .git import Git

Owned = Callable[[str], bool]  # is this path the agent CLI's own (its instructions, its state)?


class ScopeViolation(WtrunError):
    def __init__(
        self,
        files: Sequence[str],
        outside: Sequence[str],
        owned: Sequence[str],
        scope: Sequence[str],
        branch: str,
    ) -> None:
        said = []
        if outside:
            said.append(
                f"changed {len(outside)} path{'s' if len(outside) != 1 else ''} outside its "
                f"scope: {_some(outside)}; scope is {', '.join(scope)}"
            )
        if owned:
            said.append(f"committed the agent CLI's own files, never pushed: {_some(owned)}")
        super().__init__(
            f"{'; '.join(said)}. Nothing was pushed; the work is kept on branch {branch}: "
            "widen the task's scope in the plan, or rerun with --restart to start it afresh"
        )
        self.files = list(files)  # every path the task changed, in scope or not
        self.outside = [*outside, *owned]


def out_of_scope(
    paths: Sequence[str], scope: Sequence[str], shared: Sequence[str], owned: Owned
) -> tuple[list[str], list[str]]:
    """Of `paths`, those outside the scope and the shared paths, and the agent's own."""
    allowed = (*scope, *shared)
    outside = [p for p in paths if not owned(p) and not any(scopes.matches(s, p) for s in allowed)]
    return outside, [p for p in paths if owned(p)]


def owned_by(preset: Preset) -> Owned:
    """Whether a path is one of the agent CLI's own files (its instructions, its state)."""

    def owned(path: str) -> bool:
        return path == preset.instructions_file or any(
            scopes.matches(p, path) for p in preset.owned_paths
        )

    return owned


def _some(paths: Sequence[str]) -> str:
    return ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")


def commit_leftovers(
    git: Git,
    worktree: Path,
    message: str,
    owned: Owned,
    identity: dict[str, str] | None,
) -> tuple[str, list[str]]:
    """Commit what the agent left uncommitted; returns the new head, and the tracked files
    of the agent's own that it changed and that were put back."""
    changed = git.status_paths(worktree)
    # Untracked files of the agent's own are ignored in this worktree; tracked ones it
    # changed show here, and are put back.
    restored = sorted(git.tracked([p for p in changed if owned(p)], cwd=worktree))
    if restored:
        git("checkout", "HEAD", "--", *restored, cwd=worktree)
    if any(p not in restored for p in changed):
        git("add", "--all", cwd=worktree)
        git("commit", "--quiet", "--no-verify", "-m", message, cwd=worktree, env=identity)
    return git("rev-parse", "HEAD", cwd=worktree).strip(), restored


def resolve_head(git: Git, worktree: Path, branch: str, start: str) -> str:
    """The one commit the task's work is: the tip of its branch, with the worktree on that
    branch, descending from `start`. Everything after this acts on the commit id, never
    on what a ref points at later (the agent, or code of its that verify runs, may move
    refs: detach HEAD, switch branches, move another task's branch)."""
    on = git.run("symbolic-ref", "--quiet", "HEAD", cwd=worktree, check=False).stdout.strip()
    if on != f"refs/heads/{branch}":
        where = f"on {on.removeprefix('refs/heads/')}" if on else "detached"
        raise WtrunError(
            f"the worktree's HEAD is {where}, not on the task's branch {branch}; check out "
            f"{branch} in {worktree} (`git -C {worktree} switch {branch}`) and run again"
        )
    head = git.rev_parse(f"refs/heads/{branch}")
    if head is None or not git.ok("merge-base", "--is-ancestor", start, head):
        raise WtrunError(
            f"branch {branch} no longer descends from the commit the task started from "
            f"({start[:12]}); rerun with --restart to start the task afresh"
        )
    return head


def check_scope(
    git: Git,
    worktree: Path,
    head: str,
    start: str,
    scope: Sequence[str],
    shared: Sequence[str],
    owned: Owned,
    branch: str,
) -> list[str]:
    """The paths changed from `start` to `head`, less the agent's own; raises
    `ScopeViolation` when a path that any commit since `start` touched matches neither
    the task's `scope` nor the plan's `shared` paths (a change made and taken back is
    still in the pushed history), or is a file of the agent CLI's own (its instructions,
    its state): those are never committed."""
    counted = [p for p in git.changed_paths(start, head, cwd=worktree) if not owned(p)]
    touched = git.paths_in_commits(f"{start}..{head}", cwd=worktree)
    outside, theirs = out_of_scope(touched, scope, shared, owned)
    if outside or theirs:
        raise ScopeViolation(counted, outside, theirs, scope, branch)
    return counted
