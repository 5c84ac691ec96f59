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
