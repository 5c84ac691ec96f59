"""`wtrun sync` with the `local` provider: a branch merged into the base by hand on the
remote (merge commit, fast-forward, squash) marks the task's PR merged, as a forge would;
with no PRs (`none`), the task's pushed branch is merged the same way.

Real runs with scripted agents and a real bare remote; the merges are made in another
clone and pushed there, as a reviewer would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testing import git, make_repo, stacked_plan, status_json, write_plan, wtrun

PRS = ".git/wtrun/sprint/prs"


def rev(where: Path, ref: str) -> str:
    return git(where, "rev-parse", ref).strip()


def task_refs(bare: Path) -> dict[str, str]:
    """The remote's task branches -> their commits."""
    out = git(bare, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
    return dict(line.split(" ") for line in out.splitlines() if line.startswith("worktree-"))


def local_pr(repo: Path, number: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo / PRS / f"{number}.json").read_text())
    return data


def pr_states(repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return {t["id"]: t["pr_state"] for t in status_json(repo, plan, capsys)["tasks"]}


def reviewer(tmp_path: Path) -> Path:
    """A clone of the remote where a reviewer merges by hand."""
    other = tmp_path / "reviewer"
    if not other.exists():
        git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(other))
    git(other, "fetch", "-q", "origin")
    git(other, "checkout", "-q", "-B", "main", "origin/main")
    return other


