"""How a run shows progress: plain timestamped lines, JSON lines, or a live table,
and the summary at the end (also Markdown into $GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from . import redact
from .state import RunRecord, TaskRecord

# C0 controls but newline, DEL, and C1 controls (a terminal may read \x9b as CSI).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
# shutil.get_terminal_size's fallback, for a terminal that reports no size (0x0).
_FALLBACK_SIZE = (80, 24)


def visible(text: str) -> str:
    """`text` with its control characters spelled out (ESC as `\\x1b`): agents' output and
    the reasons quoting it reach a terminal, where an escape sequence could move the cursor,
    retitle the window or set the clipboard."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def terminal_size(stream: IO[str]) -> tuple[int, int]:
    """Columns and lines of the terminal `stream` writes to, as shutil.get_terminal_size
    reckons them for stdout: `COLUMNS` and `LINES` first, then the terminal, then 80x24."""
    size = [_positive_env("COLUMNS"), _positive_env("LINES")]
    if not all(size):
        try:
            reported = os.get_terminal_size(stream.fileno())
        except (AttributeError, ValueError, OSError):  # no file descriptor, or not a terminal
            reported = os.terminal_size((0, 0))
        size = [size[0] or reported.columns, size[1] or reported.lines]
    return size[0] or _FALLBACK_SIZE[0], size[1] or _FALLBACK_SIZE[1]


def _positive_env(name: str) -> int:
    try:
        return max(int(os.environ[name]), 0)
    except (KeyError, ValueError):
        return 0


class Reporter:
    """Plain lines: one per event, timestamped; for CI logs and pipes."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self.start = time.monotonic()

    def event(self, task: str | None, kind: str, message: str, **fields: Any) -> None:
        with self._lock:
            stamp = time.strftime("%H:%M:%S")
            who = f"{task}: " if task else ""
            # A failure's reason may carry a command's output: keep it under its line.
            text = visible(message.rstrip("\n")).replace("\n", "\n    ")
            self.stream.write(f"{stamp} {who}{text}\n")
            self.stream.flush()

    def close(self) -> None:
        pass

    def summary(self, record: RunRecord, task_ids: Sequence[str], budget: float | None) -> None:
        print(summary_text(record, task_ids, budget), flush=True)

    def note(self, text: str, kind: str = "sync", **fields: Any) -> None:
        """One line after the summary (a check that could not be made, a PR text updated)."""
        print(visible(text), flush=True)

    def section(self, kind: str, title: str, lines: Sequence[str], **fields: Any) -> None:
        """A part of the report after the summary (base drift, predicted conflicts): `lines`
        for people, `title` and `fields` for programs; nothing when `lines` is empty."""
        for line in lines:
            print(visible(line), flush=True)


class JsonReporter(Reporter):
    """JSON lines on stdout, one object per event, for programs."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def event(self, task: str | None, kind: str, message: str, **fields: Any) -> None:
        with self._lock:
            record = {
                "time": round(time.time(), 3),
                "event": kind,
                "task": task,
                "message": message,
                **fields,
            }
            self.stream.write(json.dumps(record, default=str) + "\n")
            self.stream.flush()

    def note(self, text: str, kind: str = "sync", **fields: Any) -> None:
        self.event(None, kind, text, **fields)

    def section(self, kind: str, title: str, lines: Sequence[str], **fields: Any) -> None:
        if lines:
            self.event(None, kind, title, **fields)

    def summary(self, record: RunRecord, task_ids: Sequence[str], budget: float | None) -> None:
        rows = summary_rows(record, task_ids)
        self.event(
            None,
            "summary",
            summary_text(record, task_ids, budget).splitlines()[0].removeprefix("wtrun: "),
            cost_usd=round(sum(r.cost_usd or 0.0 for r in rows), 6),
            tasks=[
                {
                    "id": r.id,
                    "state": r.state,
                    "cost_usd": r.cost_usd,
                    "pr_url": r.pr_url,
                    "reason": r.reason,
                }
                for r in rows
            ],
        )


