"""`local`: PRs kept in the run's records and as Markdown files; `none`: push only."""

from __future__ import annotations

from collections.abc import Sequence

from ..state import Store, write_atomic
from . import PrRef


class LocalProvider:
    """Push, and keep each PR's title, base and body where `wtrun status` shows them."""

    name = "local"
    makes_prs = True

    def __init__(self, store: Store) -> None:
        self.store = store
        self.folder = store.root / "prs"

    def preflight(self) -> None:
        return None

    def _number(self, task_id: str) -> int:
        record = self.store.record.task(task_id)
        if record.pr_number is not None:
            return record.pr_number
        used = [t.pr_number for t in self.store.record.tasks.values() if t.pr_number]
        return max(used, default=0) + 1

    def open_or_update(self, task_id: str, *, head: str, base: str, title: str, body: str,
                       draft: bool, labels: Sequence[str], reviewers: Sequence[str]) -> PrRef:
        number = self._number(task_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{task_id}.md"
        meta = [f"# #{number} {title}", "", f"- head: `{head}`", f"- base: `{base}`",
                f"- draft: {'yes' if draft else 'no'}"]
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


class NoProvider:
    """`none`: branches are pushed; no PR is opened or recorded."""

    name = "none"
    makes_prs = False

    def preflight(self) -> None:
        return None

    def open_or_update(self, task_id: str, *, head: str, base: str, title: str, body: str,
                       draft: bool, labels: Sequence[str], reviewers: Sequence[str]) -> PrRef:
        return PrRef(None, None)

    def update_body(self, task_id: str, number: int, body: str) -> None:
        return None
