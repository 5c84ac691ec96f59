"""`wtrun sync`: stacked PRs after their parents merge, a moving base, leftovers.

Real runs with scripted agents, a real bare remote, and the real `gh` against FakeGitHub,
whose merges are real git merges pushed into the bare repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fakes.github import FakeGitHub
from testing import (
    agent,
    git,
    make_repo,
    needs_gh,
    remote_branches,
    stacked_plan,
    status,
    status_json,
    write_plan,
    wtrun,
)
from wtrun.forge.local import set_pr_state

P = "/repos/acme/shop"


def calls(fake: FakeGitHub, since: int = 0) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests[since:]]


def records(repo: Path, name: str = "sprint") -> dict[str, Any]:
    data = json.loads((repo / ".git" / "wtrun" / name / "state.json").read_text())
    tasks: dict[str, Any] = data["tasks"]
    return tasks


def refs(bare: Path) -> dict[str, str]:
    out = git(bare, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ") for line in out.splitlines())


def rev(where: Path, ref: str) -> str:
    return git(where, "rev-parse", ref).strip()


def changed(where: Path, spec: str) -> list[str]:
    return git(where, "diff", "--name-only", spec).split()


def push_as_someone_else(tmp_path: Path, branch: str, path: str, text: str) -> str:
    """A colleague's commit on `branch` of the remote; returns it."""
    other = tmp_path / f"other-{branch}"
    if not other.exists():
        git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(other))
    git(other, "fetch", "-q", "origin")
    git(other, "checkout", "-q", "-B", branch, f"origin/{branch}")
    target = other / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git(other, "add", path)
    git(other, "commit", "-qm", f"theirs: {path}")
    git(other, "push", "-q", "origin", branch)
    return rev(other, "HEAD")


# ---------------------------------------------------------------- merged parents


@needs_gh
@pytest.mark.parametrize("method", ["squash", "rebase"])
def test_merged_parent_retargets_then_rebases_child_and_grandchild(
    github: tuple[Path, FakeGitHub], tmp_path: Path, capsys: pytest.CaptureFixture[str], method: str
) -> None:
    repo, fake = github
    bare = repo.parent / "origin.git"
    plan = write_plan(repo, stacked_plan())
    assert wtrun("run", str(plan), cwd=repo) == 0
    before = records(repo)
    numbers = {pr.head: pr.number for pr in fake.pulls.values()}
    assert numbers == {
        "worktree-api": 1,
        "worktree-docs": 2,
        "worktree-examples": 3,
        "worktree-auth": 4,
    }
    auth_head = rev(bare, "worktree-auth")
    # A teammate's commit lands first, so that a rebase merge makes new commits too.
    push_as_someone_else(tmp_path, "main", "docs/news.md", "news\n")

    main = fake.merge(1, method)
    start = len(fake.requests)
    capsys.readouterr()
    assert wtrun("sync", str(plan), "--delete-merged", cwd=repo) == 0
    out = capsys.readouterr().out
    sent = calls(fake, start)

    # The child's PR was retargeted before anything deleted the merged branch.
    patch = next(
        i
        for i, r in enumerate(fake.requests[start:])
        if r.method == "PATCH" and r.path == f"{P}/pulls/2" and r.body == {"base": "main"}
    )
    deletion = sent.index(f"DELETE {P}/git/refs/heads/worktree-api")
    assert patch < deletion
    assert [c for c in sent if c.startswith("DELETE")] == [
        f"DELETE {P}/git/refs/heads/worktree-api"
    ]
    assert fake.pulls[2].state == "open" and fake.pulls[2].base == "main"
    assert fake.pulls[3].state == "open" and fake.pulls[3].base == "worktree-docs"
    assert sorted(remote_branches(bare)) == [
        "main",
        "worktree-auth",
        "worktree-docs",
        "worktree-examples",
    ]
    assert "worktree-api" not in git(repo, "branch", "--list", "worktree-api")

    # Pushed with a lease: the remote branches are the rebased commits, nothing conflicted.
    after = records(repo)
    docs, examples = rev(bare, "worktree-docs"), rev(bare, "worktree-examples")
    assert (
        docs == after["docs"]["head"] == after["docs"]["pushed_head"] == rev(repo, "worktree-docs")
    )
    assert docs != before["docs"]["head"]
    assert rev(bare, "worktree-docs^") == main
    assert changed(bare, f"main...{docs}") == ["src/docs/work.py"]
    assert after["docs"]["start_commit"] == main
    assert after["docs"]["pr_base"] == "main"
    # The grandchild followed its parent: --onto <docs new head> <docs old head>.
    assert examples != before["examples"]["head"]
    assert rev(bare, "worktree-examples^") == docs
    assert changed(bare, f"{docs}...{examples}") == ["src/examples/work.py"]
    assert after["examples"]["start_commit"] == docs
    assert rev(bare, "worktree-auth") == auth_head
    assert after["api"]["pr_state"] == "merged"
    # The worktrees moved with their branches.
    assert rev(repo / ".claude/worktrees/docs", "HEAD") == docs
    assert (repo / ".claude/worktrees/docs/src/api/work.py").exists()
    assert not (repo / ".claude/worktrees/api").exists()

    # "Stacked on #1" is gone from the child's text; it still lists its own child.
    body = fake.pulls[2].body or ""
    assert "Stacked on #1" not in body and "Stacked on this PR: #3" in body
    assert "Stacked on #2" in (fake.pulls[3].body or "")
    assert "conflict" not in out
    assert "docs: PR #2 now targets main (was worktree-api)" in out
    assert (
        f"docs: rebased onto main ({main[:12]}): worktree-docs is now at {docs[:12]}, "
        f"pushed (lease on {before['docs']['pushed_head'][:12]})" in out
    )


