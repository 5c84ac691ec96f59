"""The plan's JSON Schema, and its errors told as a person would.

jsonschema's own messages name JSON pointers and Python reprs; here each error becomes a
`Diagnostic` at the offending key or value, saying what was found, what is allowed and
how to fix it. `prune` then removes the refused values, so that the checks only a whole
plan allows still run on the rest.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any

from .. import scopes
from . import refnames
from .diagnostics import Diagnostic
from .yaml_source import Document, NodePath


@functools.lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    text = resources.files("wtrun").joinpath("plan-v1.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.lru_cache(maxsize=1)
def validator() -> Any:
    """A validator of the schema with its `$ref`s inlined (resolving them is slow)."""
    import jsonschema

    definitions = schema()["definitions"]

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/definitions/"):
                return inline(definitions[ref.rsplit("/", 1)[1]])  # draft 7 ignores siblings
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    flat = {k: inline(v) for k, v in schema().items() if k != "definitions"}
    return jsonschema.Draft7Validator(flat)


# From this many tasks on, a validator compiled to Python code says first whether the plan is
# valid, five times faster than jsonschema; compiling it costs what jsonschema spends on
# about 1,000 tasks. Only an invalid plan is then walked by jsonschema, for its errors.
COMPILED_FROM = 2_000


def errors(data: Any) -> list[Any]:
    """jsonschema's errors of the plan `data` (none when it is valid)."""
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if isinstance(tasks, list) and len(tasks) >= COMPILED_FROM and compiled_valid(data):
        return []
    return list(validator().iter_errors(data))


