"""`local`: PRs kept in the run's records and as Markdown files; `none`: push only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import WtrunError
from ..state import Store, write_atomic
from . import PrRef, PrStatus

if TYPE_CHECKING:
    from ..git import Git

PR_STATES = ("open", "merged", "closed")


def set_pr_state(store: Store, task_id: str, state: str) -> None:
    """Mark a local PR merged or closed (or open again), as a reviewer would on a forge.
    The local provider has no server: its PR states live in the records."""
    if state not in PR_STATES:
        raise WtrunError(f"PR state {state!r} is not one of {', '.join(PR_STATES)}")
    record = store.record.tasks.get(task_id)
    if record is None or record.pr_number is None:
        raise WtrunError(f'task "{task_id}" has no local PR')
    store.pr_changed(task_id, state=state)


def _delete_remote_branch(git: Git | None, remote: str, branch: str) -> bool:
    if git is None:
        raise WtrunError(f"cannot delete branch {branch}: no repository given")
    if not git("ls-remote", "--heads", remote, f"refs/heads/{branch}").strip():
        return False
    git("push", "--quiet", remote, "--delete", f"refs/heads/{branch}")
    return True


class LocalProvider:
    """Push, and keep each PR's title, base and body where `wtrun status` shows them."""

    name = "local"
    makes_prs = True

    def __init__(self, store: Store, git: Git | None = None, remote: str = "origin") -> None:
        self.store = store
        self.folder = store.root / "prs"
        self.git = git
        self.remote = remote

    def preflight(self) -> None:
        return None

    def _number(self, task_id: str) -> int:
        record = self.store.record.task(task_id)
        if record.pr_number is not None:
            return record.pr_number
        used = [t.pr_number for t in self.store.record.tasks.values() if t.pr_number]
        return max(used, default=0) + 1

    def open_or_update(
        self,
        task_id: str,
        *,
        head: str,
        base: str,
        title: str,
        body: str,
        draft: bool,
        labels: Sequence[str],
        reviewers: Sequence[str],
    ) -> PrRef:
        number = self._number(task_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{task_id}.md"
        meta = [
            f"# #{number} {title}",
            "",
            f"- head: `{head}`",
            f"- base: `{base}`",
            f"- draft: {'yes' if draft else 'no'}",
        ]
        if labels:
            meta.append(f"- labels: {', '.join(labels)}")
        if reviewers:
            meta.append(f"- reviewers: {', '.join(reviewers)}")
        write_atomic(path, "\n".join(meta) + "\n\n" + body)
        return PrRef(number, path.as_uri())

    def update_body(self, task_id: str, number: int, body: str) -> None:
        path = self.folder / f"{task_id}.md"
        text = path.read_text(encoding="utf-8")
        head, _, _ = text.partition("\n\n- head:")
        meta_end = text.index("\n\n", len(head) + 2)
        write_atomic(path, text[: meta_end + 2] + body)

    def pr_status(self, task_id: str, number: int) -> PrStatus:
        record = self.store.record.task(task_id)
        return PrStatus(record.pr_state or "open", record.pr_base)

    def retarget(self, task_id: str, number: int, base: str) -> None:
        path = self.folder / f"{task_id}.md"
        if path.exists():
            lines = path.read_text(encoding="utf-8").split("\n")
            at = next((i for i, line in enumerate(lines) if line.startswith("- base: ")), None)
            if at is not None:
                lines[at] = f"- base: `{base}`"
                write_atomic(path, "\n".join(lines))
        self.store.pr_changed(task_id, base=base)

    def open_prs_into(self, branch: str) -> list[int]:
        return sorted(
            r.pr_number
            for r in self.store.record.tasks.values()
            if r.pr_number is not None and r.pr_base == branch and (r.pr_state or "open") == "open"
        )

    def delete_branch(self, branch: str) -> bool:
        return _delete_remote_branch(self.git, self.remote, branch)


class NoProvider:
    """`none`: branches are pushed; no PR is opened or recorded."""

    name = "none"
    makes_prs = False

    def __init__(self, git: Git | None = None, remote: str = "origin") -> None:
        self.git = git
        self.remote = remote

    def preflight(self) -> None:
        return None

    def open_or_update(
        self,
        task_id: str,
        *,
        head: str,
        base: str,
        title: str,
        body: str,
        draft: bool,
        labels: Sequence[str],
        reviewers: Sequence[str],
    ) -> PrRef:
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
