"""Loading valid plans: every default applied, overrides merged, every example plan valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wtrun.cli import main
from wtrun.errors import Position
from wtrun.plan import AgentSpec, Plan, PlanError, PrSpec, Step, graph, load, parse_duration

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLANS = sorted((ROOT / "plans").glob("*.yaml"))

# A plan that sets every key, each with a comment saying what it does.
EVERY_KEY = (Path(__file__).parent / "data" / "every-key.yaml").read_text()


def load_text(tmp_path: Path, text: str, name: str = "plan.yaml") -> Plan:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load(path)


def test_the_every_key_example(tmp_path: Path) -> None:
    plan = load_text(tmp_path, EVERY_KEY, "sprint.yaml")
    assert plan.name == "sprint-12"
    assert (plan.version, plan.base, plan.remote) == (1, "main", "origin")
    assert plan.worktrees == ".claude/worktrees"
    assert plan.branch == "worktree-{{ task.id }}"
    assert plan.max_parallel == 3
    assert plan.budget_usd == 20.0
    assert plan.port_range == (3100, 3999)
    assert plan.shared == ("package-lock.json", "CHANGELOG.md")
    assert plan.conventions.startswith("## Commit conventions\n")
    assert plan.pr == PrSpec(
        provider="github",
        repository="acme/shop",
        title="{{ task.id }}: {{ task.title }}",
        body=None,
        draft=True,
        labels=("agent",),
        reviewers=(),
    )
    agent = AgentSpec(
        preset="claude",
        model="sonnet",
        args=("--max-turns", "40"),
        timeout_s=2700.0,
        budget_usd=5.0,
        command=None,
    )
    file = str(tmp_path / "sprint.yaml")
    setup = (
        Step(kind="copy", paths=(".env", ".env.local"), position=Position(file, 22, 5)),
        Step(kind="link", paths=("node_modules",), position=Position(file, 23, 5)),
        Step(kind="run", run="npm ci", timeout_s=600.0, position=Position(file, 24, 5)),
    )
    verify = (Step(kind="run", run="npm test", timeout_s=600.0, position=Position(file, 36, 5)),)
    assert [t.id for t in plan.tasks] == [
        "fix-987-auth-timeout",
        "feat-1024-payments",
        "feat-1025-payment-docs",
    ]
    for task in plan.tasks:
        assert task.agent == agent
        assert task.setup == setup
        assert task.verify == verify
        assert task.env == (("NODE_ENV", "test"),)
    first, second, third = plan.tasks
    assert first.title == "Auth session timeout"
    assert first.prompt == (
        "Sessions expire after 5 minutes instead of 30. Find and fix the cause, with a test.\n"
    )
    assert first.scope == ("src/auth/**", "tests/auth/**")
    assert (first.ports, first.after, first.position) == (0, None, Position(file, 47, 5))
    assert (second.ports, second.after) == (1, None)
    assert third.title == "feat-1025-payment-docs"
    assert third.after == "feat-1024-payments"


def test_minimal_plan_gets_every_default() -> None:
    plan = load(ROOT / "plans" / "minimal.yaml")
    assert plan == Plan(
        path=ROOT / "plans" / "minimal.yaml",
        name="minimal",
        version=1,
        base="main",
        remote="origin",
        worktrees=".claude/worktrees",
        branch="worktree-{{ task.id }}",
        max_parallel=3,
        budget_usd=None,
        port_range=(3100, 3999),
        shared=(),
        conventions="",
        commit_message="feat({{ task.id }}): {{ task.title }}",
        pr=PrSpec(
            provider="github",
            repository=None,
            title="{{ task.id }}: {{ task.title }}",
            body=None,
            draft=True,
            labels=(),
            reviewers=(),
        ),
        tasks=plan.tasks,
    )
    (task,) = plan.tasks
    assert task.id == task.title == "fix-readme-typos"
    assert task.scope == ("README.md",)
    assert (task.ports, task.after, task.setup, task.verify, task.env) == (0, None, (), (), ())
    assert task.agent == AgentSpec(
        preset="claude", model=None, args=(), timeout_s=2700.0, budget_usd=None, command=None
    )


OVERRIDES = """\
version: 1
worktrees: .wt/
agent:
  preset: codex
  model: gpt-5
  args: [--quiet]
  timeout: 1h30m
  budget_usd: 2
env:
  NODE_ENV: test
  LOG_LEVEL: info
setup:
  - run: npm ci
verify:
  - run: npm test
    name: unit tests
    timeout: 90s
