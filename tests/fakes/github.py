"""A local GitHub REST API for the real `gh` CLI, backed by a real bare git repository.

    with FakeGitHub(bare_repo=bare, owner="acme", repo="shop") as gh:
        proc.run(["gh", "api", "user"], env=proc.clean_env(gh.env))
        gh.requests       # every request in order: method, path, query, JSON body, status
        gh.pulls          # number -> FakePull, the server's state
        gh.fail_next("POST", r"/repos/acme/shop/pulls", 502)

`gh` reaches it through the `http_unix_socket` setting of an isolated config directory: gh then
sends plain HTTP over the socket, with `Host: api.github.com` and paths like `/repos/o/r/pulls`
for github.com, or `Host: <host>` and `/api/v3/repos/o/r/pulls` for a GitHub Enterprise Server
host (`gh api --hostname <host>`); both are served. Branches are read from the bare repository
on every request (`git for-each-ref`), so pushes made by a test are visible at once, and a merge
is a real git merge pushed into it.

Response shapes and error bodies follow the REST API (version 2022-11-28). Where GitHub's
exact wording is not documented, messages are this fake's own and say so in a comment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

_DOCS = "https://docs.github.com/rest"
_SECONDARY = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from content "
    "creation. Please retry your request again later. If you reach out to GitHub Support for "
    "help, please include the request ID ABCD:1234:5678:9ABC:DEF0."
)
_GIT_LEAKS = ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_PREFIX")


class Request(NamedTuple):
    """One request as the server saw it. `path` is URL-decoded and keeps `/api/v3` if sent."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int


@dataclass
class FakePull:
    number: int
    title: str
    body: str | None
    head: str
    base: str
    head_sha: str
    base_sha: str
    user: str
    draft: bool = False
    state: str = "open"
    merged: bool = False
    merged_at: str | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    closed_at: str | None = None
    labels: list[str] = field(default_factory=list)
    requested_reviewers: list[str] = field(default_factory=list)
    requested_teams: list[str] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int
    handled: bool


class _Reply(NamedTuple):
    status: int
    body: Any  # JSON-able, or None for an empty body
    headers: dict[str, str] = {}  # noqa: RUF012 - NamedTuple default, never mutated


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, str]] | None = None,
        doc: str = _DOCS,
    ) -> None:
        super().__init__(message)
        body: dict[str, Any] = {"message": message}
        if errors is not None:
            body["errors"] = errors
        body["documentation_url"] = doc
        body["status"] = str(status)
        self.reply = _Reply(status, body)