def compiled_valid(data: Any) -> bool:
    """Whether `data` is valid, by the compiled validator."""
    import fastjsonschema

    try:
        _compiled()(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _compiled() -> Callable[[Any], Any]:
    import fastjsonschema

    # A copy, as it rewrites the `$ref`s it is given; use_default=False, or it would write the
    # schema's defaults into the plan.
    return fastjsonschema.compile(copy.deepcopy(schema()), use_default=False)


def schema_text() -> str:
    return resources.files("wtrun").joinpath("plan-v1.json").read_text(encoding="utf-8")


def _task_label(doc: Document, index: int) -> str:
    tasks = doc.data.get("tasks") if isinstance(doc.data, dict) else None
    task = tasks[index] if isinstance(tasks, list) and index < len(tasks) else None
    tid = task.get("id") if isinstance(task, dict) else None
    return f'task "{tid}"' if isinstance(tid, str) else f"task {index + 1}"


def _name(doc: Document, path: NodePath) -> str:
    """A reader's name for the place of `path`: `agent.timeout of task "x"`, `setup step 2`."""
    owner = ""
    if len(path) >= 2 and path[0] == "tasks" and isinstance(path[1], int):
        owner = _task_label(doc, path[1])
        path = path[2:]
    phrase = ""
    after_item = False
    last_key = ""
    for key in path:
        if isinstance(key, int):
            label = "step" if last_key in ("setup", "verify") else "item"
            phrase = f"{phrase} {label} {key + 1}"
            after_item = True
        else:
            if not phrase:
                phrase = key
            elif after_item:
                phrase = f"{key} of {phrase}"
            else:
                phrase = f"{phrase}.{key}"
            after_item = False
            last_key = key
    if owner:
        return f"{phrase} of {owner}" if phrase else owner
    return phrase or "the plan"


def type_name(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _expected(schema_types: str | list[str]) -> str:
    names = {
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "array": "a list",
        "object": "a mapping",
        "null": "nothing",
    }
    types = [schema_types] if isinstance(schema_types, str) else list(schema_types)
    return " or ".join(names.get(t, t) for t in types)


def show(value: Any) -> str:
    if value is None:
        return ""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _last_key(path: NodePath) -> str:
    for key in reversed(path):
        if isinstance(key, str):
            return key
    return ""


def _is_pattern_item(path: NodePath) -> bool:
    """A scope pattern of a task, or a `shared` pattern."""
    if path[:1] == ("shared",):
        return len(path) == 2
    return len(path) == 4 and path[0] == "tasks" and path[2] == "scope"


def _is_step(path: NodePath) -> bool:
    return len(path) >= 2 and isinstance(path[-1], int) and path[-2] in ("setup", "verify")


def describe(doc: Document, error: Any) -> Iterator[Diagnostic]:
    path: NodePath = tuple(error.absolute_path)
    name = _name(doc, path)
    kind = error.validator
    value = error.instance
    if "propertyNames" in error.absolute_schema_path:
        if not _is_step(path):  # a step's keys are told by the oneOf below
            yield _env_name_problem(doc, path, str(value))
        return
    if _is_step(path) and kind == "oneOf":
        yield from _step_problems(doc, error, path, value)
        return
    if _is_step(path) and kind in ("minProperties", "type"):
        return  # told by the oneOf
    if _is_pattern_item(path) and isinstance(value, str) and kind in ("pattern", "minLength"):
        yield doc.diagnostic(path, scope_message(doc, path, value), "scope")
        return
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in [k for k in value if k not in allowed]:
            yield _unknown_key(doc, path, key, allowed)
        return
    if kind == "required":
        yield from _missing_problems(doc, error, path, name)
        return
    if kind == "type":
        yield doc.diagnostic(
            path, _type_message(doc, path, name, value, error.validator_value), "schema"
        )
        return
    if kind == "enum":
        allowed = [str(v) for v in error.validator_value]
        close = difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.6)
        hint = f'did you mean "{close[0]}"?' if close else "use one of them"
        listed = ", ".join(f'"{v}"' for v in allowed)
        yield doc.diagnostic(
            path, f"{name} is {show(value)}; it must be one of {listed}: " + hint, "schema"
        )
        return
    if kind == "pattern":
        yield doc.diagnostic(path, _pattern_message(doc, path, name, value), "schema")
        return
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        yield doc.diagnostic(
            path, _bound_message(path, name, value, kind, error.validator_value), "schema"
        )
        return
    if kind in ("minItems", "maxItems", "minLength", "maxLength"):
        yield doc.diagnostic(
            path, _size_message(path, name, value, kind, error.validator_value), "schema"
        )
        return
    if kind == "uniqueItems":
        seen: set[str] = set()
        for j, item in enumerate(value):
            key = json.dumps(item, sort_keys=True, default=str)
            if key in seen:
                yield doc.diagnostic(
                    (*path, j), f"{name} lists {show(item)} twice; remove the repeat", "schema"
                )
                break
            seen.add(key)
        return
    if kind == "const":
        yield doc.diagnostic(
            path,
            f"{name} is {show(value)}, but it must be {show(error.validator_value)}; change it",
            "schema",
        )
        return
    if kind in ("oneOf", "anyOf") and error.context:
        import jsonschema.exceptions

        # The alternative that came closest, as check-jsonschema reports it.
        yield from describe(doc, jsonschema.exceptions.best_match(error.context))
        return
    yield doc.diagnostic(path, f"{name}: {error.message}; change it", "schema")


def missing_keys(error: Any) -> list[str]:
    """The keys a `required` error's mapping misses: all of them, from the error's fields.

    jsonschema raises one error per missing key, and only its message says which one;
    each error is told as all of them, and the repeats merge when diagnostics are sorted.
    """
    present = error.instance if isinstance(error.instance, dict) else {}
    return [str(k) for k in error.validator_value if k not in present]


def _missing_problems(doc: Document, error: Any, path: NodePath, name: str) -> Iterator[Diagnostic]:
    known = list(error.schema.get("properties", {}))
    typed = [k for k in error.instance if k not in known]
    for missing in missing_keys(error):
        if not path and missing == "version":
            continue  # told by the loader in its own words
        if any(difflib.get_close_matches(k, known, n=1, cutoff=0.6) == [missing] for k in typed):
            continue  # a misspelt key: told as an unknown key with "did you mean"
        yield doc.diagnostic(
            path,
            f'{name} is missing the required key "{missing}"; '
            f"{_REQUIRED_FIX.get(missing, f'add {missing}')}",
            "schema",
            key=True,
        )


_REQUIRED_FIX = {
    "tasks": "add a list of tasks, each with an id, a prompt and a scope (see plans/minimal.yaml)",
    "id": 'add one, e.g. `id: fix-123-login` (lower-case letters, digits, ".", "_" and "-")',
    "prompt": "add `prompt:` with what the agent should do",
    "scope": "add the paths the task may change, e.g. `scope: [src/login/**]`",
}


def _unknown_key(
    doc: Document, path: NodePath, key: str, allowed: Sequence[str], note: str = ""
) -> Diagnostic:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        hint = f'did you mean "{close[0]}"?'
    else:
        hint = f"remove it, or use one of: {', '.join(allowed)}"
    return doc.diagnostic(
        (*path, key), f'unknown key "{key}" in {_name(doc, path)}{note}; {hint}', "schema", key=True
    )


def _env_name_problem(doc: Document, path: NodePath, key: str) -> Diagnostic:
    fixed = re.sub(r"\W", "_", key)
    fixed = f"_{fixed}" if fixed[:1].isdigit() or not fixed else fixed
    return doc.diagnostic(
        (*path, key),
        (
            f'environment variable name "{key}" in {_name(doc, path)} is not allowed: names use '
            f'letters, digits and "_", and do not start with a digit; rename it, e.g. "{fixed}"'
        ),
        "schema",
        key=True,
    )


_STEP_KEYS = {"copy": ("copy",), "link": ("link",), "run": ("run", "name", "timeout")}


def _step_problems(doc: Document, error: Any, path: NodePath, value: Any) -> Iterator[Diagnostic]:
    name = _name(doc, path)
    if not isinstance(value, dict):
        fix = (
            f"write it as `- run: {value}`"
            if isinstance(value, str)
            else "write it as `- run: COMMAND`, `- copy: [PATH]` or `- link: [PATH]`"
        )
        yield doc.diagnostic(
            path,
            f"{name} is {type_name(value)} {show(value)}, expected a mapping; {fix}",
            "schema",
        )
        return
    kinds = [k for k in _STEP_KEYS if k in value]
    if len(kinds) > 1:
        both = " and ".join(f'"{k}"' for k in kinds)
        yield doc.diagnostic(
            (*path, kinds[1]),
            (f"{name} has both {both}; a step does one thing: split it into one step for each"),
            "schema",
            key=True,
        )
        return
    every = sorted({k for keys in _STEP_KEYS.values() for k in keys})
    if not kinds:
        unknown = [k for k in value if k not in every]
        if unknown:
            for key in unknown:
                yield _unknown_key(
                    doc,
                    path,
                    key,
                    ["copy", "link", "run"],
                    note=' (a step needs one of "copy", "link" or "run")',
                )
            return
        yield doc.diagnostic(
            path,
            (f'{name} has none of "copy", "link" or "run"; add one, e.g. `run: npm test`'),
            "schema",
            key=True,
        )
        return
    kind = kinds[0]
    allowed = _STEP_KEYS[kind]
    for key in value:
        if key not in allowed:
            note = f" (a {kind} step has only {', '.join(f'{k!r}' for k in allowed)})"
            yield _unknown_key(doc, path, key, allowed, note=note.replace("'", '"'))
    branch = list(_STEP_KEYS).index(kind)
    for sub in error.context:
        if (
            sub.relative_schema_path
            and sub.relative_schema_path[0] == branch
            and sub.validator not in ("additionalProperties", "type", "required")
        ):
            yield from describe(doc, sub)


def _type_message(
    doc: Document, path: NodePath, name: str, value: Any, types: str | list[str]
) -> str:
    wanted = [types] if isinstance(types, str) else list(types)
    written = doc.source(path)
    found = f"{type_name(value)} {show(value)}".rstrip()
    message = f"{name} is {found}, expected {_expected(types)}"
    if "string" in wanted and isinstance(value, bool):
        text = written or json.dumps(value)
        return f'{message}: YAML reads an unquoted {text} as true or false; quote it: "{text}"'
    if "string" in wanted and isinstance(value, (int, float)):
        return f'{message}; quote it: "{written or value}"'
    if value is None:
        return f"{message}; write a value after the colon, or remove the key"
    if _last_key(path) == "timeout":
        return f'{message}; write a duration such as "90s", "45m" or "1h30m"'
    if wanted == ["array"] and isinstance(value, str):
        return f"{message}; write it as a list: [{value}]"
    if wanted == ["array"]:
        return f"{message}; write it as a list, e.g. [a, b]"
    if wanted == ["object"] and isinstance(value, list):
        return (
            f'{message}; write `key: value` lines without the leading "- ", e.g. '
            f"{_MAPPING_EXAMPLE.get(_last_key(path), '{key: value}')}"
        )
    if wanted == ["object"]:
        return (
            f"{message}; write `key: value` lines, e.g. "
            f"{_MAPPING_EXAMPLE.get(_last_key(path), '{key: value}')}"
        )
    if path[-1:] == ("ports",):
        return f"{message}; write a count such as 1, or the port numbers such as [3001]"
    numeric = isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value)
    if numeric and any(t in ("integer", "number") for t in wanted):
        return f"{message}; write the number without quotes"
    if isinstance(value, float) and "integer" in wanted:
        return f"{message}; use a whole number"
    if "boolean" in wanted and isinstance(value, str):
        return f"{message}; write true or false without quotes"
    return f"{message}; change it to {_expected(types)}"


