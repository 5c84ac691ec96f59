"""The command line's contract: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wtrun import cli, plan


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wtrun", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_version_and_help() -> None:
    assert run("--version").stdout.startswith("wtrun ")
    done = run("--help")
    assert done.returncode == 0
    assert "`wtrun PLAN` is short for `wtrun run PLAN`" in done.stdout


def test_only_the_commands_own_process_goes_without_the_cycle_collector(tmp_path: Path) -> None:
    """`wtrun validate` may leave garbage cycles to the end of its process; a caller that
    runs it in its own process (a test, a script) keeps the collector."""
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\ntasks:\n  - {id: a, prompt: Do it., scope: [src/**]}\n")
    assert cli.main(["validate", str(path)]) == 0
    assert gc.isenabled()
    probe = (
        "import gc, sys; from wtrun import cli; code = cli.entry(); "
        "print(gc.isenabled(), file=sys.stderr); sys.exit(code)"
    )
    for args, collector in ((["validate", str(path)], "False"), (["schema"], "True")):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines()[-1] == collector


def test_no_arguments_is_a_usage_error() -> None:
    done = run()
    assert done.returncode == 2
    assert "usage: wtrun" in done.stdout


def test_a_plan_that_does_not_exist(tmp_path: Path) -> None:
    done = run("nope.yaml", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "wtrun: error: nope.yaml: no such file\n",
    )


def test_a_bad_flag_is_a_usage_error() -> None:
    done = run("validate", "--formt", "json", "x.yaml")
    assert done.returncode == 2
    assert done.stderr.startswith("wtrun: error: unrecognized arguments: --formt")
    assert "Traceback" not in done.stderr


def test_a_bug_exits_3_with_the_traceback_in_a_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def broken(path: str, **_: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(plan, "load", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert cli.main(["validate", "x.yaml"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("wtrun: internal error (a bug in wtrun); details written to ")
    log = Path(err.strip().rsplit(" ", 1)[1])
    assert log.parent == tmp_path / f"wtrun-crashes-{os.geteuid()}"
    assert "ZeroDivisionError: a bug" in log.read_text()
    assert "Traceback" not in err


def test_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(path: str, **_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(plan, "load", interrupted)
    assert cli.main(["validate", "x.yaml"]) == 130
    assert capsys.readouterr().err == "wtrun: interrupted\n"


def test_help_prints_the_commands() -> None:
    done = run("help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: wtrun ")
    for command in cli.COMMANDS:
        assert f"\n    {command} " in done.stdout


def test_help_on_one_command() -> None:
    done = run("help", "run")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: wtrun run ")
    assert "--dry-run" in done.stdout


def test_help_on_an_unknown_command_is_a_usage_error() -> None:
    done = run("help", "runn")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        'wtrun: error: unknown command "runn"; the commands are: run, prepare, validate, diff, '
        "review, status, logs, clean, render, sync, revise, matrix, pr, records, schema, demo, "
        "init, help; "
        "`wtrun help COMMAND` prints one's help\n"
    )
