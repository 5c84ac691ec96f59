"""Git, as wtrun needs it: every call through `proc.run` with a clean environment."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from pathlib import Path

from . import proc
from .errors import WtrunError

# Parallel `git worktree add`/`remove` and ref updates race on these; git gives up at once.
# `git worktree add` and `git branch -d` read every worktree's metadata, and fail on one
# that another `worktree add` is writing at that moment ("failed to read .../commondir").
_LOCK_HINTS = (
    "index.lock",
    "config.lock",
    "packed-refs.lock",
    ".lock': File exists",
    "cannot lock ref",
    "Unable to create",
    "could not lock config file",
    "/commondir",
    "/gitdir: ",
    # `.git/worktrees` itself, removed by a `worktree remove` of the last other worktree
    "could not create directory of '",
)


# What an agent could have planted in the repository must not run inside wtrun's own git
# calls: hooks (any `hooksPath` it set), an fsmonitor command, replace objects that show a
# clean decoy in place of the commit that would be pushed, the `ext::` transport.
_SAFE = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "protocol.ext.allow=never",
)
_SAFE_ENV = {"GIT_NO_REPLACE_OBJECTS": "1"}


class Git:
    """A repository: the main checkout (or a worktree) at `root`. Every call runs with no
    hook, no fsmonitor and no replace objects, whatever the repository's config says."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __call__(
        self,
        *args: str,
        cwd: str | os.PathLike[str] | None = None,
        check: bool = True,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> str:
        return self.run(*args, cwd=cwd, check=check, input=input, env=env).stdout

    def run(
        self,
        *args: str,
        cwd: str | os.PathLike[str] | None = None,
        check: bool = True,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> proc.Result:
        argv = ["git", *_SAFE, *args]
        environment = proc.clean_env({**_SAFE_ENV, **(env or {})})
        attempts = 6
        for attempt in range(attempts):
            try:
                return proc.run(
                    argv, cwd=cwd or self.root, env=environment, check=check, input=input
                )
            except proc.CommandError as e:
                if attempt + 1 < attempts and any(h in e.output for h in _LOCK_HINTS):
                    time.sleep(0.05 * (2**attempt) * (1 + random.random()))
                    continue
                raise
        raise AssertionError("unreachable")

    def ok(self, *args: str, cwd: str | os.PathLike[str] | None = None) -> bool:
        return self.run(*args, cwd=cwd, check=False).returncode == 0

    # ---------------------------------------------------------------- queries

    def rev_parse(self, rev: str, cwd: str | os.PathLike[str] | None = None) -> str | None:
        r = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=cwd, check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def common_dir(self) -> Path:
        out = self("rev-parse", "--path-format=absolute", "--git-common-dir").strip()
        return Path(out)

    def git_dir(self, cwd: str | os.PathLike[str] | None = None) -> Path:
        out = self("rev-parse", "--path-format=absolute", "--git-dir", cwd=cwd).strip()
        return Path(out)

    def branch_exists(self, branch: str) -> bool:
        return self.ok("show-ref", "--verify", "--quiet", f"refs/heads/{branch}")

    def remote_url(self, remote: str) -> str | None:
        r = self.run("remote", "get-url", remote, check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def has_remote(self, remote: str) -> bool:
        return remote in self("remote").split()

    def changed_paths(
        self, start: str, end: str = "HEAD", cwd: str | os.PathLike[str] | None = None
    ) -> list[str]:
        """Paths changed between `start` and `end`; renames count as both paths."""
        out = self("diff", "--name-status", "-z", "--no-renames", f"{start}...{end}", cwd=cwd)
        parts = [p for p in out.split("\0") if p]
        return sorted(set(parts[1::2]))

    def paths_in_commits(
        self, *revisions: str, cwd: str | os.PathLike[str] | None = None
    ) -> list[str]:
        """Every path any commit of `revisions` (`A..B`, or `B ^A ^C`) touched (a merge
        against each parent), even when a later commit takes the change back: the pushed
        history carries them all."""
        log = ("log", "-m", "--no-renames", "--name-only", "--format=", "-z", "--end-of-options")
        out = self(*log, *revisions, cwd=cwd)
        return sorted({p.strip("\n") for p in out.split("\0") if p.strip("\n")})

    def status_paths(self, cwd: str | os.PathLike[str]) -> list[str]:
        out = self("status", "--porcelain=v1", "-z", "--untracked-files=all", cwd=cwd)
        paths: list[str] = []
        entries = out.split("\0")
        i = 0
        while i < len(entries):
            entry = entries[i]
            if not entry:
                i += 1
                continue
            paths.append(entry[3:])
            if entry[0] in "RC":
                i += 1  # the rename's source follows
            i += 1
        return paths

    def worktrees(self) -> dict[Path, str | None]:
        """Every worktree of the repository -> its branch (None when detached)."""
        out = self("worktree", "list", "--porcelain")
        result: dict[Path, str | None] = {}
        current: Path | None = None
        for line in out.splitlines():
            if line.startswith("worktree "):
                current = Path(line[len("worktree ") :])
                result[current] = None
            elif line.startswith("branch ") and current is not None:
                result[current] = line[len("branch ") :].removeprefix("refs/heads/")
        return result

    def tracked(self, paths: Sequence[str], cwd: str | os.PathLike[str]) -> set[str]:
        if not paths:
            return set()
        out = self("ls-files", "-z", "--", *paths, cwd=cwd)
        return {p for p in out.split("\0") if p}


def resolve_base(git: Git, remote: str, base: str, *, fetch: bool) -> str:
    """The commit `base` names: fetched from `remote` first when asked (and it has one)."""
    if git.has_remote(remote):
        if fetch:
            r = git.run("fetch", "--quiet", "--no-tags", remote, base, check=False)
            if r.returncode != 0:
                said = (r.stderr or r.stdout).strip().splitlines()
                raise WtrunError(
                    f"cannot fetch {base!r} from remote {remote!r}: "
                    f"{said[-1] if said else 'no output'}; check the network and the "
                    f"remote's URL (`git remote -v`), or that {base!r} exists there"
                )
            sha = git.rev_parse("FETCH_HEAD")
            if sha:
                return sha
        for ref in (f"{remote}/{base}", base):
            sha = git.rev_parse(ref)
            if sha:
                return sha
    else:
        sha = git.rev_parse(base)
        if sha:
            return sha
    raise WtrunError(
        f"base {base!r} does not exist in {git.root}; create it, or set `base:` in the "
        "plan to an existing branch, tag or commit"
    )


def find_repo(start: str | os.PathLike[str]) -> Git:
    """The main checkout holding `start` (a worktree's path leads to its main checkout)."""
    r = proc.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir", "--show-toplevel"],
        cwd=start,
        env=proc.clean_env(),
        check=False,
    )
    if r.returncode != 0:
        raise WtrunError(
            f"{Path(start).resolve()} is not inside a git repository; run wtrun from the "
            "repository the plan is for"
        )
    common, toplevel = r.stdout.split("\n")[:2]
    common_path = Path(common)
    # In a linked worktree the common dir is the main checkout's .git.
    if common_path.name == ".git":
        return Git(common_path.parent)
    return Git(toplevel)
