"""`wtrun matrix PLAN`: the GitHub Actions matrix contract (see the README)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from testing import write_plan, wtrun
from wtrun.commands.matrix import entries, pack
from wtrun.plan import Plan, graph, load

SMALL = """\
version: 1
name: small
tasks:
  - id: docs
    after: api
    prompt: Document the API.
    scope: [docs/api.md]
  - id: api
    prompt: Add GET /orders.
    scope: [src/api/**]
  - id: web
    prompt: Add the orders page.
    scope: [src/web/**]
  - id: api-tests
    after: api
    prompt: Test the API.
    scope: [tests/api/**]
  - id: docs-review
    after: docs
    prompt: Proofread the API docs.
    scope: [docs/api.md]
"""


def _matrix(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> str:
    (tmp_path / "plan.yaml").write_text(text, encoding="utf-8")
    assert wtrun("matrix", "plan.yaml", cwd=tmp_path) == 0
    out: str = capsys.readouterr().out
    return out


def test_small_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _matrix(tmp_path, SMALL, capsys)
    # One compact line, ready for `echo "matrix=$(wtrun matrix PLAN)" >> "$GITHUB_OUTPUT"`.
    assert out == (
        '{"include":[{"stack":"api","tasks":["docs","api","api-tests",'
        '"docs-review"]},{"stack":"web","tasks":["web"]}]}\n'
    )


def _many_stacks(n: int, children: dict[int, int] | None = None) -> str:
    """n root tasks t0000..; `children[i] = k` stacks k more tasks on root i."""
    lines = ["version: 1", "name: many", "tasks:"]
    for i in range(n):
        lines += [f"  - id: t{i:04d}", "    prompt: p", f"    scope: [s{i}/**]"]
        for j in range((children or {}).get(i, 0)):
            lines += [
                f"  - id: t{i:04d}-c{j}",
                f"    after: t{i:04d}" if j == 0 else f"    after: t{i:04d}-c{j - 1}",
                "    prompt: p",
                f"    scope: [s{i}/**]",
            ]
    return "\n".join(lines) + "\n"


def test_a_thousand_one_task_stacks_fill_256_entries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _matrix(tmp_path, _many_stacks(1000), capsys)
    assert out.count("\n") == 1
    include = json.loads(out)["include"]
    assert len(include) == 256
    tasks = [t for entry in include for t in entry["tasks"]]
    assert sorted(tasks) == [f"t{i:04d}" for i in range(1000)]  # each task exactly once
    assert Counter(len(e["tasks"]) for e in include) == {4: 1000 - 3 * 256, 3: 1024 - 1000}
    for entry in include:
        assert entry["stack"].split(",") == entry["tasks"]  # one-task stacks: roots = tasks
        assert entry["tasks"] == sorted(entry["tasks"])  # plan order inside an entry
    assert include[0] == {
        "stack": "t0000,t0256,t0512,t0768",
        "tasks": ["t0000", "t0256", "t0512", "t0768"],
    }


def test_stacks_stay_whole_and_are_balanced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 300 stacks: root 0 carries 9 children, roots 1..19 carry 2 each.
    children = {0: 9, **{i: 2 for i in range(1, 20)}}
    include = json.loads(_matrix(tmp_path, _many_stacks(300, children), capsys))["include"]
    assert len(include) == 256
    position = {f"t{i:04d}": i for i in range(300)}
    seen: list[str] = []
    for entry in include:
        roots = entry["stack"].split(",")
        assert roots == sorted(roots, key=position.__getitem__)
        # A task and all its descendants in the entry of its root.
        assert {t.split("-")[0] for t in entry["tasks"]} == set(roots)
        for root in roots:
            i = position[root]
            assert [t for t in entry["tasks"] if t.split("-")[0] == root] == [
                root,
                *(f"{root}-c{j}" for j in range(children.get(i, 0))),
            ]
        seen += entry["tasks"]
    assert len(seen) == len(set(seen)) == 300 + 9 + 19 * 2
    # The big stack is alone; nothing else grows past the mean.
    sizes = {entry["stack"]: len(entry["tasks"]) for entry in include}
    assert sizes["t0000"] == 10
    assert max(n for stack, n in sizes.items() if stack != "t0000") == 3


def test_output_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _many_stacks(700, {5: 3, 400: 1})
    first = _matrix(tmp_path, text, capsys)
    assert all(_matrix(tmp_path, text, capsys) == first for _ in range(2))


def test_an_invalid_plan_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plan.yaml").write_text("version: 1\ntasks: []\n", encoding="utf-8")
    assert wtrun("matrix", "plan.yaml", cwd=tmp_path) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "plan.yaml:2:8: " in captured.err


def _walk_per_root(plan: Plan) -> list[dict[str, object]]:
    """The matrix with its stacks found as the first version found them (a whole-plan walk
    per root, quadratic), kept as the reference the faster walk must equal."""
    return pack(plan, [(root, graph.descendants(plan, [root])) for root in graph.roots(plan)])


def _random_forest(n: int, seed: int, stacked: float) -> str:
    """n tasks in shuffled order (children often before their parents), a share `stacked`
    of them on an earlier-made task: deep chains, wide fans, and many one-task stacks."""
    rng = random.Random(seed)
    parents: list[int | None] = [None]
    for i in range(1, n):
        parents.append(rng.randrange(i) if rng.random() < stacked else None)
    order = list(range(n))
    rng.shuffle(order)
    lines = ["version: 1", "name: random", "tasks:"]
    for i in order:
        lines += [f"  - id: t{i}", "    prompt: p", f"    scope: [s{i}/**]"]
        if parents[i] is not None:
            lines.append(f"    after: t{parents[i]}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("n", "seed", "stacked"),
    [(40, 1, 0.5), (300, 2, 0.0), (600, 3, 0.3), (900, 4, 0.6), (1200, 5, 0.9), (2000, 6, 0.1)],
)
def test_same_matrix_as_a_walk_per_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n: int, seed: int, stacked: float
) -> None:
    text = _random_forest(n, seed, stacked)
    loaded = load(write_plan(tmp_path, text))
    expected = _walk_per_root(loaded)
    assert entries(loaded) == expected
    assert json.loads(_matrix(tmp_path, text, capsys))["include"] == expected
