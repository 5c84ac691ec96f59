"""`wtrun sync PLAN`: after review, retarget and rebase stacked PRs whose parents merged,
report how far the base moved (`--rebase` follows it where that applies cleanly) and the
conflicts predicted between tasks. See `wtrun.sync`."""

from __future__ import annotations

from pathlib import Path

from ..git import find_repo
from ..plan import load
from ..state import Store


def sync(plan_path: str, *, rebase: bool, delete_merged: bool) -> int:
    from ..sync import Syncer

    plan = load(plan_path)
    git = find_repo(Path.cwd())
    store = Store(git.common_dir(), plan.name)
    with store.lock():
        store.reload()  # what a run wrote before it let go of the lock
        return Syncer(plan, git, store).run(rebase=rebase, delete_merged=delete_merged)
