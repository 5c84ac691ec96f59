"""Worktrees: made or reused, never clobbered, and hiding wtrun's files in that worktree only."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing import branches, git
from wtrun import worktrees
from wtrun.errors import WtrunError
from wtrun.git import Git


def head(where: Path) -> str:
    return git(where, "rev-parse", "HEAD").strip()


def add(repo: Path, name: str, branch: str, *, ours: bool = False) -> bool:
    g = Git(repo)
    return worktrees.add(
        g,
        path=repo / ".claude" / "worktrees" / name,
        branch=branch,
        start=head(repo),
        ours=ours,
        existing=worktrees.snapshot(g),
    )


def test_add_makes_the_branch_then_reuses_the_worktree(repo: Path) -> None:
    assert add(repo, "a", "worktree-a") is True
    wt = repo / ".claude" / "worktrees" / "a"
    assert head(wt) == head(repo)
    assert git(wt, "branch", "--show-current").strip() == "worktree-a"
    assert add(repo, "a", "worktree-a") is False


def test_a_lost_worktree_of_our_branch_is_made_again(repo: Path) -> None:
    add(repo, "a", "worktree-a")
    git(repo, "worktree", "remove", ".claude/worktrees/a")
    assert add(repo, "a", "worktree-a", ours=True) is False
    assert (repo / ".claude" / "worktrees" / "a" / "README.md").is_file()


def folder_in_the_way(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("mine\n")


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (
            lambda repo: add(repo, "a", "other"),
            "is already a worktree on branch other, not worktree-a; remove it with "
            "`git worktree remove",
        ),
        (
            lambda repo: add(repo, "b", "worktree-a"),
            "branch worktree-a is checked out in another worktree, ",
        ),
        (
            lambda repo: folder_in_the_way(repo / ".claude/worktrees/a"),
            "exists and is not a worktree of this repository; move it away",
        ),
        (
            lambda repo: git(repo, "branch", "worktree-a"),
            "branch worktree-a already exists and was not made by wtrun for this task; "
            "rename or delete it (`git branch -m worktree-a worktree-a-old`)",
        ),
    ],
    ids=["other-branch-there", "branch-elsewhere", "folder-in-the-way", "someones-branch"],
)
def test_what_is_not_ours_is_never_clobbered(repo: Path, prepare: object, message: str) -> None:
    prepare(repo)  # type: ignore[operator]
    before = sorted(branches(repo))
    with pytest.raises(WtrunError, match=message.replace("(", r"\(").replace(")", r"\)")):
        add(repo, "a", "worktree-a")
    assert sorted(branches(repo)) == before


def test_exclude_folder_adds_one_line_once(repo: Path) -> None:
    exclude = repo / ".git" / "info" / "exclude"
    exclude.write_text("*.log")  # no final newline
    g = Git(repo)
    worktrees.exclude_folder(g, ".claude/worktrees/")
    worktrees.exclude_folder(g, ".claude/worktrees")
    assert exclude.read_text() == "*.log\n# wtrun: task worktrees\n/.claude/worktrees/\n"
    assert not (repo / ".gitignore").exists()


def test_hide_ignores_files_in_that_worktree_only(repo: Path) -> None:
    g = Git(repo)
    worktrees.enable_worktree_config(g)
    (repo / "global-ignore").write_text("*.tmp\n")
    git(repo, "config", "--global", "core.excludesFile", str(repo / "global-ignore"))
    add(repo, "a", "worktree-a")
    add(repo, "b", "worktree-b")
    a = repo / ".claude" / "worktrees" / "a"
    worktrees.hide(a, ["/CLAUDE.local.md", ".claude/"], worktrees.global_excludes(g))
    worktrees.hide(a, ["/CLAUDE.local.md", ".claude/"], worktrees.global_excludes(g))
    for where in (a, repo / ".claude" / "worktrees" / "b", repo):
        for name in ("CLAUDE.local.md", "scratch.tmp"):
            (where / name).write_text("x\n")
    assert git(a, "status", "--porcelain") == ""
    # the user's global rules still hold there, and nothing changed elsewhere
    assert git(repo / ".claude" / "worktrees" / "b", "status", "--porcelain") == (
        "?? CLAUDE.local.md\n"
    )
    assert "?? CLAUDE.local.md" in git(repo, "status", "--porcelain")
    config = worktrees.worktree_git_dir(a) / "config.worktree"
    assert config.read_text().count("excludesFile") == 1


def test_remove_deletes_the_worktree_and_its_merged_branch(repo: Path) -> None:
    add(repo, "a", "worktree-a")
    g = Git(repo)
    worktrees.remove(g, repo / ".claude" / "worktrees" / "a", "worktree-a")
    assert not (repo / ".claude" / "worktrees" / "a").exists()
    assert "worktree-a" not in branches(repo)
