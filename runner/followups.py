"""What the agent is told when it runs again on work it already did: after a verify
failure, or after the plan changed what it was given."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from .plan import Task

_TAIL_LINES = 40


def after_verify(task: Task, failure: str) -> str:
    """The failing verify step, its command and its output's tail, as the next prompt."""
    lines = failure.rstrip().splitlines()
    head, tail = lines[0], lines[1:][-_TAIL_LINES:]
    return "\n".join(
        [
            f"Your work on task {task.id} did not pass the checks. What failed:",
            "",
            head,
            "",
            "The end of its output:",
            "",
            *(tail or ["(no output)"]),
            "",
            "Fix the cause in the files of your task, then stop. Your earlier work is already "
            "committed in this worktree.",
            "",
            "The task, as a reminder:",
            "",
            task.prompt.strip(),
        ]
    )


def after_change(task: Task, fields: Sequence[str], before: str | None) -> str:
    """The task's new prompt, and what changed, for an agent following up on pushed work."""
    said = [
        f"The plan for task {task.id} changed since you worked on it ({', '.join(fields)}). "
        "Your earlier work is committed in this worktree and already under review: build on "
        "it, do not start over. The task now reads:",
        "",
        task.prompt.strip(),
    ]
    if "prompt" in fields and before:
        diff = difflib.unified_diff(
            before.strip().splitlines(),
            task.prompt.strip().splitlines(),
            "before",
            "now",
            lineterm="",
        )
        said += ["", "What changed in it:", "", *diff]
    if "scope" in fields:
        said += ["", "The files you may change are now: " + ", ".join(task.scope)]
    return "\n".join(said)
