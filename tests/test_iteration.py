"""Plans change and verify fails: a rerun redoes only what changed, follows up on pushed
work without force, and sends a verify failure back to the agent while attempts are left.

The agent here counts its runs in a file outside its worktree (so these plans run with
`sandbox: none`) and writes what it was asked into the file it changes.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from fakes.github import FakeGitHub
from testing import git, needs_gh, status, write_plan, wtrun

AGENT = """\
import os, pathlib, sys
runs = pathlib.Path(sys.argv[1])
with runs.open("a") as f:
    f.write(os.environ["WTRUN_PROMPT"] + "\\n===\\n")
count = runs.read_text().count("\\n===\\n")
pathlib.Path("src/a").mkdir(parents=True, exist_ok=True)
good = "did not pass the checks" in os.environ["WTRUN_PROMPT"] or "{always_good}" == "yes"
pathlib.Path("src/a/x.py").write_text(f"run {{count}}: {{'good' if good else 'bad'}}\\n")
"""


def counting_agent(tmp_path: Path, *, always_good: bool = True) -> tuple[str, Path]:
    script = tmp_path / "agent.py"
    script.write_text(AGENT.format(always_good="yes" if always_good else "no"))
    runs = tmp_path / "runs.txt"
    return json.dumps([sys.executable, str(script), str(runs)]), runs


def plan_text(command: str, *, provider: str, verify: str = "true", extra: str = "") -> str:
    return textwrap.dedent(
        f"""\
        version: 1
        name: demo
        agent: {{preset: command, command: {command}, timeout: 60s, sandbox: none}}
        pr: {{provider: {provider}, repository: acme/shop, title: "a: first title"}}
        verify:
          - run: {verify}
        {extra}
        tasks:
          - id: a
            prompt: Make x.
            scope: [src/a/]
        """
    )


def agent_runs(runs: Path) -> list[str]:
    return runs.read_text().split("\n===\n")[:-1] if runs.exists() else []


def test_a_verify_edit_reruns_verify_only_and_pushes_nothing(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, runs = counting_agent(tmp_path)
    plan = write_plan(repo, plan_text(command, provider="local"))
    assert wtrun("run", str(plan), cwd=repo) == 0
    pushed = git(repo.parent / "origin.git", "rev-parse", "worktree-a")
    plan.write_text(plan.read_text().replace("  - run: true", "  - run: test -f src/a/x.py"))
    assert status(repo, plan, capsys)["a"]["stale"] == ["verify"]
    assert wtrun("run", str(plan), cwd=repo) == 0
    assert len(agent_runs(runs)) == 1
    assert git(repo.parent / "origin.git", "rev-parse", "worktree-a") == pushed
    row = status(repo, plan, capsys)["a"]
    assert (row["state"], row["stale"]) == ("done", [])


@needs_gh
def test_a_pr_title_edit_sends_one_patch_and_runs_no_agent(
    github: tuple[Path, FakeGitHub], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, fake = github
    command, runs = counting_agent(tmp_path)
    plan = write_plan(repo, plan_text(command, provider="github"))
    assert wtrun("run", str(plan), cwd=repo) == 0
    before = len(fake.requests)
    plan.write_text(plan.read_text().replace("a: first title", "a: a better title"))
    assert status(repo, plan, capsys)["a"]["stale"] == ["pr"]
    assert wtrun("run", str(plan), cwd=repo) == 0
    writes = [(r.method, r.path) for r in fake.requests[before:] if r.method != "GET"]
    assert writes == [("PATCH", "/repos/acme/shop/pulls/1")]
    assert fake.pulls[1].title == "a: a better title"
    assert len(agent_runs(runs)) == 1


def test_a_prompt_edit_of_pushed_work_is_a_follow_up_pushed_fast_forward(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, runs = counting_agent(tmp_path)
    plan = write_plan(repo, plan_text(command, provider="local"))
    assert wtrun("run", str(plan), cwd=repo) == 0
    bare = repo.parent / "origin.git"
    first = git(bare, "rev-parse", "worktree-a").strip()
    plan.write_text(plan.read_text().replace("prompt: Make x.", "prompt: Make x, and test it."))
    assert status(repo, plan, capsys)["a"]["stale"] == ["prompt"]
    assert wtrun("run", str(plan), cwd=repo) == 0
    asked = agent_runs(runs)
    assert len(asked) == 2
    assert "already under review: build on it" in asked[1]
    assert "-Make x.\n+Make x, and test it." in asked[1]  # the change, as a diff
    second = git(bare, "rev-parse", "worktree-a").strip()
    assert git(bare, "rev-list", "--count", f"{first}..{second}").strip() == "1"
    assert git(bare, "merge-base", "--is-ancestor", first, second) == ""  # fast-forward
    row = status(repo, plan, capsys)["a"]
    assert (row["state"], row["stale"], row["attempts"]) == ("done", [], 2)
    pr = (repo / ".git/wtrun/demo/prs/a.md").read_text()
    assert "Make x, and test it." in pr


def test_a_prompt_edit_of_unpushed_work_starts_afresh_keeping_a_backup(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, runs = counting_agent(tmp_path)
    plan = write_plan(repo, plan_text(command, provider="local"))
    assert wtrun("run", str(plan), "--no-pr", cwd=repo) == 0
    first = git(repo, "rev-parse", "worktree-a").strip()
    plan.write_text(plan.read_text().replace("prompt: Make x.", "prompt: Make y."))
    capsys.readouterr()
    assert wtrun("run", str(plan), "--no-pr", cwd=repo) == 0
    assert "refs/wtrun/backup/demo/a" in capsys.readouterr().err
    assert git(repo, "rev-parse", "refs/wtrun/backup/demo/a").strip() == first
    assert git(repo, "rev-list", "--count", "main..worktree-a").strip() == "1"
    assert agent_runs(runs)[1].strip() == "Make y."


def test_a_verify_failure_goes_back_to_the_agent_while_attempts_are_left(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, runs = counting_agent(tmp_path, always_good=False)
    plan = write_plan(
        repo,
        plan_text(command, provider="local", verify="grep -q good src/a/x.py").replace(
            "timeout: 60s,", "timeout: 60s, attempts: 2,"
        ),
    )
    assert wtrun("run", str(plan), cwd=repo) == 0
    asked = agent_runs(runs)
    assert len(asked) == 2
    assert "did not pass the checks" in asked[1]
    assert "verify step 1 (grep -q good src/a/x.py) failed with exit code 1" in asked[1]
    row = status(repo, plan, capsys)["a"]
    assert (row["state"], row["attempts"]) == ("done", 2)
    assert "run 2: good" in git(repo.parent / "origin.git", "show", "worktree-a:src/a/x.py")


def test_attempts_end_at_the_limit(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, runs = counting_agent(tmp_path, always_good=False)
    plan = write_plan(repo, plan_text(command, provider="local", verify="exit 1"))
    plan.write_text(plan.read_text().replace("timeout: 60s,", "timeout: 60s, attempts: 3,"))
    assert wtrun("run", str(plan), cwd=repo) == 1
    assert len(agent_runs(runs)) == 3
    row = status(repo, plan, capsys)["a"]
    assert (row["state"], row["step"], row["attempts"]) == ("failed", "verify", 3)


def test_what_setup_makes_is_never_blamed_on_the_agent_nor_committed(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, _ = counting_agent(tmp_path)
    text = plan_text(command, provider="local").replace(
        "verify:\n",
        "setup:\n  - run: mkdir -p env/bin build && touch env/bin/python build/out\nverify:\n",
    )
    plan = write_plan(repo, text)
    assert wtrun("run", str(plan), cwd=repo) == 0
    row = status(repo, plan, capsys)["a"]
    assert (row["state"], row["files"]) == ("done", ["src/a/x.py"])
    tree = git(repo.parent / "origin.git", "ls-tree", "-r", "--name-only", "worktree-a")
    assert "env/bin/python" not in tree and "build/out" not in tree


def test_restart_of_pushed_work_says_how_and_works_once_done(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, runs = counting_agent(tmp_path)
    plan = write_plan(repo, plan_text(command, provider="local"))
    assert wtrun("run", str(plan), cwd=repo) == 0
    capsys.readouterr()
    assert wtrun("run", str(plan), "--restart", "a", cwd=repo) == 1
    said = capsys.readouterr().err
    assert f"`wtrun pr {plan} --closed a`" in said
    assert "`git push origin --delete worktree-a`" in said
    # Doing exactly what it says, then the same --restart.
    assert wtrun("pr", str(plan), "--closed", "a", cwd=repo) == 0
    git(repo, "push", "-q", "origin", "--delete", "worktree-a")
    assert wtrun("run", str(plan), "--restart", "a", cwd=repo) == 0
    assert len(agent_runs(runs)) == 2
    row = status(repo, plan, capsys)["a"]
    assert (row["state"], row["attempts"]) == ("done", 1)
