"""`wtrun init`: adopt wtrun in a repository in one command.

Writes a starter plan whose `yaml-language-server` modeline points at the plan schema vendored
into `.wtrun/plan-v1.json` (an editor resolves it offline; `wtrun schema --write` refreshes it),
the four workflows, using wtrun's composite action pinned to this version of wtrun, and a
pre-commit entry. A file that exists and differs is never overwritten without `--force`; an
existing `.pre-commit-config.yaml` is never touched (the entry to add is printed instead).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .. import __version__
from ..errors import WtrunError
from ..git import find_repo
from ..plan.schema import schema_text

# Where wtrun's action and pre-commit hooks are published.
REPOSITORY = "wtrun/wtrun"
# The agent CLI the workflows install: the version wtrun's `claude` preset is checked against.
AGENT_CLI = "@anthropic-ai/claude-code@2.1.197"
SCHEMA_PATH = ".wtrun/plan-v1.json"
PRE_COMMIT = ".pre-commit-config.yaml"
_TEMPLATES = {
    "plans/example.yaml": "plan.yaml",
    ".github/workflows/wtrun-plan-review.yml": "plan-review.yml",
    ".github/workflows/wtrun-plan-review-comment.yml": "plan-review-comment.yml",
    ".github/workflows/wtrun-scheduled-plans.yml": "scheduled-plans.yml",
    ".github/workflows/wtrun-fanout.yml": "fanout.yml",
}
SECRETS = (
    ("ANTHROPIC_API_KEY", "the model key the agents use (needed to run plans)"),
    (
        "WTRUN_GITHUB_TOKEN",
        "optional: a GitHub App token or fine-grained PAT (contents and pull requests: write); "
        "PRs opened with the default GITHUB_TOKEN start no other workflow, such as your CI",
    ),
)


def init(force: bool, repository: str = REPOSITORY) -> int:
    root = find_repo(Path.cwd()).root
    files = starter_files(repository)
    clashes = [rel for rel, text in files.items() if _differs(root / rel, text)]
    if clashes and not force:
        raise WtrunError(
            f"{', '.join(clashes)} exist{'s' if len(clashes) == 1 else ''} and differ"
            f"{'s' if len(clashes) == 1 else ''} from what wtrun init writes; move "
            f"{'it' if len(clashes) == 1 else 'them'} away, or run `wtrun init --force` to "
            "overwrite"
        )
    for rel, text in files.items():
        path = root / rel
        if not _differs(path, text) and path.exists():
            print(f"wtrun: {rel} is up to date")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wtrun: wrote {rel}")
    _pre_commit(root, repository)
    print("\nSecrets to set (Settings > Secrets and variables > Actions):")
    for name, meaning in SECRETS:
        print(f"  {name}: {meaning}")
    print(
        "\nNext: `wtrun validate plans/example.yaml`, commit these files, then run the plan "
        "from the Actions tab (workflow `scheduled plans`) or here with `wtrun run`."
    )
    return 0


def starter_files(repository: str) -> dict[str, str]:
    """Each file `wtrun init` writes, by path relative to the repository's root."""
    files = {SCHEMA_PATH: schema_text()}
    for rel, name in _TEMPLATES.items():
        files[rel] = _fill(_template(name), repository)
    return files


def write_schema() -> int:
    """`wtrun schema --write`: refresh the vendored schema the modelines point at."""
    root = find_repo(Path.cwd()).root
    path = root / SCHEMA_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text(), encoding="utf-8")
    print(f"wtrun: wrote {SCHEMA_PATH} (the plan schema of wtrun {__version__})")
    return 0


def _pre_commit(root: Path, repository: str) -> None:
    entry = _fill(_template("pre-commit-config.yaml"), repository)
    path = root / PRE_COMMIT
    if not path.exists():
        path.write_text(entry, encoding="utf-8")
        print(f"wtrun: wrote {PRE_COMMIT}")
    elif "wtrun-validate" in path.read_text(encoding="utf-8"):
        print(f"wtrun: {PRE_COMMIT} has the wtrun-validate hook already")
    else:
        hooks = entry.split("repos:\n", 1)[1]
        print(f"wtrun: {PRE_COMMIT} exists and is left alone; add under `repos:`:\n{hooks}")


def _template(name: str) -> str:
    return resources.files("wtrun").joinpath("templates").joinpath(name).read_text(encoding="utf-8")


def _fill(text: str, repository: str) -> str:
    version = f"v{__version__}"
    return (
        text.replace("__WTRUN_ACTION__", f"{repository}/.github/actions/wtrun@{version}")
        .replace(
            "__WTRUN_DOCS__",
            f"https://github.com/{repository}/blob/{version}/docs/github-actions.md",
        )
        .replace("__WTRUN_AGENT_CLI__", AGENT_CLI)
        .replace("__WTRUN_REPOSITORY__", repository)
        .replace("__WTRUN_VERSION__", __version__)
    )


def _differs(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") != text
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError):
        return True
