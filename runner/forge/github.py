"""`github`: PRs through the REST API with the `gh` CLI (its login, its hosts)."""

from __future__ import annotations

from .. import proc
from ..git import Git
from ..plan import Plan
from . import PrRef, PrRequest, PrStatus
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

    def open_or_update(self, request: PrRequest) -> PrRef:
        existing = self.api.find_open_pr(request.head)
        if existing is None:
            pr = self.api.create_pr(
                request.title, request.head, request.base, request.body, request.draft
            )
            self.api.add_labels(pr.number, request.labels)
            self.api.request_reviewers(pr.number, request.reviewers)
            return PrRef(pr.number, pr.url)
        changes = {
            "title": request.title if existing.title != request.title else None,
            "body": request.body if existing.body != request.body else None,
            "base": request.base if existing.base != request.base else None,
        }
        if any(v is not None for v in changes.values()):
            existing = self.api.update_pr(existing.number, **changes)
        return PrRef(existing.number, existing.url)

    def update_body(self, task_id: str, number: int, body: str) -> None:
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
