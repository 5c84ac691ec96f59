"""`wtrun clean`: worktrees go when no work would be lost; only what wtrun made goes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testing import agent, branches, git, make_repo, write_plan, wtrun
from wtrun.forge.local import set_pr_state


def plan_text(ids: tuple[str, ...] = ("a", "b"), provider: str = "none") -> str:
    lines = [
        "version: 1",
        "name: demo",
        "max_parallel: 1",
        "agent:",
        "  preset: command",
        f"  command: {agent('edit', 'src/{{ task.id }}/x.py')}",
        f"pr: {{provider: {provider}}}",
        "tasks:",
    ]
    for tid in ids:
        lines += [f"  - id: {tid}", f"    prompt: work on {tid}", f"    scope: [src/{tid}/]"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def worktree(repo: Path, tid: str) -> Path:
    return repo / ".claude" / "worktrees" / tid


def worktrees(repo: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    paths = [
        Path(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("worktree ")
    ]
    return sorted(str(p.relative_to(repo)) for p in paths[1:])


def status(repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert wtrun("status", str(plan), "--json", cwd=repo) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def clean(
    repo: Path, plan: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    capsys.readouterr()
    code = wtrun("clean", str(plan), *args, cwd=repo)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_clean_forget_removes_pushed_worktrees_and_their_records(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text())
    assert wtrun("run", str(plan), cwd=repo) == 0  # provider none: the branches are pushed
    assert worktrees(repo) == [".claude/worktrees/a", ".claude/worktrees/b"]

    code, out = clean(repo, plan, capsys, "--forget")
    assert code == 0
    assert out == (
        "a: removed .claude/worktrees/a\n"
        "a: deleted branch worktree-a (pushed)\n"
        "b: removed .claude/worktrees/b\n"
        "b: deleted branch worktree-b (pushed)\n"
    )
    assert worktrees(repo) == []
    assert branches(repo) == ["main"]
    assert git(repo, "branch", "-r").split() == [
        "origin/main",
        "origin/worktree-a",
        "origin/worktree-b",
    ]  # the remote keeps them
    data = status(repo, plan, capsys)
    assert data["base_commit"] is None  # the next run starts from a fresh base
    assert [(t["state"], t["step"]) for t in data["tasks"]] == [("pending", None)] * 2
    assert not (repo / ".git" / "wtrun" / "demo" / "logs" / "a").exists()

    code, out = clean(repo, plan, capsys, "--forget")
    assert (code, out) == (0, 'nothing to clean: plan "demo" has no records in this repository\n')


def test_a_run_after_clean_starts_from_the_new_base(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(ids=("a",)))
    assert wtrun("run", str(plan), cwd=repo) == 0
    assert clean(repo, plan, capsys, "--forget", "--force")[0] == 0
    (repo / "NEWS").write_text("more\n")
    git(repo, "add", "NEWS")
    git(repo, "commit", "-qm", "news")
    git(repo, "push", "-q", "origin", "main")
    assert wtrun("run", str(plan), "--no-pr", cwd=repo) == 0
    new_base = git(repo, "rev-parse", "main").strip()
    assert status(repo, plan, capsys)["base_commit"] == new_base
    assert git(repo, "rev-parse", "worktree-a~1").strip() == new_base


def test_clean_refuses_uncommitted_and_unpushed_work_unless_forced(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(ids=("a", "b", "c")))
    assert wtrun("run", str(plan), "--task", "a", cwd=repo) == 0  # pushed
    assert wtrun("run", str(plan), "--task", "b", "--task", "c", "--no-pr", cwd=repo) == 0
    (worktree(repo, "a") / "src" / "a" / "notes.txt").write_text("not committed\n")
    (worktree(repo, "a") / "README.md").write_text("changed\n")
    # c: its commit is not pushed, but its worktree is clean.

    code, out = clean(repo, plan, capsys, "--forget")
    assert code == 1
    assert out == (
        "a: kept .claude/worktrees/a: 2 uncommitted changes (README.md, src/a/notes.txt)\n"
        "b: kept .claude/worktrees/b: 1 unpushed commit on worktree-b\n"
        "c: kept .claude/worktrees/c: 1 unpushed commit on worktree-c\n"
        "\n"
        "wtrun: kept 3 worktrees with work that is not pushed (a, b, c); push or commit it "
        f"first, or run `wtrun clean {plan} --force` to drop it\n"
    )
    assert worktrees(repo) == [f".claude/worktrees/{t}" for t in ("a", "b", "c")]
    assert branches(repo) == ["main", "worktree-a", "worktree-b", "worktree-c"]
    data = status(repo, plan, capsys)
    assert [t["state"] for t in data["tasks"]] == ["done", "ready", "ready"]  # remembered

    code, out = clean(repo, plan, capsys, "--forget", "--force")
    assert code == 0
    assert out == (
        "a: removed .claude/worktrees/a, dropping 2 uncommitted changes (README.md, "
        "src/a/notes.txt)\n"
        "a: deleted branch worktree-a (pushed)\n"
        "b: removed .claude/worktrees/b, dropping 1 unpushed commit on worktree-b\n"
        "b: deleted branch worktree-b (dropped with --force)\n"
        "c: removed .claude/worktrees/c, dropping 1 unpushed commit on worktree-c\n"
        "c: deleted branch worktree-c (dropped with --force)\n"
    )
    assert worktrees(repo) == []
    assert branches(repo) == ["main"]


def test_a_branch_merged_into_the_base_counts_as_safe(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(ids=("a",)))
    assert wtrun("run", str(plan), "--no-pr", cwd=repo) == 0
    git(repo, "merge", "-q", "--ff-only", "worktree-a")
    code, out = clean(repo, plan, capsys)
    assert code == 0
    assert out == (
        "a: removed .claude/worktrees/a\na: deleted branch worktree-a (nothing unpushed on it)\n"
    )


def test_clean_leaves_what_wtrun_did_not_make(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A worktree made by hand in the plan's folder, and one made the way
    # `claude --worktree b` makes it, which the run then used for task b.
    git(repo, "worktree", "add", "-q", "-b", "mine", ".claude/worktrees/mine")
    git(repo, "worktree", "add", "-q", "-b", "worktree-b", ".claude/worktrees/b")
    plan = write_plan(repo, plan_text())
    assert wtrun("run", str(plan), cwd=repo) == 0

    code, out = clean(repo, plan, capsys, "--forget")
    assert code == 0
    assert out == (
        "a: removed .claude/worktrees/a\n"
        "a: deleted branch worktree-a (pushed)\n"
        "b: left .claude/worktrees/b alone: it was there before wtrun used it; its records "
        "are removed\n"
        "left .claude/worktrees/mine alone: wtrun did not make it\n"
    )
    assert worktrees(repo) == [".claude/worktrees/b", ".claude/worktrees/mine"]
    assert branches(repo) == ["main", "mine", "worktree-b"]


def test_clean_task_limits_it_to_those_tasks(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(ids=("a", "b", "c")))
    assert wtrun("run", str(plan), cwd=repo) == 0
    code, out = clean(repo, plan, capsys, "--forget", "--task", "b")
    assert code == 0
    assert out == "b: removed .claude/worktrees/b\nb: deleted branch worktree-b (pushed)\n"
    assert worktrees(repo) == [".claude/worktrees/a", ".claude/worktrees/c"]
    data = status(repo, plan, capsys)
    assert [t["state"] for t in data["tasks"]] == ["done", "pending", "done"]
    assert data["base_commit"] is not None  # a and c still stand on it

    code, out = clean(repo, plan, capsys, "--forget", "--task", "bb")
    assert code == 2
    assert out == f'wtrun: error: no task "bb" in {plan}; did you mean "b"?\n'


def test_clean_forgets_failed_and_unchanged_tasks(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(
        repo,
        plan_text(ids=("a", "b"))
        .replace(
            "    scope: [src/b/]\n",
            f"    scope: [src/b/]\n    agent: {{command: {agent('crash')}}}\n",
        )
        .replace("  - id: a\n", f"  - id: a\n    agent: {{command: {agent('nothing')}}}\n"),
    )
    assert wtrun("run", str(plan), cwd=repo) == 1
    code, out = clean(repo, plan, capsys)
    assert code == 0
    assert out == (
        "a: forgot its records (no worktree or branch left)\n"
        "b: removed .claude/worktrees/b\n"
        "b: deleted branch worktree-b (nothing unpushed on it)\n"
    )
    assert worktrees(repo) == []
    assert branches(repo) == ["main"]


def pr_numbers(repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    tasks = status(repo, plan, capsys)["tasks"]
    assert isinstance(tasks, list)
    return {t["id"]: t["pr_number"] for t in tasks}


def test_local_pr_numbers_are_never_reused_after_a_clean(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(provider="local"))
    assert wtrun("run", str(plan), cwd=repo) == 0
    prs = repo / ".git/wtrun/demo/prs"
    numbers = pr_numbers(repo, plan, capsys)
    assert numbers == {"a": 1, "b": 2}
    # A reviewer closes both; the tasks are cleaned and run again: new PRs, new numbers.
    for number in (1, 2):
        set_pr_state(prs, number, "closed")
    git(repo, "push", "-q", "origin", "--delete", "worktree-a", "worktree-b")
    assert clean(repo, plan, capsys, "--forget", "--force")[0] == 0
    assert wtrun("run", str(plan), cwd=repo) == 0
    numbers = pr_numbers(repo, plan, capsys)
    assert numbers == {"a": 3, "b": 4}
    closed = json.loads((prs / "1.json").read_text())
    assert (closed["state"], closed["head"]) == ("closed", "worktree-a")
    assert "- base: `main`" in (prs / "a.md").read_text()


def test_clean_keeps_the_records_of_pushed_work_so_a_run_redoes_nothing(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(ids=("a",), provider="local"))
    assert wtrun("run", str(plan), cwd=repo) == 0
    code, out = clean(repo, plan, capsys)
    assert code == 0
    assert "a: its records are kept (pushed; `--forget` drops them)" in out
    assert worktrees(repo) == []
    capsys.readouterr()
    assert wtrun("run", str(plan), cwd=repo) == 0
    assert "a: already done" in capsys.readouterr().err  # no agent, no push, no second PR
    assert sorted(p.name for p in (repo / ".git/wtrun/demo/prs").glob("*.md")) == ["a.md"]


def test_clean_forget_refuses_while_the_pr_is_open_unless_forced(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(ids=("a",), provider="local"))
    assert wtrun("run", str(plan), cwd=repo) == 0
    code, out = clean(repo, plan, capsys, "--forget")
    assert code == 1
    assert "a: kept: its PR #1 is open; close it first, or add --force" in out
    code, out = clean(repo, plan, capsys, "--forget", "--force")
    assert code == 0
    assert status(repo, plan, capsys)["tasks"][0]["state"] == "pending"  # type: ignore[index]


def stack_text(child: str) -> str:
    """Plan `demo`: `b` stacked on `a`, `c` beside them; `child` is b's extra YAML."""
    return plan_text(ids=("a", "b", "c")).replace(
        "  - id: b\n", f"  - id: b\n    after: a\n{child}"
    )


