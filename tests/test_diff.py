"""`wtrun diff`: golden files under tests/data/diff/CASE/, and `--against` in a real repository.

Each CASE holds old.yaml, new.yaml and expected.md, the exact output of
`wtrun diff old.yaml new.yaml` run in that folder. To rewrite the expected files after a
deliberate change of the format: `WTRUN_REGEN_GOLDEN=1 pytest tests/test_diff.py`, then read
the diff of tests/data/diff/ before committing it.
"""

from __future__ import annotations

import difflib
import os
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from testing import git, make_repo, write_plan, wtrun
from wtrun import plandiff
from wtrun.commands import diff as diff_command
from wtrun.plan import Plan, Task

DATA = Path(__file__).parent / "data" / "diff"
CASES = sorted(p.name for p in DATA.iterdir() if p.is_dir())
INVALID_NEW = {"invalid-new"}  # cases whose new plan does not validate: exit 1


def test_there_are_enough_golden_cases() -> None:
    assert len(CASES) >= 8


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = DATA / case
    code = wtrun("diff", "old.yaml", "new.yaml", cwd=folder)
    out, err = capsys.readouterr()
    expected_file = folder / "expected.md"
    if os.environ.get("WTRUN_REGEN_GOLDEN"):
        expected_file.write_text(out, encoding="utf-8")
    assert out == expected_file.read_text(encoding="utf-8")
    assert err == ""
    assert code == (1 if case in INVALID_NEW else 0)


