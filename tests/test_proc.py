"""How wtrun runs other programs: failures name the command, its exit code and the tail
of its output; a missing program is a message; timeouts stop whole process groups."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wtrun import proc
from wtrun.errors import WtrunError

PY = sys.executable


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_failure_names_the_command_the_code_and_the_last_lines(tmp_path: Path) -> None:
    script = "for i in $(seq 1 40); do echo line $i; done; echo oops >&2; exit 3"
    with pytest.raises(proc.CommandError) as e:
        proc.run(["sh", "-c", script], cwd=tmp_path)
    message = str(e.value)
    first, *rest = message.splitlines()
    assert first == f"command failed with exit code 3 (in {tmp_path}): sh -c '{script}'"
    # stdout, then stderr, where the error usually is: the last 15 lines, indented
    assert rest == [f"    line {i}" for i in range(27, 41)] + ["    oops"]
    assert (e.value.returncode, e.value.argv) == (3, ["sh", "-c", script])


def test_check_false_returns_what_the_command_printed() -> None:
    result = proc.run(["sh", "-c", "echo out; echo err >&2; exit 4"], check=False)
    assert result == proc.Result(4, "out\n", "err\n")


def test_input_reaches_the_command_and_stdin_is_closed_otherwise() -> None:
    assert proc.run(["cat"], input="typed\n").stdout == "typed\n"
    assert proc.run(["cat"], timeout=10).stdout == ""


def test_a_missing_program_is_a_message(tmp_path: Path) -> None:
    for call in (
        lambda: proc.run(["wtrun-no-such-tool", "x"]),
        lambda: proc.run_logged(
            ["wtrun-no-such-tool"], cwd=tmp_path, env={}, log=tmp_path / "log", timeout=5
        ),
    ):
        with pytest.raises(WtrunError) as e:
            call()
        assert str(e.value) == (
            "'wtrun-no-such-tool' is not installed or not on PATH; install it, or fix PATH"
        )


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(WtrunError) as e:
        proc.run(["true"], cwd=tmp_path / "nowhere")
    assert str(e.value) == f"cannot run 'true': folder '{tmp_path / 'nowhere'}' does not exist"


def test_a_short_command_that_times_out_is_stopped_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pidfile}; wait"
    started = time.monotonic()
    with pytest.raises(WtrunError) as e:
        proc.run(["sh", "-c", script], timeout=1)
    assert time.monotonic() - started < 10
    assert str(e.value) == f"command timed out after 1s: sh -c '{script}'"
    assert gone(int(pidfile.read_text()))


def test_clean_env_drops_what_points_git_elsewhere() -> None:
    base = {"PATH": "/bin", "GIT_DIR": "/x/.git", "GIT_WORK_TREE": "/x", "GIT_INDEX_FILE": "i"}
    assert proc.clean_env({"EXTRA": "1"}, base=base) == {"PATH": "/bin", "EXTRA": "1"}


def test_run_logged_appends_output_and_reads_no_input(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "step.log"
    log.parent.mkdir()
    log.write_text("before\n")
    code = "import sys; print('out'); print('err', file=sys.stderr); print(sys.stdin.read() == '')"
    outcome = proc.run_logged(
        [PY, "-c", code], cwd=tmp_path, env=dict(os.environ), log=log, timeout=30
    )
    assert (outcome.ok, outcome.returncode, outcome.timed_out) == (True, 0, False)
    assert log.read_text().splitlines() == ["before", "out", "err", "True"]


def test_run_logged_timeout_stops_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # The grandchild ignores SIGTERM: the group gets SIGKILL after the grace period.
    script = f"(trap '' TERM; sleep 300) & echo $! > {pidfile}; wait"
    started = time.monotonic()
    outcome = proc.run_logged(
        ["sh", "-c", script],
        cwd=tmp_path,
        env=dict(os.environ),
        log=tmp_path / "log",
        timeout=1,
        grace=0.5,
    )
    assert (outcome.timed_out, outcome.returncode, outcome.ok) == (True, None, False)
    assert time.monotonic() - started < 10
    assert gone(int(pidfile.read_text()))


def test_run_logged_ends_what_a_finished_command_left_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    outcome = proc.run_logged(
        ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; exit 2"],
        cwd=tmp_path,
        env=dict(os.environ),
        log=tmp_path / "log",
        timeout=30,
        grace=0.5,
    )
    assert (outcome.ok, outcome.returncode, outcome.timed_out) == (False, 2, False)
    assert gone(int(pidfile.read_text()))


def test_tail_keeps_the_last_non_blank_lines() -> None:
    assert proc.tail("a\n\n  \nb\nc\n", 2) == "\n    b\n    c"
    assert proc.tail("   \n") == ""


def logged(tmp_path: Path, code: str, **kwargs: object) -> tuple[proc.Outcome, bytes]:
    log = tmp_path / "step.log"
    outcome = proc.run_logged(
        [PY, "-c", code], cwd=tmp_path, env=dict(os.environ), log=log, timeout=60, **kwargs
    )
    return outcome, log.read_bytes()


def test_run_logged_returns_the_end_of_the_output(tmp_path: Path) -> None:
    outcome, text = logged(tmp_path, "import sys; print('out'); print('err', file=sys.stderr)")
    assert outcome.output_tail == "out\nerr\n"
    assert text == b"out\nerr\n"


def test_a_huge_output_keeps_the_head_and_the_tail_of_the_log(tmp_path: Path) -> None:
    mib = 2**20
    code = (
        "import sys; w = sys.stdout.buffer.write; w(b'FIRST LINE\\n')\n"
        "for i in range(40): w(b'x' * (1024 * 1024 - 1) + b'\\n')\n"
        "w(b'LAST LINE\\n')"
    )
    outcome, text = logged(tmp_path, code)
    assert outcome.ok
    assert len(text) <= proc.LOG_CAP
    assert text.startswith(b"FIRST LINE\n") and text.endswith(b"LAST LINE\n")
    markers = re.findall(rb"\n\[wtrun: (\d+) bytes of output left out here\]\n", text)
    assert len(markers) == 1
    marker = f"\n[wtrun: {int(markers[0])} bytes of output left out here]\n"
    assert int(markers[0]) + len(text) - len(marker) == 40 * mib + 21
    assert outcome.output_tail.endswith("LAST LINE\n")
    assert len(outcome.output_tail) == proc.TAIL_BYTES


def test_secrets_are_masked_in_the_log_even_split_between_two_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "ghp_" + "a1B2c3D4e5" * 3
    monkeypatch.setenv("GH_TOKEN", token)
    monkeypatch.setenv("GITHUB_TOKEN", "short")  # under 8 characters: left as it is
    # Half of the token, a pause (the reader gets it alone), then the other half.
    code = (
        "import os, sys, time; t = os.environ['TOKEN']; w = sys.stdout.buffer\n"
        "w.write(b'token=' + t[:10].encode()); w.flush(); time.sleep(0.5)\n"
        "w.write(t[10:].encode() + b' short\\n'); w.flush()"
    )
    log = tmp_path / "step.log"
    env = {**os.environ, "TOKEN": token}
    outcome = proc.run_logged([PY, "-c", code], cwd=tmp_path, env=env, log=log, timeout=60)
    assert log.read_text() == "token=*** short\n"
    assert outcome.output_tail == "token=*** short\n"


def test_a_process_that_left_the_group_holding_the_output_does_not_hold_wtrun(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "escaped.pid"
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen(['sleep', '60'], start_new_session=True)\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid)); print('bye')"
    )
    started = time.monotonic()
    outcome, text = logged(tmp_path, code)
    try:
        assert time.monotonic() - started < 10
        assert (outcome.ok, text) == (True, b"bye\n")
    finally:
        os.kill(int(pidfile.read_text()), 9)


def test_a_symlinked_log_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "step.log").symlink_to(victim)
    with pytest.raises(WtrunError) as e:
        logged(tmp_path, "print('x')")
    assert str(e.value).startswith(f"cannot write the log {tmp_path / 'step.log'}: ")
    assert victim.read_text() == "precious\n"


def test_a_failing_started_callback_leaves_nothing_running(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"

    def started(pgid: int) -> None:
        deadline = time.monotonic() + 10
        while (
            not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        raise OSError("the lock could not be written")

    with pytest.raises(OSError):
        proc.run_logged(
            ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"],
            cwd=tmp_path,
            env=dict(os.environ),
            log=tmp_path / "log",
            timeout=30,
            started=started,
        )
    assert gone(int(pidfile.read_text()))


def test_a_long_command_dies_with_wtrun_even_killed_the_moment_it_started(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "command.pid"
    # wtrun is killed (SIGKILL: nothing of it runs after) as soon as its command exists.
    dying_wtrun = f"""
import os, signal
from pathlib import Path
from wtrun import proc

def started(pid):
    Path({str(pidfile)!r}).write_text(str(pid))
    os.kill(os.getpid(), signal.SIGKILL)

proc.run_logged(["sleep", "300"], cwd=".", env=dict(os.environ),
                log=Path({str(tmp_path / "log")!r}), timeout=None, started=started)
"""
    killed = subprocess.run([PY, "-c", dying_wtrun], cwd=tmp_path, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert not_running(int(pidfile.read_text()))


def not_running(pid: int, within: float = 5.0) -> bool:
    """Gone, or a zombie that no one reaped yet (a container's first process may never)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat[stat.rindex(")") + 2 :].startswith("Z"):
            return True
        time.sleep(0.05)
    return False
