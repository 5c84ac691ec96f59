"""The one way wtrun runs other programs (git, gh, agents, setup and verify steps).

Short commands go through `run`, which captures output and turns a failure into a
`CommandError` naming the command, its exit code and the tail of its output.
Long ones (setup, agents, verify) go through `run_logged`: their own process group,
stdin from /dev/null, output read through a pipe into a capped log file with secrets
masked, and on timeout SIGTERM then SIGKILL to the whole group, so grandchildren die too.
A long command is killed when wtrun dies, however it dies.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import redact
from .errors import DiskFull, WtrunError

# Hooks and `git worktree` set these; inherited, they point git at the wrong repository.
_GIT_LEAKS = ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_PREFIX")
_TAIL_LINES = 15
KILL_GRACE_S = 5.0
# What one command may leave in its log: its first and its last 8 MiB.
LOG_CAP = 16 * 2**20
TAIL_BYTES = 4 * 2**20  # the end of the output kept in memory for the caller
_CHUNK = 64 * 1024
_DRAIN_S = 2.0  # for the rest of the output once the command's group is gone


class CommandError(WtrunError):
    def __init__(self, argv: Sequence[str], returncode: int, output: str, cwd: str | None) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        where = f" (in {cwd})" if cwd else ""
        # A remote's URL in the command or in git's answer may carry a token.
        super().__init__(
            redact.text(
                f"command failed with exit code {returncode}{where}: {shlex.join(self.argv)}"
                + tail(output)
            )
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
    output_tail: str = ""  # the last `TAIL_BYTES` of the output, secrets masked
    log_error: str | None = None  # the log could not be written (a full disk)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.log_error is None


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
    """Run a long command in its own process group, its output appended to `log` through
    a pipe: secrets masked, at most `LOG_CAP` bytes of it, its end kept in memory."""
    start = time.monotonic()
    capture = _Capture(_open_log(log), redact.current())
    try:
        proc = _spawn(argv, cwd, env)
    except BaseException:
        capture.close()
        raise
    RUNNING.add(proc.pid)
    assert proc.stdout is not None
    pump = _Pump(proc.stdout.fileno(), capture)
    try:
        if started is not None:
            started(proc.pid)  # the pid is the process group's id too
        timed_out = _wait(proc, timeout, grace)
        pump.finish(_DRAIN_S)
    except BaseException:
        _kill_group(proc.pid, signal.SIGKILL)  # never left running unwatched
        proc.wait()
        raise
    finally:
        RUNNING.discard(proc.pid)
        pump.finish(0)
        proc.stdout.close()
        capture.close()
    if capture.error is not None and not DiskFull.caused(capture.error):
        raise WtrunError(f"cannot write the log {log}: {capture.error.strerror}")
    return Outcome(
        None if timed_out else proc.returncode,
        timed_out,
        time.monotonic() - start,
        capture.tail(),
        str(DiskFull(log)) if capture.error is not None else None,
    )


def _open_log(log: Path) -> int:
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        # Not through a symlink: the logs lie in reach of whatever the agent ran.
        return os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as e:
        if DiskFull.caused(e):
            raise DiskFull(log) from e
        raise WtrunError(f"cannot write the log {log}: {e.strerror}; remove it") from e


def _spawn(
    argv: Sequence[str], cwd: str | os.PathLike[str], env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_dies_with(os.getpid()),
        )
    except FileNotFoundError as e:
        raise WtrunError(
            f"{argv[0]!r} is not installed or not on PATH; install it, or fix PATH"
        ) from e


def _dies_with(parent: int) -> Callable[[], None] | None:
    """What the child runs between fork and exec so that the kernel kills it when `parent`
    (the thread that started it) dies, even by SIGKILL; None where there is no prctl.

    Armed before exec, it leaves no moment in which wtrun can die and the command go on:
    a parent that died before the arming is caught by the check after it. (bwrap's own
    --die-with-parent is armed only once its namespaces are made, milliseconds later.)
    `arm` takes no lock (no import, nothing allocated but small ints), which is what
    makes it safe in a child forked from a process with threads.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    sigkill = int(signal.SIGKILL)

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(127)

    return arm


_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


@functools.cache
def _prctl() -> Callable[..., int] | None:
    import ctypes  # here: importing it would cost every short command milliseconds

    prctl: Callable[..., int] | None = getattr(ctypes.CDLL(None), "prctl", None)
    return prctl


def _wait(proc: subprocess.Popen[bytes], timeout: float | None, grace: float) -> bool:
    """Wait for the command, then end what it left running; True when it timed out."""
    timed_out = False
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
    return timed_out


class _Pump:
    """Reads the command's output into a `_Capture` on a thread of its own, so that a
    command printing faster than the log is written never blocks on a full pipe."""

    def __init__(self, fd: int, capture: _Capture) -> None:
        self._fd = fd
        self._capture = capture
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wtrun-capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            chunk = os.read(self._fd, _CHUNK)
            if not chunk:
                return
            self._capture.feed(chunk)

    def finish(self, patience: float) -> None:
        """Wait up to `patience` seconds for the end of the output, then stop reading: a
        process that left the group (setsid) may hold the pipe open for ever."""
        self._thread.join(patience)
        self._stop.set()
        self._thread.join()


class _Capture:
    """A command's output on its way to its log: secrets masked, then at most `LOG_CAP`
    bytes written (the head as it comes, the rest held back until the end, when a line
    saying how much was left out and the last bytes follow), and the last `TAIL_BYTES`
    kept for the caller. Memory stays bounded whatever the command prints."""

    def __init__(self, fd: int, redactor: redact.Redactor, cap: int = LOG_CAP) -> None:
        self._fd = fd
        self._redactor = redactor
        self._head_room = cap // 2
        # room for the line saying what was left out, and wtrun's own lines in the log
        self._held_room = cap - self._head_room - 1024
        self._pending = b""  # the end of the last chunk: maybe the start of a secret
        self._held = bytearray()
        self._end = bytearray()
        self._skipped = 0
        self.error: OSError | None = None

    def feed(self, chunk: bytes) -> None:
        clean, self._pending = self._redactor.split(self._pending + chunk)
        self._take(clean)

    def _take(self, data: bytes) -> None:
        _keep_end(self._end, data, TAIL_BYTES)
        if self._head_room > 0:
            head, data = data[: self._head_room], data[self._head_room :]
            self._head_room -= len(head)
            self._write(head)
        self._skipped += _keep_end(self._held, data, self._held_room)

    def tail(self) -> str:
        return self._end[-TAIL_BYTES:].decode("utf-8", errors="replace")

    def close(self) -> None:
        if self._fd < 0:
            return
        self._take(self._redactor.data(self._pending))
        self._pending = b""
        if self._skipped:
            self._write(f"\n[wtrun: {self._skipped} bytes of output left out here]\n".encode())
        self._write(bytes(self._held))
        self._held.clear()
        os.close(self._fd)
        self._fd = -1

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.error is None:
            try:
                view = view[os.write(self._fd, view) :]
            except OSError as e:
                self.error = e  # a full disk: the output is still read, so the command ends


def _keep_end(buffer: bytearray, data: bytes, room: int) -> int:
    """Append `data` to `buffer`, keeping its last `room` bytes; returns how many went."""
    buffer += data
    over = len(buffer) - room
    if over <= 0:
        return 0
    del buffer[:over]
    return over