@pytest.mark.parametrize("case", ["added-removed", "invalid-new", "invalid-old", "every-task"])
def test_plans_loaded_side_by_side_diff_the_same(
    case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large plans load in two processes: the output is the same, invalid plans included."""
    monkeypatch.setattr(diff_command, "SIDE_BY_SIDE_BYTES", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    loads_here = []
    load = diff_command.load
    monkeypatch.setattr(diff_command, "load", lambda *a, **k: loads_here.append(a) or load(*a, **k))
    folder = DATA / case
    code = wtrun("diff", "old.yaml", "new.yaml", cwd=folder)
    assert capsys.readouterr().out == (folder / "expected.md").read_text(encoding="utf-8")
    assert code == (1 if case in INVALID_NEW else 0)
    assert len(loads_here) == 1  # the new plan; the old one loaded in the other process


def test_headline_of_the_brief(capsys: pytest.CaptureFixture[str]) -> None:
    wtrun("diff", "old.yaml", "new.yaml", cwd=DATA / "added-removed")
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (
        "**sprint-12**: 2 tasks added, 1 removed; budget $20 -> $25; task budgets $10 -> $11"
    )


PLAN = """\
    version: 1
    name: sprint
    budget_usd: {budget}
    tasks:
      - id: api
        title: Orders API
        prompt: Add GET /orders.
        scope: [src/api/**]
"""


def test_against_a_ref(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path, remote=False)
    write_plan(repo, PLAN.format(budget=10), "sprint.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "plan")
    git(repo, "tag", "v1")
    plan = write_plan(
        repo,
        PLAN.format(budget=15)
        + """\
      - id: web
        prompt: Add the orders page.
        scope: [src/web/**]
    """,
        "sprint.yaml",
    )
    # From a subfolder, with a path relative to it: the ref's path is the repository's.
    code = wtrun("diff", "sprint.yaml", "--against", "v1", cwd=plan.parent)
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("**sprint**: 1 task added; budget $10 -> $15\n")
    assert "| `web` | web | `src/web/**` | `claude` | no cap |" in out


def test_against_a_ref_where_the_plan_did_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, remote=False)
    write_plan(repo, PLAN.format(budget=10), "sprint.yaml")
    code = wtrun("diff", "plans/sprint.yaml", "--against", "HEAD", cwd=repo)
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[:3] == [
        "**sprint**: 1 task, all new; budget $10; task budgets none",
        "",
        "> `plans/sprint.yaml@HEAD` does not exist: every task is new",
    ]
    assert "| `api` | Orders API | `src/api/**` | `claude` | no cap |" in out


def test_against_a_ref_with_an_invalid_new_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, remote=False)
    write_plan(repo, PLAN.format(budget=10), "sprint.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "plan")
    write_plan(repo, PLAN.format(budget="lots"), "sprint.yaml")
    code = wtrun("diff", "plans/sprint.yaml", "--against", "main", cwd=repo)
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("**plans/sprint.yaml**: the new plan does not validate (1 problem)")
    assert "### Validation problems" in out
    assert "plans/sprint.yaml:3:13: " in out


def test_against_an_unknown_ref(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path, remote=False)
    write_plan(repo, PLAN.format(budget=10), "sprint.yaml")
    code = wtrun("diff", "plans/sprint.yaml", "--against", "origin/main", cwd=repo)
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f'wtrun: error: no commit "origin/main" in {repo}; fetch it first '
        "(e.g. `git fetch origin main`), or name a branch, tag or commit\n"
    )


def test_against_outside_a_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(tmp_path, PLAN.format(budget=10), "sprint.yaml")
    code = wtrun("diff", str(plan), "--against", "main", cwd=tmp_path)
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"wtrun: error: {plan} is not inside a git repository, so `--against main` "
        "has no history to read; compare two files with `wtrun diff OLD NEW`\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("diff", "a.yaml"),
            "`wtrun diff` needs two plans (`wtrun diff OLD NEW`), or one plan and "
            "a git ref to compare it with (`wtrun diff PLAN --against REF`)",
        ),
        (
            ("diff", "a.yaml", "b.yaml", "--against", "main"),
            "give two plans (`wtrun diff OLD NEW`) "
            "or one plan and a git ref (`wtrun diff PLAN --against REF`), not both",
        ),
        (("diff", "missing.yaml", "b.yaml"), "missing.yaml: no such file"),
    ],
)
def test_usage_errors(
    args: tuple[str, ...], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "b.yaml").write_text(PLAN.format(budget=1))
    code = wtrun(*args, cwd=tmp_path)
    assert code == 2
    assert capsys.readouterr().err == f"wtrun: error: {message}\n"


def _pair_every_two(old: Plan, new: Plan) -> object:
    """Renames as the first version found them, comparing every vanished task with every
    new one (quadratic): the reference the indexed pairing must equal."""
    return plandiff._pair_by(old, new, _every_two)


def _every_two(gone: Sequence[Task], fresh: Sequence[Task]) -> plandiff.Candidates:
    candidates: plandiff.Candidates = []
    for i, o in enumerate(gone):
        for j, n in enumerate(fresh):
            if set(o.scope) != set(n.scope):
                continue
            a, b = o.prompt.strip(), n.prompt.strip()
            ratio = 1.0 if a == b else difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
            if ratio >= plandiff.RENAME_RATIO:
                candidates.append((-ratio, i, j))
    return candidates


@pytest.mark.parametrize("seed", range(5))
def test_renames_are_paired_as_by_comparing_every_two_tasks(seed: int) -> None:
    rng = random.Random(seed)
    scopes = [(f"src/m{k}/**", f"docs/m{k}.md") for k in range(6)]  # shared: many candidates
    words = ["add", "the", "orders", "page", "with", "tests", "and", "docs", "for", "the", "api"]

    def prompt() -> str:
        return " ".join(rng.choice(words) for _ in range(12))

    def edited(text: str) -> str:  # one word changed: still above the rename ratio, mostly
        parts = text.split()
        parts[rng.randrange(len(parts))] = rng.choice(words)
        return " ".join(parts)

    old_tasks = [Task(f"t{i}", "", prompt(), rng.choice(scopes)) for i in range(80)]
    new_tasks = []
    for i, t in enumerate(old_tasks):
        fate = rng.random()
        if fate < 0.3:
            new_tasks.append(t)
        elif fate < 0.55:
            new_tasks.append(Task(f"r{i}", "", t.prompt, tuple(reversed(t.scope))))
        elif fate < 0.8:
            new_tasks.append(Task(f"r{i}", "", edited(t.prompt), t.scope))
        elif fate < 0.9:
            new_tasks.append(Task(f"r{i}", "", t.prompt, rng.choice(scopes)))
    new_tasks += [Task(f"n{i}", "", prompt(), rng.choice(scopes)) for i in range(10)]
    rng.shuffle(new_tasks)
    old = Plan(Path("old.yaml"), "p", tasks=tuple(old_tasks))
    new = Plan(Path("new.yaml"), "p", tasks=tuple(new_tasks))
    pairing = plandiff._pair(old, new)
    assert pairing == _pair_every_two(old, new)
    assert len(pairing.renamed) > 20 and pairing.added and pairing.removed
