"""`github`: PRs through the REST API with the `gh` CLI (its login, its hosts)."""

from __future__ import annotations

from collections.abc import Sequence

from .. import proc
from ..git import Git
from ..plan import Plan
from . import PrRef, PrStatus
from .github_api import GitHubApi, resolve_repository


class GitHubProvider:
    name = "github"
    makes_prs = True

    def __init__(self, plan: Plan, git: Git) -> None:
        env = proc.clean_env()
        host, repository = resolve_repository(plan.pr.repository, env, git.remote_url(plan.remote))
        self.api = GitHubApi(repository, host, env)

    def preflight(self) -> None:
        self.api.user()

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
        existing = self.api.find_open_pr(head)
        if existing is None:
            pr = self.api.create_pr(title, head, base, body, draft)
            self.api.add_labels(pr.number, labels)
            self.api.request_reviewers(pr.number, reviewers)
            return PrRef(pr.number, pr.url)
        changes = {
            "title": title if existing.title != title else None,
            "body": body if existing.body != body else None,
            "base": base if existing.base != base else None,
        }
        if any(v is not None for v in changes.values()):
            existing = self.api.update_pr(existing.number, **changes)
        return PrRef(existing.number, existing.url)

    def update_body(self, task_id: str, number: int, body: str) -> None:
        current = self.api.get_pr(number)
        if current.body != body:
            self.api.update_pr(number, body=body)

    def pr_status(self, task_id: str, number: int) -> PrStatus:
        pr = self.api.get_pr(number)
        return PrStatus("merged" if pr.merged else pr.state, pr.base)

    def retarget(self, task_id: str, number: int, base: str) -> None:
        self.api.update_pr(number, base=base)

    def open_prs_into(self, branch: str) -> list[int]:
        return [pr.number for pr in self.api.open_prs_into(branch)]

    def delete_branch(self, branch: str) -> bool:
        return self.api.delete_branch(branch)