class LiveReporter(Reporter):
    """A table redrawn in place on a terminal: task, step, elapsed, cost, last line."""

    def __init__(self, task_ids: Sequence[str], stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self.rows: dict[str, dict[str, Any]] = {
            t: {
                "state": "pending",
                "step": "",
                "since": None,
                "until": None,
                "cost": None,
                "last": "",
            }
            for t in task_ids
        }
        self.color = not os.environ.get("NO_COLOR")
        self._drawn = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def event(self, task: str | None, kind: str, message: str, **fields: Any) -> None:
        with self._lock:
            if task in self.rows:
                row = self.rows[task]
                if "state" in fields:
                    row["state"] = fields["state"]
                    # The clock of a task stops when it settles, and runs again if it
                    # goes on (a ready task being pushed).
                    row["until"] = None if row["state"] == "running" else time.monotonic()
                if "step" in fields:
                    row["step"] = fields["step"]
                    row["since"] = row["since"] or time.monotonic()
                if fields.get("cost_usd") is not None:
                    row["cost"] = fields["cost_usd"]
                lines = message.strip().splitlines()
                row["last"] = visible(lines[0]) if lines else ""
            self._draw()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._draw()

    def _paint(self, state: str, text: str) -> str:
        if not self.color:
            return text
        code = {
            "failed": "31",
            "blocked": "33",
            "skipped": "33",
            "done": "32",
            "ready": "32",
            "prepared": "32",
            "running": "36",
        }.get(state)
        return f"\x1b[{code}m{text}\x1b[0m" if code else text

    def _shown(self, room: int) -> tuple[list[str], str]:
        """The rows that fit in `room` lines: settled tasks make way for the others."""
        ids = list(self.rows)
        if len(ids) <= room:
            return ids, ""
        rank = {"running": 0, "failed": 1, "blocked": 2, "pending": 3}
        keep = set(sorted(ids, key=lambda t: rank.get(self.rows[t]["state"], 4))[: room - 1])
        hidden = [t for t in ids if t not in keep]
        counts: dict[str, int] = {}
        for t in hidden:
            counts[self.rows[t]["state"]] = counts.get(self.rows[t]["state"], 0) + 1
        more = ", ".join(f"{n} {state}" for state, n in counts.items())
        return [t for t in ids if t in keep], f"... and {len(hidden)} more ({more})"

    def _draw(self) -> None:
        width = max((len(t) for t in self.rows), default=4)
        columns, height = terminal_size(self.stream)
        # Rows that scroll off the top can no longer be redrawn: never draw more than fit.
        shown, more = self._shown(max(height - 2, 2))
        header = f"{'task':<{width}}  {'state':<10} {'step':<12} {'time':>6} {'cost':>7}  last"
        # Lines are cut one short of the width: a full line wraps on some terminals.
        lines = [header[: columns - 1]]
        now = time.monotonic()
        for tid in shown:
            row = self.rows[tid]
            elapsed = "" if row["since"] is None else f"{(row['until'] or now) - row['since']:.0f}s"
            cost = "" if row["cost"] is None else f"${row['cost']:.2f}"
            text = (
                f"{tid:<{width}}  {row['state']:<10} {row['step']:<12} {elapsed:>6} "
                f"{cost:>7}  {row['last']}"
            )
            lines.append(self._paint(row["state"], text[: columns - 1]))
        if more:
            lines.append(more[: columns - 1])
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        # \x1b[J: a shorter table than the last one leaves nothing of it behind.
        self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines) + "\x1b[J")
        self.stream.flush()
        self._drawn = len(lines)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._draw()


def choose(task_ids: Sequence[str], as_json: bool) -> Reporter:
    if as_json:
        return JsonReporter()
    if sys.stderr.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb":
        return LiveReporter(task_ids)
    return Reporter()


def summary_rows(record: RunRecord, task_ids: Sequence[str]) -> list[TaskRecord]:
    return [record.tasks[t] for t in task_ids if t in record.tasks]


def summary_text(record: RunRecord, task_ids: Sequence[str], budget: float | None) -> str:
    rows = summary_rows(record, task_ids)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    total = sum(r.cost_usd or 0.0 for r in rows)
    width = max((len(r.id) for r in rows), default=4)
    lines = []
    for r in rows:
        cost = f"${r.cost_usd:.2f}" if r.cost_usd is not None else "-"
        extra = visible(r.pr_url or r.reason or r.branch or "")
        # A reason's further lines (a command's output) stay under its first one.
        extra = extra.replace("\n", "\n" + " " * (width + 24))
        lines.append(f"  {r.id:<{width}}  {r.state:<10} {cost:>7}  {extra}")
    tally = ", ".join(f"{n} {s}" for s, n in counts.items())
    spent = f"${total:.2f}" + (f" of ${budget:.2f}" if budget is not None else "")
    return "\n".join([f"wtrun: {tally}; cost {spent}", *lines])


def summary_markdown(record: RunRecord, task_ids: Sequence[str], budget: float | None) -> str:
    rows = summary_rows(record, task_ids)
    total = sum(r.cost_usd or 0.0 for r in rows)
    out = [
        f"### wtrun: plan `{record.plan}`",
        "",
        "| task | state | cost | PR / reason |",
        "|---|---|---|---|",
    ]
    for r in rows:
        cost = f"${r.cost_usd:.2f}" if r.cost_usd is not None else ""
        detail = (r.pr_url or r.reason or "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| `{r.id}` | {r.state} | {cost} | {detail} |")
    out += ["", f"Total cost: ${total:.2f}" + (f" of ${budget:.2f}" if budget is not None else "")]
    return "\n".join(out) + "\n"


def finish(
    reporter: Reporter, record: RunRecord, task_ids: Sequence[str], budget: float | None
) -> None:
    """The end of a run: the summary (text on stdout, or an event with --json), and
    Markdown appended to $GITHUB_STEP_SUMMARY when set."""
    reporter.summary(record, task_ids, budget)
    write_step_summary(summary_markdown(record, task_ids, budget))


def write_step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(redact.text(text))
