"""`github`: PRs through the REST API with the `gh` CLI (its login, its hosts)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import proc
from ..git import Git
from ..plan import Plan
from . import Feedback, PrRef, PrRequest, PrStatus
from .github_api import GitHubApi, resolve_repository

_FAILED_RUNS = ("failure", "timed_out", "startup_failure", "action_required")
_FAILED_STATUSES = ("failure", "error")
_REVIEW_STATES = ("COMMENTED", "CHANGES_REQUESTED", "APPROVED")


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

    def feedback(
        self, task_id: str, number: int, head: str, *, since: str, reviews: bool, checks: bool
    ) -> list[Feedback]:
        found: list[Feedback] = []
        if reviews:
            found += [_line(c) for c in self.api.review_comments(number, since)]
            found += [
                _review(r)
                for r in self.api.reviews(number)
                if r.get("state") in _REVIEW_STATES and (r.get("body") or "").strip()
            ]
            found += [_comment(c) for c in self.api.issue_comments(number, since)]
            found = [f for f in found if (f.created or "") >= since]
        if checks:
            found += [_check(r) for r in self.api.check_runs(head) if _failed_run(r)]
            found += [
                _status(s, head)
                for s in self.api.statuses(head)
                if s.get("state") in _FAILED_STATUSES
            ]
        allowed: dict[str, bool] = {}
        for i, item in enumerate(found):
            if item.author is None:
                found[i] = _trusted(item, True)  # a check: the repository's own
            else:
                if item.author not in allowed:
                    allowed[item.author] = self.api.can_write(item.author)
                found[i] = _trusted(item, allowed[item.author])
        return found

    def comment(self, task_id: str, number: int, body: str) -> str | None:
        return self.api.add_comment(number, body)


def _trusted(item: Feedback, trusted: bool) -> Feedback:
    return replace(item, trusted=trusted)


def _user(data: dict[str, Any]) -> tuple[str | None, bool]:
    user = data.get("user") or {}
    login = user.get("login")
    bot = user.get("type") == "Bot" or str(login).endswith("[bot]")
    return (str(login) if login else None), bot


def _line(data: dict[str, Any]) -> Feedback:
    author, bot = _user(data)
    line = data.get("line") or data.get("original_line")
    return Feedback(
        key=f"review-comment:{data['id']}",
        kind="line",
        author=author,
        bot=bot,
        body=str(data.get("body") or ""),
        created=data.get("created_at"),
        path=data.get("path"),
        line=int(line) if line else None,
        url=data.get("html_url"),
    )


def _review(data: dict[str, Any]) -> Feedback:
    author, bot = _user(data)
    return Feedback(
        key=f"review:{data['id']}",
        kind="review",
        author=author,
        bot=bot,
        body=str(data.get("body") or ""),
        created=data.get("submitted_at"),
        url=data.get("html_url"),
    )


def _comment(data: dict[str, Any]) -> Feedback:
    author, bot = _user(data)
    return Feedback(
        key=f"issue-comment:{data['id']}",
        kind="comment",
        author=author,
        bot=bot,
        body=str(data.get("body") or ""),
        created=data.get("created_at"),
        url=data.get("html_url"),
    )


def _failed_run(data: dict[str, Any]) -> bool:
    return data.get("status") == "completed" and data.get("conclusion") in _FAILED_RUNS


def _check(data: dict[str, Any]) -> Feedback:
    output = data.get("output") or {}
    said = [str(output[k]).strip() for k in ("title", "summary") if output.get(k)]
    return Feedback(
        key=f"check-run:{data['id']}",
        kind="check",
        author=None,
        body="\n".join(said) or f"concluded {data.get('conclusion')}",
        created=data.get("completed_at"),
        check=str(data.get("name") or "check"),
        url=data.get("html_url") or data.get("details_url"),
    )


def _status(data: dict[str, Any], head: str) -> Feedback:
    return Feedback(
        key=f"status:{data.get('context')}@{head}",
        kind="status",
        author=None,
        body=str(data.get("description") or f"state {data.get('state')}"),
        created=data.get("updated_at"),
        check=str(data.get("context") or "status"),
        url=data.get("target_url"),
    )
