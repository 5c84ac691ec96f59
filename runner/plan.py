"""Loading a plan: parse, check, apply defaults, return frozen dataclasses.

`load` collects every problem of a file as a `Diagnostic` (schema, duplicate keys,
ids, `after` cycles, scopes, overlaps, ports, templates) and raises `PlanError`
carrying all of them, sorted; on success the `Plan` is complete and nothing
downstream looks at raw YAML again.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from . import scopes, templates
from .diagnostics import Diagnostic
from .diagnostics import sort as sort_diagnostics
from .errors import UsageError, WtrunError
from .model import AgentSpec, Plan, PrSpec, Step, Task
from .yamlsrc import Document
from .yamlsrc import Path as NodePath
from .yamlsrc import read as read_yaml

KNOWN_VERSIONS = (1,)
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class PlanError(WtrunError):
    """A plan with problems; `diagnostics` holds every one, sorted."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, list[str]]) -> None:
        self.diagnostics = sort_diagnostics(diagnostics)
        self.sources = sources
        n = len(self.diagnostics)
        where = self.diagnostics[0].file if self.diagnostics else "the plan"
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in {where}")


@functools.lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    text = resources.files("wtrun").joinpath("plan-v1.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
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


def schema_text() -> str:
    return resources.files("wtrun").joinpath("plan-v1.json").read_text(encoding="utf-8")


def parse_duration(value: int | float | str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    m = _DURATION.match(value.strip())
    if not value.strip() or m is None:
        raise ValueError(value)
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return float(h * 3600 + mi * 60 + s)


def read_source(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a plan file") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None


def load(path: str | Path, *, display: str | None = None, raw: bytes | None = None) -> Plan:
    """Load and check the plan at `path`; raise PlanError listing every problem."""
    path = Path(path)
    file = display or str(path)
    if raw is None:
        raw = read_source(path)
    doc, problems = read_yaml(file, raw)
    sources = {file: doc.lines}
    plan = _check(doc, path, problems) if doc.data is not None else None
    if problems or plan is None:
        raise PlanError(problems, sources)
    return plan


def _check(doc: Document, path: Path, problems: list[Diagnostic]) -> Plan | None:
    """Add every problem of `doc` to `problems`; the plan when it could be built.

    Schema problems do not stop the checks that only a whole plan allows (ids, `after`,
    scopes, ports, templates): values the schema refused are left out of the plan those
    checks see, so each mistake is reported once, by the check that knows it best.
    """
    if not _version_ok(doc, problems):
        return None
    errors = [e for e in _validator().iter_errors(doc.data) if not _about_version(e)]
    for error in errors:
        problems.extend(_describe(doc, error))
    usable = _prune(doc.data, errors)
    if usable is None:
        return None
    data, positions, pruned = usable
    plan = _build(doc, data, positions, path)
    problems.extend(_semantic_problems(doc, data, plan, positions, pruned))
    return plan


def _version_ok(doc: Document, problems: list[Diagnostic]) -> bool:
    """Report a missing or odd `version`; False when the plan is of another version."""
    known = " and ".join(str(v) for v in KNOWN_VERSIONS)
    data = doc.data
    if "version" not in data:
        problems.append(
            doc.diagnostic(
                (),
                (
                    f'the plan has no "version"; add `version: 1` at the top (this wtrun reads '
                    f"version {known})"
                ),
                "version",
                key=True,
            )
        )
        return True
    version = data["version"]
    if isinstance(version, int) and not isinstance(version, bool):
        if version in KNOWN_VERSIONS:
            return True
        problems.append(
            doc.diagnostic(
                ("version",),
                (
                    f"version is {version}, a plan format this wtrun does not know (it reads "
                    f"version {known}); upgrade wtrun, or write the plan for version {known}"
                ),
                "version",
            )
        )
        return False
    written = doc.source(("version",)) or _show(version)
    problems.append(
        doc.diagnostic(
            ("version",),
            (
                f"version is {_type_name(version)} {_show(version)}, but it must be the number "
                f"{known}; write `version: 1`"
                + (" without quotes" if isinstance(version, str) else "")
                + f" (found `version: {written}`)"
            ),
            "version",
        )
    )
    return True


def _about_version(error: Any) -> bool:
    """Schema errors that `_version_ok` has already told in its own words."""
    path = tuple(error.absolute_path)
    if path[:1] == ("version",):
        return True
    return bool(error.validator == "required" and not path and "'version'" in error.message)


# ---------------------------------------------------------------- schema messages


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


def _type_name(value: Any) -> str:
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


def _show(value: Any) -> str:
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


def _describe(doc: Document, error: Any) -> Iterator[Diagnostic]:
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
        yield doc.diagnostic(path, _scope_message(doc, path, value), "scope")
        return
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in [k for k in value if k not in allowed]:
            yield _unknown_key(doc, path, key, allowed)
        return
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        known = list(error.schema.get("properties", {}))
        if any(
            difflib.get_close_matches(k, known, n=1, cutoff=0.6) == [missing]
            for k in value
            if k not in known
        ):
            return  # a misspelt key: told as an unknown key with "did you mean"
        yield doc.diagnostic(
            path,
            f'{name} is missing the required key "{missing}"; '
            f"{_REQUIRED_FIX.get(missing, f'add {missing}')}",
            "schema",
            key=True,
        )
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
            path, f"{name} is {_show(value)}; it must be one of {listed}: " + hint, "schema"
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
                    (*path, j), f"{name} lists {_show(item)} twice; remove the repeat", "schema"
                )
                break
            seen.add(key)
        return
    if kind == "const":
        yield doc.diagnostic(
            path,
            f"{name} is {_show(value)}, but it must be {_show(error.validator_value)}; change it",
            "schema",
        )
        return
    if kind in ("oneOf", "anyOf") and error.context:
        import jsonschema.exceptions

        # The alternative that came closest, as check-jsonschema reports it.
        yield from _describe(doc, jsonschema.exceptions.best_match(error.context))
        return
    yield doc.diagnostic(path, f"{name}: {error.message}; change it", "schema")


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
            f"{name} is {_type_name(value)} {_show(value)}, expected a mapping; {fix}",
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
            yield from _describe(doc, sub)


def _type_message(
    doc: Document, path: NodePath, name: str, value: Any, types: str | list[str]
) -> str:
    wanted = [types] if isinstance(types, str) else list(types)
    written = doc.source(path)
    found = f"{_type_name(value)} {_show(value)}".rstrip()
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
    return f"{name} is {_show(value)}, which does not match {_show(path)}; change it"


def _scope_message(doc: Document, path: NodePath, pattern: str) -> str:
    """The message for an invalid scope or shared pattern (also used by the semantic checks)."""
    owner = "shared" if path[0] == "shared" else f"scope of {_task_label(doc, int(path[1]))}"
    try:
        scopes.validate(pattern)
    except scopes.ScopeError as e:
        text = str(e)
        prefix = f'scope "{pattern}" '
        if text.startswith(prefix):
            return f'{owner}: pattern "{pattern}" {text[len(prefix) :]}'
        return f"{owner}: {text}"
    return f'{owner}: pattern "{pattern}" is not allowed'


def _bound_message(path: NodePath, name: str, value: Any, kind: str, bound: Any) -> str:
    words = {
        "minimum": "at least",
        "exclusiveMinimum": "more than",
        "maximum": "at most",
        "exclusiveMaximum": "less than",
    }
    message = f"{name} is {_show(value)}, but it must be {words[kind]} {bound}"
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
            f"port_range is {_show(value)}, but it must be two port numbers [low, high]; "
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


# ---------------------------------------------------------------- building


def _prune(
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
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return [path] if missing == "id" or missing not in ("prompt", "scope", "tasks") else []
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


def _touches(pruned: set[NodePath], prefix: NodePath) -> bool:
    return any(p[: len(prefix)] == prefix or prefix[: len(p)] == p for p in pruned)


def _steps(raw: Sequence[Mapping[str, Any]], doc: Document, base: NodePath) -> tuple[Step, ...]:
    steps: list[Step] = []
    for i, item in enumerate(raw):
        line = doc.mark((*base, i)).line
        if "copy" in item or "link" in item:
            kind = "copy" if "copy" in item else "link"
            value = item[kind]
            paths = (value,) if isinstance(value, str) else tuple(value)
            steps.append(Step(kind=kind, paths=paths, line=line))
        else:
            timeout = parse_duration(item["timeout"]) if "timeout" in item else 600.0
            steps.append(
                Step(
                    kind="run", run=item["run"], timeout_s=timeout, name=item.get("name"), line=line
                )
            )
    return tuple(steps)


def _agent(raw: Mapping[str, Any], over: AgentSpec) -> AgentSpec:
    return AgentSpec(
        preset=raw.get("preset", over.preset),
        model=raw.get("model", over.model),
        args=tuple(raw["args"]) if "args" in raw else over.args,
        timeout_s=parse_duration(raw["timeout"]) if "timeout" in raw else over.timeout_s,
        budget_usd=float(raw["budget_usd"]) if "budget_usd" in raw else over.budget_usd,
        command=tuple(raw["command"]) if "command" in raw else over.command,
    )


def _build(doc: Document, data: dict[str, Any], positions: Sequence[int], path: Path) -> Plan:
    agent = _agent(data.get("agent", {}), AgentSpec())
    setup = _steps(data.get("setup", []), doc, ("setup",))
    verify = _steps(data.get("verify", []), doc, ("verify",))
    env = {k: str(v) for k, v in data.get("env", {}).items()}
    raw_pr = data.get("pr", {})
    pr = PrSpec(
        provider=raw_pr.get("provider", "github"),
        repository=raw_pr.get("repository"),
        title=raw_pr.get("title", PrSpec.title),
        body=raw_pr.get("body"),
        draft=raw_pr.get("draft", True),
        labels=tuple(raw_pr.get("labels", ())),
        reviewers=tuple(raw_pr.get("reviewers", ())),
    )
    tasks = []
    for position, raw in zip(positions, data["tasks"], strict=True):
        base: NodePath = ("tasks", position)
        ports = raw.get("ports", 0)
        task_env = dict(env)
        task_env.update({k: str(v) for k, v in raw.get("env", {}).items()})
        tasks.append(
            Task(
                id=raw["id"],
                title=raw.get("title", raw["id"]),
                prompt=raw["prompt"],
                scope=tuple(raw["scope"]),
                ports=tuple(ports) if isinstance(ports, list) else int(ports),
                after=raw.get("after"),
                agent=_agent(raw.get("agent", {}), agent),
                setup=_steps(raw["setup"], doc, (*base, "setup")) if "setup" in raw else setup,
                verify=_steps(raw["verify"], doc, (*base, "verify")) if "verify" in raw else verify,
                env=tuple(task_env.items()),
                line=doc.mark(base).line,
            )
        )
    port_range = data.get("port_range", [3100, 3999])
    return Plan(
        path=path,
        name=data.get("name", path.stem),
        version=KNOWN_VERSIONS[-1],  # only plans of a known version are built
        base=data.get("base", "main"),
        remote=data.get("remote", "origin"),
        worktrees=data.get("worktrees", ".claude/worktrees").rstrip("/"),
        branch=data.get("branch", Plan.branch),
        max_parallel=data.get("max_parallel", 3),
        budget_usd=float(data["budget_usd"]) if "budget_usd" in data else None,
        port_range=(port_range[0], port_range[1]),
        shared=tuple(data.get("shared", ())),
        conventions=data.get("conventions", ""),
        commit_message=data.get("commit_message", Plan.commit_message),
        pr=pr,
        tasks=tuple(tasks),
    )


# ---------------------------------------------------------------- semantic checks


def ancestors(plan: Plan) -> dict[str, tuple[str, ...]]:
    """Each task's chain of `after` parents, nearest first (cycles cut where they close)."""
    parent = {t.id: t.after for t in plan.tasks}
    chains: dict[str, tuple[str, ...]] = {}
    for task in plan.tasks:
        chain: list[str] = []
        seen = {task.id}
        current = parent.get(task.id)
        while current is not None and current in parent and current not in seen:
            chain.append(current)
            seen.add(current)
            current = parent[current]
        chains[task.id] = tuple(chain)
    return chains


def may_run_together(chains: Mapping[str, tuple[str, ...]]) -> Callable[[str, str], bool]:
    sets = {tid: frozenset(chain) for tid, chain in chains.items()}

    def together(a: str, b: str) -> bool:
        return a not in sets[b] and b not in sets[a]

    return together


class _Checks:
    """The checks that need the whole plan; `paths[k]` is where task k stands in the file."""

    def __init__(
        self,
        doc: Document,
        data: dict[str, Any],
        plan: Plan,
        positions: Sequence[int],
        pruned: set[NodePath],
    ) -> None:
        self.doc = doc
        self.data = data
        self.plan = plan
        self.paths: list[NodePath] = [("tasks", p) for p in positions]
        self.pruned = pruned
        self.first: dict[str, int] = {}  # task id -> index of the first task with it
        for k, task in enumerate(plan.tasks):
            self.first.setdefault(task.id, k)
        self.together = may_run_together(ancestors(plan))
        self.problems: list[Diagnostic] = []

    def add(self, path: NodePath, message: str, rule: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.diagnostic(path, message, rule, key=key))

    def run(self) -> list[Diagnostic]:
        self.ids()
        self.after()
        self.agents()
        invalid = self.scopes()
        if not _touches(self.pruned, ("port_range",)):
            self.ports()
        self.templates()
        self.overlaps(invalid)
        return self.problems

    def ids(self) -> None:
        for k, task in enumerate(self.plan.tasks):
            first = self.first[task.id]
            if first != k:
                line = self.doc.mark((*self.paths[first], "id")).line
                self.add(
                    (*self.paths[k], "id"),
                    (
                        f'task id "{task.id}" is used twice (first at line {line}); give each '
                        "task its own id"
                    ),
                    "id",
                )

    def after(self) -> None:
        ids = list(self.first)
        for k, task in enumerate(self.plan.tasks):
            where = (*self.paths[k], "after")
            if task.after is None:
                continue
            if task.after == task.id:
                self.add(
                    where,
                    (
                        f'task "{task.id}" comes after itself; remove `after`, or name the task '
                        "it builds on"
                    ),
                    "after",
                )
            elif task.after not in self.first:
                others = [t for t in ids if t != task.id]
                close = difflib.get_close_matches(task.after, others, n=1, cutoff=0.6)
                hint = (
                    f'did you mean "{close[0]}"?'
                    if close
                    else f"the other tasks are: {', '.join(others)}"
                )
                self.add(
                    where,
                    (
                        f'task "{task.id}" comes after "{task.after}", which is not a task of '
                        f"this plan; {hint}"
                    ),
                    "after",
                )
        parent = {t.id: t.after for t in self.plan.tasks}
        reported: set[frozenset[str]] = set()
        for task in self.plan.tasks:
            chain = [task.id]
            current = parent.get(task.id)
            while current is not None and current in parent and current != task.id:
                if current in chain:
                    break
                chain.append(current)
                current = parent[current]
            if current != task.id or len(chain) < 2 or frozenset(chain) in reported:
                continue
            reported.add(frozenset(chain))
            # Print the cycle from the member that comes first in the plan.
            start = min(chain, key=lambda t: self.first[t])
            k = chain.index(start)
            cycle = " -> ".join([*chain[k:], *chain[:k], start])
            self.add(
                (*self.paths[self.first[start]], "after"),
                (f"tasks wait for each other in a cycle: {cycle}; remove `after` from one of them"),
                "after",
            )

    def agents(self) -> None:
        plan_agent: dict[str, Any] = self.data.get("agent", {})
        if _touches(self.pruned, ("agent",)):
            return
        told_plan = False
        inherits_command = False
        for k, task in enumerate(self.plan.tasks):
            here = (*self.paths[k], "agent")
            raw: dict[str, Any] = self.data["tasks"][k].get("agent", {})
            if _touches(self.pruned, here):
                continue
            example = 'e.g. `command: [my-agent, --task, "{{ task.id }}"]`'
            if task.agent.preset == "command" and not task.agent.command:
                if "preset" in raw:
                    self.add(
                        (*here, "preset"),
                        (
                            f'agent.preset of task "{task.id}" is "command", but no agent.command '
                            f"is set; add the program to run, {example}"
                        ),
                        "agent",
                    )
                elif not told_plan:
                    told_plan = True
                    self.add(
                        ("agent", "preset"),
                        (
                            'agent.preset is "command", but agent.command is not set; add the '
                            f"program to run, {example}"
                        ),
                        "agent",
                    )
            if "command" in raw and task.agent.preset != "command":
                self.add(
                    (*here, "command"),
                    (
                        f'agent.command of task "{task.id}" is set, but its agent.preset is '
                        f'"{task.agent.preset}"; set `preset: command`, or remove command'
                    ),
                    "agent",
                    key=True,
                )
            if task.agent.preset == "command" and "command" not in raw:
                inherits_command = True
        preset = plan_agent.get("preset", "claude")
        if "command" in plan_agent and preset != "command" and not inherits_command:
            default = "" if "preset" in plan_agent else " (the default)"
            self.add(
                ("agent", "command"),
                (
                    f'agent.command is set, but agent.preset is "{preset}"{default} and no task '
                    "uses the command preset; set `preset: command`, or remove command"
                ),
                "agent",
                key=True,
            )

    def scopes(self) -> set[str]:
        invalid: set[str] = set()
        items: list[tuple[NodePath, str]] = [
            ((*self.paths[k], "scope", j), pattern)
            for k, task in enumerate(self.plan.tasks)
            for j, pattern in enumerate(task.scope)
        ]
        items += [(("shared", j), pattern) for j, pattern in enumerate(self.plan.shared)]
        for where, pattern in items:
            try:
                scopes.validate(pattern)
            except scopes.ScopeError:
                invalid.add(pattern)
                self.add(where, _scope_message(self.doc, where, pattern), "scope")
        return invalid

    def ports(self) -> None:
        lo, hi = self.plan.port_range
        if lo > hi:
            self.add(
                ("port_range",),
                (f"port_range is [{lo}, {hi}], but the low port comes first; write [{hi}, {lo}]"),
                "ports",
            )
            return
        owners: dict[int, list[tuple[int, int]]] = {}
        for k, task in enumerate(self.plan.tasks):
            if not isinstance(task.ports, tuple):
                continue
            for j, port in enumerate(task.ports):
                owners.setdefault(port, []).append((k, j))
                if not lo <= port <= hi:
                    self.add(
                        (*self.paths[k], "ports", j),
                        (
                            f'port {port} of task "{task.id}" is outside port_range [{lo}, {hi}]; '
                            "pick a port inside it, or widen port_range"
                        ),
                        "ports",
                    )
        for port, users in owners.items():
            for n, (k, j) in enumerate(users):
                tid = self.plan.tasks[k].id
                for other_k, other_j in users[:n]:
                    other = self.plan.tasks[other_k].id
                    if tid == other or not self.together(tid, other):
                        continue
                    line = self.doc.mark((*self.paths[other_k], "ports", other_j)).line
                    self.add(
                        (*self.paths[k], "ports", j),
                        (
                            f'port {port} of task "{tid}" is also a port of task "{other}" (line '
                            f"{line}), and the two may run at the same time; pick another port, "
                            f"use `ports: 1` to have one allocated, or add `after: {other}`"
                        ),
                        "ports",
                    )
                    break
        need = sum(t.ports for t in self.plan.tasks if isinstance(t.ports, int))
        explicit = sum(1 for port in owners if lo <= port <= hi)
        size = hi - lo + 1
        if need and need + explicit > size:
            asked = f"{need} to allocate" + (f" and {explicit} listed" if explicit else "")
            self.add(
                ("port_range",),
                (
                    f"port_range [{lo}, {hi}] holds {size} port{'s' if size != 1 else ''}, but the "
                    f"tasks ask for {need + explicit} ({asked}); widen port_range"
                ),
                "ports",
            )

    def templates(self) -> None:
        from .context import branch_context, branch_name_problem

        doc, plan = self.doc, self.plan
        branches: dict[str, list[str]] = {}
        failed: set[NodePath] = set()  # plan-level templates already reported

        def check(
            path: NodePath, source: str, what: str, context: Mapping[str, Any], task: Task
        ) -> str | None:
            if path in failed:
                return None
            try:
                return templates.render(source, context)
            except templates.TemplateError as e:
                if path[0] != "tasks":
                    failed.add(path)
                message = e.message
                if message.startswith("template error:"):  # depends on the task's values
                    message = (
                        f'{message} (rendering it for task "{task.id}"); change the '
                        "template, or guard the value with {% if %}"
                    )
                self.problems.append(
                    _template_diagnostic(doc, path, e.lineno, f"{what}: {message}")
                )
                return None

        rendered: dict[str, str | None] = {}
        for k, task in enumerate(plan.tasks):
            branch = check(
                ("branch",), plan.branch, "branch template", branch_context(plan, task), task
            )
            rendered.setdefault(task.id, branch)
            if branch is not None and self.first[task.id] == k:
                problem = branch_name_problem(branch)
                if problem:
                    if plan.branch == Plan.branch:
                        source, fix = "", "change the id"
                    else:
                        source = f" (from the branch template {json.dumps(plan.branch)})"
                        fix = "change the branch template, or the task's values it uses"
                    self.add(
                        (*self.paths[k], "id"),
                        (
                            f'branch "{branch}" of task "{task.id}"{source} is not a valid git '
                            f"branch name: {problem}; {fix}"
                        ),
                        "id",
                    )
                branches.setdefault(branch, []).append(task.id)
        for k, task in enumerate(plan.tasks):
            context = sample_context(plan, task, rendered)
            check(("conventions",), plan.conventions, "conventions", context, task)
            check(("commit_message",), plan.commit_message, "commit_message", context, task)
            check(("pr", "title"), plan.pr.title, "pr.title", context, task)
            if plan.pr.body is not None:
                check(("pr", "body"), plan.pr.body, "pr.body", context, task)
            raw_agent = self.data["tasks"][k].get("agent", {})
            for j, item in enumerate(task.agent.command or ()):
                if "command" in raw_agent:
                    where: NodePath = (*self.paths[k], "agent", "command", j)
                    what = f'agent.command item {j + 1} of task "{task.id}"'
                else:
                    where, what = ("agent", "command", j), f"agent.command item {j + 1}"
                check(where, item, what, context, task)
        for branch, owners in branches.items():
            if len(owners) > 1:
                names = ", ".join(f'"{t}"' for t in owners[:-1]) + f' and "{owners[-1]}"'
                self.add(
                    ("branch",),
                    (
                        f'tasks {names} all get the branch "{branch}"; put {{{{ task.id }}}} in '
                        "the branch template"
                    ),
                    "branch",
                )

    def overlaps(self, invalid: set[str]) -> None:
        plan, doc = self.plan, self.doc
        # A repeated id is reported by `ids`; its second task is left out here.
        kept = [k for k, t in enumerate(plan.tasks) if self.first[t.id] == k]
        valid = [
            (plan.tasks[k].id, tuple(p for p in plan.tasks[k].scope if p not in invalid))
            for k in kept
        ]
        for o in scopes.find_overlaps(valid, self.together):
            ka, kb = self.first[o.task_a], self.first[o.task_b]
            a, b = plan.tasks[ka], plan.tasks[kb]
            ja, jb = a.scope.index(o.pattern_a), b.scope.index(o.pattern_b)
            line = doc.mark((*self.paths[ka], "scope", ja)).line
            example = _friendly_example(o.example, o.pattern_a, o.pattern_b)
            self.add(
                (*self.paths[kb], "scope", jb),
                (
                    f'scope "{o.pattern_b}" of task "{b.id}" overlaps scope "{o.pattern_a}" of '
                    f'task "{a.id}" (line {line}): both match "{example}", and the two tasks may '
                    f'run at the same time; add `after: {a.id}` to task "{b.id}", or narrow one '
                    "of the scopes"
                ),
                "overlap",
            )


def _friendly_example(example: str, a: str, b: str) -> str:
    """`src/api/x.ts` rather than the shortest witness `src/api/.ts`, when both still match."""
    parts = example.split("/")
    for i, part in enumerate(parts):
        if part.startswith("."):
            candidate = [*parts[:i], "x" + part, *parts[i + 1 :]]
            path = "/".join(candidate)
            if scopes.matches(a, path) and scopes.matches(b, path):
                parts = candidate
    return "/".join(parts)


def _template_diagnostic(
    doc: Document, path: NodePath, lineno: int | None, message: str
) -> Diagnostic:
    """Point at the template's own line when it is a literal block scalar (`|`)."""
    mark = doc.mark(path)
    text = doc.lines[mark.line - 1] if 1 <= mark.line <= len(doc.lines) else ""
    indicator = text[mark.col - 1 : mark.col]
    if indicator == "|" and lineno is not None and mark.line + lineno <= len(doc.lines):
        line = mark.line + lineno
        content = doc.lines[line - 1]
        col = len(content) - len(content.lstrip()) + 1
        return Diagnostic(doc.file, line, col, message, "template", max(1, len(content.strip())))
    return Diagnostic(doc.file, mark.line, mark.col, message, "template", mark.length)


def sample_context(
    plan: Plan, task: Task, branches: Mapping[str, str | None] | None = None
) -> dict[str, Any]:
    """Template variables with placeholder values where only a run knows the real ones.

    `branches` maps task ids to their rendered branch (None where the branch template
    failed); without it the branches are rendered here.
    """
    from .context import branch_of, task_context

    ports = (
        list(task.ports)
        if isinstance(task.ports, tuple)
        else list(range(plan.port_range[0], plan.port_range[0] + task.ports))
    )
    if branches is None:
        branches = {}
        for t in plan.tasks:
            if t.id in (task.id, task.after):
                try:
                    branches[t.id] = branch_of(plan, t)
                except templates.TemplateError:
                    branches[t.id] = None
    if task.after is None or task.after not in branches:
        base = plan.base  # an unknown `after` is reported on its own
    else:
        base = branches[task.after] or f"worktree-{task.after}"
    return task_context(
        plan,
        task,
        ports=ports,
        worktree=f"{plan.worktrees}/{task.id}",
        branch=branches.get(task.id) or f"worktree-{task.id}",
        base=base,
        pr=True,
    )


def _semantic_problems(
    doc: Document, data: dict[str, Any], plan: Plan, positions: Sequence[int], pruned: set[NodePath]
) -> list[Diagnostic]:
    return _Checks(doc, data, plan, positions, pruned).run()


def task_by_id(plan: Plan, ids: Iterable[str]) -> list[Task]:
    known = {t.id: t for t in plan.tasks}
    chosen = []
    for tid in ids:
        if tid not in known:
            close = difflib.get_close_matches(tid, list(known), n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            raise UsageError(f'no task "{tid}" in {plan.path}{hint}')
        chosen.append(known[tid])
    return chosen
