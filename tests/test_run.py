"""`wtrun run`: scripted agents in real repositories, each outcome and its neighbours."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from testing import agent, branches, git, remote_branches, status, write_plan, wtrun
from wtrun import pipeline


def plan_with(
    tasks: list[tuple[str, str, str]],
    extra: str = "",
    provider: str = "none",
    sandbox: str = "auto",
) -> str:
    """tasks: (id, scope, agent command as a YAML flow list). `sandbox: none` for agents that
    write outside their worktree (to tell the test what they saw)."""
    lines = [
        "version: 1",
        "name: demo",
        "agent:",
        "  preset: command",
        f"  command: {agent('nothing')}",
        "  timeout: 60s",
        f"  sandbox: {sandbox}",
        f"pr: {{provider: {provider}}}",
        extra,
        "tasks:",
    ]
    for tid, scope, command in tasks:
        lines += [
            f"  - id: {tid}",
            f"    prompt: work on {tid}",
            f"    scope: [{scope}]",
            f"    agent: {{command: {command}}}",
        ]
    return "\n".join(lines) + "\n"


def test_every_outcome_in_one_run(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pidfile = tmp_path / "hang.pid"
    plan = write_plan(
        repo,
        plan_with(
            [
                ("commits", "src/a/", agent("edit", "src/a/one.py")),
                ("leaves", "src/b/", agent("leave", "src/b/two.py", "src/b/deep/three.py")),
                ("strays", "src/c/", agent("leave", "src/c/ok.py", "README.md", "other/x.py")),
                ("crashes", "src/d/", agent("crash", "src/d/half.py")),
                ("hangs", "src/e/", agent("hang", str(pidfile))),
                ("idle", "src/f/", agent("nothing")),
            ],
            extra="max_parallel: 6",
            sandbox="none",
        ),
    )
    # The hanging agent gets a short timeout.
    text = plan.read_text().replace(
        f"    agent: {{command: {agent('hang', str(pidfile))}}}",
        f"    agent: {{command: {agent('hang', str(pidfile))}, timeout: 2s}}",
    )
    plan.write_text(text)
    started = time.monotonic()
    assert wtrun("run", str(plan), cwd=repo) == 1
    assert time.monotonic() - started < 60
    rows = status(repo, plan, capsys)

    assert rows["commits"]["state"] == "done"
    assert git(repo, "show", "--name-only", "--format=", "worktree-commits").split() == [
        "src/a/one.py"
    ]

    assert rows["leaves"]["state"] == "done"
    log = git(repo, "log", "--format=%s", "main..worktree-leaves").splitlines()
    assert log == ["feat(leaves): leaves"]
    assert rows["leaves"]["files"] == ["src/b/deep/three.py", "src/b/two.py"]

    assert rows["strays"]["state"] == "failed"
    assert rows["strays"]["reason"].startswith(
        "changed 2 paths outside its scope: README.md, other/x.py; scope is src/c/. "
        "Nothing was pushed; the work is kept on branch worktree-strays"
    )
    assert "worktree-strays" not in remote_branches(repo.parent / "origin.git")

    assert rows["crashes"]["state"] == "failed"
    assert rows["crashes"]["reason"].startswith("agent failed: ")
    assert "exited with code 3: scripted agent: crashing; log: " in rows["crashes"]["reason"]
    assert rows["crashes"]["step"] == "agent"

    assert rows["hangs"]["state"] == "failed"
    assert rows["hangs"]["reason"].startswith("agent timed out after 2s and was stopped")
    child = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the hanging agent's child survived")

    assert rows["idle"]["state"] == "no-changes", rows["idle"]
    assert "worktree-idle" not in branches(repo)
    assert not (repo / ".claude" / "worktrees" / "idle").exists()

    # provider none: ready branches are pushed, nothing else.
    assert sorted(remote_branches(repo.parent / "origin.git")) == [
        "main",
        "worktree-commits",
        "worktree-leaves",
    ]
    assert git(repo, "status", "--porcelain") == "?? plans/\n"  # the test's own plan


def test_a_stacked_task_starts_from_its_parents_head(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(
        repo,
        plan_with(
            [
                ("parent", "src/p/", agent("edit", "src/p/base.py")),
                ("child", "src/c/", agent("edit", "src/c/more.py")),
            ]
        ).replace("  - id: child\n", "  - id: child\n    after: parent\n"),
    )
    assert wtrun("run", str(plan), cwd=repo) == 0
    parent_head = git(repo, "rev-parse", "worktree-parent").strip()
    assert git(repo, "rev-parse", "worktree-child~1").strip() == parent_head
    rows = status(repo, plan, capsys)
    assert rows["child"]["files"] == ["src/c/more.py"]  # scope checked from the parent's head


def test_a_failed_parent_blocks_its_children(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(
        repo,
        plan_with(
            [
                ("parent", "src/p/", agent("crash")),
                ("child", "src/c/", agent("edit", "src/c/more.py")),
                ("grandchild", "src/g/", agent("edit", "src/g/more.py")),
            ]
        )
        .replace("  - id: child\n", "  - id: child\n    after: parent\n")
        .replace("  - id: grandchild\n", "  - id: grandchild\n    after: child\n"),
    )
    assert wtrun("run", str(plan), cwd=repo) == 1
    rows = status(repo, plan, capsys)
    assert rows["parent"]["state"] == "failed"
    assert rows["child"]["state"] == "blocked"
    assert rows["child"]["reason"] == 'task "parent" it builds on failed'
    assert rows["grandchild"]["state"] == "blocked"
    assert rows["grandchild"]["reason"] == 'task "child" it builds on is blocked'


def test_the_agent_environment_has_no_github_tokens(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GH_TOKEN", "secret1")
    monkeypatch.setenv("GITHUB_TOKEN", "secret2")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "agent-credential")
    out = tmp_path / "env.json"
    plan = write_plan(repo, plan_with([("t", "src/t/", agent("env", str(out)))], sandbox="none"))
    wtrun("run", str(plan), cwd=repo)
    env = json.loads(out.read_text())
    assert "GH_TOKEN" not in env and "GITHUB_TOKEN" not in env
    assert env["ANTHROPIC_API_KEY"] == "agent-credential"
    assert env["WTRUN_TASK_ID"] == "t"
    assert env["WTRUN_INSTRUCTIONS"].endswith("/.claude/worktrees/t/AGENTS.md")


def test_an_internal_error_in_a_task_is_logged_with_secrets_masked(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "ghp_" + "q" * 36
    monkeypatch.setenv("GH_TOKEN", token)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"a bug that prints the token {token}")

    monkeypatch.setattr(pipeline.instructions, "write", broken)
    plan = write_plan(repo, plan_with([("t", "src/t/", agent("nothing"))], sandbox="none"))
    assert wtrun("run", str(plan), cwd=repo) == 1
    row = status(repo, plan, capsys)["t"]
    assert row["state"] == "failed"
    assert row["reason"].startswith("internal error (RuntimeError('a bug that prints the token ")
    log = repo / ".git" / "wtrun" / "demo" / "logs" / "t" / "wtrun-error.log"
    assert "RuntimeError: a bug that prints the token" in log.read_text()
    for text in (row["reason"], log.read_text(), capsys.readouterr().err):
        assert token not in text


def test_a_rerun_resumes_and_changes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(
        repo,
        plan_with(
            [
                ("a", "src/a/", agent("edit", "src/a/x.py")),
                ("b", "src/b/", agent("crash")),
            ]
        ),
    )
    assert wtrun("run", str(plan), cwd=repo) == 1
    head = git(repo, "rev-parse", "worktree-a").strip()
    # Fix b's agent in a way that does not change its fingerprint: it is the same command,
    # but now the file it needs exists. Here: b fails again, a is untouched.
    assert wtrun("run", str(plan), cwd=repo) == 1
    assert git(repo, "rev-parse", "worktree-a").strip() == head
    rows = status(repo, plan, capsys)
    assert rows["a"]["state"] == "done"
    assert rows["b"]["state"] == "failed"


def test_a_task_changed_after_a_failure_runs_again_without_restart(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_with([("a", "src/a/", agent("crash"))]))
    assert wtrun("run", str(plan), cwd=repo) == 1
    plan.write_text(plan.read_text().replace(agent("crash"), agent("edit", "src/a/x.py")))
    assert status(repo, plan, capsys)["a"]["stale"] == ["agent"]
    assert wtrun("run", str(plan), cwd=repo) == 0
    row = status(repo, plan, capsys)["a"]
    assert (row["state"], row["stale"], row["attempts"]) == ("done", [], 2)


def test_a_task_whose_after_changed_is_refused_until_restarted(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = [("a", "src/a/", agent("edit", "src/a/x.py")), ("b", "src/b/", agent("nothing"))]
    plan = write_plan(repo, plan_with(tasks))
    assert wtrun("run", str(plan), cwd=repo) == 0
    plan.write_text(plan.read_text().replace("  - id: b\n", "  - id: b\n    after: a\n"))
    capsys.readouterr()
    assert wtrun("run", str(plan), cwd=repo) == 1
    err = capsys.readouterr().err
    assert "`after` of task b changed in the plan since they ran" in err
    assert "Run again with --restart b to discard it and start over" in err
    assert wtrun("run", str(plan), "--restart", "b", cwd=repo) == 0


def test_the_run_budget_skips_tasks_once_spent(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A claude-compatible agent that reports a cost of $0.60 per task.
    fake = tmp_path / "bin" / "claude"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\necho \'{"type":"result","subtype":"success",'
        '"is_error":false,"result":"ok","total_cost_usd":0.6,'
        '"num_turns":1,"session_id":"s"}\'\n'
    )
    fake.chmod(0o755)
    os.environ["PATH"] = f"{fake.parent}:{os.environ['PATH']}"
    try:
        tasks = "".join(f"  - id: t{i}\n    prompt: p\n    scope: [src/t{i}/]\n" for i in range(4))
        plan = write_plan(
            repo,
            "version: 1\nmax_parallel: 1\nbudget_usd: 1\npr: {provider: none}\ntasks:\n" + tasks,
        )
        assert wtrun("run", str(plan), cwd=repo) == 1
    finally:
        os.environ["PATH"] = os.environ["PATH"].split(":", 1)[1]
    rows = status(repo, plan, capsys)
    assert [rows[f"t{i}"]["state"] for i in range(4)] == [
        "no-changes",
        "no-changes",
        "skipped",
        "skipped",
    ]
    assert rows["t0"]["cost_usd"] == 0.6
    assert rows["t2"]["reason"] == ("the run's budget $1.00 was spent ($1.20) before it started")


def test_dry_run_changes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(
        repo,
        plan_with(
            [
                ("a", "src/a/", agent("edit", "src/a/x.py")),
                ("b", "src/b/", agent("edit", "src/b/x.py")),
            ]
        ).replace("  - id: b\n", "  - id: b\n    after: a\n    ports: 1\n"),
    )

    def snapshot() -> dict[str, bytes]:
        return {
            str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()
        }

    before = snapshot()
    capsys.readouterr()
    assert wtrun("run", str(plan), "--dry-run", cwd=repo) == 0
    out = capsys.readouterr().out
    assert snapshot() == before
    assert "1. a  (wave 1)" in out
    assert "2. b  (wave 2, after a)" in out
    assert "   branch:   worktree-b from worktree-a" in out
    assert "   ports:    3100" in out


def test_a_missing_agent_cli_is_refused_before_any_worktree(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_with([("a", "src/a/", '["no-such-agent-cli", "x"]')]))
    capsys.readouterr()
    assert wtrun("run", str(plan), cwd=repo) == 1
    err = capsys.readouterr().err
    assert "agent CLI not found on PATH: 'no-such-agent-cli' (tasks a)" in err
    assert not (repo / ".claude").exists()


def test_a_literal_scope_naming_a_directory_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_with([("a", "src", agent("nothing"))]))
    capsys.readouterr()
    assert wtrun("run", str(plan), cwd=repo) == 1
    err = capsys.readouterr().err
    assert (
        'scope "src" of task "a" names a directory, but a scope matches whole paths; '
        'write "src/" to mean everything below it'
    ) in err


def test_a_lost_worktree_is_made_again_from_the_branch(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(
        repo,
        plan_with(
            [
                ("a", "src/a/", agent("edit", "src/a/x.py")),
                ("b", "src/b/", agent("crash")),
            ]
        ),
    )
    assert wtrun("run", str(plan), "--no-pr", cwd=repo) == 1
    head = git(repo, "rev-parse", "worktree-a").strip()
    for tid in ("a", "b"):
        git(repo, "worktree", "remove", "--force", str(repo / ".claude" / "worktrees" / tid))
    assert wtrun("run", str(plan), "--no-pr", cwd=repo) == 1
    rows = status(repo, plan, capsys)
    assert rows["a"]["state"] == "ready"
    assert git(repo, "rev-parse", "worktree-a").strip() == head
    assert rows["b"]["state"] == "failed"
    assert (repo / ".claude" / "worktrees" / "b" / "AGENTS.md").exists()


def test_dry_run_says_what_a_run_would_refuse(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_with([("a", "src/a/", '["no-such-agent-cli"]')]))
    capsys.readouterr()
    assert wtrun("run", str(plan), "--dry-run", cwd=repo) == 1
    out = capsys.readouterr().out
    assert "   agent:    command, timeout 1m" in out
    assert out.rstrip().endswith(
        "A run would stop before making any worktree: agent CLI not found on PATH: "
        "'no-such-agent-cli' (tasks a); install it (see the README's 'Agents' section) or "
        "change the task's agent.preset"
    )
    assert not (repo / ".claude").exists()
