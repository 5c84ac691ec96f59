"""Plans written to hurt: hostile paths, refs, templates and setup steps end with a clear
error at their place in the plan (exit 1, or 2 for a bad path on the command line), never
a hang, a traceback or a write outside the repository."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing import agent, branches, git, write_plan, wtrun

MEMORY = 1024**3
VALID_TASKS = """\
tasks:
  - id: t0
    prompt: p
    scope: [src/t0/]
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def cli(*args: str, cwd: Path, timeout: float = 20) -> tuple[int, str, str]:
    """The CLI in a child process with 1 GiB of memory: a hang or a runaway ends the test
    instead of the whole suite."""
    r = subprocess.run(
        [sys.executable, "-m", "wtrun", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit_memory,
    )
    return r.returncode, r.stdout, r.stderr


# ---------------------------------------------------------------- the plan path (case 21)


def test_a_fifo_is_refused_without_being_opened_for_reading(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "plan.yaml")
    code, out, err = cli("validate", "plan.yaml", cwd=tmp_path, timeout=10)
    assert (code, out) == (2, "")
    assert err == (
        "wtrun: error: plan.yaml: is a named pipe (FIFO), not a plan file; give the path of a "
        "YAML file\n"
    )


@pytest.mark.parametrize("command", ["validate", "run"])
def test_dev_zero_is_refused_before_it_is_read(command: str, tmp_path: Path) -> None:
    started = time.monotonic()
    code, out, err = cli(command, "/dev/zero", cwd=tmp_path, timeout=10)
    assert time.monotonic() - started < 8
    assert code == 2
    assert err.startswith(
        "wtrun: error: /dev/zero: is a character device, not a plan file; give the path of a "
        "YAML file\n"
    )
    assert "Traceback" not in out + err


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plans").mkdir()
    assert cli("validate", "plans", cwd=tmp_path) == (
        2,
        "",
        "wtrun: error: plans: is a directory, not a plan file\n",
    )


def test_a_big_file_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:  # sparse: a read would take gigabytes of memory
        f.truncate(4 * 1024**3)
    code, out, _ = cli("validate", "big.yaml", cwd=tmp_path)
    assert code == 1
    assert out.splitlines()[0] == (
        "big.yaml:1:1: the file is 4,294,967,296 bytes, over the limit of 8,388,608 bytes; "
        "split the plan into several files [syntax]"
    )


# ---------------------------------------------------------------- base and remote (case 12)


def plan_text(top: str, tasks: str = VALID_TASKS) -> str:
    return (
        f"version: 1\nname: demo\nagent: {{preset: command, command: {agent('nothing')}}}\n"
        f"pr: {{provider: none}}\n{top}\n{tasks}"
    )


@pytest.mark.parametrize(
    "top",
    ['base: "--upload-pack=touch PWNED; git-upload-pack"', 'remote: "--upload-pack=touch PWNED"'],
)
@pytest.mark.parametrize("command", ["validate", "run", "prepare"])
def test_an_option_as_base_or_remote_is_refused_before_git_sees_it(
    top: str, command: str, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(top))
    assert wtrun(command, str(plan), cwd=repo) == 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    key = top.split(":")[0]
    assert f"plan.yaml:5:{len(key) + 3}: {key} is " in out
    assert "not a valid" in out
    assert not (repo / "PWNED").exists()
    assert branches(repo) == ["main"]


# ---------------------------------------------------------------- template limits (case 20)

HOSTILE_TEMPLATES = {
    "power": ("{{ 7 ** (7 ** 9) }}", "7 ** 40353607 is a number of more than 4,096 bits"),
    "repeat": ("{{ 'x' * 2000000000 }}", "repeating a value 2,000,000,000 times makes"),
    "range": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "range() of 100,000 numbers, over the limit of 10,000",
    ),
    "time": (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "rendering took over 2 seconds",
    ),
    "loop-over-a-string": (
        "{% set s = 'x' * 1000000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
        "rendering took over 2 seconds",
    ),
    "output": (
        "{% for i in range(1000) %}{{ 'x' * 5000 }}{% endfor %}",
        "the output passes 1,048,576 characters",
    ),
    "doubling": (
        "{% set n = namespace(x='x') %}{% for i in range(40) %}{% set n.x = n.x ~ n.x %}"
        "{% endfor %}",
        "a value of 2,097,152 characters or items, over the limit of 1,048,576",
    ),
    "filter": (
        "{{ 'x' | center(2000000000) }}",
        'a number over 1,048,576 given to the filter "center"',
    ),
    "percent": ("{{ '%0999999999d' % 1 }}", "a format width or precision of 999,999,999"),
    "format": ("{{ '{:>999999999}'.format(1) }}", "a format width or precision of 999,999,999"),
    "recursion": (
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "it needs too deep a recursion",
    ),
}


