"""The plan's records on the remote (`refs/wtrun/<plan>`): pushed with a lease, merged by the
rule of `pr --merge-records` when another writer got there first, pulled into a fresh clone,
and held against the plan when read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testing import agent, git, status, write_plan, wtrun

PLAN = f"""\
version: 1
name: nightly
agent:
  preset: command
  command: {agent("edit", "src/{{ task.id }}/work.py")}
tasks:
  - id: api
    prompt: Build the API.
    scope: [src/api/]
  - id: auth
    prompt: Fix auth.
    scope: [src/auth/]
"""
REF = "refs/wtrun/nightly"


@pytest.fixture
def plan(repo: Path) -> Path:
    path = write_plan(repo, PLAN)
    git(repo, "add", "plans")
    git(repo, "commit", "-qm", "plan")
    git(repo, "push", "-q", "origin", "main")
    return path


def clone(tmp_path: Path, name: str) -> Path:
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), name)
    return tmp_path / name


def remote_records(tmp_path: Path) -> dict[str, str]:
    """Each task's state in the remote's records."""
    data = json.loads(git(tmp_path / "origin.git", "show", f"{REF}:state.json"))
    return {tid: r["state"] for tid, r in data["tasks"].items()}


def test_a_fresh_clone_shows_the_last_run_after_a_pull(
    tmp_path: Path, repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert wtrun("run", str(plan), "--no-pr", cwd=repo) == 0
    assert wtrun("records", "push", "plans/plan.yaml", cwd=repo) == 0
    assert f"pushed the records of plan 'nightly' to origin ({REF} " in capsys.readouterr().out
    # One file, no logs, no worktree paths of this machine.
    assert git(tmp_path / "origin.git", "ls-tree", "--name-only", REF) == "state.json\n"
    shown = git(tmp_path / "origin.git", "show", f"{REF}:state.json")
    assert str(repo) not in shown

    fresh = clone(tmp_path, "fresh")
    assert {t: r["state"] for t, r in status(fresh, Path("plans/plan.yaml"), capsys).items()} == {
        "api": "pending",
        "auth": "pending",
    }
    assert wtrun("records", "pull", "plans/plan.yaml", cwd=fresh) == 0
    assert "2 tasks further along there" in capsys.readouterr().out
    rows = status(fresh, Path("plans/plan.yaml"), capsys)
    assert {t: r["state"] for t, r in rows.items()} == {"api": "ready", "auth": "ready"}
    assert rows["api"]["branch"] == "worktree-api"

    assert wtrun("records", "push", "plans/plan.yaml", cwd=repo) == 0
    assert "holds these records of plan 'nightly' already" in capsys.readouterr().out


def test_a_writer_that_lost_the_race_merges_and_pushes_again(
    tmp_path: Path, repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = clone(tmp_path, "other")
    assert wtrun("records", "pull", "plans/plan.yaml", cwd=other) == 0
    assert "has no records of plan 'nightly'" in capsys.readouterr().out
    assert wtrun("run", "plans/plan.yaml", "--task", "api", "--no-pr", cwd=repo) == 0
    assert wtrun("run", "plans/plan.yaml", "--task", "auth", "--no-pr", cwd=other) == 0
    assert wtrun("records", "push", "plans/plan.yaml", cwd=repo) == 0
    first = git(tmp_path / "origin.git", "rev-parse", REF).strip()

    # `other` read the remote before `repo` wrote: its lease fails, it merges and retries.
    assert wtrun("records", "push", "plans/plan.yaml", cwd=other) == 0
    assert remote_records(tmp_path) == {"api": "ready", "auth": "ready"}
    assert git(tmp_path / "origin.git", "rev-parse", f"{REF}^").strip() == first
    rows = status(other, Path("plans/plan.yaml"), capsys)
    assert {t: r["state"] for t, r in rows.items()} == {"api": "ready", "auth": "ready"}


def test_records_that_name_another_branch_are_refused(
    tmp_path: Path, repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert wtrun("run", "plans/plan.yaml", "--task", "api", "--no-pr", cwd=repo) == 0
    assert wtrun("records", "push", "plans/plan.yaml", cwd=repo) == 0
    # Anyone who can push a ref rewrites the records to point at `release`.
    liar = clone(tmp_path, "liar")
    git(liar, "fetch", "-q", "origin", f"{REF}:{REF}")
    data = json.loads(git(liar, "show", f"{REF}:state.json"))
    data["tasks"]["api"]["branch"] = "release"
    (liar / "state.json").write_text(json.dumps(data))
    git(liar, "add", "state.json")
    tree = git(liar, "write-tree").strip()
    commit = git(liar, "commit-tree", tree, "-m", "lie").strip()
    git(liar, "push", "-q", "--force", "origin", f"{commit}:{REF}")

    fresh = clone(tmp_path, "fresh")
    capsys.readouterr()
    assert wtrun("records", "pull", "plans/plan.yaml", cwd=fresh) == 1
    err = capsys.readouterr().err
    assert f"the records {REF} on 'origin': the run records of plan 'nightly'" in err
    assert "task \"api\" names branch 'release', the plan 'worktree-api'" in err
    rows = status(fresh, Path("plans/plan.yaml"), capsys)
    assert {r["state"] for r in rows.values()} == {"pending"}


def test_records_need_a_remote(
    tmp_path: Path, repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert wtrun("records", "pull", "plans/plan.yaml", "--remote", "nope", cwd=repo) == 2
    assert "this repository has no remote 'nope'" in capsys.readouterr().err
