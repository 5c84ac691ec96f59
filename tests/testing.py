"""Real repositories for tests: a main checkout with a bare remote, plans, and the CLI."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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
    return "[" + ", ".join(f'"{a}"' for a in items) + "]"


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