def _validation(*errors: dict[str, str], doc: str = _DOCS) -> _ApiError:
    return _ApiError(422, "Validation Failed", list(errors), doc)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHub:
    """GitHub's REST endpoints for pull requests of one repository, over a unix socket."""

    def __init__(
        self,
        bare_repo: str | os.PathLike[str] | None = None,
        owner: str = "acme",
        repo: str = "shop",
        *,
        token: str = "test",
        login: str = "octocat",
        branches: Mapping[str, str] | Iterable[str] | None = None,
        default_branch: str = "main",
        collaborators: Iterable[str] | None = None,
        delete_branch_on_merge: bool = False,
    ) -> None:
        """`bare_repo` is the source of truth for branches; without one, `branches` (names, or
        name -> sha) are kept in memory. `collaborators=None` lets anyone be a reviewer."""
        self.bare_repo = Path(bare_repo).resolve() if bare_repo is not None else None
        self.owner = owner
        self.repo = repo
        self.token: str | None = token
        # A second token that may only read, as GitHub Actions' `contents: read` one: its
        # requests that write are refused.
        self.read_token: str | None = None
        self.login = login
        self.default_branch = default_branch
        self.collaborators = None if collaborators is None else {c.lower() for c in collaborators}
        self.delete_branch_on_merge = delete_branch_on_merge
        self.requests: list[Request] = []
        self.errors: list[str] = []  # the fake's own crashes, answered with 500
        self.pulls: dict[int, FakePull] = {}
        self.branches: dict[str, str] = {}
        if branches is not None:
            self.branches = (
                dict(branches)
                if isinstance(branches, Mapping)
                else {b: _fake_sha(b) for b in branches}
            )
        self._faults: list[_Fault] = []
        # Review feedback, as GitHub's JSON: pull number -> items; commit sha -> checks.
        self.review_comments: dict[int, list[dict[str, Any]]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.issue_comments: dict[int, list[dict[str, Any]]] = {}
        self.check_runs: dict[str, list[dict[str, Any]]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        # login -> role (admin, maintain, write, triage, read); anyone else reads (public).
        self.roles: dict[str, str] = {login.lower(): "admin"}
        self._next_id = 7000
        self._next_number = 1
        self._lock = threading.RLock()
        self._dir = Path(tempfile.mkdtemp(prefix="fakegh-", dir=_short_tmp()))
        self.socket_path = self._dir / "gh.sock"
        self._server: _UnixHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeGitHub:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.errors.clear()  # the test's own failure is the one to see
        self.stop()

    def start(self) -> None:
        self._server = _UnixHTTPServer(str(self.socket_path), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True, name="fake-github"
        )
        self._thread.start()
        config = self._dir / "config"
        config.mkdir(exist_ok=True)
        # `telemetry` exists since gh 2.8x; older versions ignore unknown keys.
        (config / "config.yml").write_text(
            f"version: 1\nhttp_unix_socket: {self.socket_path}\nprompt: disabled\n"
            "telemetry: disabled\n",
            encoding="utf-8",
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        shutil.rmtree(self._dir, ignore_errors=True)
        if self.errors:
            raise AssertionError("the fake GitHub crashed:\n" + "\n".join(self.errors))

    @property
    def env(self) -> dict[str, str]:
        """Variables that make the real `gh` talk to this server and to nothing else."""
        state = self._dir / "state"
        return {
            "GH_CONFIG_DIR": str(self._dir / "config"),
            "GH_TOKEN": self.token or "",
            # gh ignores GH_TOKEN for GitHub Enterprise Server hosts.
            "GH_ENTERPRISE_TOKEN": self.token or "",
            "GH_PROMPT_DISABLED": "1",
            "GH_NO_UPDATE_NOTIFIER": "1",
            "GH_NO_EXTENSION_UPDATE_NOTIFIER": "1",
            "GH_TELEMETRY": "false",
            "DO_NOT_TRACK": "1",
            "GH_SPINNER_DISABLED": "1",
            "NO_COLOR": "1",
            # gh keeps a device id and caches under these; keep them out of $HOME.
            "XDG_STATE_HOME": str(state),
            "XDG_CACHE_HOME": str(state / "cache"),
            "XDG_DATA_HOME": str(state / "data"),
        }

    # -- test controls -------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        times: int = 1,
        handled: bool = False,
    ) -> None:
        """Answer the next `times` matching requests with `status` instead.

        `path_regex` must match the whole path, without `/api/v3` and the query string.
        With `handled=True` the request is carried out first and only its answer is replaced,
        like a gateway that times out after the backend did the work. Without a body, a 403
        gets GitHub's secondary-rate-limit message and anything else the status phrase.
        """
        if body is None:
            message = _SECONDARY if status == 403 else HTTPStatus(status).phrase
            body = {"message": message, "documentation_url": _DOCS}
        with self._lock:
            self._faults.append(
                _Fault(
                    method.upper(),
                    re.compile(path_regex),
                    status,
                    body,
                    dict(headers or {}),
                    times,
                    handled,
                )
            )

    def add_pull(
        self,
        head: str,
        base: str,
        title: str = "",
        body: str | None = None,
        *,
        draft: bool = False,
        user: str | None = None,
    ) -> FakePull:
        """An open pull request made by someone else, without the API's checks."""
        with self._lock:
            branches = self._branches()
            return self._new_pull(
                head, base, title or head, body, draft, user or self.login, branches
            )

    def merge(self, number: int, method: str = "merge") -> str:
        """Merge like a reviewer pressing the button; returns the new commit of the base."""
        with self._lock:
            try:
                reply = self._merge(number, {"merge_method": method})
            except _ApiError as e:
                reply = e.reply
        if reply.status != 200:
            raise AssertionError(f"merge of #{number} refused: {reply.body}")
        return str(reply.body["sha"])

    # -- review feedback (test controls) -------------------------------------------------

    def set_role(self, login: str, role: str) -> None:
        self.roles[login.lower()] = role

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_review_comment(
        self, number: int, user: str, body: str, path: str, line: int, *, bot: bool = False
    ) -> dict[str, Any]:
        """A comment on a line of the pull request's diff, on its head commit."""
        with self._lock:
            pull, cid, now = self.pulls[number], self._id(), _now()
            head = self._branches().get(pull.head, pull.head_sha)
            api = f"{self._api}/repos/{self.owner}/{self.repo}"
            html = f"{self._web}/{self.owner}/{self.repo}/pull/{number}"
            item = {
                "url": f"{api}/pulls/comments/{cid}",
                "pull_request_review_id": cid + 1,
                "id": cid,
                "node_id": f"PRRC_fake{cid}",
                "diff_hunk": f"@@ -0,0 +1,{line} @@",
                "path": path,
                "commit_id": head,
                "original_commit_id": head,
                "user": self._user_json(user, kind="Bot" if bot else "User"),
                "body": body,
                "created_at": now,
                "updated_at": now,
                "html_url": f"{html}#discussion_r{cid}",
                "pull_request_url": f"{api}/pulls/{number}",
                "author_association": self._association(user),
                "start_line": None,
                "original_start_line": None,
                "start_side": None,
                "line": line,
                "original_line": line,
                "side": "RIGHT",
                "subject_type": "line",
            }
            self.review_comments.setdefault(number, []).append(item)
            return item

    def add_review(self, number: int, user: str, body: str, state: str = "COMMENTED") -> None:
        with self._lock:
            pull, rid = self.pulls[number], self._id()
            api = f"{self._api}/repos/{self.owner}/{self.repo}"
            html = f"{self._web}/{self.owner}/{self.repo}/pull/{number}"
            self.reviews.setdefault(number, []).append(
                {
                    "id": rid,
                    "node_id": f"PRR_fake{rid}",
                    "user": self._user_json(user),
                    "body": body,
                    "state": state,
                    "html_url": f"{html}#pullrequestreview-{rid}",
                    "pull_request_url": f"{api}/pulls/{number}",
                    "submitted_at": _now(),
                    "commit_id": self._branches().get(pull.head, pull.head_sha),
                    "author_association": self._association(user),
                }
            )

    def add_issue_comment(self, number: int, user: str, body: str) -> dict[str, Any]:
        with self._lock:
            return self._issue_comment(number, user, body)

    def add_check_run(
        self, sha: str, name: str, conclusion: str, title: str = "", summary: str = ""
    ) -> None:
        """A completed check run on commit `sha`."""
        with self._lock:
            rid, now = self._id(), _now()
            self.check_runs.setdefault(sha, []).append(
                {
                    "id": rid,
                    "head_sha": sha,
                    "node_id": f"CR_fake{rid}",
                    "external_id": "",
                    "url": f"{self._api}/repos/{self.owner}/{self.repo}/check-runs/{rid}",
                    "html_url": f"{self._web}/{self.owner}/{self.repo}/runs/{rid}",
                    "details_url": f"{self._web}/{self.owner}/{self.repo}/runs/{rid}",
                    "status": "completed",
                    "conclusion": conclusion,
                    "started_at": now,
                    "completed_at": now,
                    "output": {
                        "title": title or None,
                        "summary": summary or None,
                        "text": None,
                        "annotations_count": 0,
                        "annotations_url": f"{self._api}/repos/{self.owner}/{self.repo}"
                        f"/check-runs/{rid}/annotations",
                    },
                    "name": name,
                    "check_suite": {"id": rid + 1},
                    "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
                    "pull_requests": [],
                }
            )

    def add_status(self, sha: str, context: str, state: str, description: str = "") -> None:
        with self._lock:
            sid, now = self._id(), _now()
            self.statuses.setdefault(sha, []).insert(
                0,
                {
                    "url": f"{self._api}/repos/{self.owner}/{self.repo}/statuses/{sha}",
                    "avatar_url": None,
                    "id": sid,
                    "node_id": f"SC_fake{sid}",
                    "state": state,
                    "description": description or None,
                    "target_url": None,
                    "context": context,
                    "created_at": now,
                    "updated_at": now,
                },
            )

    def _association(self, login: str) -> str:
        role = self.roles.get(login.lower())
        return "NONE" if role is None else "COLLABORATOR"

    def _issue_comment(self, number: int, user: str, body: str) -> dict[str, Any]:
        cid, now = self._id(), _now()
        api = f"{self._api}/repos/{self.owner}/{self.repo}"
        item = {
            "id": cid,
            "node_id": f"IC_fake{cid}",
            "url": f"{api}/issues/comments/{cid}",
            "html_url": f"{self._web}/{self.owner}/{self.repo}/pull/{number}#issuecomment-{cid}",
            "body": body,
            "user": self._user_json(user),
            "created_at": now,
            "updated_at": now,
            "issue_url": f"{api}/issues/{number}",
            "author_association": self._association(user),
            "performed_via_github_app": None,
        }
        self.issue_comments.setdefault(number, []).append(item)
        return item

    def paths(self) -> list[tuple[str, str]]:
        """(method, path) of every request so far, for compact assertions."""
        return [(r.method, r.path) for r in self.requests]

    # -- HTTP entry point ----------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        path = unquote(split.path)
        route = path[len("/api/v3") :] if path.startswith("/api/v3/") else path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        api_host = headers.get("host", "api.github.com").lower()
        with self._lock:
            fault = self._take_fault(method, route)
            if fault is not None and not fault.handled:
                reply = _Reply(fault.status, fault.body, fault.headers)
            else:
                try:
                    reply = self._dispatch(method, route, query, body, headers, api_host)
                except Exception as e:
                    self.errors.append(f"{method} {path}: {e!r}")
                    reply = _Reply(500, {"message": f"fake GitHub crashed: {e!r}"})
                if fault is not None:
                    reply = _Reply(fault.status, fault.body, fault.headers)
            self.requests.append(Request(method, path, query, body, reply.status))
        out_headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Request-Id": f"FAKE:{len(self.requests):04X}",
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "4999",
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Resource": "core",
        }
        out_headers.update(reply.headers)
        if reply.body is None:
            return reply.status, out_headers, b""
        payload = reply.body if isinstance(reply.body, (str, bytes)) else json.dumps(reply.body)
        return (
            reply.status,
            out_headers,
            (payload.encode() if isinstance(payload, str) else payload),
        )

    def _take_fault(self, method: str, route: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.path.fullmatch(route):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _dispatch(
        self,
        method: str,
        route: str,
        query: dict[str, str],
        body: Any,
        headers: Mapping[str, str],
        api_host: str,
    ) -> _Reply:
        web, api = _urls(api_host)
        self._web, self._api = web, api
        auth = headers.get("authorization", "")
        given = auth.split(" ", 1)[1].strip() if " " in auth else None
        try:
            if given is not None and given not in (self.token, self.read_token):
                raise _ApiError(401, "Bad credentials")
            if given is not None and given != self.token and method != "GET":
                raise _ApiError(403, "Resource not accessible by integration")
            if route == "/user":
                if given is None:
                    raise _ApiError(
                        401,
                        "Requires authentication",
                        doc=f"{_DOCS}/users/users#get-the-authenticated-user",
                    )
                return _Reply(200, self._user_json(self.login, full=True))
            for verb, pattern, handler in self._routes():
                match = re.fullmatch(pattern, route)
                if match is None or verb != method:
                    continue
                if (
                    not (
                        match["o"].lower() == self.owner.lower()
                        and match["r"].lower() == self.repo.lower()
                    )
                    or given is None
                ):
                    # A private repository is invisible to a token that cannot see it.
                    break
                return handler(match, query, body)
            raise _ApiError(404, "Not Found")
        except _ApiError as e:
            return e.reply

    def _routes(
        self,
    ) -> list[tuple[str, str, Callable[[re.Match[str], dict[str, str], Any], _Reply]]]:
        repo = r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)"
        return [
            ("GET", repo, lambda m, q, b: _Reply(200, self._repo_json())),
            ("GET", repo + r"/pulls", self._list_pulls),
            ("POST", repo + r"/pulls", self._create_pull),
            (
                "GET",
                repo + r"/pulls/(?P<n>\d+)",
                lambda m, q, b: _Reply(200, self._pull_json(self._pull(m), full=True)),
            ),
            ("PATCH", repo + r"/pulls/(?P<n>\d+)", self._update_pull),
            (
                "GET",
                repo + r"/pulls/(?P<n>\d+)/merge",
                lambda m, q, b: _Reply(204 if self._pull(m).merged else 404, None),
            ),
            (
                "PUT",
                repo + r"/pulls/(?P<n>\d+)/merge",
                lambda m, q, b: self._merge(self._pull(m).number, b if isinstance(b, dict) else {}),
            ),
            ("POST", repo + r"/pulls/(?P<n>\d+)/requested_reviewers", self._request_reviewers),
            ("POST", repo + r"/issues/(?P<n>\d+)/labels", self._add_labels),
            ("PATCH", repo + r"/issues/comments/(?P<id>\d+)", self._edit_comment),
            ("DELETE", repo + r"/git/refs/heads/(?P<b>.+)", self._delete_ref),
            (
                "GET",
                repo + r"/pulls/(?P<n>\d+)/comments",
                lambda m, q, b: self._listing(m, q, self.review_comments, since=True),
            ),
            (
                "GET",
                repo + r"/pulls/(?P<n>\d+)/reviews",
                lambda m, q, b: self._listing(m, q, self.reviews, since=False),
            ),
            (
                "GET",
                repo + r"/issues/(?P<n>\d+)/comments",
                lambda m, q, b: self._listing(m, q, self.issue_comments, since=True),
            ),
            ("POST", repo + r"/issues/(?P<n>\d+)/comments", self._post_comment),
            ("GET", repo + r"/commits/(?P<ref>[^/]+)/check-runs", self._list_check_runs),
            ("GET", repo + r"/commits/(?P<ref>[^/]+)/status", self._combined_status),
            ("GET", repo + r"/collaborators/(?P<u>[^/]+)/permission", self._permission),
        ]

    # -- review feedback (endpoints) -----------------------------------------------------

    def _listing(
        self,
        match: re.Match[str],
        query: dict[str, str],
        items: dict[int, list[dict[str, Any]]],
        *,
        since: bool,
    ) -> _Reply:
        number = int(match["n"])
        if number not in self.pulls:
            raise _ApiError(404, "Not Found")
        found = items.get(number, [])
        if since and query.get("since"):
            found = [i for i in found if i["updated_at"] >= query["since"]]
        per_page = min(int(query.get("per_page", "30")), 100)
        page = int(query.get("page", "1"))
        return _Reply(200, found[(page - 1) * per_page : page * per_page])

    def _post_comment(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        number = int(match["n"])
        if number not in self.pulls:
            raise _ApiError(
                404, "Not Found", doc=f"{_DOCS}/issues/comments#create-an-issue-comment"
            )
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            raise _validation(
                {"resource": "IssueComment", "field": "body", "code": "missing_field"}
            )
        item = self._issue_comment(number, self.login, body["body"])
        return _Reply(201, item, {"Location": item["url"]})

    def _sha_of(self, ref: str) -> str:
        return self._branches().get(ref, ref)

    def _list_check_runs(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        runs = self.check_runs.get(self._sha_of(match["ref"]), [])
        per_page = min(int(query.get("per_page", "30")), 100)
        page = max(int(query.get("page", "1")), 1)
        chosen = runs[(page - 1) * per_page : page * per_page]
        return _Reply(200, {"total_count": len(runs), "check_runs": chosen})

    def _combined_status(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        sha = self._sha_of(match["ref"])
        latest: dict[str, dict[str, Any]] = {}
        for status in self.statuses.get(sha, []):  # newest first
            latest.setdefault(status["context"], status)
        states = [s["state"] for s in latest.values()]
        if any(s in ("failure", "error") for s in states):
            state = "failure"
        elif not states or any(s == "pending" for s in states):
            state = "pending"
        else:
            state = "success"
        full_name = f"{self.owner}/{self.repo}"
        return _Reply(
            200,
            {
                "state": state,
                "statuses": list(latest.values()),
                "sha": sha,
                "total_count": len(latest),
                "repository": self._repo_json(),
                "commit_url": f"{self._api}/repos/{full_name}/commits/{sha}",
                "url": f"{self._api}/repos/{full_name}/commits/{sha}/status",
            },
        )

    def _permission(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        login = match["u"]
        role = self.roles.get(login.lower(), "read")
        # `permission` is the older scale: maintain reads as write, triage as read.
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        user = self._user_json(login) | {"role_name": role}
        return _Reply(200, {"permission": legacy, "role_name": role, "user": user})

    # -- git -----------------------------------------------------------------------------

    def _git(
        self, *args: str, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in _GIT_LEAKS}
        env.update(
            {
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_AUTHOR_NAME": self.login,
                "GIT_AUTHOR_EMAIL": f"{self.login}@users.noreply.github.com",
                "GIT_COMMITTER_NAME": "GitHub",
                "GIT_COMMITTER_EMAIL": "noreply@github.com",
            }
        )
        where = ["-C", str(cwd)] if cwd else ["--git-dir", str(self.bare_repo)]
        proc = subprocess.run(
            ["git", *where, *args],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr}{proc.stdout}")
        return proc

    def _branches(self) -> dict[str, str]:
        if self.bare_repo is None:
            return dict(self.branches)
        out = self._git(
            "for-each-ref", "--format=%(refname:lstrip=2) %(objectname)", "refs/heads"
        ).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def _ahead(self, base: str, head: str) -> int | None:
        if self.bare_repo is None:
            return None
        out = self._git("rev-list", "--count", f"refs/heads/{base}..refs/heads/{head}").stdout
        return int(out.strip())

    # -- JSON shapes ---------------------------------------------------------------------

    def _user_json(self, login: str, *, full: bool = False, kind: str = "User") -> dict[str, Any]:
        user: dict[str, Any] = {
            "login": login,
            "id": 1000 + sum(map(ord, login)),
            "node_id": f"U_fake{login}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{1000 + len(login)}?v=4",
            "gravatar_id": "",
            "url": f"{self._api}/users/{login}",
            "html_url": f"{self._web}/{login}",
            "type": kind,
            "user_view_type": "public",
            "site_admin": False,
        }
        if full:
            user.update(
                {
                    "name": login.title(),
                    "company": None,
                    "email": None,
                    "created_at": "2011-01-25T18:44:36Z",
                }
            )
        return user

    def _repo_json(self) -> dict[str, Any]:
        full_name = f"{self.owner}/{self.repo}"
        return {
            "id": 4242,
            "node_id": "R_fakerepo",
            "name": self.repo,
            "full_name": full_name,
            "private": True,
            "owner": self._user_json(self.owner, kind="Organization"),
            "html_url": f"{self._web}/{full_name}",
            "description": None,
            "fork": False,
            "url": f"{self._api}/repos/{full_name}",
            "clone_url": f"{self._web}/{full_name}.git",
            "default_branch": self.default_branch,
            "visibility": "private",
        }

    def _ref_json(self, ref: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{self.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self._user_json(self.owner, kind="Organization"),
            "repo": self._repo_json(),
        }

    def _pull_json(self, pull: FakePull, *, full: bool = False) -> dict[str, Any]:
        branches = self._branches()
        if pull.state == "open":
            # An open pull request follows pushes to its branches.
            pull.head_sha = branches.get(pull.head, pull.head_sha)
            pull.base_sha = branches.get(pull.base, pull.base_sha)
        full_name = f"{self.owner}/{self.repo}"
        api = f"{self._api}/repos/{full_name}"
        html = f"{self._web}/{full_name}/pull/{pull.number}"
        data: dict[str, Any] = {
            "url": f"{api}/pulls/{pull.number}",
            "id": 90000 + pull.number,
            "node_id": f"PR_fake{pull.number}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{pull.number}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self._user_json(pull.user),
            "body": pull.body,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "closed_at": pull.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [self._user_json(r) for r in pull.requested_reviewers],
            "requested_teams": [{"name": t, "slug": t} for t in pull.requested_teams],
            "labels": [self._label_json(name) for name in pull.labels],
            "milestone": None,
            "draft": pull.draft,
            "commits_url": f"{api}/pulls/{pull.number}/commits",
            "head": self._ref_json(pull.head, pull.head_sha),
            "base": self._ref_json(pull.base, pull.base_sha),
            "author_association": "MEMBER",
            "auto_merge": None,
            "active_lock_reason": None,
        }
        if full:
            # Only the single-pull endpoints carry these; the list has `merged_at` alone.
            data.update(
                {
                    "merged": pull.merged,
                    "mergeable": None if pull.state == "closed" else True,
                    "rebaseable": None if pull.state == "closed" else True,
                    "mergeable_state": "unknown" if pull.state == "closed" else "clean",
                    "merged_by": self._user_json(pull.merged_by) if pull.merged_by else None,
                    "comments": 0,
                    "review_comments": 0,
                    "maintainer_can_modify": False,
                    "commits": 1,
                    "additions": 1,
                    "deletions": 0,
                    "changed_files": 1,
                }
            )
        return data

    def _label_json(self, name: str) -> dict[str, Any]:
        return {
            "id": 7000 + sum(map(ord, name)),
            "node_id": f"LA_fake{name}",
            "url": f"{self._api}/repos/{self.owner}/{self.repo}/labels/{name}",
            "name": name,
            "color": "ededed",
            "default": False,
            "description": None,
        }

    # -- endpoints -----------------------------------------------------------------------

    def _pull(self, match: re.Match[str]) -> FakePull:
        pull = self.pulls.get(int(match["n"]))
        if pull is None:
            raise _ApiError(404, "Not Found", doc=f"{_DOCS}/pulls/pulls#get-a-pull-request")
        return pull

    def _list_pulls(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _validation({"resource": "Issue", "field": "state", "code": "invalid"})
        pulls = sorted(self.pulls.values(), key=lambda p: p.number, reverse=True)
        if state != "all":
            pulls = [p for p in pulls if p.state == state]
        head = query.get("head")
        # Like GitHub, a `head` without its `owner:` prefix is silently ignored.
        if head and ":" in head:
            owner, _, ref = head.partition(":")
            pulls = [p for p in pulls if owner.lower() == self.owner.lower() and p.head == ref]
        if "base" in query:
            pulls = [p for p in pulls if p.base == query["base"]]
        per_page = min(int(query.get("per_page", "30")), 100)
        page = max(int(query.get("page", "1")), 1)
        chosen = pulls[(page - 1) * per_page : page * per_page]
        return _Reply(200, [self._pull_json(p) for p in chosen])

    def _create_pull(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        doc = f"{_DOCS}/pulls/pulls#create-a-pull-request"
        if not isinstance(body, dict):
            raise _ApiError(400, "Problems parsing JSON", doc=doc)
        for name in ("head", "base"):
            if not body.get(name):
                raise _validation(
                    {"resource": "PullRequest", "code": "missing_field", "field": name}, doc=doc
                )
        if not body.get("title") and not body.get("issue"):
            raise _validation(
                {"resource": "PullRequest", "code": "missing_field", "field": "title"}, doc=doc
            )
        head, base = str(body["head"]), str(body["base"])
        if ":" in head:
            owner, _, head = head.partition(":")
            if owner.lower() != self.owner.lower():
                raise _validation(
                    {"resource": "PullRequest", "field": "head", "code": "invalid"}, doc=doc
                )
        branches = self._branches()
        if head not in branches:
            raise _validation(
                {"resource": "PullRequest", "field": "head", "code": "invalid"}, doc=doc
            )
        if base not in branches:
            raise _validation(
                {"resource": "PullRequest", "field": "base", "code": "invalid"}, doc=doc
            )
        for other in self.pulls.values():
            if other.state == "open" and other.head == head and other.base == base:
                raise _validation(
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {self.owner}:{head}.",
                    },
                    doc=doc,
                )
        if head == base or self._ahead(base, head) == 0:
            raise _validation(
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": f"No commits between {base} and {head}",
                },
                doc=doc,
            )
        pull = self._new_pull(
            head,
            base,
            str(body["title"]),
            body.get("body"),
            bool(body.get("draft", False)),
            self.login,
            branches,
        )
        return _Reply(
            201,
            self._pull_json(pull, full=True),
            {"Location": f"{self._api}/repos/{self.owner}/{self.repo}/pulls/{pull.number}"},
        )

    def _new_pull(
        self,
        head: str,
        base: str,
        title: str,
        body: str | None,
        draft: bool,
        user: str,
        branches: Mapping[str, str],
    ) -> FakePull:
        now = _now()
        pull = FakePull(
            number=self._next_number,
            title=title,
            body=body,
            head=head,
            base=base,
            head_sha=branches.get(head, "0" * 40),
            base_sha=branches.get(base, "0" * 40),
            user=user,
            draft=draft,
            created_at=now,
            updated_at=now,
        )
        self._next_number += 1
        self.pulls[pull.number] = pull
        return pull

    def _update_pull(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        doc = f"{_DOCS}/pulls/pulls#update-a-pull-request"
        pull = self._pull(match)
        if not isinstance(body, dict):
            raise _ApiError(400, "Problems parsing JSON", doc=doc)
        branches = self._branches()
        state = body.get("state")
        if state is not None and state not in ("open", "closed"):
            raise _validation(
                {"resource": "PullRequest", "field": "state", "code": "invalid"}, doc=doc
            )
        new_base = body.get("base")
        if new_base is not None and new_base != pull.base:
            if pull.state != "open":
                raise _validation(
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "field": "base",
                        "message": "Cannot change the base branch of a closed pull request.",
                    },
                    doc=doc,
                )
            if new_base not in branches:
                raise _validation(
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "field": "base",
                        "message": f"Proposed base branch '{new_base}' was not found",
                    },
                    doc=doc,
                )
        if state == "open" and pull.state == "closed":
            # The fake's wording: GitHub refuses these reopenings, its exact text is not known.
            if pull.merged:
                raise _validation(
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "field": "state",
                        "message": "A merged pull request cannot be reopened.",
                    },
                    doc=doc,
                )
            if pull.base not in branches or pull.head not in branches:
                raise _validation(
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "field": "state",
                        "message": "state cannot be changed. The branch of this "
                        "pull request was deleted.",
                    },
                    doc=doc,
                )
        if "title" in body and body["title"] is not None:
            pull.title = str(body["title"])
        if "body" in body:
            pull.body = body["body"]
        if new_base is not None:
            pull.base = str(new_base)
            pull.base_sha = branches.get(pull.base, pull.base_sha)
        if state is not None and state != pull.state:
            pull.state = state
            pull.closed_at = _now() if state == "closed" else None
        pull.updated_at = _now()
        return _Reply(200, self._pull_json(pull, full=True))

    def _edit_comment(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        wanted = int(match["id"])
        found = [c for items in self.issue_comments.values() for c in items if c["id"] == wanted]
        if not found:
            raise _ApiError(404, "Not Found")
        comment = found[0]
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            raise _validation({"resource": "IssueComment", "field": "body", "code": "missing"})
        comment["body"], comment["updated_at"] = text, _now()
        return _Reply(200, comment)

    @property
    def comments(self) -> dict[int, dict[str, Any]]:
        """Every issue comment by id, each with the number of the PR it is on (`issue`)."""
        return {
            item["id"]: {**item, "issue": number}
            for number, items in self.issue_comments.items()
            for item in items
        }

    def _add_labels(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        pull = self.pulls.get(int(match["n"]))
        if pull is None:
            raise _ApiError(404, "Not Found", doc=f"{_DOCS}/issues/labels#add-labels-to-an-issue")
        raw = body.get("labels") if isinstance(body, dict) else body
        if not isinstance(raw, list):
            raise _validation({"resource": "Label", "field": "labels", "code": "invalid"})
        for item in raw:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name:
                raise _validation({"resource": "Label", "field": "name", "code": "invalid"})
            if name not in pull.labels:
                pull.labels.append(name)
        pull.updated_at = _now()
        return _Reply(200, [self._label_json(name) for name in pull.labels])

    def _request_reviewers(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        doc = f"{_DOCS}/pulls/review-requests#request-reviewers-for-a-pull-request"
        pull = self._pull(match)
        if not isinstance(body, dict):
            raise _ApiError(400, "Problems parsing JSON", doc=doc)
        users = [str(u) for u in body.get("reviewers") or []]
        teams = [str(t) for t in body.get("team_reviewers") or []]
        if any(u.lower() == pull.user.lower() for u in users):
            raise _validation(
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": "Review cannot be requested from pull request author.",
                },
                doc=doc,
            )
        if self.collaborators is not None and any(
            u.lower() not in self.collaborators for u in users
        ):
            raise _ApiError(
                422,
                "Reviews may only be requested from collaborators. One or more "
                "of the users or teams you specified is not a collaborator of "
                f"the {self.owner}/{self.repo} repository.",
                doc=doc,
            )
        for user in users:
            if user not in pull.requested_reviewers:
                pull.requested_reviewers.append(user)
        for team in teams:
            if team not in pull.requested_teams:
                pull.requested_teams.append(team)
        pull.updated_at = _now()
        return _Reply(201, self._pull_json(pull))

    def _delete_ref(self, match: re.Match[str], query: dict[str, str], body: Any) -> _Reply:
        branch = match["b"]
        if branch not in self._branches():
            raise _ApiError(
                422, "Reference does not exist", doc=f"{_DOCS}/git/refs#delete-a-reference"
            )
        self._remove_branch(branch)
        now = _now()
        for pull in self.pulls.values():
            # A deletion through the API closes open pull requests from or into that branch;
            # only the web UI's post-merge "Delete branch" retargets the ones based on it.
            if pull.state == "open" and branch in (pull.base, pull.head):
                pull.state, pull.closed_at, pull.updated_at = "closed", now, now
        return _Reply(204, None)

    def _remove_branch(self, branch: str) -> None:
        if self.bare_repo is None:
            self.branches.pop(branch, None)
        else:
            self._git("update-ref", "-d", f"refs/heads/{branch}")

    def _merge(self, number: int, body: Mapping[str, Any]) -> _Reply:
        doc = f"{_DOCS}/pulls/pulls#merge-a-pull-request"
        pull = self.pulls[number]
        method = body.get("merge_method", "merge")
        if method not in ("merge", "squash", "rebase"):
            raise _validation(
                {"resource": "PullRequest", "field": "merge_method", "code": "invalid"}, doc=doc
            )
        branches = self._branches()
        if pull.state != "open" or pull.head not in branches or pull.base not in branches:
            raise _ApiError(405, "Pull Request is not mergeable", doc=doc)
        if body.get("sha") and body["sha"] != branches[pull.head]:
            raise _ApiError(
                409, "Head branch was modified. Review and try the merge again.", doc=doc
            )
        title = body.get("commit_title")
        message = body.get("commit_message")
        if self.bare_repo is None:
            sha = _fake_sha(f"merge {number} {time.time()}")
            self.branches[pull.base] = sha
        else:
            merged = self._git_merge(pull, method, title, message)
            if merged is None:
                raise _ApiError(405, "Pull Request is not mergeable", doc=doc)
            sha = merged
        now = _now()
        pull.state, pull.merged, pull.merged_at, pull.closed_at = "closed", True, now, now
        pull.merged_by, pull.merge_commit_sha, pull.updated_at = self.login, sha, now
        pull.head_sha = branches[pull.head]
        if self.delete_branch_on_merge:
            self._remove_branch(pull.head)
            for other in self.pulls.values():
                # Automatic deletion after a merge retargets the pull requests based on it.
                if other.state == "open" and other.base == pull.head:
                    other.base, other.updated_at = pull.base, now
        return _Reply(
            200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
        )

    def _git_merge(
        self, pull: FakePull, method: str, title: str | None, message: str | None
    ) -> str | None:
        work = Path(tempfile.mkdtemp(prefix="merge-", dir=self._dir))
        try:
            self._git("clone", "-q", str(self.bare_repo), str(work), cwd=self._dir)
            self._git("checkout", "-q", "-B", pull.base, f"origin/{pull.base}", cwd=work)
            head = f"origin/{pull.head}"
            if method == "merge":
                subject = (
                    title or f"Merge pull request #{pull.number} from {self.owner}/{pull.head}"
                )
                text = f"{subject}\n\n{message if message is not None else pull.title}"
                ok = (
                    self._git(
                        "merge", "-q", "--no-ff", "-m", text, head, cwd=work, check=False
                    ).returncode
                    == 0
                )
            elif method == "squash":
                ok = (
                    self._git("merge", "-q", "--squash", head, cwd=work, check=False).returncode
                    == 0
                )
                if ok:
                    log = self._git("log", "--format=* %s", f"{pull.base}..{head}", cwd=work).stdout
                    text = (
                        f"{title or f'{pull.title} (#{pull.number})'}\n\n"
                        f"{message if message is not None else log}"
                    )
                    ok = (
                        self._git("commit", "-q", "-m", text, cwd=work, check=False).returncode == 0
                    )
            else:
                self._git("checkout", "-q", "--detach", head, cwd=work)
                ok = (
                    self._git(
                        "rebase", "-q", f"origin/{pull.base}", cwd=work, check=False
                    ).returncode
                    == 0
                )
            if not ok:
                return None
            self._git("push", "-q", "origin", f"HEAD:refs/heads/{pull.base}", cwd=work)
            return self._git("rev-parse", "HEAD", cwd=work).stdout.strip()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    _web = "https://github.com"
    _api = "https://api.github.com"


def _urls(api_host: str) -> tuple[str, str]:
    """(web, API) base URLs for the host gh sent, as GitHub writes them into its answers."""
    if api_host in ("api.github.com", "github.com"):
        return "https://github.com", "https://api.github.com"
    if api_host.startswith("api.") and api_host.endswith(".ghe.com"):
        return f"https://{api_host[4:]}", f"https://{api_host}"
    return f"https://{api_host}", f"https://{api_host}/api/v3"


def _fake_sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


def _short_tmp() -> str:
    # A unix socket path must stay under ~104 bytes; a deep TMPDIR (macOS) would not fit.
    tmp = tempfile.gettempdir()
    return tmp if len(tmp) < 60 else "/tmp"


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    fake: FakeGitHub


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _UnixHTTPServer

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        # gh sends request bodies chunked (`--input -` streams stdin).
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        raw = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out, payload = self.server.fake.handle(self.command, self.path, headers, raw)
        self.send_response(status)
        for key, value in out.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # gh hung up, e.g. after a 204

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve
