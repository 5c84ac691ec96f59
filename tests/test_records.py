"""Run records on real runs: interrupts, `kill -9`, resume, the lock, atomic writes, logs.

wtrun runs as a subprocess here (`python -m wtrun`), so it can be interrupted and killed
like a user's. Its agents are shell scripts that take their sleep from a control folder
and write their pids there, so a test knows when they run and can check they are gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testing import branches, git, make_repo, remote_branches, status, write_plan, wtrun

# An agent: writes its pids, sleeps as long as CTL/<id>.sleep says (0 without it), then
# leaves one file in its scope (wtrun commits it).
AGENT = r"""
id=$WTRUN_TASK_ID
echo "agent $id starting"
s=$(cat '{ctl}'/$id.sleep 2>/dev/null || echo 0)
sleep "$s" &
echo $! > '{ctl}'/$id.child
echo $$ > '{ctl}'/$id.pid
wait $!
i=0
while [ $i -lt 3 ]; do echo "agent $id line $i"; i=$((i+1)); done
mkdir -p src/$id && echo "work of $id" > src/$id/f.txt
echo "agent $id done"
"""


def plan_text(ctl: Path, ids: tuple[str, ...] = ("a", "b"), provider: str = "local") -> str:
    command = json.dumps(["sh", "-c", AGENT.format(ctl=ctl)])
    lines = [
        "version: 1",
        "name: demo",
        "max_parallel: 4",
        "agent:",
        "  preset: command",
        f"  command: {command}",
        "  timeout: 120s",
        "  sandbox: none  # the agents write their pids to a folder outside their worktree",
        f"pr: {{provider: {provider}}}",
        "tasks:",
    ]
    for tid in ids:
        lines += [f"  - id: {tid}", f"    prompt: work on {tid}", f"    scope: [src/{tid}/]"]
    return "\n".join(lines) + "\n"


class Run:
    """`python -m wtrun ARGS` in the background, output to files."""

    def __init__(self, repo: Path, *args: str, name: str = "run") -> None:
        self.out_path = repo.parent / f"{name}.out"
        self.err_path = repo.parent / f"{name}.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wtrun", *args],
                cwd=repo,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                # A test runner may ignore SIGINT; a user's shell does not.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout=timeout)

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()


def wait_for(check: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or check}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pids(ctl: Path, tid: str) -> list[int]:
    return [int((ctl / f"{tid}.{kind}").read_text()) for kind in ("pid", "child")]


def started(ctl: Path, *ids: str) -> bool:
    """Every agent wrote its pid (the file exists before its text is in it)."""
    return all((ctl / f"{t}.pid").is_file() and (ctl / f"{t}.pid").read_text() for t in ids)


def records(repo: Path) -> dict[str, dict]:
    data = json.loads((repo / ".git" / "wtrun" / "demo" / "state.json").read_text())
    return data["tasks"]


def end_state(repo: Path, plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    """What a run leaves behind, comparable between repositories."""
    bare = repo.parent / "origin.git"
    names = [b for b in branches(repo) if b != "main"]
    worktrees = [
        line.split()[1]
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]
    prs = repo / ".git" / "wtrun" / "demo" / "prs"
    rows = status(repo, plan, capsys)
    return {
        "branches": sorted(names),
        "remote": sorted(remote_branches(bare)),
        "worktrees": sorted(str(Path(w).relative_to(repo)) for w in worktrees[1:]),
        "commits": {b: len(git(repo, "rev-list", f"main..{b}").split()) for b in names},
        "trees": {b: git(repo, "rev-parse", f"{b}^{{tree}}").strip() for b in names},
        "pushed": {
            b: git(bare, "rev-parse", b).strip() == git(repo, "rev-parse", b).strip() for b in names
        },
        "prs": sorted(p.name for p in prs.iterdir()) if prs.exists() else [],
        "records": {t: (r["state"], r["pr_number"], r["reason"]) for t, r in rows.items()},
    }


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ctl"
    folder.mkdir()
    yield folder
    # Agents a killed wtrun left behind (kill -9 cannot stop them).
    for p in folder.glob("*.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(p.read_text()), signal.SIGKILL)


@pytest.fixture
def baseline(tmp_path: Path, ctl: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    """The end state of the same plan run once without interruption."""
    repo = make_repo(tmp_path / "baseline")
    plan = write_plan(repo, plan_text(ctl))
    assert wtrun("run", str(plan), cwd=repo) == 0
    state = end_state(repo, plan, capsys)
    for p in ctl.iterdir():
        p.unlink()
    return state


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_stops_every_agent_and_a_rerun_resumes(
    repo: Path,
    ctl: Path,
    baseline: dict[str, object],
    signum: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = write_plan(repo, plan_text(ctl))
    for tid in ("a", "b"):
        (ctl / f"{tid}.sleep").write_text("300")
    run = Run(repo, "run", str(plan))
    wait_for(lambda: started(ctl, "a", "b"), what="both agents to start")
    agents = pids(ctl, "a") + pids(ctl, "b")
    sent = time.monotonic()
    run.proc.send_signal(signum)
    assert run.wait(30) == 130
    # Agents get SIGTERM, then SIGKILL after a grace period: well under their 300 s sleep.
    assert time.monotonic() - sent < 15
    wait_for(
        lambda: not any(alive(p) for p in agents), timeout=10, what="the agents' processes to end"
    )
    assert "wtrun: interrupted; run the same command again to resume" in run.err
    rows = status(repo, plan, capsys)
    for tid in ("a", "b"):
        assert rows[tid]["state"] == "failed"
        assert rows[tid]["reason"] == "interrupted during agent"
        assert rows[tid]["step"] == "agent"

    for tid in ("a", "b"):
        (ctl / f"{tid}.sleep").unlink()
    again = Run(repo, "run", str(plan), name="again")
    assert again.wait() == 0, again.err
    assert end_state(repo, plan, capsys) == baseline


def test_kill_9_mid_run_resumes_without_duplicates(
    repo: Path, ctl: Path, baseline: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(ctl))
    (ctl / "b.sleep").write_text("3")  # a finishes; b is in its agent when wtrun dies
    run = Run(repo, "run", str(plan))
    wait_for(
        lambda: started(ctl, "b") and records(repo).get("a", {}).get("state") == "ready",
        what="a ready and b's agent running",
    )
    run.proc.kill()
    run.wait()
    # kill -9 gives wtrun no chance to stop b's agent: it finishes on its own.
    (ctl / "b.sleep").unlink()
    orphans = pids(ctl, "b")
    wait_for(lambda: not any(alive(p) for p in orphans), what="the orphaned agent to end")

    rows = status(repo, plan, capsys)
    assert rows["a"]["state"] == "ready"
    # The records still say "running"; no run holds the lock, so status knows better.
    assert records(repo)["b"]["state"] == "running"
    assert rows["b"]["state"] == "failed"
    assert rows["b"]["reason"] == "interrupted during agent"

    again = Run(repo, "run", str(plan), name="again")
    assert again.wait() == 0, again.err
    assert "a: already ready" in again.err
    assert end_state(repo, plan, capsys) == baseline


def test_kill_9_while_pushing_resumes_without_duplicate_prs(
    repo: Path, ctl: Path, baseline: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(ctl))
    # The remote takes its time over b's branch: wtrun dies with a's PR opened, b's not.
    hook = repo.parent / "origin.git" / "hooks" / "pre-receive"
    hook.write_text(
        f"#!/bin/sh\ngrep -q worktree-b || exit 0\necho $$ > '{ctl}/hook.pid'\nexec sleep 300\n"
    )
    hook.chmod(0o755)
    run = Run(repo, "run", str(plan))
    wait_for(lambda: (ctl / "hook.pid").exists(), what="the push of b")
    assert records(repo)["a"]["pr_number"] == 1
    run.proc.kill()
    run.wait()
    # The push wtrun started lives on (git is its own process); the remote refuses it.
    os.kill(int((ctl / "hook.pid").read_text()), signal.SIGKILL)
    hook.unlink()

    again = Run(repo, "run", str(plan), name="again")
    assert again.wait() == 0, again.err
    assert end_state(repo, plan, capsys) == baseline
    prs = repo / ".git" / "wtrun" / "demo" / "prs"
    assert "- head: `worktree-a`" in (prs / "a.md").read_text()
    assert (prs / "a.md").read_text().startswith("# #1 ")
    assert (prs / "b.md").read_text().startswith("# #2 ")


def test_one_run_at_a_time_and_the_lock_outlives_no_holder(
    repo: Path, ctl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(ctl, ids=("a",)))
    (ctl / "a.sleep").write_text("300")
    first = Run(repo, "run", str(plan), name="first")
    wait_for(lambda: started(ctl, "a"), what="the agent to start")
    assert status(repo, plan, capsys)["a"]["state"] == "running"

    second = Run(repo, "run", str(plan), name="second")
    assert second.wait() == 1
    err = second.err.strip()
    prefix = (
        f'wtrun: error: plan "demo" is already running in this repository (pid '
        f"{first.pid} on {socket.gethostname()}, since "
    )
    assert err.startswith(prefix), err
    assert err.endswith("); wait for it to finish, or stop that process")
    time.strptime(err[len(prefix) :].split(")")[0], "%Y-%m-%d %H:%M:%S")
    capsys.readouterr()
    assert wtrun("clean", str(plan), cwd=repo) == 1  # clean waits its turn too
    assert "is already running" in capsys.readouterr().err

    first.proc.kill()  # the kernel drops a dead process's flock
    first.wait()
    os.killpg(pids(ctl, "a")[0], signal.SIGKILL)
    (ctl / "a.sleep").unlink()
    third = Run(repo, "run", str(plan), name="third")
    assert third.wait() == 0, third.err
    assert status(repo, plan, capsys)["a"]["state"] == "done"


def test_the_records_are_always_whole_json(repo: Path, ctl: Path) -> None:
    plan = write_plan(repo, plan_text(ctl, ids=("a", "b", "c", "d")))
    path = repo / ".git" / "wtrun" / "demo" / "state.json"
    reads: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                reads.append(path.read_text())
            time.sleep(0.001)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        run = Run(repo, "run", str(plan))
        assert run.wait() == 0, run.err
    finally:
        stop.set()
        thread.join()
    # saw the records change many times (each task's claim, agent start, push and PR at once)
    assert len(set(reads)) > 10
    for text in reads:
        json.loads(text)  # never half a file
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".state.json")] == []


# ---------------------------------------------------------------- wtrun logs


def test_logs_prints_each_step_with_a_header(
    repo: Path, ctl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = plan_text(ctl, ids=("a",)).replace(
        "tasks:", "setup: [{run: echo preparing}]\nverify: [{run: echo checking}]\ntasks:"
    )
    plan = write_plan(repo, text)
    assert wtrun("run", str(plan), cwd=repo) == 0
    logs = repo / ".git" / "wtrun" / "demo" / "logs" / "a"
    capsys.readouterr()
    assert wtrun("logs", str(plan), "a", cwd=repo) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("==> ")]
    assert headers == [f"==> {s}: {logs / s}.log <==" for s in ("setup", "agent", "verify")]
    assert out.index("preparing") < out.index("agent a done") < out.index("checking")

    assert wtrun("logs", str(plan), "a", "--step", "agent", cwd=repo) == 0
    assert capsys.readouterr().out == (logs / "agent.log").read_text()
    assert "agent a line 2\n" in (logs / "agent.log").read_text()


def test_logs_refuses_unknown_tasks_and_says_when_there_are_none(
    repo: Path, ctl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, plan_text(ctl))
    capsys.readouterr()
    assert wtrun("logs", str(plan), "aa", cwd=repo) == 2
    assert capsys.readouterr().err == (f'wtrun: error: no task "aa" in {plan}; did you mean "a"?\n')
    assert wtrun("logs", str(plan), "a", cwd=repo) == 1
    assert capsys.readouterr().err == (
        f'wtrun: error: no logs for task "a" yet: it has not run; start it with '
        f"`wtrun run {plan} --task a`\n"
    )
    assert wtrun("run", str(plan), "--task", "a", cwd=repo) == 0
    capsys.readouterr()
    assert wtrun("logs", str(plan), "a", "--step", "verify", cwd=repo) == 1
    assert capsys.readouterr().err == (
        'wtrun: error: no verify log for task "a": it has no verify steps\n'
    )


def test_logs_follow_prints_until_the_task_ends(repo: Path, ctl: Path) -> None:
    plan = write_plan(repo, plan_text(ctl, ids=("a",)))
    (ctl / "a.sleep").write_text("2")
    run = Run(repo, "run", str(plan))
    wait_for(lambda: started(ctl, "a"), what="the agent to start")
    follow = Run(repo, "logs", str(plan), "a", "--step", "agent", "-f", name="follow")
    assert follow.wait(60) == 0  # it ends by itself once the task is done
    assert run.wait() == 0
    header, *lines = follow.out.splitlines()
    assert re.fullmatch(r"\[wtrun [0-9: -]+\] agent attempt 1: command", header)
    assert lines == [
        "agent a starting",
        "agent a line 0",
        "agent a line 1",
        "agent a line 2",
        "agent a done",
    ]
