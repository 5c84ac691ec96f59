"""The commit and scope stages: the agent's leftovers committed by wtrun, then every path
the task's commits changed held against its scope."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from . import scopes
from .errors import WtrunError
from .git import Git

Owned = Callable[[str], bool]  # is this path the agent CLI's own (its instructions, its state)?


class ScopeViolation(WtrunError):
    def __init__(
        self, files: Sequence[str], outside: Sequence[str], scope: Sequence[str], branch: str
    ) -> None:
        shown = ", ".join(outside[:10]) + (
            f" and {len(outside) - 10} more" if len(outside) > 10 else ""
        )
        super().__init__(
            f"changed {len(outside)} path{'s' if len(outside) != 1 else ''} outside its "
            f"scope: {shown}; scope is {', '.join(scope)}. Nothing was pushed; the work is "
            f"kept on branch {branch}"
        )
        self.files = list(files)  # every path the task changed, in scope or not
        self.outside = list(outside)


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


def check_scope(
    git: Git,
    worktree: Path,
    start: str,
    scope: Sequence[str],
    shared: Sequence[str],
    owned: Owned,
    branch: str,
) -> list[str]:
    """The paths changed since `start`, less the agent's own; raises `ScopeViolation` when
    one of them matches neither the task's `scope` nor the plan's `shared` paths."""
    changed = git.changed_paths(start, "HEAD", cwd=worktree)
    counted = [p for p in changed if not owned(p)]
    allowed = (*scope, *shared)
    outside = [p for p in counted if not any(scopes.matches(s, p) for s in allowed)]
    if outside:
        raise ScopeViolation(counted, outside, scope, branch)
    return counted
