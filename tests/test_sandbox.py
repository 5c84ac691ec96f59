"""The sandbox, tried as an agent would: real bubblewrap, real repositories and worktrees.

The repositories live under tmp_path, which is under /tmp: the private /tmp must not hide them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testing import git, make_repo, needs_bwrap
from wtrun.errors import WtrunError
from wtrun.proc import run_logged
from wtrun.sandbox import NO_SANDBOX, Sandbox, choose, writable_paths


@dataclass(frozen=True)
class Task:
    repo: Path
    worktree: Path
    other: Path
    home: Path
    writable: list[Path]


@pytest.fixture
def task(tmp_path: Path, isolated_home: Path) -> Task:
    """A repository with two linked worktrees (t1 and t2) made as wtrun makes them, the
    records folder and a hook, and t1's writable paths."""
    repo = make_repo(tmp_path, remote=False)
    for name in ("t1", "t2"):
        git(repo, "worktree", "add", "-q", "-b", name, str(repo / ".claude/worktrees" / name))
    (repo / ".git/wtrun").mkdir()
    (repo / ".git/wtrun/records.json").write_text("{}\n")
    (repo / ".git/hooks/pre-push").write_text("#!/bin/sh\nexit 0\n")
    (isolated_home / ".claude").mkdir()
    (isolated_home / ".claude.json").write_text("{}\n")
    (isolated_home / ".bashrc").write_text("# mine\n")
    worktree = repo / ".claude/worktrees/t1"
    state = [isolated_home / n for n in (".claude", ".claude.json", ".gemini")]
    paths = writable_paths(repo / ".git", repo / ".git/worktrees/t1", worktree, state)
    return Task(repo, worktree, repo / ".claude/worktrees/t2", isolated_home, paths)


def bwrap() -> Sandbox:
    sandbox, warning = choose("bwrap")
    assert warning is None
    return sandbox