_MAPPING_EXAMPLE = {
    "agent": "`agent: {preset: claude, model: sonnet}`",
    "pr": "`pr: {provider: github, draft: true}`",
    "env": "`env: {NODE_ENV: test}`",
}

_ID_RULE = (
    'ids use lower-case letters, digits, ".", "_" and "-", start with a letter or '
    'digit, and contain no ".." nor end with "." or ".lock"'
)


def _id_fix(value: str) -> tuple[str, str]:
    """Why `value` is not a valid task id, and an id that would be."""
    if re.search("[A-Z]", value):
        reason = "it has upper-case letters"
    elif not re.match("[A-Za-z0-9]", value):
        reason = f'it starts with "{value[:1]}"'
    elif ".." in value:
        reason = 'it contains ".."'
    elif value.endswith(".lock"):
        reason = 'it ends with ".lock"'
    elif value.endswith("."):
        reason = 'it ends with "."'
    else:
        bad = re.search("[^a-z0-9._-]", value)
        reason = f'it contains "{bad.group()}"' if bad else "it is not allowed"
    fixed = re.sub("[^a-z0-9._-]+", "-", value.lower())
    fixed = re.sub(r"\.{2,}", ".", fixed)
    while fixed.endswith((".lock", ".", "-", "_")):
        fixed = fixed[:-5] if fixed.endswith(".lock") else fixed[:-1]
    fixed = fixed.lstrip("-._") or "task-1"
    return reason, fixed


