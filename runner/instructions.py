"""The instructions stage: the task's instructions file, rendered and written into its
worktree, where the agent reads it and git never sees it."""

from __future__ import annotations

from .agents import Preset
from .git import Git
from .workspace import Workspace


def write(git: Git, ws: Workspace, preset: Preset, text: str) -> None:
    """Write `text` as the preset's instructions file in the task's worktree.

    When the repository tracks a file of that name, the team's text stays first and the
    task's follows, with git told not to look at the file (`skip-worktree`), so the
    tracked file never changes in a commit. A preset whose file replaces another one the
    CLI reads (`carries_over`) carries that tracked file's text along the same way.
    """
    rel = preset.instructions_file
    if git.tracked([rel], cwd=ws.worktree):
        team = git("show", f"HEAD:{rel}", cwd=ws.worktree)
        git("update-index", "--skip-worktree", "--", rel, cwd=ws.worktree)
        text = team.rstrip("\n") + "\n\n" + text
    elif preset.carries_over and git.tracked([preset.carries_over], cwd=ws.worktree):
        team = git("show", f"HEAD:{preset.carries_over}", cwd=ws.worktree)
        text = team.rstrip("\n") + "\n\n" + text
    ws.instructions.parent.mkdir(parents=True, exist_ok=True)
    ws.instructions.write_text(text, encoding="utf-8")
