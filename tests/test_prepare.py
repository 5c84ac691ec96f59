"""`wtrun prepare`: worktrees, setup and instructions in real repositories."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from testing import agent, branches, git, status, write_plan, wtrun

PLAN = """\
version: 1
name: demo
agent:
  preset: command
  command: {agent}
  sandbox: {sandbox}
conventions: |
  ## Conventions for {{{{ task.id }}}}
  - Only touch: {{{{ task.scope | join(", ") }}}}
  {{% if task.ports %}}- Port: {{{{ task.ports[0] }}}}{{% endif %}}
tasks:
{tasks}
"""


def plan_text(tasks: str, sandbox: str = "auto", **extra: str) -> str:
    """`sandbox: none` for steps that write outside their worktree (to tell the test)."""
    text = PLAN.format(agent=agent("nothing"), tasks=tasks, sandbox=sandbox)
    for key, value in extra.items():
        text = text.replace("tasks:\n", f"{key}: {value}\ntasks:\n", 1)
    return text


def simple_tasks(n: int) -> str:
    return "".join(f"  - id: t{i}\n    prompt: do {i}\n    scope: [src/t{i}/]\n" for i in range(n))


def test_prepare_makes_clean_worktrees_from_the_base(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(simple_tasks(3)))
    git(repo, "add", "plans")
    git(repo, "commit", "-qm", "plan")
    git(repo, "push", "-q", "origin", "main")
    base = git(repo, "rev-parse", "HEAD").strip()
    assert wtrun("prepare", str(plan), cwd=repo) == 0
    for i in range(3):
        wt = repo / ".claude" / "worktrees" / f"t{i}"
        assert git(wt, "rev-parse", "--abbrev-ref", "HEAD").strip() == f"worktree-t{i}"
        assert git(wt, "rev-parse", "HEAD").strip() == base
        text = (wt / "AGENTS.md").read_text()
        assert f"## Conventions for t{i}" in text
        assert f"- Only touch: src/t{i}/" in text
        assert f"do {i}" in text
        assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    exclude = (repo / ".git" / "info" / "exclude").read_text()
    assert "/.claude/worktrees/" in exclude.splitlines()
    rows = status(repo, plan, capsys)
    assert {r["state"] for r in rows.values()} == {"prepared"}
    assert rows["t0"]["worktree"] == str(repo / ".claude" / "worktrees" / "t0")


def test_twenty_worktrees_in_parallel_then_a_rerun_reuses_them(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(simple_tasks(20), max_parallel="8"))
    assert wtrun("prepare", str(plan), cwd=repo) == 0
    listed = git(repo, "worktree", "list", "--porcelain").count("\nworktree ") + 1
    assert listed == 21
    marker = repo / ".claude" / "worktrees" / "t7" / "work-in-progress.txt"
    marker.write_text("keep me")
    assert wtrun("prepare", str(plan), cwd=repo) == 0
    assert marker.read_text() == "keep me"
    assert sorted(b for b in branches(repo) if b.startswith("worktree-")) == sorted(
        f"worktree-t{i}" for i in range(20)
    )


def test_a_branch_wtrun_did_not_make_is_an_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "branch", "worktree-t0")
    plan = write_plan(repo, plan_text(simple_tasks(2)))
    assert wtrun("prepare", str(plan), cwd=repo) == 1
    rows = status(repo, plan, capsys)
    assert rows["t0"]["state"] == "failed"
    assert "branch worktree-t0 already exists and was not made by wtrun" in rows["t0"]["reason"]
    assert rows["t1"]["state"] == "prepared"


def test_setup_steps_copy_link_run_and_the_environment(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / ".gitignore").write_text("node_modules/\nsecrets/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore")
    (repo / ".env").write_text("TOKEN=1\n")
    (repo / "node_modules" / "left-pad").mkdir(parents=True)
    (repo / "node_modules" / "left-pad" / "index.js").write_text("//\n")
    (repo / "secrets").mkdir()
    (repo / "secrets" / "key").write_text("k\n")
    (repo / ".worktreeinclude").write_text("secrets/\n")
    git(repo, "add", ".worktreeinclude")
    git(repo, "commit", "-qm", "include")
    git(repo, "push", "-q", "origin", "main")
    tasks = (
        "  - id: web\n    prompt: p\n    scope: [src/web/]\n    ports: 2\n    env: {EXTRA: task}\n"
    )
    text = (
        plan_text(tasks, sandbox="none", env="{EXTRA: plan, OTHER: plan}")
        + """\
