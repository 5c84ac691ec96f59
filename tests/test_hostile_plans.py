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
