"""`wtrun review`: what a changed plan can cost and do, in the comment a pull request gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing import git, write_plan, wtrun

TASKS = """\
tasks:
  - id: a
    prompt: A.
    scope: [a/]
    agent: {budget_usd: 2}
  - id: b
    prompt: B.
    scope: [b/]
    agent: {budget_usd: 3.5}
  - id: c
    after: a
    prompt: C.
    scope: [c/]
    agent: {budget_usd: 1}
"""


@pytest.mark.parametrize(
    ("head", "cost"),
    [
        ("", "at most $6.50 (the sum of the tasks' budgets)"),
        ("budget_usd: 5\n", "at most $5.00 (the plan's `budget_usd`)"),
        ("budget_usd: 50\n", "at most $6.50 (the tasks' budgets; the plan allows more)"),
    ],
)
def test_review_bounds_the_cost(
    repo: Path, capsys: pytest.CaptureFixture[str], head: str, cost: str
) -> None:
    write_plan(repo, "version: 1\nname: p\nmax_parallel: 1\n" + head + TASKS)
    git(repo, "add", "plans")
    git(repo, "commit", "-qm", "plan")

    assert wtrun("review", "--against", "HEAD", "plans/plan.yaml", cwd=repo) == 0
    out = capsys.readouterr().out
    assert f"- **Can cost**: {cost}\n" in out
    assert "- **Runs**: 3 tasks in 3 waves, at most 1 at once (`max_parallel`)\n" in out
    assert "**p**: no changes" in out


def test_review_of_no_plan_says_so(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert wtrun("review", "--against", "HEAD", cwd=repo) == 0
    assert capsys.readouterr().out.endswith("## wtrun plan review\n\nNo plan changed.\n")