def sync(repo: Path, plan: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert wtrun("sync", str(plan), *args, cwd=repo) == 0
    return capsys.readouterr().out


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The stacked plan run with the local provider: repo, plan, bare remote."""
    repo = make_repo(tmp_path)
    plan = write_plan(repo, stacked_plan("local"))
    assert wtrun("run", str(plan), cwd=repo) == 0
    return repo, plan, tmp_path / "origin.git"


@pytest.mark.parametrize("how", ["--no-ff", "--ff-only"])
def test_a_branch_merged_by_hand_marks_the_local_pr_merged(
    run: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    repo, plan, bare = run
    other = reviewer(tmp_path)
    git(other, "merge", "-q", how, "-m", "Merge api", "origin/worktree-api")
    git(other, "push", "-q", "origin", "main")
    main = rev(bare, "main")
    before = task_refs(bare)

    out = sync(repo, plan, capsys)
    assert f"api: PR #1 was merged into main: its pushed head {before['worktree-api'][:12]}" in out
    assert local_pr(repo, 1)["state"] == "merged"
    assert pr_states(repo, plan, capsys) == {
        "api": "merged",
        "auth": "open",
        "docs": "open",
        "examples": "open",
    }
    # The child's PR follows the merge; its commits are in main as they are: no rebase.
    assert "docs: PR #2 now targets main (was worktree-api)" in out
    assert local_pr(repo, 2)["base"] == "main"
    assert task_refs(bare) == before

    out = sync(repo, plan, capsys, "--rebase")
    refs = task_refs(bare)
    assert refs["worktree-api"] == before["worktree-api"]  # merged: never pushed again
    assert "api:" not in out
    assert rev(bare, "worktree-auth^") == main
    if how == "--ff-only":  # main is api's head: the child is on main already
        assert refs["worktree-docs"] == before["worktree-docs"]
        return
    # Behind main's merge commit only: --rebase moves it onto main, its child follows.
    assert rev(bare, "worktree-docs^") == main
    assert rev(bare, "worktree-examples^") == refs["worktree-docs"]
    assert git(bare, "diff", "--name-only", "main...worktree-docs").split() == ["src/docs/work.py"]


def test_a_squash_merge_by_hand_marks_the_local_pr_merged_and_moves_the_child(
    run: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, plan, bare = run
    other = reviewer(tmp_path)
    (other / "NEWS.md").write_text("a teammate's news\n")  # the base moved first
    git(other, "add", "NEWS.md")
    git(other, "commit", "-qm", "news")
    git(other, "merge", "-q", "--squash", "origin/worktree-api")
    git(other, "commit", "-qm", "The API (#1)")
    git(other, "push", "-q", "origin", "main")
    squash, main = rev(other, "HEAD"), rev(bare, "main")
    before = task_refs(bare)

    out = sync(repo, plan, capsys)
    assert f"api: PR #1 was merged into main: squashed as {squash[:12]}" in out
    assert pr_states(repo, plan, capsys)["api"] == "merged"
    assert local_pr(repo, 1)["state"] == "merged"
    # As after a squash merge on GitHub: the child is retargeted, then rebased onto main,
    # and the grandchild follows it.
    assert "docs: PR #2 now targets main (was worktree-api)" in out
    refs = task_refs(bare)
    assert refs["worktree-api"] == before["worktree-api"]
    assert rev(bare, "worktree-docs^") == main
    assert git(bare, "diff", "--name-only", "main...worktree-docs").split() == ["src/docs/work.py"]
    assert rev(bare, "worktree-examples^") == refs["worktree-docs"]
    assert "- base: `main`" in (repo / PRS / "docs.md").read_text()

    # --rebase then moves the one task behind main that is not merged; api stays.
    out = sync(repo, plan, capsys, "--rebase")
    after = task_refs(bare)
    assert after["worktree-api"] == before["worktree-api"]
    assert rev(bare, "worktree-auth^") == main
    assert {b: after[b] for b in ("worktree-docs", "worktree-examples")} == {
        b: refs[b] for b in ("worktree-docs", "worktree-examples")
    }
    assert sync(repo, plan, capsys, "--rebase").count("rebased") == 0
    assert task_refs(bare) == after


def test_a_branch_moved_after_the_push_and_merged_does_not_count(
    run: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The agent rewrote its branch after wtrun pushed it; what got merged is not what was
    pushed, so the PR stays open."""
    repo, plan, bare = run
    api = repo / ".claude/worktrees/api"
    (api / "src/api/work.py").write_text("not what was pushed\n")
    git(api, "commit", "-qa", "--amend", "-m", "agent: rewritten")
    git(repo, "push", "-q", "origin", "worktree-api:main")  # merged by fast-forward
    before = task_refs(bare)

    out = sync(repo, plan, capsys)
    assert "merged" not in out
    assert local_pr(repo, 1)["state"] == "open"
    assert pr_states(repo, plan, capsys)["api"] == "open"
    assert local_pr(repo, 2)["base"] == "worktree-api"
    assert task_refs(bare) == before


def test_stacked_tasks_behind_the_base_get_no_advice_to_rebase(
    run: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--rebase moves the tasks on the base only: a stacked task follows its parent."""
    repo, plan, bare = run
    other = reviewer(tmp_path)
    for task in ("api", "auth"):  # both roots now conflict with main
        (other / f"src/{task}").mkdir(parents=True)
        (other / f"src/{task}/work.py").write_text("a teammate's\n")
    git(other, "add", "src")
    git(other, "commit", "-qm", "theirs")
    git(other, "push", "-q", "origin", "main")
    before = task_refs(bare)

    out = sync(repo, plan, capsys)
    assert "  api: 1 commit behind; conflicts with main in src/api/work.py" in out
    assert "  docs: 1 commit behind; stacked on api, it moves when api does" in out
    assert "--rebase" not in out
    assert "applies cleanly" not in out
    out = sync(repo, plan, capsys, "--rebase")
    assert task_refs(bare) == before


def test_a_task_whose_changes_reached_the_base_otherwise_is_never_pushed_empty(
    run: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The child's branch, its parent's commits included, squashed into main: the child's
    PR merged; the parent's own commit is in no base commit, yet all of it is on main."""
    repo, plan, bare = run
    other = reviewer(tmp_path)
    git(other, "merge", "-q", "--squash", "origin/worktree-docs")
    git(other, "commit", "-qm", "The API and its docs (#2)")
    git(other, "push", "-q", "origin", "main")
    before = task_refs(bare)

    capsys.readouterr()
    assert wtrun("sync", str(plan), "--rebase", cwd=repo) == 1
    out = capsys.readouterr().out
    assert "docs: PR #2 was merged into main: squashed as" in out
    assert (
        "api: not synced: its changes are all on main already, so a rebase would leave "
        "nothing of worktree-api; it was not rebased nor pushed. If it was merged, mark its "
        "PR merged or close it"
    ) in out
    after = task_refs(bare)
    assert after["worktree-api"] == before["worktree-api"]
    assert after["worktree-docs"] == before["worktree-docs"]
    assert rev(bare, "worktree-examples^") == rev(bare, "main")  # it followed docs
    assert rev(repo, "worktree-api") == rev(repo / ".claude/worktrees/api", "HEAD")
    assert rev(repo, "worktree-api") == before["worktree-api"]


def test_with_no_prs_a_branch_merged_by_hand_is_merged_and_never_pushed_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Provider `none`: the pushed branch stands for a PR; merged by hand, it is done."""
    repo = make_repo(tmp_path)
    plan = write_plan(repo, stacked_plan("none"))
    assert wtrun("run", str(plan), cwd=repo) == 0
    bare = tmp_path / "origin.git"
    other = reviewer(tmp_path)
    git(other, "merge", "-q", "--no-ff", "-m", "Merge api", "origin/worktree-api")
    git(other, "push", "-q", "origin", "main")
    main = rev(bare, "main")
    before = task_refs(bare)

    out = sync(repo, plan, capsys)
    api = before["worktree-api"][:12]
    assert f"api: branch worktree-api was merged into main: its pushed head {api}" in out
    assert "api: 1 commit behind" not in out
    records = json.loads((repo / ".git/wtrun/sprint/state.json").read_text())["tasks"]
    assert records["api"]["pr_state"] == "merged"
    assert task_refs(bare) == before

    out = sync(repo, plan, capsys, "--rebase")
    refs = task_refs(bare)
    assert refs["worktree-api"] == before["worktree-api"]  # merged: never pushed again
    assert "api:" not in out
    assert rev(bare, "worktree-docs^") == main  # the child follows its parent onto main
    assert rev(bare, "worktree-examples^") == refs["worktree-docs"]
    assert sync(repo, plan, capsys) == sync(repo, plan, capsys)  # settled: nothing more to do
