"""Setup and verify steps in a task's worktree: `.worktreeinclude`, copy, link, run."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from . import proc
from .errors import Position
from .git import Git
from .plan import Step, format_duration

# Wraps a command in the task's sandbox (or leaves it as it is).
Wrap = Callable[[Sequence[str]], list[str]]


def unwrapped(argv: Sequence[str]) -> list[str]:
    return list(argv)


@dataclass(frozen=True)
class StepFailure:
    step: str
    message: str
    position: Position | None = None  # the step's place in the plan


def _log(log: Path, text: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as f:
        f.write(f"[wtrun {time.strftime('%H:%M:%S')}] {text}\n")


def _worktreeinclude(git: Git) -> list[str]:
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


def _copy_file(src: str, dst: str) -> None:
    # Copying a large folder (node_modules) takes a while: an interrupt stops it between files.
    if proc.RUNNING.stopping.is_set():
        raise InterruptedError("the run is stopping")
    shutil.copy2(src, dst, follow_symlinks=False)


def _copy_into(source_root: Path, worktree: Path, rel: str) -> None:
    """Copy `rel` from the main checkout into the worktree, symlinks kept as links.
    Raises OSError (shutil.Error for a folder) naming what could not be copied."""
    src, dst = source_root / rel, worktree / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=_copy_file, dirs_exist_ok=True)
    else:
        _copy_file(str(src), str(dst))


def _copy_failure(label: str, rel: str, error: OSError, log: Path) -> StepFailure:
    if isinstance(error, shutil.Error) and error.args and isinstance(error.args[0], list):
        # copytree gathers (source, destination, why) for every entry that failed
        problems = [f"{src}: {why}" for src, _, why in error.args[0]]
    else:
        problems = [str(error)]
    _log(log, f"{label}: could not copy {rel}: " + "; ".join(problems))
    return StepFailure(
        label,
        f'{label} could not copy "{rel}" from the main checkout into the worktree; log: {log}'
        + proc.tail("\n".join(problems), 10),
    )


def _escape(git: Git, worktree: Path, rel: str) -> str | None:
    """Why copying or linking `rel` would reach outside the repository, or None.

    Symbolic links are followed: an untracked link in the main checkout to a file
    elsewhere, or a tracked link in the worktree to a folder elsewhere (which a copy
    would write through), are refused, as is anything in git's own folder."""
    root = git.root.resolve()
    source = (git.root / rel).resolve()
    fix = (
        "copy and link take files of the repository only: remove the link, or fetch the "
        "file in a `run` step"
    )
    if not source.is_relative_to(root):
        return f"in the main checkout it leads to {source}, outside the repository; {fix}"
    if source.is_relative_to(git.common_dir().resolve()):
        return f"it is in git's own folder ({source}); {fix}"
    target = (worktree / rel).parent.resolve()
    if not target.is_relative_to(worktree.resolve()):
        return (
            f"in the worktree it would be written into {target}, outside the worktree (a "
            f"tracked symbolic link leads there); {fix}"
        )
    return None


def _refused(label: str, rel: str, why: str, log: Path) -> StepFailure:
    _log(log, f"{label}: refused {rel}: {why}")
    return StepFailure(label, f'{label} refused "{rel}": {why}; log: {log}')


def _copy_include(git: Git, worktree: Path, log: Path) -> StepFailure | None:
    for rel in _worktreeinclude(git):
        if not (worktree / rel).exists():
            why = _escape(git, worktree, rel)
            if why:
                return _refused("setup (.worktreeinclude)", rel, why, log)
            try:
                _copy_into(git.root, worktree, rel)
            except OSError as e:
                return _copy_failure("setup (.worktreeinclude)", rel, e, log)
            _log(log, f"copied {rel} (.worktreeinclude)")
    return None


def _place(git: Git, worktree: Path, step: Step, label: str, log: Path) -> StepFailure | None:
    """A `copy` or `link` step: each path from the main checkout, unless git or an
    earlier run already put it in the worktree."""
    for rel in step.paths:
        src = git.root / rel
        if not src.exists() and not src.is_symlink():
            _log(log, f"{step.kind} {rel}: not in the main checkout, skipped")
            continue
        if git.tracked([rel], cwd=git.root):
            _log(log, f"{step.kind} {rel}: tracked by git, already in the worktree")
            continue
        dst = worktree / rel
        if dst.exists() or dst.is_symlink():
            _log(log, f"{step.kind} {rel}: already in the worktree, kept")
            continue
        why = _escape(git, worktree, rel)
        if why:
            return _refused(label, rel, why, log)
        try:
            if step.kind == "copy":
                _copy_into(git.root, worktree, rel)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(src.resolve(), dst)
        except OSError as e:
            return _copy_failure(label, rel, e, log)
        _log(log, f"{step.kind} {rel}")
    return None


def run_setup(
    git: Git,
    worktree: Path,
    steps: Sequence[Step],
    env: Mapping[str, str],
    log: Path,
    wrap: Wrap = unwrapped,
) -> StepFailure | None:
    """`.worktreeinclude`, then the plan's steps in order; the first failure stops. Run
    steps go through `wrap` (the sandbox); copies and links are wtrun's own work."""
    failure = _copy_include(git, worktree, log)
    for number, step in enumerate(steps, 1):
        if failure:
            break
        label = f"setup step {number} ({step.describe()})"
        if step.kind in ("copy", "link"):
            failure = _place(git, worktree, step, label, log)
        else:
            failure = _run_command(step, worktree, env, log, label, wrap)
        if failure:
            failure = replace(failure, position=step.position)
    return failure


def _shell_argv(script: str) -> list[str]:
    """bash when there is one, else sh; either stops at the first failing command."""
    return [shutil.which("bash") or "/bin/sh", "-e", "-c", script]


def _run_command(
    step: Step, worktree: Path, env: Mapping[str, str], log: Path, label: str, wrap: Wrap
) -> StepFailure | None:
    assert step.run is not None
    _log(log, f"{label}: $ {step.run}")
    argv = wrap(_shell_argv(step.run))
    outcome = proc.run_logged(argv, cwd=worktree, env=env, log=log, timeout=step.timeout_s)
    if outcome.log_error is not None:
        return StepFailure(label, f"{label}: {outcome.log_error}")
    if outcome.ok:
        _log(log, f"{label}: ok in {outcome.seconds:.1f}s")
        return None
    if outcome.timed_out:
        what = f"timed out after {format_duration(step.timeout_s)} (its processes were stopped)"
    else:
        what = f"failed with exit code {outcome.returncode}"
    _log(log, f"{label}: {what}")
    return StepFailure(label, f"{label} {what}; log: {log}" + proc.tail(outcome.output_tail, 10))


def run_verify(
    steps: Sequence[Step],
    worktree: Path,
    env: Mapping[str, str],
    log: Path,
    wrap: Wrap = unwrapped,
) -> tuple[list[dict[str, object]], StepFailure | None]:
    results: list[dict[str, object]] = []
    for number, step in enumerate(steps, 1):
        if step.kind != "run":
            continue
        label = f"verify step {number} ({step.describe()})"
        failure = _run_command(step, worktree, env, log, label, wrap)
        results.append({"name": step.describe(), "ok": failure is None})
        if failure:
            return results, replace(failure, position=step.position)
    return results, None