@needs_gh
def test_a_second_sync_changes_nothing(
    github: tuple[Path, FakeGitHub], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, fake = github
    bare = repo.parent / "origin.git"
    plan = write_plan(repo, stacked_plan())
    assert wtrun("run", str(plan), cwd=repo) == 0
    fake.merge(1, "squash")
    assert wtrun("sync", str(plan), cwd=repo) == 0
    remote = refs(bare)
    state = records(repo)
    start = len(fake.requests)
    capsys.readouterr()
    assert wtrun("sync", str(plan), cwd=repo) == 0
    out = capsys.readouterr().out
    assert [c for c in calls(fake, start) if not c.startswith("GET ")] == []
    assert refs(bare) == remote
    assert records(repo) == state
    assert "every stacked PR is where it belongs" in out


@needs_gh
def test_a_merge_commit_needs_a_retarget_only(
    github: tuple[Path, FakeGitHub], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, fake = github
    bare = repo.parent / "origin.git"
    plan = write_plan(repo, stacked_plan())
    assert wtrun("run", str(plan), cwd=repo) == 0
    docs = rev(bare, "worktree-docs")
    fake.merge(1, "merge")
    assert wtrun("sync", str(plan), cwd=repo) == 0
    # The parent's commits are in main as they are: the child's branch is right already.
    assert fake.pulls[2].base == "main"
    assert rev(bare, "worktree-docs") == docs
    assert changed(bare, "main...worktree-docs") == ["src/docs/work.py"]
    # Without --delete-merged the merged branch stays.
    assert "worktree-api" in remote_branches(bare)


@needs_gh
def test_a_lease_refused_stops_that_task_and_loses_nothing(
    github: tuple[Path, FakeGitHub], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, fake = github
    bare = repo.parent / "origin.git"
    plan = write_plan(repo, stacked_plan())
    assert wtrun("run", str(plan), cwd=repo) == 0
    before = records(repo)
    theirs = push_as_someone_else(tmp_path, "worktree-docs", "src/docs/review.md", "fix\n")
    fake.merge(1, "squash")
    capsys.readouterr()
    assert wtrun("sync", str(plan), "--delete-merged", cwd=repo) == 1
    out = capsys.readouterr().out
    old = before["docs"]["pushed_head"]
    assert (
        f"docs: not synced: the push to origin/worktree-docs was refused: it is no longer "
        f"at {old[:12]}, where wtrun pushed it (someone pushed to it). wtrun overwrites "
        "nobody's commits: the rebase was undone, the branch and the remote are as they "
        "were."
    ) in out
    assert "wtrun sync: 1 task not synced: docs" in out
    # Their commit is still the remote branch; ours is where it was, worktree included.
    assert rev(bare, "worktree-docs") == theirs
    assert rev(repo, "worktree-docs") == old
    assert rev(repo / ".claude/worktrees/docs", "HEAD") == old
    assert records(repo)["docs"]["head"] == old
    # The grandchild stays on its parent, untouched; the PR was retargeted, so the merged
    # branch could be deleted without closing it.
    assert rev(bare, "worktree-examples") == before["examples"]["head"]
    assert fake.pulls[2].state == "open" and fake.pulls[2].base == "main"


@needs_gh
def test_a_closed_parent_blocks_its_children(
    github: tuple[Path, FakeGitHub], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, fake = github
    bare = repo.parent / "origin.git"
    plan = write_plan(repo, stacked_plan())
    assert wtrun("run", str(plan), cwd=repo) == 0
    remote = refs(bare)
    fake.pulls[1].state = "closed"  # a reviewer closed it without merging
    start = len(fake.requests)
    capsys.readouterr()
    assert wtrun("sync", str(plan), "--delete-merged", cwd=repo) == 0
    out = capsys.readouterr().out
    assert "api: PR #1 was closed without merging" in out
    assert (
        "docs: blocked: its parent's PR #1 (api) was closed without merging; its PR and "
        "branch are left as they are"
    ) in out
    assert (
        'examples: blocked: task "docs" it builds on is blocked; its PR and branch are '
        "left as they are"
    ) in out
    assert [c for c in calls(fake, start) if not c.startswith("GET ")] == []
    assert refs(bare) == remote
    assert fake.pulls[2].base == "worktree-api" and fake.pulls[3].base == "worktree-docs"
    # `status` says so too, with the reason; the parent itself is done, its PR closed.
    data = status(repo, plan, capsys)
    assert (data["api"]["state"], data["api"]["reason"]) == ("done", None)
    assert data["docs"]["state"] == "blocked"
    assert data["docs"]["reason"] == "its parent's PR #1 (api) was closed without merging"
    assert data["examples"]["state"] == "blocked"
    assert data["examples"]["reason"] == 'task "docs" it builds on is blocked'
    assert data["auth"]["state"] == "done"

    # Reopened, the parent unblocks them.
    fake.pulls[1].state = "open"
    assert wtrun("sync", str(plan), cwd=repo) == 0
    data = status(repo, plan, capsys)
    assert [(data[t]["state"], data[t]["reason"]) for t in ("docs", "examples")] == [
        ("done", None),
        ("done", None),
    ]


# ---------------------------------------------------------------- base drift


def drift_plan() -> str:
    return f"""\
version: 1
name: sprint
agent:
  preset: command
  command: {agent("edit", "src/{{ task.id }}/work.py")}
pr: {{provider: none}}
tasks:
  - id: clean
    prompt: Work that applies cleanly.
    scope: [src/clean/]
  - id: clash
    prompt: Work that changes the README too.
    scope: [src/clash/, README.md]
    agent: {{command: {agent("edit", "src/clash/work.py", "README.md")}}}
"""


def test_base_drift_is_reported_and_rebase_follows_it_where_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path)
    bare = tmp_path / "origin.git"
    plan = write_plan(repo, drift_plan())
    assert wtrun("run", str(plan), cwd=repo) == 0
    before = records(repo)
    # The base moves on: a teammate changes the README and adds a file.
    push_as_someone_else(tmp_path, "main", "README.md", "# shop, rewritten\n")
    tip = push_as_someone_else(tmp_path, "main", "docs/new.md", "new\n")

    capsys.readouterr()
    assert wtrun("sync", str(plan), cwd=repo) == 0
    out = capsys.readouterr().out
    assert (
        f"base main is at {tip[:12]} (2 commits since the run's base "
        f"{before['clean']['start_commit'][:12]}):" in out
    )
    assert "  clean: 2 commits behind; applies cleanly" in out
    assert "  clash: 2 commits behind; conflicts with main in README.md" in out
    assert "--rebase` rebases the tasks that apply cleanly" in out
    assert rev(bare, "worktree-clean") == before["clean"]["head"]
    data = status(repo, plan, capsys)
    assert data["clean"]["behind"] == 2 and data["clean"]["base_conflicts"] == []
    assert data["clash"]["base_conflicts"] == ["README.md"]

    capsys.readouterr()
    assert wtrun("sync", str(plan), "--rebase", cwd=repo) == 0
    out = capsys.readouterr().out
    assert "clash: not rebased: conflicts with main in README.md" in out
    clean = rev(bare, "worktree-clean")
    assert clean != before["clean"]["head"]
    assert rev(bare, "worktree-clean^") == tip
    assert changed(bare, f"{tip}...{clean}") == ["src/clean/work.py"]
    # The conflicting task is untouched, its worktree too.
    assert rev(bare, "worktree-clash") == before["clash"]["head"]
    assert rev(repo / ".claude/worktrees/clash", "HEAD") == before["clash"]["head"]
    data = status(repo, plan, capsys)
    assert data["clean"]["behind"] == 0
    assert data["clash"]["behind"] == 2


def test_the_end_of_a_run_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path)
    plan = write_plan(
        repo,
        drift_plan().replace(
            "  - id: clash",
            "  - id: later\n    prompt: Later.\n    scope: [src/later/]\n  - id: clash",
        ),
    )
    assert wtrun("run", str(plan), "--task", "clean", cwd=repo) == 0
    push_as_someone_else(tmp_path, "main", "docs/new.md", "new\n")
    capsys.readouterr()
    assert wtrun("run", str(plan), "--task", "later", cwd=repo) == 0
    out = capsys.readouterr().out
    assert "  clean: 1 commit behind; applies cleanly" in out
    assert "  later: 1 commit behind" in out


# ---------------------------------------------------------------- the local provider


def test_local_provider_merge_marked_in_the_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path)
    bare = tmp_path / "origin.git"
    plan = write_plan(repo, stacked_plan("local"))
    assert wtrun("run", str(plan), cwd=repo) == 0
    # A reviewer squash-merges api on the remote, and the local PR is marked merged.
    other = tmp_path / "reviewer"
    git(tmp_path, "clone", "-q", str(bare), str(other))
    git(other, "merge", "-q", "--squash", "origin/worktree-api")
    git(other, "commit", "-qm", "api (#1)")
    git(other, "push", "-q", "origin", "main")
    set_pr_state(repo / ".git/wtrun/sprint/prs", 1, "merged")
    # The child's worktree was cleaned up meanwhile: the rebase happens in a temporary one.
    git(repo, "worktree", "remove", "--force", ".claude/worktrees/docs")
    docs_before = rev(repo, "worktree-docs")

    assert wtrun("sync", str(plan), "--delete-merged", cwd=repo) == 0
    assert rev(bare, "worktree-docs^") == rev(bare, "main")
    assert rev(repo, "worktree-docs") == rev(bare, "worktree-docs") != docs_before
    assert rev(bare, "worktree-examples^") == rev(bare, "worktree-docs")
    assert [
        p
        for p in git(repo, "worktree", "list", "--porcelain").split("\n")
        if p.startswith("worktree ")
    ] == [
        f"worktree {repo}",
        *(f"worktree {repo}/.claude/worktrees/{t}" for t in ("auth", "examples")),
    ]
    assert changed(bare, "main...worktree-docs") == ["src/docs/work.py"]
    text = (repo / ".git/wtrun/sprint/prs/docs.md").read_text()
    assert "- base: `main`" in text and "Stacked on #" not in text
    assert "worktree-api" not in remote_branches(bare)


def test_sync_without_records_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path)
    plan = write_plan(repo, drift_plan())
    capsys.readouterr()
    assert wtrun("sync", str(plan), cwd=repo) == 0
    assert capsys.readouterr().out == (
        "wtrun sync: plan sprint has no finished tasks recorded in this repository; "
        "nothing to sync\n"
    )


