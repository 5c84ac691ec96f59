"""Setup and verify steps in a task's worktree: `.worktreeinclude`, copy, link, run."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import proc
from .git import Git
from .plan import Step, format_duration


@dataclass(frozen=True)
class StepFailure:
    step: str
    message: str


def _log(log: Path, text: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as f:
        f.write(f"[wtrun {time.strftime('%H:%M:%S')}] {text}\n")


def worktreeinclude(git: Git) -> list[str]:
    """Ignored, untracked paths of the main checkout that `.worktreeinclude` selects."""
    include = git.root / ".worktreeinclude"
    if not include.is_file():
        return []
    out = git("ls-files", "-z", "--others", "--ignored", "--directory", f"--exclude-from={include}")
    candidates = [p.rstrip("/") for p in out.split("\0") if p]
    if not candidates:
        return []
    r = git.run("check-ignore", "-z", "--stdin", input="\0".join(candidates) + "\0", check=False)
    ignored = {p.rstrip("/") for p in r.stdout.split("\0") if p}
    return [p for p in candidates if p in ignored]


def copy_into(source_root: Path, worktree: Path, rel: str) -> None:
    src, dst = source_root / rel, worktree / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    # GNU cp clones blocks where the file system can (btrfs, xfs), and copies otherwise.
    r = subprocess.run(
        ["cp", "-a", "--reflink=auto", str(src), str(dst.parent) + "/"],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)


def run_setup(
    git: Git,
    worktree: Path,
    steps: Sequence[Step],
    env: Mapping[str, str],
    log: Path,
) -> StepFailure | None:
    """`.worktreeinclude`, then the plan's steps in order; the first failure stops."""
    for rel in worktreeinclude(git):
        if not (worktree / rel).exists():
            copy_into(git.root, worktree, rel)
            _log(log, f"copied {rel} (.worktreeinclude)")
    tracked_cache: dict[str, bool] = {}

    def tracked(rel: str) -> bool:
        if rel not in tracked_cache:
            tracked_cache[rel] = bool(git.tracked([rel], cwd=git.root))
        return tracked_cache[rel]

    for number, step in enumerate(steps, 1):
        label = f"setup step {number} ({step.describe()})"
        if step.kind in ("copy", "link"):
            for rel in step.paths:
                src = git.root / rel
                if not src.exists() and not src.is_symlink():
                    _log(log, f"{step.kind} {rel}: not in the main checkout, skipped")
                    continue
                if tracked(rel):
                    _log(log, f"{step.kind} {rel}: tracked by git, already in the worktree")
                    continue
                dst = worktree / rel
                if dst.exists() or dst.is_symlink():
                    _log(log, f"{step.kind} {rel}: already in the worktree, kept")
                    continue
                if step.kind == "copy":
                    copy_into(git.root, worktree, rel)
                else:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(src.resolve(), dst)
                _log(log, f"{step.kind} {rel}")
            continue
        failure = run_command(step, worktree, env, log, label)
        if failure:
            return failure
    return None


def run_command(
    step: Step, worktree: Path, env: Mapping[str, str], log: Path, label: str
) -> StepFailure | None:
    assert step.run is not None
    _log(log, f"{label}: $ {step.run}")
    shell = shutil.which("bash") or "/bin/sh"
    argv = [shell, "-e", "-c", step.run] if shell.endswith("bash") else [shell, "-c", step.run]
    start = log.stat().st_size if log.exists() else 0
    outcome = proc.run_logged(argv, cwd=worktree, env=env, log=log, timeout=step.timeout_s)
    if outcome.ok:
        _log(log, f"{label}: ok in {outcome.seconds:.1f}s")
        return None
    with log.open("r", encoding="utf-8", errors="replace") as f:
        f.seek(start)
        output = f.read()
    if outcome.timed_out:
        what = f"timed out after {format_duration(step.timeout_s)} (its processes were stopped)"
    else:
        what = f"failed with exit code {outcome.returncode}"
    _log(log, f"{label}: {what}")
    return StepFailure(label, f"{label} {what}; log: {log}" + proc.tail(output, 10))


def run_verify(
    steps: Sequence[Step], worktree: Path, env: Mapping[str, str], log: Path
) -> tuple[list[dict[str, object]], StepFailure | None]:
    results: list[dict[str, object]] = []
    for number, step in enumerate(steps, 1):
        if step.kind != "run":
            continue
        label = f"verify step {number} ({step.describe()})"
        failure = run_command(step, worktree, env, log, label)
        results.append({"name": step.describe(), "ok": failure is None})
        if failure:
            return results, failure
    return results, None