setup:
  - copy: [.env, .env.local]
  - link: node_modules
  - run: env > ../env-$WTRUN_TASK_ID.txt && echo ran > ran.txt && rm ran.txt
"""
    )
    plan = write_plan(repo, text)
    git(repo, "add", "plans")
    git(repo, "commit", "-qm", "plan")
    assert wtrun("prepare", str(plan), cwd=repo) == 0
    wt = repo / ".claude" / "worktrees" / "web"
    assert (wt / ".env").read_text() == "TOKEN=1\n"
    assert (wt / "node_modules").is_symlink()
    assert (wt / "node_modules").resolve() == (repo / "node_modules").resolve()
    assert (wt / "secrets" / "key").read_text() == "k\n"
    env = dict(
        line.split("=", 1)
        for line in (wt.parent / "env-web.txt").read_text().splitlines()
        if "=" in line
    )
    ports = env["WTRUN_PORTS"].split(",")
    assert len(ports) == 2 and env["PORT"] == ports[0]
    assert env["WTRUN_TASK_ID"] == "web"
    assert env["WTRUN_WORKTREE"] == str(wt)
    assert env["WTRUN_BRANCH"] == "worktree-web"
    assert env["WTRUN_INSTRUCTIONS"] == str(wt / "AGENTS.md")
    assert env["COMPOSE_PROJECT_NAME"] == "demo-web"
    assert env["EXTRA"] == "task" and env["OTHER"] == "plan"
    assert git(wt, "status", "--porcelain") == ""
    rows = status(repo, plan, capsys)
    assert rows["web"]["ports"] == [int(p) for p in ports]


def test_a_failing_step_stops_its_task_only(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = simple_tasks(2) + "    setup:\n      - run: echo preparing; echo broken >&2; exit 7\n"
    plan = write_plan(repo, plan_text(tasks))
    assert wtrun("prepare", str(plan), cwd=repo) == 1
    rows = status(repo, plan, capsys)
    assert rows["t0"]["state"] == "prepared"
    assert rows["t1"]["state"] == "failed"
    reason = rows["t1"]["reason"]
    assert reason.startswith(f"{plan}:")  # the step's line in the plan
    assert (
        ": setup step 1 (echo preparing; echo broken >&2; exit 7) failed with exit code 7; log: "
        in reason
    )
    assert "    preparing\n    broken" in reason


def test_a_hung_step_is_killed_with_its_grandchildren(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    tasks = (
        simple_tasks(1) + "    setup:\n      - run: (sleep 300 & echo $! > "
        f"{pidfile}; wait) & wait\n        timeout: 1s\n"
    )
    plan = write_plan(repo, plan_text(tasks, sandbox="none"))
    started = time.monotonic()
    assert wtrun("prepare", str(plan), cwd=repo) == 1
    assert time.monotonic() - started < 30
    rows = status(repo, plan, capsys)
    assert "timed out after 1s (its processes were stopped)" in rows["t0"]["reason"]
    pid = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {pid} still alive")


def test_instructions_beside_a_tracked_file_of_that_name(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "AGENTS.md").write_text("# Team rules\nBe nice.\n")
    git(repo, "add", "AGENTS.md")
    git(repo, "commit", "-qm", "agents")
    git(repo, "push", "-q", "origin", "main")
    plan = write_plan(repo, plan_text(simple_tasks(1)))
    assert wtrun("prepare", str(plan), cwd=repo) == 0
    wt = repo / ".claude" / "worktrees" / "t0"
    text = (wt / "AGENTS.md").read_text()
    assert text.startswith("# Team rules\nBe nice.\n\n# Task t0")
    assert git(wt, "status", "--porcelain") == ""
    assert (repo / "AGENTS.md").read_text() == "# Team rules\nBe nice.\n"


def test_render_prints_instructions_and_pr_text(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(simple_tasks(1)))
    capsys.readouterr()
    assert wtrun("render", str(plan), "t0", cwd=repo) == 0
    out = capsys.readouterr().out
    assert out.startswith("==> .claude/worktrees/t0/AGENTS.md\n# Task t0: t0\n")
    assert "## Conventions for t0" in out
    assert "==> pull request: worktree-t0 -> main\ntitle: t0: t0\n" in out
