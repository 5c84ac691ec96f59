"""`wtrun demo`: a newcomer's first command shows the whole pipeline working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testing import git


def test_demo_runs_the_whole_pipeline_offline(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    done = subprocess.run(
        [sys.executable, "-m", "wtrun", "demo", "--keep", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wtrun: 3 done; cost $0.00" in done.stdout
    assert f"cd {root / 'shop'}" in done.stdout
    assert "Traceback" not in done.stderr
    pushed = git(root / "origin.git", "branch", "--format=%(refname:short)").split()
    assert sorted(pushed) == [
        "main",
        "worktree-docs-discounts",
        "worktree-feat-discounts",
        "worktree-fix-auth-timeout",
    ]
    repo = root / "shop"
    # The stacked task's branch holds its parent's commit.
    assert (
        git(repo, "rev-parse", "worktree-docs-discounts~1").strip()
        == git(repo, "rev-parse", "worktree-feat-discounts").strip()
    )
    auth = git(repo, "show", "worktree-fix-auth-timeout:src/shop/auth.py")
    assert "SESSION_MINUTES = 30" in auth
    prs = repo / ".git" / "wtrun" / "demo" / "prs"
    docs = (prs / "docs-discounts.md").read_text()
    assert docs.startswith("# #3 docs-discounts: Document discount codes\n")
    assert "- base: `worktree-feat-discounts`" in docs
    assert "Stacked on #2" in docs
    assert "Stacked on this PR: #3" in (prs / "feat-discounts.md").read_text()
    assert git(repo, "status", "--porcelain") == ""


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("mine")
    done = subprocess.run(
        [sys.executable, "-m", "wtrun", "demo", "--keep", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"wtrun: error: {tmp_path / 'x'} exists and is not empty; name a new folder for the demo\n"
    )
