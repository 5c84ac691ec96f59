"""The instructions stage: the task's instructions file, rendered and written into its
worktree, where the agent reads it and git never sees it."""

from __future__ import annotations

import os

from .agents import Preset
from .errors import WtrunError
from .git import Git
from .workspace import Workspace


def write(git: Git, ws: Workspace, preset: Preset, text: str) -> None:
    """Write `text` as the preset's instructions file in the task's worktree.

    When the repository tracks a file of that name, the team's text stays first and the
    task's follows, with git told not to look at the file (`skip-worktree`), so the
    tracked file never changes in a commit. A preset whose file replaces another one the
    CLI reads (`carries_over`) carries that tracked file's text along the same way. The
    file is never written through a symbolic link: a link in the repository is replaced
    by the file, in this worktree only.
    """
    rel = preset.instructions_file
    entries = _index_entries(git, ws, rel)
    if entries.startswith("100"):
        team = git("show", f"HEAD:{rel}", cwd=ws.worktree)
        text = team.rstrip("\n") + "\n\n" + text
    if entries:
        git("update-index", "--skip-worktree", "--", rel, cwd=ws.worktree)
    elif preset.carries_over and _tracked_file(git, ws, preset.carries_over):
        team = git("show", f"HEAD:{preset.carries_over}", cwd=ws.worktree)
        text = team.rstrip("\n") + "\n\n" + text
    _write_here(ws, text)


def _tracked_file(git: Git, ws: Workspace, rel: str) -> bool:
    """Tracked as a regular file (a tracked symbolic link's text is only a path)."""
    return _index_entries(git, ws, rel).startswith("100")


def _index_entries(git: Git, ws: Workspace, rel: str) -> str:
    """The index's entries at `rel` (`<mode> <object> <stage>\t<path>` lines), empty when
    git tracks nothing there: one read of the index answers both questions `write` asks."""
    return git("ls-files", "-s", "--", rel, cwd=ws.worktree)


def _write_here(ws: Workspace, text: str) -> None:
    target = ws.instructions
    root = ws.worktree.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(root):
        raise WtrunError(
            f"the folder of the instructions file {target} leads outside the worktree "
            f"(a symbolic link to {target.parent.resolve()}); wtrun never writes through one"
        )
    if target.is_symlink():
        target.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    with os.fdopen(os.open(target, flags, 0o644), "w", encoding="utf-8") as f:
        f.write(text)
