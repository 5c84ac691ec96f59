"""`wtrun demo`: the whole pipeline offline, in a throwaway repository.

A sample project with a bare remote, a plan of two independent tasks and one stacked
on the first, the demo agent (a scripted stand-in for a coding agent), and the `local`
PR provider: no network, no credentials, nothing outside the sandbox touched.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from .. import proc
from ..errors import UsageError

PROJECT = {
    "README.md": "# shop\n\nA tiny shop, to show wtrun at work.\n",
    "src/shop/__init__.py": "",
    "src/shop/auth.py": '"""Sessions."""\n\nSESSION_MINUTES = 5\n\n\n'
    "def session_seconds() -> int:\n    return SESSION_MINUTES * 60\n",
    "src/shop/cart.py": '"""The cart."""\n\n\ndef total(prices: list[int]) -> int:\n'
    "    return sum(prices)\n",
    "tests/check.py": (
        '"""The demo\'s verify step: every module imports and every test function passes."""\n'
        "import importlib, pathlib, sys\n"
        "sys.path.insert(0, 'src')\n"
        "failed = 0\n"
        "for path in sorted(pathlib.Path('tests').glob('test_*.py')):\n"
        "    sys.path.insert(0, 'tests')\n"
        "    module = importlib.import_module(path.stem)\n"
        "    for name in dir(module):\n"
        "        if name.startswith('test_'):\n"
        "            try:\n"
        "                getattr(module, name)()\n"
        "                print('ok  ', path.name, name)\n"
        "            except AssertionError:\n"
        "                failed += 1\n"
        "                print('FAIL', path.name, name)\n"
        "sys.exit(1 if failed else 0)\n"
    ),
}

PLAN = """\
# yaml-language-server: $schema=https://wtrun.dev/schemas/plan-v1.json
version: 1
name: demo
max_parallel: 2
agent:
  preset: command
  command: [{python}, {agent}]
  timeout: 2m
conventions: |
  ## Conventions
  - Commit messages: `type(scope): description`
  - You may only change: {{{{ task.scope | join(", ") }}}}
verify:
  - name: tests
    run: {shell_python} tests/check.py
pr:
  provider: local
  labels: [agent]
tasks:
  - id: fix-auth-timeout
    title: Sessions last 30 minutes
    prompt: Sessions expire after 5 minutes instead of 30. Fix it, with a test.
    scope: [src/shop/auth.py, tests/test_auth.py]
  - id: feat-discounts
    title: Discount codes
    prompt: Add discount codes (WELCOME10, SPRING25) with apply(total_cents, code).
    scope: [src/shop/discounts.py, tests/test_discounts.py]
  - id: docs-discounts
    title: Document discount codes
    after: feat-discounts
    prompt: Document the discount codes in docs/discounts.md.
    scope: [docs/]
"""

_IDENTITY = {
    "GIT_AUTHOR_NAME": "wtrun demo",
    "GIT_AUTHOR_EMAIL": "demo@wtrun.invalid",
    "GIT_COMMITTER_NAME": "wtrun demo",
    "GIT_COMMITTER_EMAIL": "demo@wtrun.invalid",
}


def _git(cwd: Path, *args: str) -> None:
    proc.run(["git", *args], cwd=cwd, env=proc.clean_env(_IDENTITY))


def build(root: Path) -> Path:
    """The sandbox: root/origin.git (the remote) and root/shop (the checkout). Returns
    the checkout."""
    repo = root / "shop"
    bare = root / "origin.git"
    repo.mkdir(parents=True)
    _git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    _git(repo, "init", "-q", "-b", "main")
    for rel, text in PROJECT.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    plan = repo / "plans" / "demo.yaml"
    plan.parent.mkdir()
    plan.write_text(
        PLAN.format(
            python=json.dumps(sys.executable),
            # A script, not `-m wtrun.demo_agent`: the sandbox shows the agent what it names.
            agent=json.dumps(str(Path(__file__).resolve().parent.parent / "demo_agent.py")),
            shell_python=shlex.quote(sys.executable),
        ),
        encoding="utf-8",
    )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "chore: the sample shop")
    _git(repo, "remote", "add", "origin", str(bare))
    _git(repo, "push", "-q", "origin", "main")
    return repo


def demo(keep: str | None) -> int:
    from ..run import Options, run

    if keep:
        root = Path(keep).resolve()
        if root.exists() and any(root.iterdir()):
            raise UsageError(f"{root} exists and is not empty; name a new folder for the demo")
    else:
        root = Path(tempfile.mkdtemp(prefix="wtrun-demo-"))
    repo = build(root)
    print(
        f"wtrun demo: a sample repository at {repo}, its remote at {root / 'origin.git'}\n"
        "Running plans/demo.yaml: two tasks in parallel, a third stacked on the second.\n",
        flush=True,
    )
    old = os.getcwd()
    os.chdir(repo)
    try:
        code = run("plans/demo.yaml", Options())
    finally:
        os.chdir(old)
    prs = repo / ".git" / "wtrun" / "demo" / "prs"
    print(f"""
Where to look:
  cd {repo}
  wtrun status plans/demo.yaml            # one row per task
  git log --oneline --all --graph         # docs-discounts stacks on feat-discounts
  ls .claude/worktrees/                   # one worktree per task, with its AGENTS.md
  wtrun logs plans/demo.yaml feat-discounts
  ls {prs}   # the PR texts (the local provider)
  git --git-dir {root / "origin.git"} branch   # what was pushed
When done: rm -rf {root}""")
    return code
