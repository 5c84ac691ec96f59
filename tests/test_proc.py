"""How wtrun runs other programs: failures name the command, its exit code and the tail
of its output; a missing program is a message; timeouts stop whole process groups."""

from __future__ import annotations

import os
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
