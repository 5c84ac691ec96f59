"""The per-task stages as a user meets them: what `run` and `prepare` say, exit with and
record, and what a bad command line leaves behind (nothing)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testing import agent, branches, git, status, write_plan, wtrun


def plan_text(*tasks: str, verify: str = "") -> str:
    return (
        "version: 1\nname: demo\npr: {provider: none}\n"
        "agent: {preset: command, timeout: 60s}\n" + verify + "tasks:\n" + "".join(tasks)
    )


def task(tid: str, scope: str, extra: str = "") -> str:
    """A task whose agent leaves one file in its scope (unless `extra` gives another)."""
    command = (
        "" if "agent:" in extra else f"    agent: {{command: {agent('leave', scope + 'x.py')}}}\n"
    )
    return f"  - id: {tid}\n    prompt: work on {tid}\n    scope: [{scope}]\n{command}{extra}"


def test_prepare_of_a_stacked_plan_succeeds_and_says_what_the_child_waits_for(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(
        repo, plan_text(task("parent", "src/a/"), task("child", "src/b/", "    after: parent\n"))
    )
    assert wtrun("prepare", str(plan), cwd=repo) == 0
    out = capsys.readouterr().out
    assert 'waits for task "parent": its agent has not run yet' in out
    found = status(repo, plan, capsys)
    assert found["parent"]["state"] == "prepared"
    assert found["child"]["state"] == "pending"
    assert found["child"]["reason"].startswith('waits for task "parent"')
    # And the whole run afterwards runs both.
    assert wtrun("run", str(plan), cwd=repo) == 0
    found = status(repo, plan, capsys)
    assert [found[t]["state"] for t in ("parent", "child")] == ["done", "done"]


def test_a_task_without_verify_steps_does_not_claim_it_was_verified(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leave_b = f"    agent: {{command: {agent('leave', 'src/b/y.py')}}}\n"
    plan = write_plan(
        repo,
        plan_text(
            task("plain", "src/a/"),
            task("checked", "src/b/", leave_b + "    verify: [{run: 'true'}]\n"),
        ),
    )
    assert wtrun("run", str(plan), cwd=repo) == 0
    out = capsys.readouterr().err
    assert "ready (committed, in scope, no verify steps)" in out
    assert "ready (committed, in scope, verified)" in out
    assert out.count("verified)") == 1


def test_each_agent_attempt_has_a_header_in_its_log(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(task("a", "src/a/")))
    plan.write_text(plan.read_text().replace(agent("leave", "src/a/x.py"), agent("crash", "x")))
    assert agent("crash", "x") in plan.read_text()
    assert wtrun("run", str(plan), cwd=repo) == 1
    assert wtrun("run", str(plan), cwd=repo) == 1  # the agent runs again: a second attempt
    log = git(repo, "rev-parse", "--git-common-dir").strip()
    text = (repo / log / "wtrun" / "demo" / "logs" / "a" / "agent.log").read_text()
    headers = re.findall(r"^\[wtrun [0-9: -]+\] agent attempt (\d+): command$", text, re.M)
    assert headers == ["1", "2"]
    assert text.count("scripted agent: crash x") == 2
    assert status(repo, plan, capsys)["a"]["attempts"] == 2


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--max-parallel", "0"], "--max-parallel must be at least 1, not 0"),
        (["--restart", "a", "--restart", "typo"], 'no task "typo"'),
        (["--task", "a", "--restart", "b"], "--restart b: that task is not part of this run"),
        (["--stack", ""], "--stack needs at least one root task id"),
        (["--stack", " , "], "--stack needs at least one root task id"),
    ],
)
def test_a_bad_command_line_is_refused_before_anything_is_written(
    repo: Path, capsys: pytest.CaptureFixture[str], flags: list[str], said: str
) -> None:
    plan = write_plan(repo, plan_text(task("a", "src/a/"), task("b", "src/b/")))
    assert wtrun("run", str(plan), cwd=repo) == 0
    common = repo / git(repo, "rev-parse", "--git-common-dir").strip()
    records = (common / "wtrun" / "demo" / "state.json").read_bytes()
    config = (common / "config").read_bytes()
    before = (branches(repo), git(repo, "worktree", "list", "--porcelain"))
    capsys.readouterr()

    assert wtrun("run", str(plan), *flags, cwd=repo) == 2
    assert said in capsys.readouterr().err
    assert (common / "wtrun" / "demo" / "state.json").read_bytes() == records
    assert (common / "config").read_bytes() == config
    assert (branches(repo), git(repo, "worktree", "list", "--porcelain")) == before
    assert status(repo, plan, capsys)["a"]["state"] == "done"


def test_restart_refuses_all_before_discarding_any(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(task("a", "src/a/"), task("b", "src/b/")))
    plan.write_text(plan.read_text().replace("pr: {provider: none}", "pr: {provider: local}"))
    assert wtrun("run", str(plan), "--task", "b", cwd=repo) == 0  # b is pushed
    assert wtrun("run", str(plan), "--task", "a", "--no-pr", cwd=repo) == 0
    capsys.readouterr()
    assert wtrun("run", str(plan), "--restart", "a", "--restart", "b", cwd=repo) == 1
    said = capsys.readouterr().err
    assert 'task "b" was pushed and is under review' in said
    assert f"close its PR #1 (`wtrun pr {plan} --closed b`)" in said
    assert "delete its remote branch (`git push origin --delete worktree-b`)" in said
    assert status(repo, plan, capsys)["a"]["state"] == "ready"  # a was not discarded
    assert (repo / ".claude" / "worktrees" / "a" / "src" / "a" / "x.py").exists()


def test_a_failing_setup_or_verify_step_points_at_its_line_in_the_plan(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(
        repo,
        plan_text(
            task("a", "src/a/", "    setup:\n      - run: exit 3\n"),
            task("b", "src/b/", "    verify:\n      - run: 'false'\n"),
        ),
    )
    lines = plan.read_text().splitlines()
    setup_line = next(i for i, line in enumerate(lines, 1) if "run: exit 3" in line)
    verify_line = next(i for i, line in enumerate(lines, 1) if "run: 'false'" in line)
    assert wtrun("run", str(plan), cwd=repo) == 1
    found = status(repo, plan, capsys)
    assert found["a"]["reason"].startswith(f"{plan}:{setup_line}:")
    assert "setup step 1 (exit 3) failed with exit code 3" in found["a"]["reason"]
    assert found["b"]["reason"].startswith(f"{plan}:{verify_line}:")
