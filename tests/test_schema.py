"""The published JSON Schema of plan format v1 (schemas/plan-v1.json)."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

ROOT = Path(__file__).parent.parent
SCHEMA_PATH = ROOT / "schemas" / "plan-v1.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = Draft7Validator(SCHEMA)

# A plan that sets every key, each with a comment saying what it does.
EVERY_KEY = (Path(__file__).parent / "data" / "every-key.yaml").read_text()

# Object schemas that are maps (names chosen by the user) rather than records.
MAPS = {"#/definitions/env"}


def _walk(node: Any, pointer: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema with its JSON pointer, descending through all keywords."""
    if not isinstance(node, dict):
        return
    yield pointer, node
    for key, value in node.items():
        if key in ("properties", "definitions"):
            for name, sub in value.items():
                yield from _walk(sub, f"{pointer}/{key}/{name}")
        elif key in ("oneOf", "anyOf", "allOf"):
            for i, sub in enumerate(value):
                yield from _walk(sub, f"{pointer}/{key}/{i}")
        elif key in ("items", "additionalProperties", "propertyNames", "if", "then", "else", "not"):
            yield from _walk(value, f"{pointer}/{key}")


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/definitions/"), ref
        schema = SCHEMA["definitions"][ref.removeprefix("#/definitions/")]
    return schema


def _minimal(**top: Any) -> dict[str, Any]:
    plan: dict[str, Any] = {
        "version": 1,
        "tasks": [{"id": "fix-1", "prompt": "Fix it.", "scope": ["src/**"]}],
    }
    plan.update(top)
    return plan


def _with_task(**fields: Any) -> dict[str, Any]:
    plan = _minimal()
    plan["tasks"][0].update(fields)
    return plan


def _with_step(step: Any) -> dict[str, Any]:
    return _minimal(setup=[step])


def _errors(plan: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(plan)
    ]


# -- the schema itself -------------------------------------------------------------------------


def test_schema_is_valid_draft7() -> None:
    Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert SCHEMA["$id"] == "https://wtrun.dev/schemas/plan-v1.json"
    assert SCHEMA["required"] == ["version", "tasks"]
    assert SCHEMA["properties"]["version"]["const"] == 1


def test_every_property_and_definition_has_a_description() -> None:
    missing = []
    for pointer, node in _walk(SCHEMA):
        for name, sub in node.get("properties", {}).items():
            description = sub.get("description")
            if not isinstance(description, str) or not description.strip():
                missing.append(f"{pointer}/properties/{name}")
    for name, sub in SCHEMA["definitions"].items():
        if not sub.get("description"):
            missing.append(f"#/definitions/{name}")
    assert missing == []


def test_every_object_is_closed() -> None:
    """Unknown keys are errors everywhere, except in maps such as `env`."""
    open_objects = []
    for pointer, node in _walk(SCHEMA):
        if "properties" not in node and node.get("type") != "object":
            continue
        if pointer in MAPS:
            assert "properties" not in node
            assert isinstance(node["additionalProperties"], dict)
            continue
        if node.get("additionalProperties") is False:
            continue
        # A union of closed shapes (a step) is closed too.
        branches = node.get("oneOf", [])
        if branches and all(b.get("additionalProperties") is False for b in branches):
            continue
        open_objects.append(pointer)
    assert open_objects == []


def test_step_key_list_matches_its_branches() -> None:
    step = SCHEMA["definitions"]["step"]
    keys = {key for branch in step["oneOf"] for key in branch["properties"]}
    assert set(step["propertyNames"]["enum"]) == keys
    assert [branch["required"] for branch in step["oneOf"]] == [["copy"], ["link"], ["run"]]


