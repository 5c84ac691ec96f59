"""Fixtures shared by the whole suite; plain helpers are in testing.py.

Sections, in this order:
- environment: `isolated_home`, applied to every test (a fresh HOME, pinned git identity,
  no variables leaking from CI or the developer's shell);
- repositories: `repo` (a checkout on main with a bare remote beside it) and `github`
  (the same, with a fake GitHub serving that remote to the real `gh`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.github import FakeGitHub
from testing import fake_github, make_repo

# Test folders live outside /tmp, as a user's repositories do: the agent sandbox gives
# its processes a private /tmp, which would hide them.
_TESTS_TMP = Path(os.environ.get("WTRUN_TESTS_TMP", "/var/tmp"))
if _TESTS_TMP.is_dir() and os.access(_TESTS_TMP, os.W_OK):
    tempfile.tempdir = str(_TESTS_TMP)


# ---------------------------------------------------------------- environment (every test)

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "wtrun tests",
    "GIT_AUTHOR_EMAIL": "tests@wtrun.invalid",
    "GIT_COMMITTER_NAME": "wtrun tests",
    "GIT_COMMITTER_EMAIL": "tests@wtrun.invalid",
}

# Set by CI runners or by a developer's shell; each would change what wtrun does.
LEAKY_VARIABLES = (
    "GITHUB_ACTIONS",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_REPOSITORY",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GIT_DIR",
    "GIT_INDEX_FILE",
    "GIT_WORK_TREE",
)


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """HOME, git's global config and XDG folders in a fresh folder for each test.

    Nothing a test runs can then read or write the developer's real dotfiles.
    """
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
    for name in LEAKY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return home


# ---------------------------------------------------------------- repositories


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """tmp_path/repo on branch main with one commit, pushed to tmp_path/origin.git."""
    return make_repo(tmp_path)


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, FakeGitHub]]:
    """A repository with a bare remote, and a fake GitHub serving that remote."""
    repo = make_repo(tmp_path)
    with fake_github(tmp_path, monkeypatch) as fake:
        yield repo, fake
