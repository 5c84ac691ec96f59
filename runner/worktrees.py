"""Worktrees: made in parallel, reused on a rerun, never clobbered, and kept clean.

Files wtrun puts into a worktree for the agent (its instructions) and files agents
write for their own bookkeeping must never show in `git status` nor be committed.
`.git/info/exclude` is shared by every worktree, main checkout included, so instead
each worktree gets its own `core.excludesFile` (git's per-worktree config): the
user's global ignore rules plus these paths. Nothing changes for the main checkout.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .errors import WtrunError
from .git import Git
from .proc import CommandError

_exclude_lock = threading.Lock()


def exclude_folder(git: Git, folder: str) -> None:
    """Add `/<folder>/` to `.git/info/exclude` once; never touch tracked ignore files."""
    path = git.common_dir() / "info" / "exclude"
    line = "/" + folder.strip("/") + "/"
    with _exclude_lock:
        try:
            existing = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            existing = ""
        if line in existing.splitlines():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        sep = "" if not existing or existing.endswith("\n") else "\n"
        with path.open("a", encoding="utf-8") as f:
            f.write(f"{sep}# wtrun: task worktrees\n{line}\n")


def enable_worktree_config(git: Git) -> None:
    if git("config", "--get", "extensions.worktreeConfig", check=False).strip() != "true":
        git("config", "extensions.worktreeConfig", "true")


def global_excludes(git: Git) -> str:
    """The text of the user's global ignore file, which a per-worktree one replaces."""
    configured = git("config", "--get", "--path", "core.excludesFile", check=False).strip()
    if configured:
        candidate = Path(configured).expanduser()
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        candidate = Path(xdg) / "git" / "ignore"
    try:
        return candidate.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def worktree_git_dir(worktree: Path) -> Path:
    """A linked worktree's private git directory, read from its `.git` file."""
    text = (worktree / ".git").read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        raise WtrunError(f"{worktree}/.git is not a linked worktree's .git file")
    gitdir = Path(text[len("gitdir:") :].strip())
    return gitdir if gitdir.is_absolute() else (worktree / gitdir).resolve()


def hide(worktree: Path, patterns: list[str], global_text: str) -> None:
    """Make `patterns` (gitignore syntax, from the worktree root) ignored in this worktree
    only. Needs `extensions.worktreeConfig` (see enable_worktree_config)."""
    gitdir = worktree_git_dir(worktree)
    exclude = gitdir / "wtrun-exclude"
    body = global_text.rstrip("\n") + "\n" if global_text.strip() else ""
    body += "# wtrun: instructions and agents' own files, ignored in this worktree only\n"
    body += "".join(f"{p}\n" for p in patterns)
    exclude.write_text(body, encoding="utf-8")
    config = gitdir / "config.worktree"
    setting = f"[core]\n\texcludesFile = {exclude}\n"
    try:
        current = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    if str(exclude) not in current:
        config.write_text(current + setting, encoding="utf-8")


def hide_more(worktree: Path, patterns: list[str]) -> None:
    """Also ignore `patterns` in this worktree (after `hide`)."""
    exclude = worktree_git_dir(worktree) / "wtrun-exclude"
    with exclude.open("a", encoding="utf-8") as f:
        f.write("# wtrun: made by setup\n" + "".join(f"{p}\n" for p in patterns))


def snapshot(git: Git) -> dict[Path, str | None]:
    """Prune stale worktree records and list the rest: once per run, before any parallel
    `git worktree add` (listing or pruning while another add is half done fails or,
    worse, prunes the new worktree)."""
    git("worktree", "prune")
    return {p.resolve(): b for p, b in git.worktrees().items()}


def add(
    git: Git, *, path: Path, branch: str, start: str, ours: bool, existing: dict[Path, str | None]
) -> bool:
    """Make (or reuse) the worktree at `path` on `branch`, starting from `start`.

    `ours` says the records show wtrun made this branch for this task earlier; any other
    existing branch of that name is someone's work and an error. `existing` is the
    run's `snapshot`. Returns whether the branch was created now.
    """
    resolved = path.resolve()
    for wt_path, wt_branch in existing.items():
        if wt_path.resolve() == resolved:
            if wt_branch == branch:
                return False
            raise WtrunError(
                f"{path} is already a worktree on branch {wt_branch or '(detached)'!s}, not "
                f"{branch}; remove it with `git worktree remove {path}` or change the plan"
            )
        if wt_branch == branch and wt_path != resolved:
            raise WtrunError(
                f"branch {branch} is checked out in another worktree, {wt_path}; "
                "remove that worktree or change the branch template"
            )
    if path.exists() and any(path.iterdir()):
        raise WtrunError(f"{path} exists and is not a worktree of this repository; move it away")
    path.parent.mkdir(parents=True, exist_ok=True)
    if git.branch_exists(branch):
        if not ours:
            raise WtrunError(
                f"branch {branch} already exists and was not made by wtrun for this task; "
                f"rename or delete it (`git branch -m {branch} {branch}-old`), or change "
                "the plan's branch template"
            )
        _worktree_add(git, "worktree", "add", "--quiet", str(path), branch)
        return False
    try:
        _worktree_add(git, "worktree", "add", "--quiet", "-b", branch, str(path), start)
    except WtrunError:
        # `git worktree add -b` makes the branch, then may trip over another worktree's
        # half-written metadata; `Git.run` retries it, and the retry finds the branch it
        # made itself ("already exists"). Finish the job on that branch.
        if git.rev_parse(f"refs/heads/{branch}") != start or (
            path.exists() and any(path.iterdir())
        ):
            raise
        _worktree_add(git, "worktree", "add", "--quiet", str(path), branch)
    return True


def _worktree_add(git: Git, *args: str) -> None:
    try:
        git(*args)
    except CommandError as e:
        raise WtrunError(f"git could not make the worktree: {e}") from e


def remove(git: Git, path: Path, branch: str | None, *, force: bool = False) -> None:
    if path.exists():
        git("worktree", "remove", *(["--force"] if force else []), str(path))
    else:
        git("worktree", "prune")
    if branch and git.branch_exists(branch):
        git("branch", "-D" if force else "-d", branch)
