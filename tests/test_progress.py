"""Progress as a user sees it: plain lines in pipes and CI, JSON lines, the live table on a
terminal, and the summary (also Markdown into $GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from testing import agent, write_plan, wtrun

STAMP = r"\d\d:\d\d:\d\d"
COLOUR = re.compile(r"\x1b\[\d+(;\d+)*m")
REDRAW = re.compile(r"\x1b\[(\d+)F")


def plan_text(provider: str = "local") -> str:
    return f"""\
version: 1
name: demo
agent:
  preset: command
  command: {agent("edit", "src/{{ task.id }}/x.py")}
pr: {{provider: {provider}}}
tasks:
  - id: alpha
    prompt: do alpha
    scope: [src/alpha/]
  - id: beta
    prompt: do beta
    scope: [src/beta/]
  - id: gamma
    prompt: do gamma
    scope: [src/gamma/]
    verify:
      - run: echo first line; echo second line; exit 1
"""


def test_plain_lines_when_not_a_terminal(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(repo, plan_text())
    capsys.readouterr()
    assert wtrun("run", str(plan), cwd=repo) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert "\x1b" not in captured.err
    for tid in ("alpha", "beta", "gamma"):
        for step in ("worktree", "setup", "instructions", "agent", "commit", "scope", "verify"):
            assert any(re.fullmatch(f"{STAMP} {tid}: {step}...", line) for line in lines)
    assert any(re.fullmatch(f"{STAMP} alpha: PR #1 file://.*/prs/alpha.md", line) for line in lines)
    # A failure's reason carries the command's output, indented under its line.
    failed = next(i for i, line in enumerate(lines) if "gamma: failed at verify" in line)
    assert re.fullmatch(
        f"{STAMP} gamma: failed at verify: .*plan.yaml:\\d+:\\d+: verify step 1 .* failed "
        "with exit "
        "code 1; log: .*/logs/gamma/verify.log",
        lines[failed],
    )
    assert lines[failed + 1 : failed + 3] == ["        first line", "        second line"]

    out = captured.out.splitlines()
    assert out[0] == "wtrun: 2 done, 1 failed; cost $0.00"
    assert out[1].split()[:3] == ["alpha", "done", "-"]
    assert out[1].endswith("/prs/alpha.md")
    assert out[3].split()[:3] == ["gamma", "failed", "-"]
    assert out[3].split()[4:6] == ["verify", "step"]  # after the step's place in the plan
    column = out[3].index("/")  # where the reason starts
    assert out[4:6] == [" " * column + "    first line", " " * column + "    second line"]


def test_json_lines(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(repo, plan_text())
    capsys.readouterr()
    assert wtrun("run", str(plan), "--json", cwd=repo) == 1
    out = capsys.readouterr().out
    events = [json.loads(line) for line in out.splitlines()]  # every line parses
    for e in events:
        assert {"time", "event", "task", "message"} <= set(e)
        assert isinstance(e["time"], float)
    by_task = {e["task"] for e in events}
    assert {"alpha", "beta", "gamma"} <= by_task
    assert {"state": "running", "step": "agent", "message": "agent..."}.items() <= next(
        e for e in events if e["task"] == "beta" and e.get("step") == "agent"
    ).items()
    summary = events[-1]
    assert summary["event"] == "summary"
    assert summary["task"] is None
    assert summary["message"] == "2 done, 1 failed; cost $0.00"
    assert [(t["id"], t["state"]) for t in summary["tasks"]] == [
        ("alpha", "done"),
        ("beta", "done"),
        ("gamma", "failed"),
    ]


def test_the_summary_goes_to_the_github_step_summary(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    plan = write_plan(repo, plan_text())
    assert wtrun("run", str(plan), cwd=repo) == 1
    text = summary.read_text()
    assert text.startswith("# earlier step\n### wtrun: plan `demo`\n\n")  # appended
    lines = text.splitlines()
    start = lines.index("| task | state | cost | PR / reason |")
    prs = repo / ".git" / "wtrun" / "demo" / "prs"
    assert lines[start + 1 : start + 4] == [
        "|---|---|---|---|",
        f"| `alpha` | done |  | {(prs / 'alpha.md').as_uri()} |",
        f"| `beta` | done |  | {(prs / 'beta.md').as_uri()} |",
    ]
    assert re.fullmatch(
        r"\| `gamma` \| failed \|  \| \S+plan.yaml:\d+:\d+: verify step 1 \(.*\) failed with exit "
        r"code 1; log: \S+/verify.log {5}first line {5}second line \|",
        lines[start + 4],
    )
    assert lines[-1] == "Total cost: $0.00"


def run_in_terminal(
    repo: Path, plan: Path, size: tuple[int, int] = (400, 40), **env: str
) -> tuple[int, str, str]:
    """`wtrun run` with its stderr on a pseudo-terminal of `size` (columns, lines), like a
    user's shell; by default a wide one, so that the table's long lines (a failure's reason)
    are not cut short."""
    master, slave = os.openpty()
    columns, lines = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    unset = ("CI", "NO_COLOR", "COLUMNS", "LINES")
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    environment.update(TERM="xterm", **env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wtrun", "run", str(plan)],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=environment,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    out, _ = proc.communicate(timeout=120)
    reader.join(timeout=30)
    os.close(master)
    return proc.returncode, out.decode(), b"".join(chunks).decode()


def frames(screen: str) -> list[list[str]]:
    """The tables drawn, each as the lines it takes on the screen, without escape codes."""
    result = []
    for part in REDRAW.split(screen)[::2]:
        part = part[part.find("\x1b[2K") :] if "\x1b[2K" in part else ""
        text = COLOUR.sub("", part).replace("\x1b[2K", "").replace("\x1b[J", "")
        result.append(text.replace("\r\n", "\n").splitlines())
    return [f for f in result if f]


def test_a_live_table_on_a_terminal(repo: Path) -> None:
    plan = write_plan(repo, plan_text())
    code, out, screen = run_in_terminal(repo, plan)
    assert code == 1
    assert REDRAW.search(screen), "the table is redrawn in place"
    drawn = frames(screen)
    assert len(drawn) > 3
    for frame in drawn:
        # One line per task under the header, even when a reason has several lines.
        assert len(frame) == 4
        assert frame[0].split() == ["task", "state", "step", "time", "cost", "last"]
        assert [line.split()[0] for line in frame[1:]] == ["alpha", "beta", "gamma"]
    assert any(frame[2].split()[1:3] == ["running", "agent"] for frame in drawn)
    last = drawn[-1]
    assert last[1].split()[1] == "done" and last[2].split()[1] == "done"
    assert last[3].split()[1:3] == ["failed", "verify"]
    assert "\x1b[32m" in screen  # done is green
    assert "\x1b[31m" in screen  # failed is red
    assert out.startswith("wtrun: 2 done, 1 failed; cost $0.00\n")


def test_no_color_keeps_the_table_without_colours(repo: Path) -> None:
    plan = write_plan(repo, plan_text())
    code, _, screen = run_in_terminal(repo, plan, NO_COLOR="1")
    assert code == 1
    assert REDRAW.search(screen)
    assert not COLOUR.search(screen)
    assert frames(screen)[-1][1].split()[:2] == ["alpha", "done"]


def test_ci_gets_plain_lines_even_on_a_terminal(repo: Path) -> None:
    plan = write_plan(repo, plan_text())
    _, _, screen = run_in_terminal(repo, plan, CI="true")
    assert "\x1b" not in screen
    assert re.search(f"^{STAMP} alpha: agent...\r?$", screen, re.M)


def test_a_terminal_that_reports_no_size_gets_80_by_24(repo: Path) -> None:
    plan = write_plan(repo, plan_text())
    code, _, screen = run_in_terminal(repo, plan, size=(0, 0))
    assert code == 1
    drawn = frames(screen)
    assert drawn
    for frame in drawn:
        assert len(frame) == 4  # every task has its row
        assert frame[0].split() == ["task", "state", "step", "time", "cost", "last"]
        assert max(len(line) for line in frame) <= 79
    assert [line.split()[:2] for line in drawn[-1][1:3]] == [["alpha", "done"], ["beta", "done"]]


def test_columns_and_lines_override_the_terminal(repo: Path) -> None:
    plan = write_plan(repo, plan_text())
    code, _, screen = run_in_terminal(repo, plan, COLUMNS="50", LINES="4")
    assert code == 1
    drawn = frames(screen)
    assert drawn
    for frame in drawn:
        assert len(frame) == 3  # the header, one task, and what is hidden
        assert max(len(line) for line in frame) <= 49
        assert re.fullmatch(r"\.\.\. and 2 more \(.*", frame[2])


# An agent's output that sets the clipboard (OSC 52) and moves the cursor up two lines.
HOSTILE = r"printf '\\033]52;c;aGk=\\007\\033[2Aoops\\n'; exit 3"
SHOWN = r"\x1b]52;c;aGk=\x07\x1b[2Aoops"


def test_control_characters_from_an_agent_are_shown_not_sent(repo: Path) -> None:
    plan = write_plan(
        repo,
        plan_text().replace(
            "  - id: alpha\n", f'  - id: alpha\n    agent: {{command: [sh, -c, "{HOSTILE}"]}}\n'
        ),
    )
    code, out, screen = run_in_terminal(repo, plan)
    assert code == 1
    for text in (screen, out):
        assert "\x1b]52" not in text and "\x1b[2A" not in text and "\x07" not in text
    alpha = frames(screen)[-1][1]
    assert alpha.split()[1] == "failed"
    assert SHOWN in alpha
    assert SHOWN in out  # the summary


SHARED_LOCKFILE = f"""\
version: 1
name: demo
shared: [lock.json]
agent:
  preset: command
  command: {agent("edit", "src/{{ task.id }}/x.py", "lock.json")}
pr: {{provider: none}}
tasks:
  - id: alpha
    prompt: do alpha
    scope: [src/alpha/]
  - id: beta
    prompt: do beta
    scope: [src/beta/]
"""


def test_predicted_conflicts_after_the_summary(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, SHARED_LOCKFILE)
    capsys.readouterr()
    assert wtrun("run", str(plan), cwd=repo) == 0
    out = capsys.readouterr().out
    assert out.endswith("predicted conflicts (git merge-tree):\n  alpha <-> beta: lock.json\n")


def test_predicted_conflicts_as_a_json_event(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(repo, SHARED_LOCKFILE)
    capsys.readouterr()
    assert wtrun("run", str(plan), "--json", cwd=repo) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-2]["event"] == "summary"
    assert {k: v for k, v in events[-1].items() if k != "time"} == {
        "event": "conflicts",
        "task": None,
        "message": "predicted conflicts",
        "pairs": [{"tasks": ["alpha", "beta"], "files": ["lock.json"]}],
        "base": {},
    }
