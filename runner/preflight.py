"""What a run refuses before it makes any worktree: a missing agent CLI, a literal scope
that names a directory. The dry-run reports the same refusals."""

from __future__ import annotations

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
        for tid in selected:
            preset = agents.get(plan.task(tid).agent.preset)
            if preset.name == "command":
                command = plan.task(tid).agent.command or ("",)
                exe = command[0]
                if "{" in exe or shutil.which(exe) or os.path.exists(exe):
                    continue
                missing.setdefault(exe, []).append(tid)
            elif shutil.which(preset.executable) is None:
                missing.setdefault(preset.executable, []).append(tid)
        if missing:
            parts = [f"{exe!r} (tasks {', '.join(ids)})" for exe, ids in missing.items()]
            raise WtrunError(
                f"agent CLI not found on PATH: {'; '.join(parts)}; install it (see the README's "
                "'Agents' section) or change the task's agent.preset"
            )
    if git is None:
        return
    for tid in selected:
        for pattern in plan.task(tid).scope:
            if scopes.is_literal(pattern) and (git.root / pattern).is_dir():
                raise WtrunError(
                    f'scope "{pattern}" of task "{tid}" names a directory, but a scope matches '
                    f'whole paths; write "{pattern.rstrip("/")}/" to mean everything below it'
                )
