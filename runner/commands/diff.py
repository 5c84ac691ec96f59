"""`wtrun diff OLD NEW` and `wtrun diff PLAN --against REF`: a plan's changes as Markdown.

Exit 0 when NEW is valid, whatever changed; exit 1 when it does not validate (its problems
are printed in the Markdown, so a review summary shows them).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import NamedTuple

from .. import plandiff
from ..errors import UsageError
from ..git import Git
from ..plan import Plan, PlanError, load, read_source

# From this size on, with a second core, the old plan loads in a forked process while this
# one loads the new: each load of a 10,000-task plan (about 3 MB) takes over a second.
SIDE_BY_SIDE_BYTES = 512 * 1024


def diff(old: str, new: str | None, against: str | None) -> int:
    if against is not None and new is not None:
        raise UsageError(
            "give two plans (`wtrun diff OLD NEW`) or one plan and a git ref "
            "(`wtrun diff PLAN --against REF`), not both"
        )
    notes: list[str] = []
    before: _Source | None
    if against is not None:
        new_path = Path(old)
        read_source(new_path)  # a missing file is a usage error, before git
        before = _at_ref_source(new_path, against, notes)
    elif new is None:
        raise UsageError(
            "`wtrun diff` needs two plans (`wtrun diff OLD NEW`), or one plan "
            "and a git ref to compare it with (`wtrun diff PLAN --against REF`)"
        )
    else:
        new_path = Path(new)
        before = _Source(Path(old), old, read_source(Path(old)))

    old_plan, new_plan = _load_both(before, new_path, notes)
    if isinstance(new_plan, PlanError):
        e = new_plan
        sys.stdout.write(plandiff.invalid(str(new_path), e.diagnostics, e.sources, notes=notes))
        return 1
    sys.stdout.write(plandiff.diff(old_plan, new_plan, notes=notes))
    return 0


def against_ref(path: Path, ref: str, plan: Plan) -> str:
    """The Markdown diff of `plan`, loaded from `path` already, against `path` at `ref`."""
    notes: list[str] = []
    before = _at_ref_source(path, ref, notes)
    old_plan, note = _load_old(before) if before is not None else (None, None)
    return plandiff.diff(old_plan, plan, notes=[*notes, *([note] if note else [])])


class _Source(NamedTuple):
    path: Path
    label: str
    raw: bytes


def _load_both(
    before: _Source | None, new_path: Path, notes: list[str]
) -> tuple[Plan | None, Plan | PlanError]:
    """The old plan (None when there is none, or it does not validate: a note says which)
    and the new plan, or why it does not validate."""
    side_by_side = (
        before is not None
        and (os.cpu_count() or 1) > 1
        and min(len(before.raw), _size(new_path)) >= SIDE_BY_SIDE_BYTES
    )
    if before is not None and side_by_side:
        fork = multiprocessing.get_context("fork")
        try:
            with ProcessPoolExecutor(1, mp_context=fork) as pool:
                loading = pool.submit(_load_old, before)
                new_plan = _load_new(new_path)
                old_plan, note = loading.result()
        except BrokenProcessPool:  # the fork failed or died: load it here instead
            old_plan, note = _load_old(before)
    else:
        old_plan, note = _load_old(before) if before is not None else (None, None)
        new_plan = _load_new(new_path)
    notes += [note] if note else []
    return old_plan, new_plan


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # load() says what is wrong with it


def _load_new(path: Path) -> Plan | PlanError:
    try:
        return load(path)
    except PlanError as e:
        return e


def _load_old(before: _Source) -> tuple[Plan | None, str | None]:
    """The old plan, or None with a note when it does not validate (it is history)."""
    try:
        return load(before.path, display=before.label, raw=before.raw), None
    except PlanError as e:
        n = len(e.diagnostics)
        return None, (
            f"{_code(before.label)} does not validate ({n} problem{'s' if n != 1 else ''}):"
            " every task is shown as new"
        )


def _at_ref_source(path: Path, ref: str, notes: list[str]) -> _Source | None:
    """The plan at `path` as it was at `ref`; None, with a note, when it did not exist."""
    raw, label = _at_ref(path, ref)
    if raw is None:
        notes.append(f"{_code(label)} does not exist: every task is new")
        return None
    return _Source(path, label, raw)


def _at_ref(path: Path, ref: str) -> tuple[bytes | None, str]:
    """The file at `path` as it was at `ref` (None when it did not exist), and a label."""
    folder = path.resolve().parent
    probe = Git(folder).run("rev-parse", "--show-toplevel", check=False)
    if probe.returncode != 0:
        raise UsageError(
            f"{path} is not inside a git repository, so `--against {ref}` has "
            "no history to read; compare two files with `wtrun diff OLD NEW`"
        )
    root = Path(probe.stdout.strip())
    git = Git(root)
    if git.rev_parse(ref) is None:
        raise UsageError(
            f'no commit "{ref}" in {root}; fetch it first (e.g. `git fetch '
            f"origin {ref.split('/')[-1]}`), or name a branch, tag or commit"
        )
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError(f"{path} is outside the repository at {root}") from None
    spec = f"{ref}:{rel}"
    if not git.ok("cat-file", "-e", spec):
        return None, f"{rel}@{ref}"
    return git("show", spec).encode("utf-8"), f"{rel}@{ref}"


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else text
