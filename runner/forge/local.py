"""`local`: PRs kept as files beside the run's records; `none`: push only.

A local PR is `prs/<number>.json` (its head, base, state, title and body) with a Markdown
view of its text at `prs/<task>.md`. Numbers come from a counter file and are never reused,
not even after `wtrun clean` forgets the tasks: as on a forge, #3 is always the same PR.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WtrunError
from ..state import write_atomic
from . import Feedback, PrRef, PrRequest, PrStatus

if TYPE_CHECKING:
    from ..git import Git

PR_STATES = ("open", "merged", "closed")


@dataclass(frozen=True)
class LocalPr:
    number: int
    task_id: str
    head: str
    base: str
    title: str
    body: str
    state: str = "open"
    draft: bool = False
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LocalPr:
        data = dict(data, labels=tuple(data["labels"]), reviewers=tuple(data["reviewers"]))
        return cls(**data)


class LocalPrs:
    """The folder of local PRs: one JSON file each, and the counter of their numbers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, number: int) -> LocalPr:
        try:
            data = json.loads((self.folder / f"{number}.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WtrunError(f"local PR #{number} is not in {self.folder}") from None
        return LocalPr.from_json(data)

    def all(self) -> list[LocalPr]:
        if not self.folder.is_dir():
            return []
        found = [
            LocalPr.from_json(json.loads(p.read_text(encoding="utf-8"))) for p in self._files()
        ]
        return sorted(found, key=lambda pr: pr.number)

    def _files(self) -> list[Path]:
        return [p for p in self.folder.glob("*.json") if p.stem.isdigit()]

    def next_number(self) -> int:
        counter = self.folder / "last-number"
        try:
            last = int(counter.read_text(encoding="utf-8"))
        except FileNotFoundError:
            last = max((int(p.stem) for p in self._files()), default=0)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(counter, f"{last + 1}\n")
        return last + 1

    def save(self, pr: LocalPr) -> PrRef:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.folder / f"{pr.number}.json", json.dumps(asdict(pr), indent=1) + "\n")
        view = self.folder / f"{pr.task_id}.md"
        write_atomic(view, _markdown(pr))
        return PrRef(pr.number, view.as_uri(), pr.state)


def _markdown(pr: LocalPr) -> str:
    meta = [
        f"# #{pr.number} {pr.title}",
        "",
        f"- head: `{pr.head}`",
        f"- base: `{pr.base}`",
        f"- state: {pr.state}",
        f"- draft: {'yes' if pr.draft else 'no'}",
    ]
    if pr.labels:
        meta.append(f"- labels: {', '.join(pr.labels)}")
    if pr.reviewers:
        meta.append(f"- reviewers: {', '.join(pr.reviewers)}")
    return "\n".join(meta) + "\n\n" + pr.body


def set_pr_state(folder: Path, number: int, state: str) -> None:
    """Mark a local PR merged or closed (or open again), as a reviewer would on a forge;
    `wtrun sync` reads it from there."""
    if state not in PR_STATES:
        raise WtrunError(f"PR state {state!r} is not one of {', '.join(PR_STATES)}")
    prs = LocalPrs(folder)
    prs.save(replace(prs.get(number), state=state))


def _delete_remote_branch(git: Git | None, remote: str, branch: str) -> bool:
    if git is None:
        raise WtrunError(f"cannot delete branch {branch}: no repository given")
    if not git("ls-remote", "--heads", remote, f"refs/heads/{branch}").strip():
        return False
    git("push", "--quiet", remote, "--delete", f"refs/heads/{branch}")
    return True


class LocalProvider:
    """Push, and keep each PR where `wtrun status` and the reviewer find it: in files."""

    name = "local"
    makes_prs = True

    def __init__(self, folder: Path, git: Git | None = None, remote: str = "origin") -> None:
        self.prs = LocalPrs(folder)
        self.git = git
        self.remote = remote

    def preflight(self) -> None:
        return None

    def open_or_update(self, request: PrRequest) -> PrRef:
        existing = next(
            (pr for pr in self.prs.all() if pr.head == request.head and pr.state == "open"), None
        )
        number = existing.number if existing is not None else self.prs.next_number()
        return self.prs.save(
            LocalPr(
                number=number,
                task_id=request.task_id,
                head=request.head,
                base=request.base,
                title=request.title,
                body=request.body,
                draft=request.draft,
                labels=request.labels,
                reviewers=request.reviewers,
            )
        )

    def update_body(self, task_id: str, number: int, body: str) -> None:
        self.prs.save(replace(self.prs.get(number), body=body))

    def pr_status(self, task_id: str, number: int) -> PrStatus:
        pr = self.prs.get(number)
        return PrStatus(pr.state, pr.base)

    def retarget(self, task_id: str, number: int, base: str) -> None:
        self.prs.save(replace(self.prs.get(number), base=base))

    def merged(self, number: int, base: str) -> None:
        """Its branch was found merged into `base` by hand (`wtrun sync`): as a forge would
        have marked it."""
        self.prs.save(replace(self.prs.get(number), state="merged", base=base))

    def open_prs_into(self, branch: str) -> list[int]:
        return [pr.number for pr in self.prs.all() if pr.base == branch and pr.state == "open"]

    def delete_branch(self, branch: str) -> bool:
        return _delete_remote_branch(self.git, self.remote, branch)

    def feedback(
        self, task_id: str, number: int, head: str, *, since: str, reviews: bool, checks: bool
    ) -> list[Feedback]:
        return []  # nobody reviews a local PR through wtrun

    def comment(self, task_id: str, number: int, body: str) -> str | None:
        """Kept beside the PR's text, in `prs/<number>.comments.md`, newest last."""
        path = self.prs.folder / f"{number}.comments.md"
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        write_atomic(path, old + ("\n---\n\n" if old else "") + body.rstrip("\n") + "\n")
        return path.as_uri()


class NoProvider:
    """`none`: branches are pushed; no PR is opened or recorded."""

    name = "none"
    makes_prs = False

    def __init__(self, git: Git | None = None, remote: str = "origin") -> None:
        self.git = git
        self.remote = remote

    def preflight(self) -> None:
        return None

    def open_or_update(self, request: PrRequest) -> PrRef:
        return PrRef(None, None)

    def update_body(self, task_id: str, number: int, body: str) -> None:
        return None

    def pr_status(self, task_id: str, number: int) -> PrStatus | None:
        return None

    def retarget(self, task_id: str, number: int, base: str) -> None:
        return None

    def open_prs_into(self, branch: str) -> list[int]:
        return []

    def delete_branch(self, branch: str) -> bool:
        return _delete_remote_branch(self.git, self.remote, branch)

    def feedback(
        self, task_id: str, number: int, head: str, *, since: str, reviews: bool, checks: bool
    ) -> list[Feedback]:
        return []

    def comment(self, task_id: str, number: int, body: str) -> str | None:
        return None
