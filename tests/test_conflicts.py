"""Conflicts scopes cannot see: `git merge-tree` between tasks and with the base."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.github import FakeGitHub
from testing import agent, fake_github, git, make_repo, needs_gh, status, write_plan, wtrun
from wtrun.conflicts import merge_conflicts, merge_many, predict, quarantine
from wtrun.errors import WtrunError
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


def test_one_git_process_finds_what_a_process_per_merge_finds(tmp_path: Path) -> None:
    files = {f"src/m{i}.py": f"v = {i}\n" * 20 for i in range(6)}
    repo = make_repo(tmp_path, {**files, "lock.json": "1\n", "docs/a.md": "a\n"}, remote=False)
    base = git(repo, "rev-parse", "HEAD").strip()
    renamed = "".join(f"v = {i}\n" * 20 for i in [0])  # src/m0.py's text, moved
    heads = {
        "edit-lock": commit(repo, base, {"lock.json": "edit\n"}, "edit-lock"),
        "edit-lock-too": commit(repo, base, {"lock.json": "other\n"}, "edit-lock-too"),
        "drop-lock": commit(repo, base, {"lock.json": None}, "drop-lock"),  # modify/delete
        "move-m0": commit(repo, base, {"src/m0.py": None, "lib/m0.py": renamed}, "move-m0"),
        "move-m0-away": commit(
            repo, base, {"src/m0.py": None, "old/m0.py": renamed}, "move-m0-away"
        ),  # rename/rename
        "drop-m0": commit(repo, base, {"src/m0.py": None}, "drop-m0"),  # rename/delete
        "edit-m0": commit(repo, base, {"src/m0.py": renamed + "w = 1\n"}, "edit-m0"),
        "drop-m0-too": commit(repo, base, {"src/m0.py": None}, "drop-m0-too"),  # both delete
        "add-new": commit(repo, base, {"new.txt": "one\n"}, "add-new"),
        "add-new-too": commit(repo, base, {"new.txt": "two\n"}, "add-new-too"),  # add/add
        "docs-file": commit(repo, base, {"docs/a.md": None, "docs": "a file\n"}, "docs-file"),
    }
    for i in range(1, 6):  # clean merges: a module each
        heads[f"m{i}"] = commit(repo, base, {f"src/m{i}.py": f"w = {i}\n"}, f"m{i}")
    heads["m1-again"] = commit(repo, base, {"src/m1.py": "w = 1\n"}, "m1-again")  # same change
    tip = commit(repo, base, {"lock.json": "main\n", "src/m2.py": "main\n"}, "tip")
    ids = list(heads)
    jobs = [(heads[a], heads[b]) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    jobs += [(tip, heads[t]) for t in ids]
    g = Git(repo)
    objects = loose_objects(repo)
    with quarantine(g) as env:
        one_each = [merge_conflicts(g, ours, theirs, env=env) for ours, theirs in jobs]
        one_process = merge_many(g, jobs, env)
        several = merge_many(g, jobs * 4, env, processes=3)  # 3 processes, 3 shares
    assert one_process == one_each
    assert several == one_each * 4
    assert loose_objects(repo) == objects

    found = dict(zip(jobs, one_process, strict=True))
    pair = lambda a, b: found[heads[a], heads[b]]  # noqa: E731
    assert pair("edit-lock", "edit-lock-too") == ("lock.json",)
    assert pair("edit-lock", "drop-lock") == ("lock.json",)
    assert pair("move-m0", "move-m0-away") == ("lib/m0.py", "old/m0.py", "src/m0.py")
    assert pair("move-m0", "drop-m0") != ()
    assert pair("move-m0", "edit-m0") == ()  # the edit follows the rename
    assert pair("drop-m0", "drop-m0-too") == ()
    assert pair("add-new", "add-new-too") == ("new.txt",)
    assert pair("m1", "m1-again") == pair("m1", "m2") == ()
    assert found[tip, heads["m2"]] == ("src/m2.py",)
    assert found[tip, heads["m3"]] == ()
    assert sum(1 for files in one_each if files) == 15


def test_a_merge_git_cannot_do_names_its_commits(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.txt": "a\n"}, remote=False)
    base = git(repo, "rev-parse", "HEAD").strip()
    head = commit(repo, base, {"b.txt": "b\n"}, "b")
    missing = "0123456789abcdef" * 2 + "01234567"
    g = Git(repo)
    with quarantine(g) as env, pytest.raises(WtrunError) as failed:
        merge_many(g, [(base, head), (head, missing), (base, head)], env)
    assert f"git merge-tree {head[:12]} {missing[:12]} failed" in str(failed.value)