tasks:
  - id: inherits
    prompt: Everything from the plan.
    scope: [a/]
  - id: overrides
    prompt: Its own agent keys, env and steps.
    scope: [b/]
    agent:
      model: gpt-5-mini
      timeout: 120
    env:
      LOG_LEVEL: debug
      EXTRA: "1"
    setup:
      - link: node_modules
    verify: []
"""


def test_task_overrides_merge_agent_and_env_and_replace_steps(tmp_path: Path) -> None:
    plan = load_text(tmp_path, OVERRIDES)
    assert plan.worktrees == ".wt"
    inherits, overrides = plan.tasks
    assert inherits.agent == AgentSpec(
        preset="codex", model="gpt-5", args=("--quiet",), timeout_s=5400.0, budget_usd=2.0
    )
    assert overrides.agent == AgentSpec(
        preset="codex", model="gpt-5-mini", args=("--quiet",), timeout_s=120.0, budget_usd=2.0
    )
    assert inherits.env == (("NODE_ENV", "test"), ("LOG_LEVEL", "info"))
    assert overrides.env == (("NODE_ENV", "test"), ("LOG_LEVEL", "debug"), ("EXTRA", "1"))
    assert [s.describe() for s in inherits.setup] == ["npm ci"]
    assert [s.describe() for s in inherits.verify] == ["unit tests"]
    assert inherits.verify[0].timeout_s == 90.0
    assert inherits.setup[0].timeout_s == 600.0
    at = Position(str(tmp_path / "plan.yaml"), 32, 9)
    assert overrides.setup == (Step(kind="link", paths=("node_modules",), position=at),)
    assert overrides.verify == ()


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("90s", 90.0),
        ("45m", 2700.0),
        ("1h30m", 5400.0),
        ("2h", 7200.0),
        ("1h0m5s", 3605.0),
        (600, 600.0),
    ],
)
def test_durations(tmp_path: Path, written: str | int, seconds: float) -> None:
    shown = f'"{written}"' if isinstance(written, str) else str(written)
    plan = load_text(
        tmp_path,
        f"""\
version: 1
agent: {{timeout: {shown}}}
tasks:
  - id: a
    prompt: A.
    scope: [a/]
""",
    )
    assert plan.tasks[0].agent.timeout_s == seconds


@pytest.mark.parametrize("bad", ["", "45 minutes", "m", "1m1h", "-5s", "1.5h"])
def test_parse_duration_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_yaml_merge_keys(tmp_path: Path) -> None:
    plan = load_text(
        tmp_path,
        """\