def _path_problem(value: str) -> str:
    if value.startswith("/"):
        return (
            f"it is an absolute path; write it relative to the repository root: "
            f'"{value.lstrip("/")}"'
        )
    if "//" in value:
        return f'it has an empty segment ("//"); use a single "/": "{re.sub("/+", "/", value)}"'
    if ".." in value.split("/"):
        return (
            'it has a ".." segment, which leaves the repository; name the path from the '
            "repository root"
        )
    kept = "/".join(seg for seg in value.split("/") if seg != ".")
    return f'it has a "." segment; remove it: "{kept}"'


def _worktrees_problem(value: str) -> str:
    fix = 'use a folder inside the repository, e.g. ".claude/worktrees"'
    if re.match(r"[.][Gg][Ii][Tt](/|$)", value):
        return f'it is inside ".git", where git keeps its own data; {fix}'
    if value.startswith("/") or "//" in value or re.search(r"(^|/)\.\.?(/|$)", value):
        return _path_problem(value)
    return f"it contains a control character or a backslash; {fix}"


def _pattern_message(doc: Document, path: NodePath, name: str, value: str) -> str:
    key = _last_key(path)
    if key in ("id", "after", "name"):
        reason, fixed = _id_fix(value)
        what = {"id": "task id", "after": "task id", "name": "plan name"}[key]
        head = (
            f'{what} "{value}" is not valid'
            if key != "after"
            else f'{name} is "{value}", which is not a valid task id'
        )
        rule = _ID_RULE.replace("ids", "names" if key == "name" else "ids")
        return f'{head}: {reason}; {rule}: use "{fixed}"'
    if key == "timeout":
        return (
            f'{name} is "{value}", which is not a duration; write one such as "90s", '
            '"45m" or "1h30m", or a whole number of seconds'
        )
    if key == "repository":
        return f'{name} is "{value}"; write the GitHub repository as "owner/name"'
    if key in ("copy", "link"):
        return f'{name} is "{value}", which is not allowed: {_path_problem(value)}'
    if path == ("base",):
        why = refnames.ref_problem(value) or "it is not allowed"
        return (
            f"base is {show(value)}, which is not a valid git ref name: {why}; name the branch, "
            'tag or commit to start from, e.g. "main" or "release/2.1"'
        )
    if path == ("remote",):
        why = refnames.remote_problem(value) or "it is not allowed"
        return (
            f"remote is {show(value)}, which is not a valid remote name: {why}; remote names "
            'use letters, digits, ".", "_" and "-" and start with a letter or digit, e.g. '
            '"origin" (see `git remote`)'
        )
    if path == ("worktrees",):
        return f"worktrees is {show(value)}, which is not allowed: {_worktrees_problem(value)}"
    return f"{name} is {show(value)}, which does not match {show(path)}; change it"


def scope_message(doc: Document, path: NodePath, pattern: str) -> str:
    """The message for an invalid scope or shared pattern (also used by the semantic checks)."""
    owner = "shared" if path[0] == "shared" else f"scope of {_task_label(doc, int(path[1]))}"
    try:
        scopes.validate(pattern)
    except scopes.ScopeError as e:
        return f'{owner}: pattern "{e.pattern}" {e.reason}' if e.pattern else f"{owner}: {e.reason}"
    return f'{owner}: pattern "{pattern}" is not allowed'