def inside(
    t: Task, script: str, sandbox: Sandbox | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    argv = (sandbox or bwrap()).wrap(
        ["sh", "-c", script], cwd=t.worktree, writable=t.writable, env=env
    )
    return subprocess.run(argv, cwd=t.worktree, env=env, capture_output=True, text=True, timeout=60)


def snapshot(paths: list[Path]) -> dict[Path, str | None]:
    return {p: p.read_text() if p.is_file() else None for p in paths}


@needs_bwrap
def test_a_task_writes_its_worktree_and_commits_on_its_branch(task: Task) -> None:
    r = inside(task, "echo new > src/new.py && git add -A && git commit -q -m 'agent work'")

    assert r.returncode == 0, r.stderr
    assert git(task.repo, "log", "-1", "--format=%s", "t1").strip() == "agent work"
    assert git(task.repo, "show", "t1:src/new.py") == "new\n"
    assert git(task.worktree, "status", "--porcelain") == ""


@needs_bwrap
def test_the_agent_cli_state_in_home_stays_writable(task: Task) -> None:
    state = task.home / ".claude"
    r = inside(task, f"echo s > {state}/session && echo '{{}}' > {state}.json")

    assert r.returncode == 0, r.stderr
    assert (task.home / ".claude/session").read_text() == "s\n"


@needs_bwrap
def test_a_state_folder_missing_from_home_is_made_so_the_cli_keeps_its_session(
    task: Task,
) -> None:
    sessions = task.home / ".codex"
    writable = writable_paths(
        task.repo / ".git", task.repo / ".git/worktrees/t1", task.worktree, [sessions], [sessions]
    )
    r = inside(
        dataclasses.replace(task, writable=writable),
        f"mkdir -p {sessions}/sessions && echo s > {sessions}/sessions/one",
    )

    assert r.returncode == 0, r.stderr
    assert (sessions / "sessions/one").read_text() == "s\n"


@needs_bwrap
@pytest.mark.parametrize(
    "target",
    [
        ".git/config",
        ".git/hooks/pre-push",
        ".git/hooks/post-checkout",
        ".git/info/exclude",
        ".git/wtrun/records.json",
        ".git/wtrun/new.json",
        ".git/worktrees/t1/commondir",
        ".git/worktrees/t1/gitdir",
        ".git/worktrees/t2/HEAD",
        ".claude/worktrees/t1/.git",
        ".claude/worktrees/t2/README.md",
        "README.md",
        "new-in-main-checkout.txt",
        "HOME/.bashrc",
        "HOME/.profile",
    ],
)
def test_the_task_cannot_write_outside_what_it_needs(task: Task, target: str) -> None:
    path = task.home / target[5:] if target.startswith("HOME/") else task.repo / target
    before = snapshot([path])

    r = inside(task, f"printf pwned >> '{path}'")

    assert snapshot([path]) == before
    if not target.startswith("HOME/"):
        # The tests' HOME is under /tmp: a write there lands in the private /tmp, unseen.
        assert r.returncode != 0
        assert "Read-only file system" in r.stderr


@needs_bwrap
def test_the_task_cannot_point_its_worktree_at_another_git_dir(task: Task) -> None:
    link = task.worktree / ".git"
    before = link.read_text()

    r = inside(task, "rm -f .git; mv .git moved; echo 'gitdir: /tmp/evil' > .git")

    assert r.returncode != 0
    assert link.read_text() == before
    assert git(task.worktree, "rev-parse", "--git-common-dir").strip() == str(task.repo / ".git")


@needs_bwrap
def test_privileges_are_gone_even_as_root(task: Task) -> None:
    r = inside(
        task,
        "grep -E '^(NoNewPrivs|CapEff)' /proc/self/status; "
        "mount -o remount,rw,bind / && echo REMOUNTED; "
        f"printf pwned >> {task.repo}/README.md 2>/dev/null || echo STILL-READ-ONLY",
    )

    assert "NoNewPrivs:\t1" in r.stdout
    assert "CapEff:\t0000000000000000" in r.stdout
    assert "REMOUNTED" not in r.stdout
    assert "STILL-READ-ONLY" in r.stdout
    assert (task.repo / "README.md").read_text() == "# shop\n"


# wtrun stands in as a parent holding a token; the child it starts gets an environment
# without it, exactly as wtrun passes one to the agent.
_PARENT = textwrap.dedent(
    """
    import os, subprocess, sys
    env = {k: v for k, v in os.environ.items() if k != "GH_TOKEN"}
    print(os.getpid(), flush=True)
    sys.exit(subprocess.run(sys.argv[1:], env=env).returncode)
    """
)
_SNOOP = (
    'for f in /proc/[0-9]*/environ; do tr "\\0" "\\n" < "$f"; done 2>/dev/null | grep -c s3cret; '
    'echo "pids: $(ls -d /proc/[0-9]* | tr "\\n" " ")"'
)


def parent_snoop(t: Task, sandbox: Sandbox) -> tuple[int, str]:
    argv = sandbox.wrap(["sh", "-c", _SNOOP], cwd=t.worktree, writable=t.writable, env={})
    r = subprocess.run(
        [sys.executable, "-c", _PARENT, *argv],
        cwd=t.worktree,
        env={**os.environ, "GH_TOKEN": "s3cret"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    pid, out = r.stdout.split("\n", 1)
    return int(pid), out


@needs_bwrap
def test_the_parent_environment_and_pid_are_out_of_sight(task: Task) -> None:
    pid, unsandboxed = parent_snoop(task, NO_SANDBOX)
    assert unsandboxed.startswith("1\n")  # the attack works without the sandbox
    assert f"/proc/{pid} " in unsandboxed

    pid, seen = parent_snoop(task, bwrap())

    assert seen.startswith("0\n")
    assert f"/proc/{pid} " not in seen
    visible = [int(p.removeprefix("/proc/")) for p in seen.split("pids:")[1].split()]
    assert max(visible) < 50  # a fresh PID namespace: bwrap's init, sh and its pipeline


@needs_bwrap
def test_tmp_is_private_and_empty_but_for_the_bound_paths(task: Task) -> None:
    host_file = Path("/tmp") / f"wtrun-sandbox-test-{os.getpid()}"
    host_file.write_text("host")
    try:
        r = inside(task, "ls -A /tmp; echo scratch > /tmp/scratch && echo WROTE")
    finally:
        host_file.unlink()

    assert r.returncode == 0, r.stderr
    listed = r.stdout.split()
    assert "WROTE" in listed
    assert host_file.name not in listed
    # Besides the bound paths: folders on PATH under /tmp (CI's virtualenv), read-only.
    on_path = [Path(p) for p in os.environ.get("PATH", "").split(":") if p.startswith("/tmp/")]
    tops = {p.parts[2] for p in [*task.writable, *on_path] if p.parts[1] == "tmp"}
    assert set(listed) - {"WROTE"} == tops
    assert not Path("/tmp/scratch").exists() or Path("/tmp/scratch").read_text() != "scratch\n"


@needs_bwrap
def test_temporary_files_go_to_the_private_tmp_whatever_tmpdir_says(task: Task) -> None:
    env = {**os.environ, "TMPDIR": str(task.repo / "tmp")}  # read-only in the sandbox
    argv = bwrap().wrap(["mktemp"], cwd=task.worktree, writable=task.writable, env=env)

    r = subprocess.run(argv, cwd=task.worktree, env=env, capture_output=True, text=True)

    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("/tmp/tmp.")


@pytest.fixture
def server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that greets every client."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(30)

    def serve() -> None:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            conn.sendall(b"hello from the host\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    sock.close()
    thread.join(timeout=5)


@needs_bwrap
def test_the_network_is_kept(task: Task, server: int) -> None:
    # bash's /dev/tcp: no program from outside the sandbox's view is needed
    r = inside(task, f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{server}; head -1 <&3'")

    assert r.returncode == 0, r.stderr
    assert "hello from the host" in r.stdout


def alive(marker: str, program: str = "") -> list[int]:
    """Host pids whose command line holds `marker` (and starts with `program`)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and marker in cmdline and cmdline.startswith(program):
            found.append(int(entry.name))
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    """A `sleep` argument no other process on this machine has; whatever still runs with it
    afterwards (only when a test fails) is ended."""
    marker = f"3{os.getpid() % 1000:03d}.{time.monotonic_ns() % 10**6}"
    yield marker
    for pid in alive(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@needs_bwrap
def test_a_timeout_kills_every_process_inside(task: Task, tmp_path: Path, marker: str) -> None:
    script = (
        f"sleep {marker}1 & setsid sleep {marker}2 & (trap '' TERM; sleep {marker}3) & "
        "echo started; wait"
    )
    argv = bwrap().wrap(["sh", "-c", script], cwd=task.worktree, writable=task.writable, env={})

    outcome = run_logged(
        argv, cwd=task.worktree, env=dict(os.environ), log=tmp_path / "a.log", timeout=1, grace=1
    )

    assert outcome.timed_out
    assert "started" in (tmp_path / "a.log").read_text()
    assert outcome.seconds < 10
    assert alive(marker) == []


@needs_bwrap
def test_killing_the_parent_kills_the_sandbox(task: Task, marker: str) -> None:
    argv = bwrap().wrap(
        ["sh", "-c", f"setsid sleep {marker} & wait"],
        cwd=task.worktree,
        writable=task.writable,
        env={},
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])", *argv],
        cwd=task.worktree,
    )
    deadline = time.monotonic() + 20
    while not alive(marker, "sleep ") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(marker, "sleep ")

    parent.send_signal(signal.SIGKILL)
    parent.wait()

    deadline = time.monotonic() + 10
    while alive(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(marker) == []


def test_writable_paths_are_the_task_git_data_and_existing_cli_state(task: Task) -> None:
    git_dir = task.repo / ".git"
    assert task.writable == [
        task.worktree,
        git_dir / "worktrees/t1",
        git_dir / "objects",
        git_dir / "refs",
        git_dir / "logs",
        task.home / ".claude",
        task.home / ".claude.json",
    ]


def test_none_runs_the_command_as_it_is(task: Task) -> None:
    sandbox, warning = choose("none")

    assert (sandbox.kind, warning) == ("none", None)
    assert sandbox.wrap(["a", "b"], cwd=task.worktree, writable=task.writable, env={}) == [
        "a",
        "b",
    ]


@pytest.fixture
def path_without_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holding only `sh`, `true` and (for a test to add) a fake `bwrap`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "true"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_auto_without_bwrap_runs_unsandboxed_with_one_warning(path_without_bwrap: Path) -> None:
    sandbox, warning = choose("auto")

    assert sandbox.kind == "none"
    assert warning == (
        "warning: agents run without a sandbox: 'bwrap' is not installed; "
        "install the 'bubblewrap' package, or set 'agent.sandbox: none' in the plan"
    )


def test_bwrap_required_but_missing_is_an_error(path_without_bwrap: Path) -> None:
    with pytest.raises(WtrunError) as e:
        choose("bwrap")

    assert str(e.value) == (
        "agent.sandbox is 'bwrap' but 'bwrap' is not installed; "
        "install the 'bubblewrap' package, or set 'agent.sandbox: none' in the plan"
    )


def test_bwrap_that_does_not_work_here_falls_back_or_fails(path_without_bwrap: Path) -> None:
    fake = path_without_bwrap / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)

    sandbox, warning = choose("auto")
    with pytest.raises(WtrunError) as e:
        choose("bwrap")

    assert sandbox.kind == "none"
    assert warning is not None
    said = "'bwrap' does not work here ('bwrap: No permissions to create new namespace')"
    assert said in warning
    assert said in str(e.value)


@needs_bwrap
def test_auto_uses_bwrap_where_it_works() -> None:
    sandbox, warning = choose("auto")

    assert (sandbox.kind, warning) == ("bwrap", None)


@needs_bwrap
def test_a_program_and_a_script_under_tmp_are_seen_read_only(tmp_path: Path) -> None:
    """A virtualenv or a script made under /tmp (CI often makes them there) still runs,
    though the sandbox's /tmp is private; it cannot be changed from inside."""
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        venv = folder / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        script = folder / "agent.py"
        script.write_text("import sys; print('ran in', sys.prefix); open(__file__, 'a')\n")
        argv = bwrap().wrap(
            [str(venv / "bin" / "python"), str(script)], cwd=tmp_path, writable=[], env={}
        )
        r = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert f"ran in {venv}" in r.stdout
        assert "Read-only file system" in r.stderr  # seen, not writable
    finally:
        shutil.rmtree(folder)