def hostile_conventions(template: str) -> str:
    return f"conventions: |\n  Rules.\n  {template}\n"


@pytest.mark.parametrize("name", list(HOSTILE_TEMPLATES))
def test_a_hostile_template_is_an_error_at_its_line_within_seconds(
    name: str, tmp_path: Path
) -> None:
    template, message = HOSTILE_TEMPLATES[name]
    (tmp_path / "plan.yaml").write_text(plan_text(hostile_conventions(template)))
    started = time.monotonic()
    code, out, err = cli("validate", "plan.yaml", cwd=tmp_path)
    assert time.monotonic() - started < 8
    assert code == 1, err
    first = out.splitlines()[0]
    assert first.startswith(f"plan.yaml:7:3: conventions: template limit: {message}")
    assert first.endswith("[template]")


def test_a_hostile_template_stops_a_run_before_any_worktree(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = HOSTILE_TEMPLATES["power"][0]
    plan = write_plan(repo, plan_text(hostile_conventions(template)))
    assert wtrun("run", str(plan), cwd=repo) == 1
    captured = capsys.readouterr()
    assert (
        "plan.yaml:7:3: conventions: template limit: 7 ** 40353607" in captured.out + captured.err
    )
    assert branches(repo) == ["main"]
    assert not (repo / ".claude").exists()


def test_ordinary_templates_render_as_before(tmp_path: Path) -> None:
    from wtrun.plan import templates

    text = (
        "{% for p in task.scope %}{{ loop.index }}/{{ loop.length }} {{ p }}"
        "{{ ',' if not loop.last }}{% endfor %} {{ '%5d|%-3s|' % (3, 'a') }}{{ '{:>4}'.format(7) }}"
        " {{ 2 ** 10 }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ (range(3) | list) * 2 }}"
        " {{ 'a-b' | replace('-', '+') }} {{ 'x' | center(5) }}|{{ task.id ~ '!' }}"
    )
    context = {"task": {"id": "t0", "scope": ["src/a/", "docs/**"]}}
    assert templates.render(text, context) == (
        "1/2 src/a/,2/2 docs/**     3|a  |   7 1024 ababab [1, 2] [0, 1, 2, 0, 1, 2] a+b   x  |t0!"
    )


# ---------------------------------------------------------------- the worktrees folder (case 22)


def refused_prepare(repo: Path, top: str, capsys: pytest.CaptureFixture[str]) -> str:
    plan = write_plan(repo, plan_text(top))
    assert wtrun("prepare", str(plan), cwd=repo) == 1
    captured = capsys.readouterr()
    assert branches(repo) == ["main"]
    exclude = repo / ".git" / "info" / "exclude"
    assert "wtrun" not in (exclude.read_text() if exclude.exists() else "")
    return captured.out + captured.err


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_tracked_folder_is_refused_as_the_worktrees_folder(
    dry_run: bool, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text("worktrees: src"))
    args = ["run", str(plan), "--dry-run"] if dry_run else ["prepare", str(plan)]
    assert wtrun(*args, cwd=repo) == 1
    captured = capsys.readouterr()
    assert (
        'the worktrees folder "src" holds files git tracks (e.g. "src/app.py"), and wtrun hides '
        "that folder from `git status`, which would hide your own new files there too; set "
        '`worktrees:` in the plan to a folder of its own, e.g. ".claude/worktrees"'
    ) in captured.out + captured.err
    assert branches(repo) == ["main"]
    (repo / "src" / "new.py").write_text("x\n")
    assert "src/new.py" in git(repo, "status", "--porcelain", "-uall")


def test_a_worktrees_folder_through_a_symlink_out_of_the_repository_is_refused(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / ".claude").symlink_to(outside)
    text = refused_prepare(repo, "", capsys)
    assert (
        f'the worktrees folder ".claude/worktrees" leads to {outside}/worktrees, outside the '
        "repository (through a symbolic link)"
    ) in text
    assert list(outside.iterdir()) == []


def test_a_worktrees_folder_into_git_s_own_folder_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "gitdata").symlink_to(".git")
    text = refused_prepare(repo, "worktrees: gitdata/wt", capsys)
    assert 'the worktrees folder "gitdata/wt" leads into git\'s own folder' in text
    assert not (repo / ".git" / "wt").exists()


def test_a_file_is_refused_as_the_worktrees_folder(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "wt").write_text("mine\n")
    text = refused_prepare(repo, "worktrees: wt", capsys)
    assert 'the worktrees folder "wt" is a file, not a folder' in text
    assert (repo / "wt").read_text() == "mine\n"
