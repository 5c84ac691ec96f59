"""Conflicts scopes cannot see: `git merge-tree` between tasks and with the base."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.github import FakeGitHub
from testing import agent, fake_github, git, make_repo, needs_gh, status, write_plan, wtrun
from wtrun.conflicts import merge_conflicts, predict
from wtrun.git import Git

LOCKFILE_PLAN = f"""\
version: 1
name: sprint
shared: [package-lock.json]
agent:
  preset: command
  command: {agent("edit", "src/{{ task.id }}/work.py", "package-lock.json")}
pr:
  provider: github
  repository: acme/shop
tasks:
  - id: cart
    prompt: Add the cart.
    scope: [src/cart/]
  - id: search
    prompt: Add search.
    scope: [src/search/]
  - id: cart-docs
    after: cart
    prompt: Document the cart.
    scope: [src/cart-docs/]
  - id: logo
    prompt: A new logo.
    scope: [src/logo/]
    agent: {{command: {agent("edit", "src/logo/work.py")}}}
"""


@pytest.fixture
def lockfile_github(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, FakeGitHub]]:
    """Like `github`, with a lockfile on main."""
    repo = make_repo(
        tmp_path, {"README.md": "# shop\n", "package-lock.json": '{"lockfileVersion": 3}\n'}
    )
    with fake_github(tmp_path, monkeypatch) as fake:
        yield repo, fake


@needs_gh
def test_siblings_sharing_a_lockfile_are_predicted_to_conflict(
    lockfile_github: tuple[Path, FakeGitHub], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, fake = lockfile_github
    plan = write_plan(repo, LOCKFILE_PLAN)
    capsys.readouterr()
    assert wtrun("run", str(plan), cwd=repo) == 0
    out = capsys.readouterr().out
    assert (
        "predicted conflicts (git merge-tree):\n"
        "  cart <-> search: package-lock.json\n"
        "  search <-> cart-docs: package-lock.json\n"
    ) in out

    rows = status(repo, plan, capsys)
    # cart-docs is stacked on cart: they never run side by side, so they are not compared.
    assert rows["cart"]["conflicts"] == ["search"]
    assert rows["search"]["conflicts"] == ["cart", "cart-docs"]
    assert rows["cart-docs"]["conflicts"] == ["search"]
    assert rows["logo"]["conflicts"] == []
    assert rows["cart"]["conflict_files"] == {"search": ["package-lock.json"]}
    bodies = {pr.head: pr.body or "" for pr in fake.pulls.values()}
    assert "**Predicted conflicts** with: `search`" in bodies["worktree-cart"]
    assert "**Predicted conflicts** with: `cart`, `cart-docs`" in bodies["worktree-search"]
    assert "Predicted conflicts" not in bodies["worktree-logo"]
    # The run's other PR texts survived the update.
    assert "Stacked on this PR: #" in bodies["worktree-cart"]

    capsys.readouterr()
    assert wtrun("status", str(plan), cwd=repo) == 0
    assert "  cart <-> search: package-lock.json" in capsys.readouterr().out

    # Running again changes nothing: no new PR text.
    before = len(fake.requests)
    assert wtrun("run", str(plan), cwd=repo) == 0
    assert [r.method for r in fake.requests[before:] if r.method != "GET"] == []

    # Once search is merged, the others conflict with the base instead, and say so.
    number = next(pr.number for pr in fake.pulls.values() if pr.head == "worktree-search")
    fake.merge(number, "squash")
    capsys.readouterr()
    assert wtrun("sync", str(plan), cwd=repo) == 0
    out = capsys.readouterr().out
    assert "  cart: 1 commit behind; conflicts with main in package-lock.json" in out
    rows = status(repo, plan, capsys)
    assert rows["cart"]["conflicts"] == [] and rows["search"]["conflicts"] == []
    assert rows["cart"]["base_conflicts"] == ["package-lock.json"]
    assert rows["logo"]["base_conflicts"] == []
    bodies = {pr.head: pr.body or "" for pr in fake.pulls.values()}
    assert "Predicted conflicts" not in bodies["worktree-cart"]


@needs_gh
def test_each_pr_text_is_sent_once_and_recorded_as_sent(
    github: tuple[Path, FakeGitHub], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, fake = github
    plan = write_plan(repo, LOCKFILE_PLAN)
    assert wtrun("run", str(plan), cwd=repo) == 0
    number = {pr.head.removeprefix("worktree-"): pr.number for pr in fake.pulls.values()}
    # A parent learns its child's number and its conflicts in the same run: one edit, not two
    # (cart); a PR whose text did not change is not edited (logo).
    patched = [r.path for r in fake.requests if r.method == "PATCH"]
    assert sorted(patched) == sorted(
        f"/repos/acme/shop/pulls/{number[t]}" for t in ("cart", "search", "cart-docs")
    )
    # The records hold the text GitHub has: what wtrun sent last.
    records = json.loads((repo / ".git/wtrun/sprint/state.json").read_text())["tasks"]
    assert {t: r["pr_body"] for t, r in records.items()} == {
        t: fake.pulls[n].body for t, n in number.items()
    }

    # Nothing changed since: a sync edits nothing and reads each PR once.
    for _ in range(2):
        start = len(fake.requests)
        assert wtrun("sync", str(plan), cwd=repo) == 0
        sent = fake.requests[start:]
        assert [f"{r.method} {r.path}" for r in sent if r.method != "GET"] == []
        reads = sorted(r.path for r in sent if "/pulls/" in r.path)
        assert reads == sorted(f"/repos/acme/shop/pulls/{n}" for n in number.values())


# ---------------------------------------------------------------- merge-tree itself


def commit(repo: Path, start: str, files: dict[str, str | None], branch: str) -> str:
    """A commit on `branch` from `start` with these files written (None: deleted)."""
    git(repo, "checkout", "-q", "-B", branch, start)
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            git(repo, "rm", "-q", rel)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            git(repo, "add", rel)
    git(repo, "commit", "-qm", branch)
    return git(repo, "rev-parse", "HEAD").strip()


def loose_objects(repo: Path) -> set[str]:
    objects = repo / ".git" / "objects"
    return {f"{d.name}{f.name}" for d in objects.iterdir() if len(d.name) == 2 for f in d.iterdir()}


def test_merge_tree_pairs_base_and_the_object_store(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path, {"lock.json": "1\n", "a/x.txt": "x\n", "b/y.txt": "y\n"}, remote=False
    )
    base = git(repo, "rev-parse", "HEAD").strip()
    heads = {
        "one": commit(repo, base, {"lock.json": "one\n", "one.txt": "1\n"}, "one"),
        "two": commit(repo, base, {"lock.json": "two\n"}, "two"),
        "same": commit(repo, base, {"lock.json": "one\n"}, "same"),  # the same change: clean
        "file": commit(repo, base, {"a/x.txt": None, "a": "now a file\n"}, "file"),
        "dir": commit(repo, base, {"a/z.txt": "z\n"}, "dir"),
    }
    tip = commit(repo, base, {"b/y.txt": "changed on main\n"}, "tip")
    heads["stale"] = commit(repo, base, {"b/y.txt": "changed by a task\n"}, "stale")
    g = Git(repo)
    assert merge_conflicts(g, heads["one"], heads["same"]) == ()
    assert merge_conflicts(g, heads["one"], heads["two"]) == ("lock.json",)

    objects = loose_objects(repo)
    prediction = predict(g, heads, lambda a, b: {a, b} != {"one", "two"}, tip, workers=4)
    assert loose_objects(repo) == objects  # the merged trees went to a throw-away folder
    # A file where the other side adds into a directory of that name (git moves the file
    # aside as "a~<commit>", named here as "a").
    assert prediction.pairs == {("two", "same"): ("lock.json",), ("file", "dir"): ("a",)}
    assert prediction.base == {"stale": ("b/y.txt",)}
    assert prediction.merges == 6 * 5 // 2 - 1 + 6
    assert prediction.others("same") == {"two": ("lock.json",)}
