"""The texts wtrun writes for a task: instructions, commit message, PR title and body."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wtrun import plan as plan_module
from wtrun import render
from wtrun.plan import Plan, task_context

PLAN = """\
version: 1
name: sprint
shared: [package-lock.json]
agent: {preset: claude, model: sonnet}
conventions: |
  ## Conventions
  Run the tests of {{ task.id }} before you stop.
commit_message: "feat({{ task.id }}): {{ task.title }}"
pr:
  provider: none
  title: "{{ task.title }}
    ({{ task.id }})"
tasks:
  - id: api
    title: The API
    prompt: |
      Build the API.
    scope: [src/api/**, tests/api/]
  - id: docs
    after: api
    prompt: Document the API.
    scope: [docs/api.md]
    ports: 2
"""


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    path = tmp_path / "sprint.yaml"
    path.write_text(PLAN)
    return plan_module.load(path)


def pr_context(plan: Plan, tid: str, **run: Any) -> dict[str, Any]:
    return task_context(plan, plan.task(tid), ports=[], worktree="wt", pr=True, run=run)


def test_instructions_of_a_root_task(plan: Plan) -> None:
    text = render.instructions(
        plan, plan.task("api"), ports=[], worktree="wt", branch="worktree-api", base_ref="main"
    )
    assert text == (
        "# Task api: The API\n"
        "\n"
        "## Conventions\n"
        "Run the tests of api before you stop.\n"
        "\n"
        "## What to do\n"
        "\n"
        "Build the API.\n"
        "\n"
        "## Limits\n"
        "\n"
        "You may change only files matching these patterns (paths from the repository root; "
        "`*` stays within a folder, `**` spans folders):\n"
        "- `src/api/**`\n"
        "- `tests/api/`\n"
        "You may also change these shared files: `package-lock.json`\n"
        "Changes anywhere else fail the task. Do not push; wtrun commits, checks and opens "
        "the pull request.\n"
        "\n"
        "- Branch: `worktree-api`, started from `main`\n"
    )


def test_instructions_of_a_stacked_task_with_ports(plan: Plan) -> None:
    text = render.instructions(
        plan,
        plan.task("docs"),
        ports=[3100, 3101],
        worktree="wt",
        branch="worktree-docs",
        base_ref="worktree-api",
    )
    assert text.endswith(
        "- Branch: `worktree-docs`, started from `worktree-api`\n"
        "- This task builds on task `api`, whose work is already on this branch.\n"
        "- Ports reserved for you: 3100, 3101 (the first is in $PORT)\n"
    )


def test_commit_message_and_a_title_on_one_line(plan: Plan) -> None:
    context = pr_context(plan, "api")
    assert render.commit_message(plan, context) == "feat(api): The API"
    assert render.pr_title(plan, context) == "The API (api)"


def test_default_pr_body_before_anything_is_known(plan: Plan) -> None:
    body = render.pr_body(plan, pr_context(plan, "api"))
    assert body.startswith(
        "Build the API.\n\n| | |\n|---|---|\n| Task | `api` from plan `sprint` |"
    )
    assert "| Scope | `src/api/**`, `tests/api/` |" in body
    assert "| Agent | claude (sonnet) |" in body
    assert "| Cost | not reported |" in body
    for absent in ("Verify", "Stacked on", "Predicted conflicts", "changed</summary>"):
        assert absent not in body
    assert body.endswith("<sub>Opened by wtrun.</sub>\n")


def test_default_pr_body_of_a_stacked_task_after_its_run(plan: Plan) -> None:
    context = pr_context(
        plan,
        "docs",
        files=["docs/api.md"],
        verify=[{"name": "pytest", "ok": True}, {"name": "ruff check", "ok": False}],
        cost_usd=0.4567,
        stacked_on=12,
        children=[14, 15],
        conflicts=["auth"],
    )
    body = render.pr_body(plan, context)
    assert "| Cost | $0.46 |" in body
    assert "| Verify | ✅ `pytest`<br>❌ `ruff check` |" in body
    assert "Stacked on #12: review and merge that one first." in body
    assert "Stacked on this PR: #14, #15" in body
    assert "**Predicted conflicts** with: `auth`" in body
    assert "<details><summary>1 file changed</summary>\n\n- `docs/api.md`\n\n</details>" in body