def _bound_message(path: NodePath, name: str, value: Any, kind: str, bound: Any) -> str:
    words = {
        "minimum": "at least",
        "exclusiveMinimum": "more than",
        "maximum": "at most",
        "exclusiveMaximum": "less than",
    }
    message = f"{name} is {show(value)}, but it must be {words[kind]} {bound}"
    key = _last_key(path)
    if key == "budget_usd":
        return f"{message}; set a positive amount of dollars, or remove it for no cap"
    if key == "port_range":
        return f"{message}; ports are numbers from 1 to 65535"
    if key == "ports" and isinstance(path[-1], int):
        return f"{message}; ports are numbers from 1 to 65535"
    if key == "ports":
        return f"{message}; ask for fewer ports, or list the port numbers"
    if key == "timeout":
        return f'{message}; give a positive duration such as "90s" or "45m"'
    return f"{message}; change it"


def _size_message(path: NodePath, name: str, value: Any, kind: str, bound: int) -> str:
    key = _last_key(path)
    if key == "port_range" and not isinstance(path[-1], int):
        return (
            f"port_range is {show(value)}, but it must be two port numbers [low, high]; "
            "write e.g. [3100, 3999]"
        )
    if kind == "minLength":
        return f"{name} is an empty string; write a value, or remove the key"
    if kind == "maxLength":
        return (
            f"{name} is {len(value)} characters long, but it may have at most {bound}; shorten it"
        )
    if kind == "minItems":
        fixes = {
            "scope": "list at least one path the task may change, e.g. [src/login/**]",
            "tasks": "add at least one task",
            "command": 'give the program to run, e.g. [my-agent, "{{ task.id }}"]',
            "ports": "give a count instead (ports: 1), or list the port numbers",
            "copy": "list the paths to copy, or remove the step",
            "link": "list the paths to link, or remove the step",
        }
        return f"{name} is empty; {fixes.get(key, f'give at least {bound} item')}"
    return f"{name} has {len(value)} items, but it may have at most {bound}; remove some"


def prune(
    data: dict[str, Any], errors: Sequence[Any]
) -> tuple[dict[str, Any], list[int], set[NodePath]] | None:
    """The plan's data without the values the schema refused, for the semantic checks.

    Returns the data, the position in the file of each task kept, and the paths removed;
    None when no task is usable. A task without a usable id is left out; any other
    refused value is removed (a list entirely, so that positions keep their meaning) and
    the plan's defaults apply instead.
    """
    tasks = data.get("tasks")
    if not errors:
        return (data, list(range(len(tasks))), set()) if isinstance(tasks, list) else None
    data = copy.deepcopy(data)
    dropped: set[int] = set()
    pruned: set[NodePath] = set()
    for error in errors:
        for path in _refused(error):
            _remove(data, path, dropped, pruned)
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        return None
    positions = [i for i in range(len(tasks)) if i not in dropped]
    data["tasks"] = [tasks[i] for i in positions]
    for task in data["tasks"]:
        task.setdefault("prompt", "")
        task.setdefault("scope", [])
    return data, positions, pruned


def _refused(error: Any) -> list[NodePath]:
    """The paths whose values an error refuses."""
    path: NodePath = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {})
        return [(*path, key) for key in error.instance if key not in allowed]
    if error.validator == "required":
        missing = missing_keys(error)
        return (
            [path]
            if any(m == "id" or m not in ("prompt", "scope", "tasks") for m in missing)
            else []
        )
    if _is_pattern_item(path) and error.validator in ("pattern", "minLength"):
        return []  # checked again, with the same message, by the scope checks
    return [path]


def _remove(data: dict[str, Any], path: NodePath, dropped: set[int], pruned: set[NodePath]) -> None:
    if (
        len(path) >= 2
        and path[0] == "tasks"
        and isinstance(path[1], int)
        and (len(path) == 2 or path[2] == "id")
    ):
        dropped.add(path[1])
        return
    # Remove the innermost mapping key on the path: list items would shift positions.
    for end in range(len(path) - 1, -1, -1):
        key = path[end]
        if not isinstance(key, str):
            continue
        if key in _STEP_KEYS and _is_step(path[:end]):
            continue  # a step without its kind is no step: remove the whole list
        container: Any = data
        for part in path[:end]:
            try:
                container = container[part]
            except (KeyError, IndexError, TypeError):
                return  # already removed
        if isinstance(container, dict):
            container.pop(key, None)
            pruned.add(path[: end + 1])
        return


def touches(pruned: set[NodePath], prefix: NodePath) -> bool:
    return any(p[: len(prefix)] == prefix or prefix[: len(p)] == p for p in pruned)
