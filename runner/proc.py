"""The one way wtrun runs other programs (git, gh, agents, setup and verify steps).

Short commands go through `run`, which captures output and turns a failure into a
`CommandError` naming the command, its exit code and the tail of its output.
Long ones (setup, agents, verify) go through `run_logged`: their own process group,
stdin from /dev/null, output appended to a log file, and on timeout SIGTERM then
SIGKILL to the whole group, so grandchildren die too.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import WtrunError

# Hooks and `git worktree` set these; inherited, they point git at the wrong repository.
_GIT_LEAKS = ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_PREFIX")
_TAIL_LINES = 15
KILL_GRACE_S = 5.0


class CommandError(WtrunError):
    def __init__(self, argv: Sequence[str], returncode: int, output: str, cwd: str | None) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        where = f" (in {cwd})" if cwd else ""
        super().__init__(
            f"command failed with exit code {returncode}{where}: {shlex.join(self.argv)}"
            + tail(output)
        )


def tail(output: str, lines: int = _TAIL_LINES) -> str:
    """The last lines of `output`, indented under a message; empty when there is none."""
    kept = [line for line in output.rstrip().splitlines() if line.strip()][-lines:]
    return "".join(f"\n    {line}" for line in kept)


def clean_env(
    extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _GIT_LEAKS}
    if extra:
        env.update(extra)
    return env


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> Result:
    """Run a short command to completion and capture its output. With a timeout it
    runs in its own process group, all of which is killed when the time is up."""
    try:
        child = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else clean_env(),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=timeout is not None,
        )
    except FileNotFoundError as e:
        if cwd is not None and not Path(cwd).is_dir():
            raise WtrunError(f"cannot run {argv[0]!r}: folder {str(cwd)!r} does not exist") from e
        raise WtrunError(
            f"{argv[0]!r} is not installed or not on PATH; install it, or fix PATH"
        ) from e
    stdout, stderr = _communicate(child, argv, input, timeout)
    if check and child.returncode != 0:
        raise CommandError(argv, child.returncode, stdout + stderr, str(cwd) if cwd else None)
    return Result(child.returncode, stdout, stderr)


def _communicate(
    child: subprocess.Popen[str], argv: Sequence[str], input: str | None, timeout: float | None
) -> tuple[str, str]:
    if timeout is not None:
        RUNNING.add(child.pid)
    with child:
        try:
            return child.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            # Killing the leader alone would leave its children running, holding the pipes.
            _kill_group(child.pid, signal.SIGKILL)
            child.communicate()
            raise WtrunError(f"command timed out after {timeout:g}s: {shlex.join(argv)}") from e
        except BaseException:
            child.kill()
            raise
        finally:
            RUNNING.discard(child.pid)


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None when killed for the timeout
    timed_out: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


class _Groups:
    """Process groups of long commands in flight, so an interrupt can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pgids: set[int] = set()
        self.stopping = threading.Event()

    def add(self, pgid: int) -> None:
        with self._lock:
            self._pgids.add(pgid)

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._pgids.discard(pgid)

    def terminate_all(self) -> None:
        self.stopping.set()
        with self._lock:
            pgids = list(self._pgids)
        for pgid in pgids:
            _kill_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_S
        for pgid in pgids:
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            _kill_group(pgid, signal.SIGKILL)


RUNNING = _Groups()


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_logged(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str],
    log: Path,
    timeout: float | None,
    grace: float = KILL_GRACE_S,
    started: Callable[[int], None] | None = None,
) -> Outcome:
    """Run a long command in its own process group, output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            raise WtrunError(
                f"{argv[0]!r} is not installed or not on PATH; install it, or fix PATH"
            ) from e
        RUNNING.add(proc.pid)
        if started is not None:
            started(proc.pid)  # the pid is the process group's id too
        timed_out = False
        try:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=grace)
            # The leader may be gone while its children still hold the group: end them too.
            if _group_alive(proc.pid):
                _kill_group(proc.pid, signal.SIGTERM)
                deadline = time.monotonic() + grace
                while _group_alive(proc.pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            RUNNING.discard(proc.pid)
    seconds = time.monotonic() - start
    return Outcome(None if timed_out else proc.returncode, timed_out, seconds)
