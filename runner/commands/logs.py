"""`wtrun logs PLAN TASK`: a task's setup, agent and verify logs; `-f` follows them."""

from __future__ import annotations

import codecs
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import WtrunError
from ..git import find_repo
from ..plan import Task, load, task_by_id
from ..state import Store

# The steps that write logs, in pipeline order; "wtrun-error" holds an internal error.
STEPS = ("setup", "agent", "verify")
_EXTRA = ("wtrun-error",)
POLL_S = 0.2
_CHUNK = 1 << 16


def logs(plan_path: str, task_id: str, step: str | None, follow: bool) -> int:
    plan = load(plan_path)
    (task,) = task_by_id(plan, [task_id])
    git = find_repo(Path.cwd())
    common = git.common_dir()
    store = Store(common, plan.name)
    steps = (step,) if step else STEPS + _EXTRA
    files = [(s, store.log_path(task.id, s)) for s in steps]
    headers = step is None
    if follow and _active(common, plan.name, task.id):
        try:
            _follow(common, plan.name, task.id, files, headers)
        except KeyboardInterrupt:
            return 130  # ^C is how one stops following, as with `tail -f`
        return 0
    present = [(s, p) for s, p in files if p.exists()]
    if not present:
        raise WtrunError(_nothing_yet(store, plan_path, task, step))
    first = True
    for name, path in present:
        if headers:
            sys.stdout.write(("" if first else "\n") + _header(name, path))
        first = False
        _copy(path, ensure_newline=headers)
    sys.stdout.flush()
    return 0


def _header(step: str, path: Path) -> str:
    return f"==> {step}: {path} <==\n"


def _copy(path: Path, *, ensure_newline: bool) -> None:
    with path.open("r", encoding="utf-8", errors="replace") as f:
        last = ""
        while chunk := f.read(_CHUNK):
            sys.stdout.write(chunk)
            last = chunk[-1]
    if ensure_newline and last and last != "\n":
        sys.stdout.write("\n")


def _nothing_yet(store: Store, plan_path: str, task: Task, step: str | None) -> str:
    what = f"no {step} log" if step else "no logs"
    r = store.record.tasks.get(task.id)
    if step == "setup" and not task.setup:
        return (
            f'{what} for task "{task.id}": it has no setup steps (a setup log is written '
            "when `setup` or `.worktreeinclude` has something to do)"
        )
    if step == "verify" and not task.verify:
        return f'{what} for task "{task.id}": it has no verify steps'
    if r is None or r.state == "pending":
        return (
            f'{what} for task "{task.id}" yet: it has not run; start it with '
            f"`wtrun run {plan_path} --task {task.id}`"
        )
    where = f" at step {r.step}" if r.step else ""
    return f'{what} for task "{task.id}" yet (it is {r.state}{where})'


def _active(common: Path, plan_name: str, task_id: str) -> bool:
    """A run of the plan is going on and has not finished with this task yet."""
    store = Store(common, plan_name)
    if not store.lock().held():
        return False
    r = store.record.tasks.get(task_id)
    return r is None or r.state in ("pending", "running")


def _follow(
    common: Path, plan_name: str, task_id: str, files: Sequence[tuple[str, Path]], headers: bool
) -> None:
    """Print what the files have and what is appended to them, until the task settles."""
    offsets = dict.fromkeys((p for _, p in files), 0)
    # Bytes, decoded as they come: a character may be split between two reads.
    decoders = {p: codecs.getincrementaldecoder("utf-8")("replace") for _, p in files}
    shown: Path | None = None
    while True:
        # The records are read before the files, so whatever was written before the
        # task settled is printed before following stops.
        active = _active(common, plan_name, task_id)
        for name, path in files:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < offsets[path]:
                offsets[path] = 0  # started afresh (`--restart`)
            if size == offsets[path]:
                continue
            if headers and shown != path:
                sys.stdout.write(("\n" if shown else "") + _header(name, path))
                shown = path
            with path.open("rb") as f:
                f.seek(offsets[path])
                data = f.read(size - offsets[path])
            offsets[path] += len(data)
            sys.stdout.write(decoders[path].decode(data))
            sys.stdout.flush()
        if not active:
            return
        time.sleep(POLL_S)