version: 1
tasks:
  - &api
    id: api-users
    prompt: Add an endpoint for the resource named in the id.
    scope: [src/api/users/**]
    agent: &opus {model: opus, budget_usd: 3}
  - <<: *api
    id: api-orders
    scope: [src/api/orders/**]
  - <<: [{title: Carts}, *api]
    id: api-carts
    scope: [src/api/carts/**]
    agent:
      <<: *opus
      budget_usd: 1
""",
    )
    users, orders, carts = plan.tasks
    assert orders.prompt == users.prompt
    assert orders.agent == users.agent == AgentSpec(model="opus", budget_usd=3.0)
    assert orders.scope == ("src/api/orders/**",)
    assert orders.title == "api-orders"
    assert carts.title == "Carts"
    assert carts.agent == AgentSpec(model="opus", budget_usd=1.0)


def test_stacked_tasks_may_share_paths_and_ports(tmp_path: Path) -> None:
    """Overlap and port checks apply only to tasks that may run at the same time."""
    plan = load_text(
        tmp_path,
        """\
version: 1
shared: [CHANGELOG.md]
tasks:
  - id: api
    prompt: The API.
    scope: [src/api/**, CHANGELOG.md]
    ports: [3100]
  - id: api-users
    after: api
    prompt: Users.
    scope: [src/api/users.ts]
    ports: [3100]
  - id: api-users-docs
    after: api-users
    prompt: Users docs.
    scope: [src/api/**/*.md]
    ports: [3100]
  - id: web
    prompt: The web app.
    scope: [src/web/**]
    ports: 2
""",
    )
    assert [t.after for t in plan.tasks] == [None, "api", "api-users", None]
    assert graph.ancestors(plan)["api-users-docs"] == ("api-users", "api")


def test_display_name_and_raw_bytes() -> None:
    with pytest.raises(PlanError) as info:
        load("plans/x.yaml", display="shown.yaml", raw=b"version: 1\n")
    assert [d.file for d in info.value.diagnostics] == ["shown.yaml"]
    assert info.value.sources == {"shown.yaml": ["version: 1"]}
    assert str(info.value) == "1 problem in shown.yaml"


def test_problems_come_sorted(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\ntasks:\n  - id: b\n    prompt: B.\n    scope: [/x]\n"
        "    after: zz\n  - id: a\n    prompt: A.\n    scope: [a/]\n    bogus: 1\n"
    )
    with pytest.raises(PlanError) as info:
        load(path)
    places = [(d.line, d.col) for d in info.value.diagnostics]
    assert places == sorted(places) == [(5, 13), (6, 12), (10, 5)]


@pytest.mark.parametrize("path", EXAMPLE_PLANS, ids=[p.name for p in EXAMPLE_PLANS])
def test_every_example_plan_is_valid(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = load(path)
    assert plan.tasks
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().err == "1 plan valid\n"


def test_tasks_and_steps_know_their_place_in_the_plan(tmp_path: Path) -> None:
    """What a failing setup or verify step points at: `file:line:col` of its plan entry."""
    (tmp_path / "plan.yaml").write_text(OVERRIDES, encoding="utf-8")
    plan = load(tmp_path / "plan.yaml", display="plans/p.yaml")
    inherits, overrides = plan.tasks
    lines = OVERRIDES.splitlines()
    assert lines[inherits.position.line - 1].strip() == "- id: inherits"  # type: ignore[union-attr]
    assert str(overrides.position) == f"plans/p.yaml:{lines.index('  - id: overrides') + 1}:5"
    assert str(inherits.verify[0].position).startswith("plans/p.yaml:")
    step = inherits.verify[0].position
    assert step is not None and lines[step.line - 1][step.col - 1 :] == "run: npm test"


def test_an_error_at_a_plan_entry_renders_its_place(tmp_path: Path) -> None:
    """A runtime failure carrying a step's position reads like a validation problem."""
    from wtrun.errors import WtrunError

    (tmp_path / "plan.yaml").write_text(OVERRIDES, encoding="utf-8")
    step = load(tmp_path / "plan.yaml", display="plans/p.yaml").tasks[0].verify[0]
    error = WtrunError('verify step "unit tests" failed (exit 1)', step.position)
    line = OVERRIDES.splitlines().index("  - run: npm test") + 1
    assert error.as_text() == (
        f'wtrun: error: plans/p.yaml:{line}:5: verify step "unit tests" failed (exit 1)'
    )
    assert json.loads(error.as_json()) == {
        "message": 'verify step "unit tests" failed (exit 1)',
        "file": "plans/p.yaml",
        "line": line,
        "col": 5,
    }
    assert error.as_github() == (
        f"::error file=plans/p.yaml,line={line},col=5,title=wtrun::"
        'verify step "unit tests" failed (exit 1)'
    )


def test_the_plan_knows_each_presets_instructions_file() -> None:
    """The plan repeats the presets' file names (the presets import the plan)."""
    from wtrun import agents
    from wtrun.plan.rules.scopes import INSTRUCTIONS_FILES

    assert {
        name: preset.instructions_file for name, preset in agents.PRESETS.items()
    } == INSTRUCTIONS_FILES
    schema = json.loads((ROOT / "schemas" / "plan-v1.json").read_text())
    assert set(INSTRUCTIONS_FILES) == set(
        schema["definitions"]["agent"]["properties"]["preset"]["enum"]
    )


@pytest.mark.parametrize("preset", ["claude", "codex", "gemini", "aider", "command"])
def test_a_scope_of_everything_includes_the_instructions_file(preset: str, tmp_path: Path) -> None:
    command = "\n  command: [my-agent]" if preset == "command" else ""
    path = tmp_path / "plan.yaml"
    path.write_text(
        f"version: 1\nagent:\n  preset: {preset}{command}\n"
        "tasks:\n  - id: t0\n    prompt: p\n    scope: ['**']\n"
    )
    with pytest.raises(PlanError) as info:
        load(path)
    (problem,) = info.value.diagnostics
    assert (problem.line, problem.rule) == (8 if command else 7, "scope")
    assert 'scope "**" of task "t0" includes "' in problem.message


def test_the_env_may_not_set_any_credential(tmp_path: Path) -> None:
    from wtrun import workspace
    from wtrun.tokens import SECRETS

    assert workspace.SECRETS is SECRETS  # one list: what is withheld is what a plan may not set
    env = "".join(f"  {name}: x\n" for name in SECRETS)
    path = tmp_path / "plan.yaml"
    path.write_text(f"version: 1\nenv:\n{env}tasks:\n  - id: t0\n    prompt: p\n    scope: [a]\n")
    with pytest.raises(PlanError) as info:
        load(path)
    found = [(d.line, d.rule, d.message.split('"')[1]) for d in info.value.diagnostics]
    assert found == [(3 + i, "env", name) for i, name in enumerate(SECRETS)]