def _load_model() -> ModuleType:
    # By path, so the test needs no installed package: the model beside this schema.
    path = ROOT / "runner" / "plan" / "model.py"
    spec = importlib.util.spec_from_file_location("_wtrun_model_for_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while decorating
    spec.loader.exec_module(module)
    return module


def _fields(cls: type) -> dict[str, Any]:
    return {f.name: f for f in dataclasses.fields(cls)}


def test_schema_keys_match_the_loaded_model() -> None:
    """The schema describes exactly the YAML that loads into wtrun.model."""
    model = _load_model()
    top = set(SCHEMA["properties"])
    assert top == set(_fields(model.Plan)) - {"path"}
    task = set(SCHEMA["definitions"]["task"]["properties"])
    assert task == set(_fields(model.Task)) - {"position"}
    agent = set(SCHEMA["definitions"]["agent"]["properties"])
    assert agent == (set(_fields(model.AgentSpec)) - {"timeout_s"}) | {"timeout"}
    assert set(SCHEMA["definitions"]["pr"]["properties"]) == set(_fields(model.PrSpec))
    preset_comment = "claude | codex | aider | gemini | command"
    assert SCHEMA["definitions"]["agent"]["properties"]["preset"]["enum"] == preset_comment.split(
        " | "
    )


def test_schema_defaults_match_the_loaded_model() -> None:
    model = _load_model()
    for cls, properties in [
        (model.Plan, SCHEMA["properties"]),
        (model.PrSpec, SCHEMA["definitions"]["pr"]["properties"]),
    ]:
        fields = _fields(cls)
        for name, prop in properties.items():
            if "default" in prop:
                default = fields[name].default
                expected = list(default) if isinstance(default, tuple) else default
                assert prop["default"] == expected, name
    assert model.AgentSpec().preset == "claude"
    assert model.AgentSpec().timeout_s == 45 * 60  # the agent.timeout description says 45m
    assert model.Step(kind="run").timeout_s == 10 * 60  # the run.timeout description says 10m


# -- documents ---------------------------------------------------------------------------------


def test_the_every_key_example_validates() -> None:
    plan = yaml.safe_load(EVERY_KEY)
    assert _errors(plan) == []


def test_every_key_of_the_example_is_known() -> None:
    unknown: list[str] = []

    def visit(instance: Any, schema: dict[str, Any], path: str) -> None:
        schema = _resolve(schema)
        if isinstance(instance, dict):
            if "oneOf" in schema:
                (schema,) = [
                    b for b in schema["oneOf"] if all(k in instance for k in b.get("required", []))
                ]
            if schema.get("type") == "object" and "properties" not in schema:
                return  # a map: any names
            for key, value in instance.items():
                if key not in schema.get("properties", {}):
                    unknown.append(f"{path}/{key}")
                else:
                    visit(value, schema["properties"][key], f"{path}/{key}")
        elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
            for i, item in enumerate(instance):
                visit(item, schema["items"], f"{path}/{i}")

    plan = yaml.safe_load(EVERY_KEY)
    visit(plan, SCHEMA, "")
    assert unknown == []
    # ...and it uses every top-level key but commit_message.
    assert set(SCHEMA["properties"]) - set(plan) == {"commit_message"}


VALID = {
    "minimal": _minimal(),
    "command preset": _minimal(
        agent={"preset": "command", "command": ["my-agent", "--task", "{{ task.id }}"]}
    ),
    "task agent override": _with_task(agent={"model": "opus", "timeout": 5400}),
    "durations": _minimal(
        agent={"timeout": "1h30m"},
        setup=[{"run": "a", "timeout": "90s"}, {"run": "b", "timeout": "2h"}],
        verify=[{"run": "c", "timeout": 600}],
    ),
    "step shapes": _minimal(
        setup=[
            {"copy": ".env"},
            {"link": ["node_modules", ".venv/"]},
            {"run": "make deps", "name": "deps", "timeout": "10m"},
        ]
    ),
    "empty lists and maps": _minimal(setup=[], verify=[], env={}, shared=[]),
    "explicit ports": _with_task(ports=[3001, 3002]),
    "no ports": _with_task(ports=0),
    "many ports": _with_task(ports=64),
    "scope syntax": _with_task(
        scope=[".github/**", "src/", "**/*.md", "src/[!a]*.ts", "docs/?.md", "a/b[0-9]"]
    ),
    "pr local": _minimal(pr={"provider": "local", "body": "{{ task.prompt }}", "draft": False}),
    "pr none": _minimal(pr={"provider": "none"}),
    "stacked": _minimal(
        tasks=[
            {"id": "a", "prompt": "p", "scope": ["a/"]},
            {"id": "b.1_x", "title": "B", "prompt": "p", "scope": ["b/"], "after": "a"},
        ]
    ),
    "env strings": _with_task(env={"NODE_ENV": "test", "_X1": "1"}),
    "fractional budgets": _minimal(budget_usd=0.5, agent={"budget_usd": 0.01}),
    "commit message": _minimal(commit_message="fix: {{ task.title }}"),
}


@pytest.mark.parametrize("plan", VALID.values(), ids=VALID.keys())
def test_valid_plans(plan: dict[str, Any]) -> None:
    assert _errors(plan) == []


# name -> (plan, path of the best match, its keyword)
INVALID: dict[str, tuple[Any, str, str]] = {
    "not a mapping": ([1], "", "type"),
    "version missing": ({"tasks": _minimal()["tasks"]}, "", "required"),
    "version 2": (_minimal(version=2), "version", "const"),
    "version string": (_minimal(version="1"), "version", "const"),
    "tasks missing": ({"version": 1}, "", "required"),
    "no tasks": (_minimal(tasks=[]), "tasks", "minItems"),
    "unknown top-level key": (_minimal(task=[]), "", "additionalProperties"),
    "shared in a task": (_with_task(shared=["x"]), "tasks/0", "additionalProperties"),
    "unknown task key": (_with_task(scopes=["x"]), "tasks/0", "additionalProperties"),
    "prompt missing": (_minimal(tasks=[{"id": "a", "scope": ["a"]}]), "tasks/0", "required"),
    "scope missing": (_minimal(tasks=[{"id": "a", "prompt": "p"}]), "tasks/0", "required"),
    "empty scope": (_with_task(scope=[]), "tasks/0/scope", "minItems"),
    "scope a string": (_with_task(scope="src/**"), "tasks/0/scope", "type"),
    "absolute scope": (_with_task(scope=["/etc/**"]), "tasks/0/scope/0", "pattern"),
    "scope leaves the repo": (_with_task(scope=["src/../x"]), "tasks/0/scope/0", "pattern"),
    "scope with ./": (_with_task(scope=["./src/"]), "tasks/0/scope/0", "pattern"),
    "empty scope pattern": (_with_task(scope=[""]), "tasks/0/scope/0", "minLength"),
    "shared absolute": (_minimal(shared=["/x"]), "shared/0", "pattern"),
    "upper-case id": (_with_task(id="Fix-1"), "tasks/0/id", "pattern"),
    "id with ..": (_with_task(id="a..b"), "tasks/0/id", "pattern"),
    "id ending in .lock": (_with_task(id="a.lock"), "tasks/0/id", "pattern"),
    "id starting with -": (_with_task(id="-a"), "tasks/0/id", "pattern"),
    "id too long": (_with_task(id="a" * 101), "tasks/0/id", "maxLength"),
    "after not an id": (_with_task(after="Some Task"), "tasks/0/after", "pattern"),
    "too many ports": (_with_task(ports=65), "tasks/0/ports", "maximum"),
    "port 0": (_with_task(ports=[0]), "tasks/0/ports/0", "minimum"),
    "port too high": (_with_task(ports=[70000]), "tasks/0/ports/0", "maximum"),
    "duplicate ports": (_with_task(ports=[3001, 3001]), "tasks/0/ports", "uniqueItems"),
    "no explicit ports": (_with_task(ports=[]), "tasks/0/ports", "minItems"),
    "ports as a string": (_with_task(ports="1"), "tasks/0/ports", "type"),
    "ports as a bool": (_with_task(ports=True), "tasks/0/ports", "type"),
    "max_parallel 0": (_minimal(max_parallel=0), "max_parallel", "minimum"),
    "budget 0": (_minimal(budget_usd=0), "budget_usd", "exclusiveMinimum"),
    "negative task budget": (
        _minimal(agent={"budget_usd": -1}),
        "agent/budget_usd",
        "exclusiveMinimum",
    ),
    "port_range one number": (_minimal(port_range=[3100]), "port_range", "minItems"),
    "port_range out of range": (_minimal(port_range=[0, 10]), "port_range/0", "minimum"),
    "unknown preset": (_minimal(agent={"preset": "cursor"}), "agent/preset", "enum"),
    "unknown agent key": (
        _with_task(agent={"modle": "x"}),
        "tasks/0/agent",
        "additionalProperties",
    ),
    "empty command": (
        _minimal(agent={"preset": "command", "command": []}),
        "agent/command",
        "minItems",
    ),
    "command a string": (_minimal(agent={"command": "my-agent"}), "agent/command", "type"),
    "args a string": (_minimal(agent={"args": "--x"}), "agent/args", "type"),
    "timeout with a space": (_minimal(agent={"timeout": "45 m"}), "agent/timeout", "pattern"),
    "timeout out of order": (_minimal(agent={"timeout": "30m1h"}), "agent/timeout", "pattern"),
    "timeout empty": (_minimal(agent={"timeout": ""}), "agent/timeout", "pattern"),
    "timeout zero": (_minimal(agent={"timeout": "0m"}), "agent/timeout", "pattern"),
    "timeout 0 seconds": (_minimal(agent={"timeout": 0}), "agent/timeout", "minimum"),
    "timeout a float": (_minimal(agent={"timeout": 1.5}), "agent/timeout", "type"),
    "env number": (_minimal(env={"PORT_OFFSET": 1}), "env/PORT_OFFSET", "type"),
    "env bool": (_with_task(env={"CI": True}), "tasks/0/env/CI", "type"),
    "env bad name": (_minimal(env={"MY VAR": "x"}), "env", "pattern"),
    "step a string": (_with_step("npm ci"), "setup/0", "type"),
    "empty step": (_with_step({}), "setup/0", "minProperties"),
    "step key typo": (_with_step({"cpy": ".env"}), "setup/0", "enum"),
    "step option typo": (_with_step({"run": "x", "timeot": "1m"}), "setup/0", "enum"),
    "two step kinds": (_with_step({"copy": ".env", "run": "x"}), "setup/0", "oneOf"),
    "timeout on a copy": (_with_step({"copy": ".env", "timeout": "1m"}), "setup/0", "oneOf"),
    "name without run": (_with_step({"name": "x"}), "setup/0", "oneOf"),
    "run a list": (_with_step({"run": ["npm", "ci"]}), "setup/0/run", "type"),
    "copy nothing": (_with_step({"copy": []}), "setup/0/copy", "minItems"),
    "copy absolute": (_with_step({"copy": "/etc/passwd"}), "setup/0/copy", "pattern"),
    "link outside": (_with_step({"link": ["../cache"]}), "setup/0/link/0", "pattern"),
    "verify step timeout": (
        _minimal(verify=[{"run": "x", "timeout": "soon"}]),
        "verify/0/timeout",
        "pattern",
    ),
    "unknown provider": (_minimal(pr={"provider": "gitlab"}), "pr/provider", "enum"),
    "repository without owner": (_minimal(pr={"repository": "shop"}), "pr/repository", "pattern"),
    "repository a URL": (
        _minimal(pr={"repository": "https://github.com/acme/shop"}),
        "pr/repository",
        "pattern",
    ),
    "draft a string": (_minimal(pr={"draft": "yes"}), "pr/draft", "type"),
    "labels a string": (_minimal(pr={"labels": "agent"}), "pr/labels", "type"),
    "unknown pr key": (_minimal(pr={"base": "main"}), "pr", "additionalProperties"),
    "name with a space": (_minimal(name="sprint 12"), "name", "pattern"),
    "name a number": (_minimal(name=12), "name", "type"),
}


@pytest.mark.parametrize(("plan", "path", "keyword"), INVALID.values(), ids=INVALID.keys())
def test_invalid_plans(plan: Any, path: str, keyword: str) -> None:
    error = best_match(VALIDATOR.iter_errors(plan))
    assert error is not None, "plan unexpectedly valid"
    assert ("/".join(map(str, error.absolute_path)), error.validator) == (path, keyword)


def test_a_typo_in_the_every_key_example_names_the_key() -> None:
    plan = yaml.safe_load(EVERY_KEY)
    broken = copy.deepcopy(plan)
    broken["tasks"][1]["scopes"] = broken["tasks"][1].pop("scope")
    messages = _errors(broken)
    assert "tasks/1: Additional properties are not allowed ('scopes' was unexpected)" in messages


# -- names git reads from the plan -------------------------------------------------------------

REFS = [
    "main",
    "release/2.1",
    "refs/heads/main",
    "v1.2.3",
    "0123abcd",
    "a.lockx",
    "--upload-pack=touch PWNED; git-upload-pack",
    "-x",
    "/main",
    "main/",
    "main.",
    "a..b",
    "a//b",
    "a@{1}",
    "@",
    ".hidden",
    "a/.b",
    "x.lock",
    "x.lock/y",
    "a b",
    "a\tb",
    "ma\x01in",
    "a\x7fb",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[b",
    "a\\b",
]


@pytest.mark.parametrize("ref", REFS)
def test_base_pattern_says_what_git_check_ref_format_says(ref: str) -> None:
    """The schema's pattern and the rule that explains it agree on every name."""
    from wtrun.plan.refnames import ref_problem

    ok = not _errors(_minimal(base=ref))
    assert ok == (ref_problem(ref) is None)
    if "\x00" not in ref:
        git = ["git", "check-ref-format", "--allow-onelevel", ref]
        assert ok == (subprocess.run(git, capture_output=True).returncode == 0)


@pytest.mark.parametrize(
    "remote", ["origin", "up-stream", "a.b_c", "0x", "-oProxyCommand=x", ".x", "my remote", "a/b"]
)
def test_remote_pattern_and_its_rule_agree(remote: str) -> None:
    from wtrun.plan.refnames import remote_problem

    ok = not _errors(_minimal(remote=remote))
    assert ok == (remote_problem(remote) is None)
    assert ok == (remote[:1].isalnum() and all(c.isalnum() or c in "._-" for c in remote))


@pytest.mark.parametrize(
    ("worktrees", "ok"),
    [
        (".claude/worktrees", True),
        (".wt/", True),
        ("build/wt", True),
        (".github/wt", True),
        ("/tmp/wt", False),
        ("../..", False),
        ("a/../b", False),
        ("./wt", False),
        (".git", False),
        (".git/wt", False),
        (".GIT/wt", False),
        ("a//b", False),
        ("a\\b", False),
    ],
)
def test_worktrees_stay_inside_the_repository(worktrees: str, ok: bool) -> None:
    assert (not _errors(_minimal(worktrees=worktrees))) == ok