def test_a_stack_is_kept_whole_while_a_task_of_it_keeps_work(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a is done and pushed; b, stacked on it, failed verify with its commit unpushed.
    plan = write_plan(repo, stack_text('    verify:\n      - run: "false"\n'))
    assert wtrun("run", str(plan), cwd=repo) == 1
    kept = (
        f"a: kept: it is in a stack with b, which is kept, and a stack is cleaned whole; "
        f"`wtrun clean {plan} --task a` cleans a alone\n"
        "b: kept .claude/worktrees/b: 1 unpushed commit on worktree-b\n"
    )
    summary = (
        "\n"
        "wtrun: kept 1 worktree with work that is not pushed (b); push or commit it first, "
        f"or run `wtrun clean {plan} --force` to drop it\n"
        "\n"
        "wtrun: kept a as well, to clean its stack whole later; `--task ID` cleans one task "
        "alone\n"
    )
    code, out = clean(repo, plan, capsys)
    assert (code, out) == (
        1,
        kept
        + "c: removed .claude/worktrees/c\n"
        + "c: deleted branch worktree-c (pushed)\n"
        + "c: its records are kept (pushed; `--forget` drops them)\n"
        + summary,
    )
    assert worktrees(repo) == [".claude/worktrees/a", ".claude/worktrees/b"]
    # Again: the same, nothing half done.
    code, out = clean(repo, plan, capsys)
    assert (code, out) == (
        1,
        kept + "c: its records are kept (pushed; `--forget` drops them)\n" + summary,
    )
    assert worktrees(repo) == [".claude/worktrees/a", ".claude/worktrees/b"]
    assert branches(repo) == ["main", "worktree-a", "worktree-b"]

    # The ways out it names: --task cleans one task alone, --force drops b's work.
    code, out = clean(repo, plan, capsys, "--task", "a")
    assert (code, out) == (
        0,
        "a: removed .claude/worktrees/a\n"
        "a: deleted branch worktree-a (pushed)\n"
        "a: its records are kept (pushed; `--forget` drops them)\n",
    )
    code, out = clean(repo, plan, capsys, "--force", "--task", "b")
    assert code == 0
    assert "b: deleted branch worktree-b (dropped with --force)\n" in out
    assert worktrees(repo) == []


def test_a_stack_with_nothing_to_keep_is_cleaned_whole(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # b, stacked on a, crashed before committing anything: nothing of it to keep.
    plan = write_plan(repo, stack_text(f"    agent: {{command: {agent('crash')}}}\n"))
    assert wtrun("run", str(plan), cwd=repo) == 1
    code, out = clean(repo, plan, capsys, "--task", "a", "--task", "b")
    assert (code, out) == (
        0,
        "a: removed .claude/worktrees/a\n"
        "a: deleted branch worktree-a (pushed)\n"
        "a: its records are kept (pushed; `--forget` drops them)\n"
        "b: removed .claude/worktrees/b\n"
        "b: deleted branch worktree-b (nothing unpushed on it)\n",
    )
    assert worktrees(repo) == [".claude/worktrees/c"]
    code, out = clean(repo, plan, capsys, "--task", "a", "--task", "b")
    assert (code, out) == (
        0,
        "a: its records are kept (pushed; `--forget` drops them)\n"
        "b: nothing to clean (no records)\n",
    )
