"""What a run refuses before it makes any worktree: a missing agent CLI, a literal scope
that names a directory, a worktrees folder that is not the plan's own. The dry-run reports
the same refusals."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Sequence

from . import agents, scopes
from .errors import WtrunError
from .git import Git
from .plan import Plan


def preflight(plan: Plan, git: Git | None, selected: Sequence[str], *, agents_needed: bool) -> None:
    """What a run can refuse before it makes any worktree."""
    if agents_needed:
        missing: dict[str, list[str]] = {}
        found = functools.cache(shutil.which)  # a search of PATH per task adds up
        for tid in selected:
            preset = agents.get(plan.task(tid).agent.preset)
            if preset.name == "command":
                command = plan.task(tid).agent.command or ("",)
                exe = command[0]
                if "{" in exe or found(exe) or os.path.exists(exe):
                    continue
                missing.setdefault(exe, []).append(tid)
            elif found(preset.executable) is None:
                missing.setdefault(preset.executable, []).append(tid)
        if missing:
            parts = [f"{exe!r} (tasks {', '.join(ids)})" for exe, ids in missing.items()]
            raise WtrunError(
                f"agent CLI not found on PATH: {'; '.join(parts)}; install it (see the README's "
                "'Agents' section) or change the task's agent.preset"
            )
    if git is None:
        return
    _worktrees_folder(plan, git)
    for tid in selected:
        for pattern in plan.task(tid).scope:
            if scopes.is_literal(pattern) and (git.root / pattern).is_dir():
                raise WtrunError(
                    f'scope "{pattern}" of task "{tid}" names a directory, but a scope matches '
                    f'whole paths; write "{pattern.rstrip("/")}/" to mean everything below it'
                )


def _worktrees_folder(plan: Plan, git: Git) -> None:
    """The folder must be inside the repository (symlinks followed), outside `.git`, and
    hold no tracked file: wtrun hides it from `git status`, and would hide the user's files."""
    folder = plan.worktrees
    fix = 'set `worktrees:` in the plan to a folder of its own, e.g. ".claude/worktrees"'
    resolved = (git.root / folder).resolve()
    if not resolved.is_relative_to(git.root.resolve()):
        raise WtrunError(
            f'the worktrees folder "{folder}" leads to {resolved}, outside the repository '
            f"(through a symbolic link); {fix}"
        )
    if resolved.is_relative_to(git.common_dir().resolve()):
        raise WtrunError(
            f'the worktrees folder "{folder}" leads into git\'s own folder ({resolved}); {fix}'
        )
    if resolved.exists() and not resolved.is_dir():
        raise WtrunError(f'the worktrees folder "{folder}" is a file, not a folder; {fix}')
    tracked = sorted(git.tracked([f":(literal){folder}"], cwd=git.root))
    if tracked:
        raise WtrunError(
            f'the worktrees folder "{folder}" holds files git tracks (e.g. "{tracked[0]}"), and '
            "wtrun hides that folder from `git status`, which would hide your own new files "
            f"there too; {fix}"
        )
