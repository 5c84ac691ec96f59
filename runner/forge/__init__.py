"""Pull-request providers behind one Protocol: a plain registry of name -> factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..git import Git
    from ..plan import Plan


@dataclass(frozen=True)
class PrRequest:
    """The PR wtrun wants for a task's branch."""

    task_id: str
    head: str
    base: str
    title: str
    body: str
    draft: bool = False
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrRef:
    number: int | None
    url: str | None
    state: str = "open"  # open | merged | closed


@dataclass(frozen=True)
class PrStatus:
    """A PR as the provider sees it now (read by `wtrun sync`)."""

    state: str  # open | merged | closed
    base: str | None


@dataclass(frozen=True)
class Feedback:
    """One piece of feedback on a PR: a review comment on a line, a review's body, a
    conversation comment, or a failed check. `key` names it for good (to address it once);
    `trusted` says that its author may write to the repository (checks are the
    repository's own)."""

    key: str
    kind: str  # line | review | comment | check | status
    author: str | None
    body: str
    created: str | None = None  # ISO 8601, as the forge wrote it
    path: str | None = None
    line: int | None = None
    check: str | None = None  # the failed check's name (a check run's, a status's context)
    url: str | None = None
    bot: bool = False
    trusted: bool = False


class Provider(Protocol):
    name: str
    makes_prs: bool

    def preflight(self) -> None:
        """Fail early (before anything is pushed) when PRs cannot be opened."""

    def open_or_update(self, request: PrRequest) -> PrRef:
        """The open PR of `request.head`, updated to match it; or a new one."""

    def update_body(self, task_id: str, number: int, body: str) -> None: ...

    # -- used by `wtrun sync` -------------------------------------------------------------

    def pr_status(self, task_id: str, number: int) -> PrStatus | None:
        """The PR's state and base now; None when the provider keeps no PRs."""

    def retarget(self, task_id: str, number: int, base: str) -> None:
        """Change the PR's base branch."""

    def open_prs_into(self, branch: str) -> list[int]:
        """Numbers of the open PRs whose base is `branch` (before deleting it)."""

    def delete_branch(self, branch: str) -> bool:
        """Delete `branch` on the remote; False when it was already gone."""

    # -- used by `wtrun revise` -----------------------------------------------------------

    def feedback(
        self, task_id: str, number: int, head: str, *, since: str, reviews: bool, checks: bool
    ) -> list[Feedback]:
        """Review feedback on the PR made at or after `since` (ISO 8601, UTC), and the failed
        checks of commit `head`; each says whether its author may write to the repository."""

    def comment(self, task_id: str, number: int, body: str) -> str | None:
        """Add a comment to the PR's conversation; returns its URL (or where it was kept)."""


def make(plan: Plan, git: Git, records: Path) -> Provider:
    """The plan's provider; `records` is the plan's records folder (the local PRs live there).
    Providers never write the run records: their callers record what they answer."""
    factories: dict[str, Callable[[Plan, Git, Path], Provider]] = {
        "github": _github,
        "local": _local,
        "none": _none,
    }
    return factories[plan.pr.provider](plan, git, records)


def _github(plan: Plan, git: Git, records: Path) -> Provider:
    from .github import GitHubProvider

    return GitHubProvider(plan, git)


def _local(plan: Plan, git: Git, records: Path) -> Provider:
    from .local import LocalProvider

    return LocalProvider(records / "prs", git, plan.remote)


def _none(plan: Plan, git: Git, records: Path) -> Provider:
    from .local import NoProvider

    return NoProvider(git, plan.remote)
