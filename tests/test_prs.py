"""Pull requests in order: a real bare remote, the real `gh`, a GitHub-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes.github import FakeGitHub
from testing import git, needs_gh, remote_branches, stacked_plan, write_plan, wtrun

pytestmark = needs_gh


PLAN = stacked_plan(extra="  labels: [agent]\n  reviewers: [alice]")


def calls(fake: FakeGitHub) -> list[str]:
    out = []
    for r in fake.requests:
        query = "&".join(f"{k}={v}" for k, v in sorted(r.query.items()))
        out.append(f"{r.method} {r.path}" + (f"?{query}" if query else ""))
    return out


def test_prs_open_parents_first_and_stack(
    github: tuple[Path, FakeGitHub], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, fake = github
    plan = write_plan(repo, PLAN)
    assert wtrun("run", str(plan), cwd=repo) == 0
    p = "/repos/acme/shop"
    assert calls(fake) == [
        "GET /user",
        f"GET {p}/pulls?head=acme:worktree-api&per_page=100&state=open",
        f"POST {p}/pulls",
        f"POST {p}/issues/1/labels",
        f"POST {p}/pulls/1/requested_reviewers",
        f"GET {p}/pulls?head=acme:worktree-docs&per_page=100&state=open",
        f"POST {p}/pulls",
        f"POST {p}/issues/2/labels",
        f"POST {p}/pulls/2/requested_reviewers",
        f"GET {p}/pulls?head=acme:worktree-examples&per_page=100&state=open",
        f"POST {p}/pulls",
        f"POST {p}/issues/3/labels",
        f"POST {p}/pulls/3/requested_reviewers",
        f"GET {p}/pulls?head=acme:worktree-auth&per_page=100&state=open",
        f"POST {p}/pulls",
        f"POST {p}/issues/4/labels",
        f"POST {p}/pulls/4/requested_reviewers",
        # Once every PR exists, the parents learn their children's numbers: one edit each.
        f"PATCH {p}/pulls/1",
        f"PATCH {p}/pulls/2",
    ]
    pulls = {pr.head: pr for pr in fake.pulls.values()}
    assert pulls["worktree-api"].base == "main"
    assert pulls["worktree-docs"].base == "worktree-api"
    assert pulls["worktree-examples"].base == "worktree-docs"
    assert pulls["worktree-auth"].base == "main"
    assert pulls["worktree-api"].title == "api: The API"
    assert pulls["worktree-api"].draft is True
    assert "Stacked on #1" in (pulls["worktree-docs"].body or "")
    assert "Stacked on this PR: #2" in (pulls["worktree-api"].body or "")
    assert "Stacked on this PR: #3" in (pulls["worktree-docs"].body or "")
    assert "`src/api/work.py`" in (pulls["worktree-api"].body or "")
    assert sorted(remote_branches(repo.parent / "origin.git")) == [
        "main",
        "worktree-api",
        "worktree-auth",
        "worktree-docs",
        "worktree-examples",
    ]

    capsys.readouterr()
    assert wtrun("status", str(plan), "--json", cwd=repo) == 0
    rows = {t["id"]: t for t in json.loads(capsys.readouterr().out)["tasks"]}
    assert rows["docs"]["state"] == "done"
    assert rows["docs"]["pr_url"] == "https://github.com/acme/shop/pull/2"

    # A second run changes nothing: no push, no new PR, no update.
    before = len(fake.requests)
    assert wtrun("run", str(plan), cwd=repo) == 0
    assert [c for c in calls(fake)[before:] if not c.startswith("GET")] == []
    assert len(fake.pulls) == 4


def test_an_existing_pr_is_updated_not_duplicated(github: tuple[Path, FakeGitHub]) -> None:
    repo, fake = github
    plan = write_plan(repo, PLAN.split("  - id: auth")[0])
    # Someone opened a PR for the branch already (e.g. an earlier run whose records were lost).
    fake.add_pull("worktree-api", "main", "old title", "old body")
    assert wtrun("run", str(plan), cwd=repo) == 0
    assert len(fake.pulls) == 1
    (pr,) = fake.pulls.values()
    assert pr.title == "api: The API"
    assert "Build the API." in (pr.body or "")
    assert "POST /repos/acme/shop/pulls" not in calls(fake)


def test_a_502_is_retried_once(github: tuple[Path, FakeGitHub]) -> None:
    repo, fake = github
    plan = write_plan(repo, PLAN.split("  - id: auth")[0])
    fake.fail_next("POST", r"/repos/acme/shop/pulls", 502)
    assert wtrun("run", str(plan), cwd=repo) == 0
    assert calls(fake).count("POST /repos/acme/shop/pulls") == 2
    assert len(fake.pulls) == 1


def test_a_refused_push_fails_that_task_only(
    github: tuple[Path, FakeGitHub], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = github
    # Someone else pushed a branch of the same name to the remote.
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(other))
    git(other, "checkout", "-q", "-b", "worktree-auth")
    (other / "theirs.txt").write_text("theirs\n")
    git(other, "add", "theirs.txt")
    git(other, "commit", "-qm", "theirs")
    git(other, "push", "-q", "origin", "worktree-auth")
    plan = write_plan(repo, PLAN)
    assert wtrun("run", str(plan), cwd=repo) == 1
    capsys.readouterr()
    wtrun("status", str(plan), "--json", cwd=repo)
    rows = {t["id"]: t for t in json.loads(capsys.readouterr().out)["tasks"]}
    assert rows["auth"]["state"] == "failed"
    assert rows["auth"]["reason"].startswith(
        "push of worktree-auth to origin was refused: the remote branch has commits this one "
        "lacks (someone pushed to it). wtrun never force-pushes"
    )
    assert rows["api"]["state"] == "done"
    theirs = git(other, "rev-parse", "HEAD").strip()
    assert git(tmp_path / "origin.git", "rev-parse", "worktree-auth").strip() == theirs


def test_not_logged_in_fails_before_any_push(
    github: tuple[Path, FakeGitHub],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, fake = github
    fake.token = "another"  # the server no longer accepts the token gh sends
    plan = write_plan(repo, PLAN)
    capsys.readouterr()
    assert wtrun("run", str(plan), cwd=repo) == 1
    err = capsys.readouterr().err
    assert "cannot log in to GitHub at github.com" in err
    assert remote_branches(repo.parent / "origin.git") == ["main"]
    # Checked before any agent ran: no worktree was made, no money spent.
    assert not (repo / ".claude").exists()


def test_run_no_pr_then_pr_opens_them(
    github: tuple[Path, FakeGitHub], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, fake = github
    plan = write_plan(repo, PLAN)
    assert wtrun("run", str(plan), "--no-pr", cwd=repo) == 0
    assert fake.requests == []
    assert remote_branches(repo.parent / "origin.git") == ["main"]
    assert wtrun("pr", str(plan), cwd=repo) == 0
    bases = {pr.head: pr.base for pr in fake.pulls.values()}
    assert bases == {
        "worktree-api": "main",
        "worktree-docs": "worktree-api",
        "worktree-examples": "worktree-docs",
        "worktree-auth": "main",
    }


def test_fan_out_stacks_in_separate_clones_then_one_pr_job(
    github: tuple[Path, FakeGitHub], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The path of .github/workflows/fanout.yml, run locally: matrix, one clone per stack,
    records and branch bundles gathered, PRs opened in order by a final job."""
    repo, fake = github
    write_plan(repo, PLAN)
    git(repo, "add", "plans")
    git(repo, "commit", "-qm", "plan")
    git(repo, "push", "-q", "origin", "main")
    bare = tmp_path / "origin.git"
    capsys.readouterr()
    assert wtrun("matrix", "plans/plan.yaml", cwd=repo) == 0
    matrix = json.loads(capsys.readouterr().out)
    assert matrix == {
        "include": [
            {"stack": "api", "tasks": ["api", "docs", "examples"]},
            {"stack": "auth", "tasks": ["auth"]},
        ]
    }
    records = []
    for entry in matrix["include"]:
        clone = tmp_path / f"job-{entry['stack']}"
        git(tmp_path, "clone", "-q", str(bare), str(clone))
        assert wtrun("run", "plans/plan.yaml", "--stack", entry["stack"], "--no-pr", cwd=clone) == 0
        capsys.readouterr()
        wtrun("status", "plans/plan.yaml", "--json", cwd=clone)
        rows = json.loads(capsys.readouterr().out)["tasks"]
        refs = [f"refs/heads/{t['branch']}" for t in rows if t["state"] == "ready"]
        assert sorted(t["id"] for t in rows if t["state"] == "ready") == sorted(entry["tasks"])
        out = tmp_path / "artifacts" / entry["stack"]
        out.mkdir(parents=True)
        git(clone, "bundle", "create", str(out / "branches.bundle"), *refs)
        (out / "state.json").write_bytes((clone / ".git/wtrun/sprint/state.json").read_bytes())
        records.append(str(out / "state.json"))
    assert fake.requests == []
    final = tmp_path / "job-prs"
    git(tmp_path, "clone", "-q", str(bare), str(final))
    for entry in matrix["include"]:
        git(
            final,
            "fetch",
            "-q",
            str(tmp_path / "artifacts" / entry["stack"] / "branches.bundle"),
            "refs/heads/*:refs/heads/*",
        )
    assert wtrun("pr", "plans/plan.yaml", "--merge-records", *records, cwd=final) == 0
    opened = [pr.head for pr in sorted(fake.pulls.values(), key=lambda p: p.number)]
    assert opened == ["worktree-api", "worktree-docs", "worktree-examples", "worktree-auth"]
    bases = {pr.head: pr.base for pr in fake.pulls.values()}
    assert bases["worktree-examples"] == "worktree-docs"
