"""The sandbox around code the agent controls: the agent itself, setup `run` steps, verify steps.

With bubblewrap the wrapped process sees the whole filesystem read-only except the paths it
may write (its worktree, the git data a commit needs, the agent CLI's state in $HOME), a
private /tmp, a fresh /proc in its own PID namespace (wtrun's environment is not visible),
no capabilities and no_new_privs, and the network as it is (agents call their API).
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import WtrunError

Mode = Literal["auto", "bwrap", "none"]

# Inside the git dirs a task may write: never its links to the repository, or a rewritten
# link would point wtrun's own later git calls at a repository (config, hooks) of the agent's.
_WORKTREE_LINKS = ("commondir", "gitdir")
# Not `packed-refs`: git rewrites it through `packed-refs.lock` beside it, in the read-only
# common dir, so a writable bind would only let the agent edit it in place.
_COMMON_WRITABLE = ("objects", "refs", "logs")
_PROBE_TIMEOUT_S = 10.0
_FIX = "install the 'bubblewrap' package, or set 'agent.sandbox: none' in the plan"

_BASE = (
    "--ro-bind", "/", "/",
    "--dev", "/dev",
    "--unshare-pid", "--proc", "/proc",
    "--tmpfs", "/tmp",
    "--die-with-parent",
    # As root bwrap keeps every capability, and CAP_SYS_ADMIN could remount `/` read-write.
    "--cap-drop", "ALL",
)  # fmt: skip


@dataclass(frozen=True)
class Sandbox:
    kind: Literal["bwrap", "none"]
    executable: str = "bwrap"

    def wrap(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        writable: Sequence[Path],
        env: Mapping[str, str],
    ) -> list[str]:
        """`argv` to run inside the sandbox, from `cwd`, with the process environment `env`.

        `env` is never copied onto the command line (any local user can read that); it only
        tells whether TMPDIR must move to the private /tmp. A linked worktree's git dir among
        `writable` makes its repository visible read-only even when it lives under /tmp.
        The caller must run the result in a new session (`start_new_session`, as
        `proc.run_logged` does): bwrap starts none itself, so the process keeps the caller's
        process group (killing the group reaches it) but must not keep a terminal it could
        type into. When bwrap dies, or the thread that started it, --die-with-parent ends the
        PID namespace and with it every process inside, setsid or not.
        """
        if self.kind == "none":
            return list(argv)
        options = list(_BASE)
        for path, read_only in _mounts(writable):
            options += ["--ro-bind" if read_only else "--bind", str(path), str(path)]
        for seen in _named_under_tmp(argv, env):
            options += ["--ro-bind", str(seen), str(seen)]
        if env.get("TMPDIR", "/tmp") != "/tmp":
            options += ["--setenv", "TMPDIR", "/tmp"]
        options += ["--chdir", str(cwd)]
        return [self.executable, *options, "--", *argv]


NO_SANDBOX = Sandbox("none")


def _named_under_tmp(argv: Sequence[str], env: Mapping[str, str]) -> list[Path]:
    """What the command names under /tmp, which the private /tmp would hide, to be seen
    read-only: the program's folder and the folders on PATH (a virtualenv made there brings
    its prefix), and the files its arguments name by absolute path (a script)."""
    seen = []
    found = shutil.which(argv[0], path=env.get("PATH")) if argv and "/" not in argv[0] else None
    programs = [Path(found or (argv[0] if argv else "/"))]
    programs += [Path(p) / "_" for p in env.get("PATH", "").split(":") if p.startswith("/")]
    for program in programs:
        folder = program.parent.parent if program.parent.name == "bin" else program.parent
        in_tmp = folder.is_relative_to("/tmp") and folder != Path("/tmp")
        if in_tmp and folder.is_dir() and folder not in seen:
            seen.append(folder)
    for arg in argv[1:]:
        path = Path(arg)
        if path.is_absolute() and path.is_relative_to("/tmp") and path.is_file():
            seen.append(path)
    return seen


def choose(mode: Mode) -> tuple[Sandbox, str | None]:
    """The sandbox for `mode`, and a warning line when `auto` falls back to none.

    `auto` is bubblewrap when `bwrap` is installed and works here (unprivileged user
    namespaces may be off, a container may forbid them), else none; `bwrap` insists.
    """
    if mode == "none":
        return NO_SANDBOX, None
    executable = shutil.which("bwrap")
    problem = "'bwrap' is not installed" if executable is None else _probe(executable)
    if executable is not None and problem is None:
        return Sandbox("bwrap", executable), None
    if mode == "bwrap":
        raise WtrunError(f"agent.sandbox is 'bwrap' but {problem}; {_FIX}")
    return NO_SANDBOX, f"warning: agents run without a sandbox: {problem}; {_FIX}"


@functools.cache
def _probe(executable: str) -> str | None:
    """Why `executable` cannot sandbox a process here, or None when it can (once per process)."""
    argv = Sandbox("bwrap", executable).wrap(["true"], cwd=Path("/"), writable=[], env={})
    try:
        r = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"'bwrap' does not work here ({e})"
    if r.returncode == 0:
        return None
    said = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
    return f"'bwrap' does not work here ({said!r})"


def writable_paths(
    git_common_dir: Path,
    worktree_git_dir: Path,
    worktree: Path,
    home_state: Sequence[Path],
    home_dirs: Sequence[Path] = (),
) -> list[Path]:
    """What a task's processes may write: its worktree, its own `.git/worktrees/<id>`, the
    object store, refs and reflogs (so `git commit` works), and those of `home_state` (the
    agent CLI's own files in $HOME) that exist. Not the common `config`, `hooks/`, `info/`,
    wtrun's records, nor other worktrees.

    The folders `home_dirs` are made first when missing (a fresh $HOME, as on a CI runner):
    inside the sandbox the CLI could not make them, and would lose its session between the
    attempts of a task."""
    for folder in home_dirs:
        # A read-only $HOME: the CLI keeps nothing, as it would without wtrun.
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
    paths = [worktree, worktree_git_dir]
    paths += [git_common_dir / name for name in _COMMON_WRITABLE]
    paths += home_state
    return [p for p in paths if p.exists()]


def _mounts(writable: Sequence[Path]) -> list[tuple[Path, bool]]:
    """(path, read-only) binds in the order bwrap needs: a parent before what it contains,
    since a later bind hides an earlier one; on the same path, read-only last."""
    mounts: dict[tuple[Path, bool], None] = {}
    for path in (p.resolve() for p in writable):
        if not path.exists():
            continue
        mounts[(path, False)] = None
        for protected in _protected(path):
            mounts[(protected, True)] = None
    return sorted(mounts, key=lambda m: (len(m[0].parts), m[1], str(m[0])))


def _protected(writable: Path) -> Iterator[Path]:
    """What stays read-only in or around a writable path: a checkout's `.git` (the link file
    of a linked worktree, or the whole git dir of a main checkout); for a linked worktree's
    git dir, its links and its repository (which a private /tmp would otherwise hide)."""
    dot_git = writable / ".git"
    if dot_git.exists():
        yield dot_git
    commondir = writable / "commondir"
    if not commondir.is_file():
        return
    yield from (writable / name for name in _WORKTREE_LINKS if (writable / name).exists())
    common = (writable / commondir.read_text(encoding="utf-8").strip()).resolve()
    yield common.parent if common.name == ".git" else common