# ---------------------------------------------------------------- leftovers


def test_status_lists_leftover_worktrees_and_branches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path)
    plan = write_plan(repo, drift_plan())
    assert wtrun("run", str(plan), "--task", "clean", cwd=repo) == 0
    # A worktree of a task that left the plan, a branch named like the plan's, and a
    # worktree outside the plan's folder (not wtrun's business).
    git(repo, "worktree", "add", "-q", "-b", "worktree-gone", ".claude/worktrees/gone")
    git(repo, "branch", "worktree-old")
    git(repo, "worktree", "add", "-q", "-b", "mine", str(tmp_path / "elsewhere"))
    data = status_json(repo, plan, capsys)
    gone = repo / ".claude/worktrees/gone"
    assert data["leftovers"] == [
        {
            "kind": "worktree",
            "path": str(gone),
            "branch": "worktree-gone",
            "command": f"git worktree remove {gone}",
        },
        {"kind": "branch", "name": "worktree-gone", "command": "git branch -D worktree-gone"},
        {"kind": "branch", "name": "worktree-old", "command": "git branch -D worktree-old"},
    ]
    assert [t["id"] for t in data["tasks"]] == ["clean", "clash"]
    capsys.readouterr()
    assert wtrun("status", str(plan), cwd=repo) == 0
    out = capsys.readouterr().out
    assert "leftovers (no task of plan sprint owns them):" in out
    assert f"  worktree {gone}: git worktree remove {gone}" in out
    assert "  branch worktree-old: git branch -D worktree-old" in out
    # The commands do what they say.
    for item in data["leftovers"]:
        git(repo, *item["command"].split()[1:])
    assert status_json(repo, plan, capsys)["leftovers"] == []


@needs_gh
def test_github_deleted_the_merged_branch_itself(
    github: tuple[Path, FakeGitHub], capsys: pytest.CaptureFixture[str]
) -> None:
    """ "Automatically delete head branches": GitHub retargets the children on its own."""
    repo, fake = github
    bare = repo.parent / "origin.git"
    plan = write_plan(repo, stacked_plan())
    assert wtrun("run", str(plan), cwd=repo) == 0
    fake.delete_branch_on_merge = True
    main = fake.merge(1, "squash")
    assert fake.pulls[2].base == "main"
    start = len(fake.requests)
    assert wtrun("sync", str(plan), "--delete-merged", cwd=repo) == 0
    assert [c for c in calls(fake, start) if c.startswith(("DELETE", "POST"))] == []
    assert not any(r.method == "PATCH" and "base" in (r.body or {}) for r in fake.requests[start:])
    assert rev(bare, "worktree-docs^") == main
    assert changed(bare, "main...worktree-docs") == ["src/docs/work.py"]
    assert rev(bare, "worktree-examples^") == rev(bare, "worktree-docs")
