"""Real repositories for tests: a main checkout with a bare remote, plans, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fakes.github import FakeGitHub
from wtrun.cli import main

AGENT = Path(__file__).parent / "agents" / "scripted.py"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_repo(root: Path, files: dict[str, str] | None = None, *, remote: bool = True) -> Path:
    """A repository at root/repo on branch main with one commit, and (optionally) a bare
    remote `origin` at root/origin.git that has main."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for rel, text in (files or {"README.md": "# shop\n", "src/app.py": "print('hi')\n"}).items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    if remote:
        bare = root / "origin.git"
        git(root, "init", "-q", "--bare", "-b", "main", str(bare))
        git(repo, "remote", "add", "origin", str(bare))
        git(repo, "push", "-q", "origin", "main")
    return repo


def write_plan(repo: Path, text: str, name: str = "plan.yaml") -> Path:
    path = repo / "plans" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def agent(*args: str) -> str:
    """A YAML flow list for `agent.command` running the scripted agent."""
    items = [sys.executable, str(AGENT), *args]
    return "[" + ", ".join(json.dumps(a) for a in items) + "]"


@contextmanager
def fake_github(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A GitHub-compatible server for acme/shop backed by root/origin.git, with the real
    `gh` pointed at it through the environment."""
    with FakeGitHub(bare_repo=root / "origin.git", owner="acme", repo="shop") as fake:
        for key, value in fake.env.items():
            monkeypatch.setenv(key, value)
        yield fake


def wtrun(*args: str, cwd: Path, capsys: object | None = None) -> int:
    """Run the CLI in-process from `cwd`."""
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return main(list(args))
    finally:
        os.chdir(old)


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--format=%(refname:short)").split()


def remote_branches(bare: Path) -> list[str]:
    return git(bare, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
