"""`wtrun diff OLD NEW` and `wtrun diff PLAN --against REF`: a plan's changes as Markdown.

Exit 0 when NEW is valid, whatever changed; exit 1 when it does not validate (its problems
are printed in the Markdown, so a review summary shows them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .. import plandiff
from ..errors import UsageError
from ..git import Git
from ..plan import Plan, PlanError, load, read_source


def diff(old: str, new: str | None, against: str | None) -> int:
    if against is not None and new is not None:
        raise UsageError(
            "give two plans (`wtrun diff OLD NEW`) or one plan and a git ref "
            "(`wtrun diff PLAN --against REF`), not both"
        )
    notes: list[str] = []
    if against is not None:
        new_path = Path(old)
        read_source(new_path)  # a missing file is a usage error, before git
        raw, label = _at_ref(new_path, against)
        if raw is None:
            notes.append(f"{_code(label)} does not exist: every task is new")
            old_plan = None
        else:
            old_plan = _load_old(new_path, label, raw, notes)
    elif new is None:
        raise UsageError(
            "`wtrun diff` needs two plans (`wtrun diff OLD NEW`), or one plan "
            "and a git ref to compare it with (`wtrun diff PLAN --against REF`)"
        )
    else:
        new_path = Path(new)
        old_plan = _load_old(Path(old), old, read_source(Path(old)), notes)

    try:
        new_plan = load(new_path)
    except PlanError as e:
        sys.stdout.write(plandiff.invalid(str(new_path), e.diagnostics, e.sources, notes=notes))
        return 1
    sys.stdout.write(plandiff.diff(old_plan, new_plan, notes=notes))
    return 0


def _load_old(path: Path, label: str, raw: bytes, notes: list[str]) -> Plan | None:
    """The old plan, or None with a note when it does not validate (it is history)."""
    try:
        return load(path, display=label, raw=raw)
    except PlanError as e:
        n = len(e.diagnostics)
        notes.append(
            f"{_code(label)} does not validate ({n} problem{'s' if n != 1 else ''}):"
            " every task is shown as new"
        )
        return None


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
