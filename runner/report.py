"""How a run shows progress: plain timestamped lines, JSON lines, or a live table,
and the summary at the end (also Markdown into $GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from .state import RunRecord, TaskRecord


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
            self.stream.write(f"{stamp} {who}{message}\n")
            self.stream.flush()

    def close(self) -> None:
        pass


class JsonReporter(Reporter):
    """JSON lines on stdout, one object per event, for programs."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def event(self, task: str | None, kind: str, message: str, **fields: Any) -> None:
        with self._lock:
            record = {"time": round(time.time(), 3), "event": kind, "task": task,
                      "message": message, **fields}
            self.stream.write(json.dumps(record, default=str) + "\n")
            self.stream.flush()


class LiveReporter(Reporter):
    """A table redrawn in place on a terminal: task, step, elapsed, cost, last line."""

    def __init__(self, task_ids: Sequence[str], stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        self.rows: dict[str, dict[str, Any]] = {
            t: {"state": "pending", "step": "", "since": None, "cost": None, "last": ""}
            for t in task_ids}
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
                if "step" in fields:
                    row["step"] = fields["step"]
                    row["since"] = row["since"] or time.monotonic()
                if fields.get("cost_usd") is not None:
                    row["cost"] = fields["cost_usd"]
                row["last"] = message
            self._draw()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._draw()

    def _paint(self, state: str, text: str) -> str:
        if not self.color:
            return text
        code = {"failed": "31", "blocked": "33", "skipped": "33", "done": "32",
                "ready": "32", "prepared": "32", "running": "36"}.get(state)
        return f"\x1b[{code}m{text}\x1b[0m" if code else text

    def _draw(self) -> None:
        width = max((len(t) for t in self.rows), default=4)
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError):
            columns = 100
        lines = [f"{'task':<{width}}  {'state':<10} {'step':<12} {'time':>6} {'cost':>7}  last"]
        for tid, row in self.rows.items():
            elapsed = "" if row["since"] is None else f"{time.monotonic() - row['since']:.0f}s"
            cost = "" if row["cost"] is None else f"${row['cost']:.2f}"
            text = (f"{tid:<{width}}  {row['state']:<10} {row['step']:<12} {elapsed:>6} "
                    f"{cost:>7}  {row['last']}")
            lines.append(self._paint(row["state"], text[:columns - 1]))
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
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
        extra = r.pr_url or r.reason or r.branch or ""
        lines.append(f"  {r.id:<{width}}  {r.state:<10} {cost:>7}  {extra}")
    tally = ", ".join(f"{n} {s}" for s, n in counts.items())
    spent = f"${total:.2f}" + (f" of ${budget:.2f}" if budget is not None else "")
    return "\n".join([f"wtrun: {tally}; cost {spent}", *lines])


def summary_markdown(record: RunRecord, task_ids: Sequence[str], budget: float | None) -> str:
    rows = summary_rows(record, task_ids)
    total = sum(r.cost_usd or 0.0 for r in rows)
    out = [f"### wtrun: plan `{record.plan}`", "",
           "| task | state | cost | PR / reason |", "|---|---|---|---|"]
    for r in rows:
        cost = f"${r.cost_usd:.2f}" if r.cost_usd is not None else ""
        detail = (r.pr_url or r.reason or "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| `{r.id}` | {r.state} | {cost} | {detail} |")
    out += ["", f"Total cost: ${total:.2f}" + (f" of ${budget:.2f}" if budget else "")]
    return "\n".join(out) + "\n"


def write_step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
