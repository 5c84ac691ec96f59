"""GitHub's REST API through `gh api`: pull requests, labels, reviewers, branches.

Only `gh api` is used: `gh pr create`, `gh pr list` and `gh auth status` speak GraphQL, and
their output is not a stable contract. `gh api` never retries, so this module does: on 5xx, on a
rate limit (403/429 with `retry-after`, an exhausted `x-ratelimit-remaining`, or GitHub's
"secondary rate limit" message), and when no HTTP answer came back at all. Every call runs with
`--include`, so the status line and headers come back even when gh exits 1 on an error status.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from .. import proc
from ..errors import WtrunError

_GITHUB = "github.com"
_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_STATUS_LINE = re.compile(r"HTTP/[0-9.]+ (\d{3})(?: (.*))?")
_SCP_URL = re.compile(r"(?:[^@/:]+@)?(?P<host>[^@/:]+):(?P<path>(?!/).+)")
_URL_SCHEMES = ("https", "http", "ssh", "git", "git+ssh", "ssh+git")
_WRITERS = ("admin", "maintain", "write")
_MAX_PAGES = 10
# gh's exit code when it has no token for the host: it sends no request at all.
_GH_NOT_LOGGED_IN = 4


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str  # the web page (`html_url`), not the API URL
    state: str  # "open" or "closed"; a merged pull request is "closed" and `merged`
    merged: bool
    base: str
    head: str
    head_sha: str
    title: str
    body: str
    draft: bool


class GitHubError(WtrunError):
    """GitHub answered a request with an error status."""

    def __init__(
        self, text: str, *, status: int, message: str, details: Sequence[str], retried: bool
    ) -> None:
        super().__init__(text)
        self.status = status
        self.message = message
        self.details = list(details)
        # An earlier attempt of this call failed transiently: a POST may have taken effect.
        self.retried = retried


@dataclass(frozen=True)
class _Response:
    status: int
    reason: str
    headers: dict[str, str]  # names lower-cased
    data: Any  # parsed JSON, the raw text when it is not JSON, None when empty


class GitHubApi:
    """One repository's pull requests, as the user `gh` is logged in as (or `GH_TOKEN`)."""

    def __init__(
        self,
        repository: str,
        host: str = _GITHUB,
        env: Mapping[str, str] | None = None,
        *,
        attempts: int = 5,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 120.0,
    ) -> None:
        """`env` is the whole environment gh runs with (default: wtrun's, cleaned).
        Waits between attempts double from `backoff` seconds; a `retry-after` is honoured;
        no wait is longer than `max_wait`."""
        _check_repository(repository, "repository")
        self.repository = repository
        self.host = host
        self.owner = repository.split("/", 1)[0]
        base = proc.clean_env() if env is None else dict(env)
        # A forced terminal makes gh colour the headers and pretty-print the body.
        for name in ("GH_FORCE_TTY", "CLICOLOR_FORCE"):
            base.pop(name, None)
        base.update({"GH_PROMPT_DISABLED": "1", "GH_NO_UPDATE_NOTIFIER": "1", "NO_COLOR": "1"})
        self._env = base
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._max_wait = max_wait
        self._sleep = sleep
        self._timeout = timeout

    @property
    def _where(self) -> str:
        return self.repository if self.host == _GITHUB else f"{self.host}/{self.repository}"

    def _in(self, action: str) -> str:
        return f"{action} in {self._where}"

    # -- the API -------------------------------------------------------------------------

    def user(self) -> str:
        """The login gh acts as; a clear error when it has no valid token (login preflight)."""
        data = self._call("GET", "user", action=f"cannot log in to GitHub at {self.host}")
        return _str(data, "login")

    def find_open_pr(self, head_branch: str) -> PullRequest | None:
        """The open pull request from `head_branch` of this repository, if there is one."""
        query = urlencode(
            {"head": f"{self.owner}:{head_branch}", "state": "open", "per_page": "100"}
        )
        action = self._in(f"cannot look up pull requests for branch {_q(head_branch)}")
        data = self._call("GET", f"repos/{self.repository}/pulls?{query}", action=action)
        if not isinstance(data, list):
            raise self._unexpected("a list of pull requests", data)
        for item in data:
            pull = self._pull(item)
            # Double-check: GitHub silently ignores a `head` filter it cannot parse.
            if pull.head == head_branch and _head_repo(item).lower() == self.repository.lower():
                return pull
        return None

    def open_prs_into(self, base_branch: str) -> list[PullRequest]:
        """The open pull requests whose base is `base_branch` (the first 100)."""
        query = urlencode({"base": base_branch, "state": "open", "per_page": "100"})
        action = self._in(f"cannot look up pull requests into {_q(base_branch)}")
        data = self._call("GET", f"repos/{self.repository}/pulls?{query}", action=action)
        if not isinstance(data, list):
            raise self._unexpected("a list of pull requests", data)
        return [pull for pull in map(self._pull, data) if pull.base == base_branch]

    def get_pr(self, number: int) -> PullRequest:
        return self._pull(
            self._call(
                "GET",
                f"repos/{self.repository}/pulls/{number}",
                action=self._in(f"cannot read pull request #{number}"),
            )
        )

    def create_pr(self, title: str, head: str, base: str, body: str, draft: bool) -> PullRequest:
        action = self._in(f"cannot open a pull request from {_q(head)} into {_q(base)}")
        payload = {"title": title, "head": head, "base": base, "body": body, "draft": draft}
        try:
            data = self._call(
                "POST",
                f"repos/{self.repository}/pulls",
                payload,
                action=action,
                base=base,
                head=head,
            )
        except GitHubError as e:
            # A 5xx can come after GitHub made the pull request; the retry then finds it there.
            if e.retried and e.status == 422 and any("already exists" in d for d in e.details):
                existing = self.find_open_pr(head)
                if existing is not None and existing.base == base:
                    return existing
            raise
        return self._pull(data)

    def update_pr(
        self,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        base: str | None = None,
        state: str | None = None,
    ) -> PullRequest:
        """Change what is given; `state` is "open" or "closed". Drafts cannot be changed here:
        the REST API ignores `draft` on update (only GraphQL can mark ready for review)."""
        payload = {
            k: v
            for k, v in (("title", title), ("body", body), ("base", base), ("state", state))
            if v is not None
        }
        if not payload:
            return self.get_pr(number)
        action = self._in(f"cannot update pull request #{number}")
        return self._pull(
            self._call(
                "PATCH",
                f"repos/{self.repository}/pulls/{number}",
                payload,
                action=action,
                base=base,
            )
        )

    def add_labels(self, number: int, labels: Sequence[str]) -> list[str]:
        """Adds labels (GitHub creates missing ones); returns all labels the PR now has."""
        if not labels:
            return []
        data = self._call(
            "POST",
            f"repos/{self.repository}/issues/{number}/labels",
            {"labels": list(labels)},
            action=self._in(f"cannot add labels to pull request #{number}"),
        )
        if not isinstance(data, list):
            raise self._unexpected("a list of labels", data)
        return [_str(label, "name") for label in data]

    def request_reviewers(self, number: int, reviewers: Sequence[str]) -> None:
        """Requests reviews from users, and from teams written "org/team-slug"."""
        users = [r for r in reviewers if "/" not in r]
        teams = [r.split("/", 1)[1] for r in reviewers if "/" in r]
        if not users and not teams:
            return
        payload: dict[str, Any] = {"reviewers": users}
        if teams:
            payload["team_reviewers"] = teams
        self._call(
            "POST",
            f"repos/{self.repository}/pulls/{number}/requested_reviewers",
            payload,
            action=self._in(f"cannot request reviewers for pull request #{number}"),
        )

    def delete_branch(self, branch: str) -> bool:
        """Deletes the branch on GitHub; False when it was already gone. GitHub closes open
        pull requests based on a branch deleted this way: retarget them first."""
        try:
            self._call(
                "DELETE",
                f"repos/{self.repository}/git/refs/heads/{quote(branch)}",
                action=self._in(f"cannot delete branch {_q(branch)}"),
            )
        except GitHubError as e:
            if e.status == 422 and e.message == "Reference does not exist":
                return False
            raise
        return True

    # -- review feedback (`wtrun revise`) -------------------------------------------------

    def review_comments(self, number: int, since: str) -> list[dict[str, Any]]:
        """Review comments on the PR's lines, updated at or after `since`."""
        return self._pages(
            f"repos/{self.repository}/pulls/{number}/comments",
            {"since": since, "sort": "created", "direction": "asc"},
            self._in(f"cannot read the review comments of pull request #{number}"),
        )

    def reviews(self, number: int) -> list[dict[str, Any]]:
        return self._pages(
            f"repos/{self.repository}/pulls/{number}/reviews",
            {},
            self._in(f"cannot read the reviews of pull request #{number}"),
        )

    def issue_comments(self, number: int, since: str) -> list[dict[str, Any]]:
        """The PR's conversation comments, updated at or after `since`."""
        return self._pages(
            f"repos/{self.repository}/issues/{number}/comments",
            {"since": since},
            self._in(f"cannot read the comments of pull request #{number}"),
        )

    def add_comment(self, number: int, body: str) -> str:
        """Comments on the PR's conversation; returns the comment's web URL."""
        data = self._call(
            "POST",
            f"repos/{self.repository}/issues/{number}/comments",
            {"body": body},
            action=self._in(f"cannot comment on pull request #{number}"),
        )
        return _str(data, "html_url")

    def check_runs(self, ref: str) -> list[dict[str, Any]]:
        """Every check run on `ref`, page after page (a monorepo's CI can post over 100)."""
        runs: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            query = urlencode({"per_page": "100", "page": str(page)})
            data = self._call(
                "GET",
                f"repos/{self.repository}/commits/{quote(ref)}/check-runs?{query}",
                action=self._in(f"cannot read the check runs of {ref[:12]}"),
            )
            if not isinstance(data, dict) or not isinstance(data.get("check_runs"), list):
                raise self._unexpected("a list of check runs", data)
            runs += [run for run in data["check_runs"] if isinstance(run, dict)]
            total = data.get("total_count")
            if len(data["check_runs"]) < 100 or (isinstance(total, int) and len(runs) >= total):
                break
        return runs

    def statuses(self, ref: str) -> list[dict[str, Any]]:
        """The latest status of each context on `ref` (the combined status)."""
        query = urlencode({"per_page": "100"})
        data = self._call(
            "GET",
            f"repos/{self.repository}/commits/{quote(ref)}/status?{query}",
            action=self._in(f"cannot read the commit statuses of {ref[:12]}"),
        )
        if not isinstance(data, dict) or not isinstance(data.get("statuses"), list):
            raise self._unexpected("a combined status", data)
        return [status for status in data["statuses"] if isinstance(status, dict)]

    def can_write(self, login: str) -> bool:
        """Whether `login` has write, maintain or admin permission on the repository."""
        try:
            data = self._call(
                "GET",
                f"repos/{self.repository}/collaborators/{quote(login)}/permission",
                action=self._in(f"cannot read the permission of {_q(login)}"),
            )
        except GitHubError as e:
            if e.status == 404:  # not a user GitHub knows, or not a collaborator
                return False
            raise
        if not isinstance(data, dict):
            return False
        # `permission` folds maintain into write; `role_name` is the role itself.
        return data.get("role_name") in _WRITERS or data.get("permission") in _WRITERS

    def _pages(self, endpoint: str, params: dict[str, str], action: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            query = urlencode({**params, "per_page": "100", "page": str(page)})
            data = self._call("GET", f"{endpoint}?{query}", action=action)
            if not isinstance(data, list):
                raise self._unexpected("a list", data)
            items += [item for item in data if isinstance(item, dict)]
            if len(data) < 100:
                break
        return items

    # -- one call, with retries ----------------------------------------------------------

    def _call(
        self,
        method: str,
        endpoint: str,
        payload: Any = None,
        *,
        action: str,
        base: str | None = None,
        head: str | None = None,
    ) -> Any:
        argv = [
            "gh",
            "api",
            "--include",
            "--hostname",
            self.host,
            "--method",
            method,
            "-H",
            "Accept: application/vnd.github+json",
            "-H",
            "X-GitHub-Api-Version: 2022-11-28",
            endpoint,
        ]
        stdin = None
        if payload is not None:
            argv += ["--input", "-"]
            stdin = json.dumps(payload)
        retried = False
        for attempt in range(1, self._attempts + 1):
            result = proc.run(argv, env=self._env, input=stdin, check=False, timeout=self._timeout)
            response = _parse(result.stdout)
            last = attempt == self._attempts
            if response is None:
                if result.returncode == 0:
                    raise self._unexpected("an HTTP answer", result.stdout)
                if result.returncode == _GH_NOT_LOGGED_IN:
                    raise WtrunError(
                        f"{action}: gh has no token for {self.host}; {self._login_fix()}"
                    )
                if "Usage:" in result.stderr:
                    # gh refused its own command line (a gh too old for a flag): no retry.
                    raise WtrunError(
                        f"{action}: gh refused the command (exit code "
                        f"{result.returncode}); update gh (https://cli.github.com)"
                        + proc.tail(result.stderr.split("Usage:")[0])
                    )
                if last:
                    tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
                    raise WtrunError(
                        f"{action}: no answer from {self.host} after {tries} "
                        f"(gh exited with code {result.returncode}); check the network, "
                        "then run again" + proc.tail(result.stderr)
                    )
                wait = self._backoff * 2.0 ** (attempt - 1)
            elif response.status < 400:
                return response.data
            else:
                wait_or_none = self._retry_wait(response, attempt)
                if wait_or_none is None or last:
                    raise self._error(action, response, attempt, retried, base=base, head=head)
                wait = wait_or_none
            retried = True
            self._sleep(min(max(wait, 0.0), self._max_wait))
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_wait(self, response: _Response, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when trying again cannot help."""
        backoff = self._backoff * 2.0 ** (attempt - 1)
        headers = response.headers
        retry_after = _seconds(headers.get("retry-after"))
        if response.status >= 500:
            return retry_after if retry_after is not None else backoff
        if response.status not in (403, 429):
            return None
        if retry_after is not None:
            return retry_after
        if headers.get("x-ratelimit-remaining") == "0":
            reset = _seconds(headers.get("x-ratelimit-reset"))
            if reset is not None:
                return reset - time.time() + 1
        if "secondary rate limit" in _message(response).lower():
            # GitHub's advice without a retry-after: wait at least a minute.
            return max(backoff, 60.0)
        return backoff if response.status == 429 else None

    def _error(
        self,
        action: str,
        response: _Response,
        attempt: int,
        retried: bool,
        *,
        base: str | None,
        head: str | None,
    ) -> GitHubError:
        message = _message(response)
        details = _details(response.data)
        text = f"{action}: GitHub answered HTTP {response.status} {_q(message)}"
        if details:
            text += f" ({'; '.join(details)})"
        if attempt > 1:
            text += f" {attempt} times"
        fix = self._fix(response, details, base=base, head=head)
        if fix:
            text += f"; {fix}"
        return GitHubError(
            text, status=response.status, message=message, details=details, retried=retried
        )

    def _fix(
        self, response: _Response, details: Sequence[str], *, base: str | None, head: str | None
    ) -> str | None:
        status = response.status
        fields = _error_fields(response.data)
        if status == 401:
            return self._login_fix()
        if status == 404:
            return (
                f"check pr.repository ({_q(self.repository)}) and that the token can see it "
                "(GitHub answers 404, not 403, to a token without access)"
            )
        if status == 403 and response.headers.get("x-ratelimit-remaining") == "0":
            return "the API rate limit is used up; run again after it resets"
        if status == 403 and "rate limit" in _message(response).lower():
            return "GitHub is rate-limiting this token; run again in a few minutes"
        if status == 403:
            return (
                "the token needs write access to contents and pull requests (in GitHub "
                "Actions: `permissions: {contents: write, pull-requests: write}`)"
            )
        if status >= 500 or status == 429:
            return "GitHub may be having trouble (https://www.githubstatus.com); run again later"
        if status == 422 and ("base", "invalid") in fields:
            named = f" {_q(base)}" if base else ""
            return f"push the base branch{named} to the remote first"
        if status == 422 and ("head", "invalid") in fields:
            named = f" {_q(head)}" if head else ""
            return f"push the branch{named} to the remote first"
        if status == 422 and any(d.startswith("No commits between") for d in details):
            return "the branch has no commits beyond its base: there is nothing to review"
        return None

    def _login_fix(self) -> str:
        if self.host == _GITHUB or self.host.endswith(".ghe.com"):
            return "set GH_TOKEN to a valid token, or run `gh auth login`"
        # gh reads GH_TOKEN for github.com and *.ghe.com only.
        return (
            f"set GH_ENTERPRISE_TOKEN to a valid token for {self.host}, or run "
            f"`gh auth login --hostname {self.host}`"
        )

    def _unexpected(self, wanted: str, got: Any) -> WtrunError:
        shown = json.dumps(got)[:200] if not isinstance(got, str) else got[:200]
        return WtrunError(
            f"unexpected answer from GitHub ({self._where}): wanted {wanted}, got {_q(shown)}"
        )

    def _pull(self, data: Any) -> PullRequest:
        try:
            head = data["head"]
            base = data["base"]
            merged = data["merged"] if "merged" in data else data["merged_at"] is not None
            return PullRequest(
                number=int(data["number"]),
                url=str(data["html_url"]),
                state=str(data["state"]),
                merged=bool(merged),
                base=str(base["ref"]),
                head=str(head["ref"]),
                head_sha=str(head["sha"]),
                title=str(data["title"]),
                body=str(data["body"] or ""),
                draft=bool(data.get("draft", False)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise self._unexpected("a pull request", data) from e


def _q(value: str) -> str:
    return f'"{value}"'


def _parse(stdout: str) -> _Response | None:
    """`gh api --include` output: status line, headers, blank line, body; None if absent."""
    status_line, _, rest = stdout.partition("\n")
    match = _STATUS_LINE.fullmatch(status_line.strip())
    if match is None:
        return None
    headers: dict[str, str] = {}
    lines = rest.split("\n")
    index = 0
    for index, line in enumerate(lines):  # noqa: B007 - `index` is used after the loop
        line = line.rstrip("\r")
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        index = len(lines)
    text = "\n".join(lines[index + 1 :])
    data: Any = None
    if text.strip():
        try:
            data = json.loads(text)
        except ValueError:
            data = text
    return _Response(int(match[1]), (match[2] or "").strip(), headers, data)


def _message(response: _Response) -> str:
    data = response.data
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    if isinstance(data, str) and data.strip() and not data.lstrip().startswith("<"):
        return data.strip().splitlines()[0][:200]
    return response.reason or f"HTTP {response.status}"


def _details(data: Any) -> list[str]:
    """GitHub's `errors[]`, each as its message or as "field: code"."""
    if not isinstance(data, dict) or not isinstance(data.get("errors"), list):
        return []
    details = []
    for error in data["errors"]:
        if isinstance(error, str):
            details.append(error)
        elif isinstance(error, dict):
            if isinstance(error.get("message"), str):
                details.append(error["message"])
            elif error.get("field"):
                details.append(f"{error['field']}: {error.get('code', 'invalid')}")
    return details


def _error_fields(data: Any) -> set[tuple[str, str]]:
    if not isinstance(data, dict) or not isinstance(data.get("errors"), list):
        return set()
    return {
        (str(e.get("field")), str(e.get("code"))) for e in data["errors"] if isinstance(e, dict)
    }


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date; GitHub sends seconds


def _str(data: Any, key: str) -> str:
    if isinstance(data, dict) and isinstance(data.get(key), str):
        return str(data[key])
    raise WtrunError(f"unexpected answer from GitHub: no {_q(key)} in {json.dumps(data)[:200]}")


def _head_repo(item: Any) -> str:
    repo = item["head"].get("repo") or {}
    return str(repo.get("full_name", ""))


# -- which repository ------------------------------------------------------------------------


def repository_from_url(url: str) -> tuple[str, str]:
    """(host, "owner/name") of a GitHub or GitHub Enterprise remote URL."""
    host, path = _split_url(url)
    if not host or "." not in host:
        why = (
            f"host {_q(host)} looks like an SSH alias (from ~/.ssh/config), not a GitHub host"
            if host
            else "it is not a GitHub URL"
        )
        raise WtrunError(
            f"cannot tell the GitHub repository from remote URL {_q(url)}: {why}; "
            'set pr.repository in the plan (e.g. "acme/shop")'
        )
    parts = path.strip("/").removesuffix(".git").split("/")
    repository = "/".join(parts)
    if len(parts) != 2 or not _valid_repository(repository):
        raise WtrunError(
            f"cannot tell the GitHub repository from remote URL {_q(url)}: its path "
            f"{_q(path)} is not OWNER/NAME; set pr.repository in the plan "
            '(e.g. "acme/shop")'
        )
    return _canonical_host(host), repository


def resolve_repository(
    configured: str | None, env: Mapping[str, str], remote_url: str | None
) -> tuple[str, str]:
    """(host, "owner/name") from pr.repository, else GITHUB_REPOSITORY (on the host of
    GITHUB_SERVER_URL), else the remote's URL."""
    server = env.get("GITHUB_SERVER_URL", "").strip()
    server_host = (urlsplit(server).hostname or "") if server else ""
    if configured:
        if "://" in configured or "@" in configured:
            return repository_from_url(configured)
        parts = configured.strip("/").split("/")
        if len(parts) == 3 and "." in parts[0]:
            _check_repository("/".join(parts[1:]), "pr.repository")
            return _canonical_host(parts[0].lower()), "/".join(parts[1:])
        _check_repository(configured, "pr.repository")
        return _default_host(server_host, remote_url), configured
    from_env = env.get("GITHUB_REPOSITORY", "").strip()
    if from_env:
        _check_repository(from_env, "GITHUB_REPOSITORY")
        return _canonical_host(server_host or _GITHUB), from_env
    if remote_url:
        try:
            return repository_from_url(remote_url)
        except WtrunError:
            remote = f"the remote's URL {_q(remote_url)} is not a GitHub URL"
    else:
        remote = "the remote has no URL"
    raise WtrunError(
        "cannot tell which GitHub repository to open pull requests in: pr.repository is not "
        f"set, GITHUB_REPOSITORY is not set, and {remote}; set pr.repository in the plan "
        '(e.g. "acme/shop"), or use pr.provider "local" or "none"'
    )


def _split_url(url: str) -> tuple[str, str]:
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme.lower() not in _URL_SCHEMES:
            return "", ""
        return (parts.hostname or "").lower(), parts.path
    match = _SCP_URL.fullmatch(url)
    if match is None or len(match["host"]) == 1:  # "C:/x" is a Windows path
        return "", ""
    return match["host"].lower(), match["path"]


def _canonical_host(host: str) -> str:
    # GitHub's SSH-over-443 endpoint and the www alias are github.com.
    return _GITHUB if host in ("ssh.github.com", "www.github.com", "api.github.com") else host


def _default_host(server_host: str, remote_url: str | None) -> str:
    if server_host:
        return _canonical_host(server_host)
    if remote_url:
        host, _ = _split_url(remote_url)
        if host and "." in host:
            return _canonical_host(host)
    return _GITHUB


def _valid_repository(value: str) -> bool:
    owner, _, name = value.partition("/")
    return bool(_OWNER.fullmatch(owner) and _NAME.fullmatch(name) and name not in (".", ".."))


def _check_repository(value: str, source: str) -> None:
    if not _valid_repository(value):
        raise WtrunError(
            f"{source} {_q(value)} is not a GitHub repository; write it as "
            '"OWNER/NAME" (e.g. "acme/shop")'
        )
