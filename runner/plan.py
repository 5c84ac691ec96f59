"""Loading a plan: parse, check, apply defaults, return frozen dataclasses.

`load` collects every problem of a file as a `Diagnostic` (schema, duplicate keys,
ids, `after` cycles, scopes, overlaps, ports, templates) and raises `PlanError`
carrying all of them, sorted; on success the `Plan` is complete and nothing
downstream looks at raw YAML again.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in {self.diagnostics[0].file}")


@functools.lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    text = resources.files("wtrun").joinpath("plan-v1.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


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
    if doc.data is None:
        raise PlanError(problems, sources)
    version = doc.data.get("version")
    if version not in KNOWN_VERSIONS:
        known = ", ".join(str(v) for v in KNOWN_VERSIONS)
        if "version" not in doc.data:
            message = f'missing "version"; add `version: 1` at the top (this wtrun knows: {known})'
            problems.append(doc.diagnostic((), message, "version"))
        else:
            message = (f"unsupported plan version {json.dumps(version)}; this wtrun knows "
                       f"version {known}: upgrade wtrun or write the plan for version {known}")
            problems.append(doc.diagnostic(("version",), message, "version"))
        raise PlanError(problems, sources)
    problems.extend(_schema_problems(doc))
    if problems:
        raise PlanError(problems, sources)
    plan = _build(doc, path)
    problems.extend(_semantic_problems(doc, plan))
    if problems:
        raise PlanError(problems, sources)
    return plan


# ---------------------------------------------------------------- schema messages


def _schema_problems(doc: Document) -> Iterator[Diagnostic]:
    import jsonschema

    validator = jsonschema.Draft7Validator(schema())
    for error in validator.iter_errors(doc.data):
        yield from _describe(doc, _best(error))


def _best(error: Any) -> Any:
    import jsonschema.exceptions

    if error.validator in ("anyOf", "oneOf") and error.context:
        return _best(jsonschema.exceptions.best_match(error.context))
    return error


def _where(doc: Document, path: NodePath) -> str:
    """A reader's name for the place of `path`: `task "x" agent`, `pr`, `setup step 2`."""
    parts: list[str] = []
    data: Any = doc.data
    i = 0
    while i < len(path):
        key = path[i]
        if key == "tasks" and i + 1 < len(path) and isinstance(path[i + 1], int):
            task = data["tasks"][path[i + 1]] if isinstance(data, dict) else None
            tid = task.get("id") if isinstance(task, dict) else None
            parts.append(f'task "{tid}"' if isinstance(tid, str) else f"task {path[i + 1] + 1}")
            data = task
            i += 2
            continue
        if isinstance(key, int):
            parts.append(f"item {key + 1}")
        else:
            parts.append(str(key))
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            data = None
        i += 1
    return " ".join(parts) if parts else "the plan"


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
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
    return type(value).__name__


def _expected(schema_types: str | list[str]) -> str:
    names = {"string": "a string", "integer": "an integer", "number": "a number",
             "boolean": "true or false", "array": "a list", "object": "a mapping",
             "null": "nothing"}
    types = [schema_types] if isinstance(schema_types, str) else list(schema_types)
    return " or ".join(names.get(t, t) for t in types)


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(doc: Document, error: Any) -> Iterator[Diagnostic]:
    path: NodePath = tuple(error.absolute_path)
    where = _where(doc, path)
    kind = error.validator
    value = error.instance
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in sorted(set(value) - set(allowed)):
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = (f'did you mean "{close[0]}"?' if close
                    else f"allowed keys: {', '.join(allowed)}")
            yield doc.diagnostic((*path, key), f'unknown key "{key}" in {where}; {hint}',
                                 "schema", key=True)
        return
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield doc.diagnostic(path, f'{where} is missing the required key "{missing}"', "schema",
                             key=True)
        return
    if kind == "type":
        message = (f"{where} is {_type_name(value)} {_show(value)}, expected "
                   f"{_expected(error.validator_value)}")
        if isinstance(value, bool) and "string" in str(error.validator_value):
            message += "; quote it (YAML reads yes/no/on/off as booleans)"
        yield doc.diagnostic(path, message, "schema")
        return
    if kind == "enum":
        allowed = [str(v) for v in error.validator_value]
        close = difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.6)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        yield doc.diagnostic(path, f"{where} is {_show(value)}; allowed: {', '.join(allowed)}"
                             + hint, "schema")
        return
    if kind == "pattern":
        yield doc.diagnostic(path, f"{where} is {_show(value)}, which does not match "
                             f"{error.validator_value}; {_pattern_hint(path)}", "schema")
        return
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {"minimum": "at least", "exclusiveMinimum": "more than",
                 "maximum": "at most", "exclusiveMaximum": "less than"}
        yield doc.diagnostic(path, f"{where} is {_show(value)}; it must be "
                             f"{words[kind]} {error.validator_value}", "schema")
        return
    if kind in ("minItems", "maxItems", "minLength", "maxLength"):
        what = "items" if kind.endswith("Items") else "characters"
        bound = "at least" if kind.startswith("min") else "at most"
        yield doc.diagnostic(path, f"{where} has {len(value)} {what}; it needs {bound} "
                             f"{error.validator_value}", "schema")
        return
    if kind == "uniqueItems":
        yield doc.diagnostic(path, f"{where} lists a value twice: {_show(value)}; "
                             "remove the repeats", "schema")
        return
    if kind == "const":
        yield doc.diagnostic(path, f"{where} is {_show(value)}; it must be "
                             f"{_show(error.validator_value)}", "schema")
        return
    if kind in ("oneOf", "anyOf") and isinstance(value, dict):
        yield doc.diagnostic(path, f"{where} must have exactly one of the keys that "
                             f"start a step (copy, link, run); found {_show(sorted(value))}",
                             "schema")
        return
    yield doc.diagnostic(path, f"{where}: {error.message}", "schema")


def _pattern_hint(path: NodePath) -> str:
    last = path[-1] if path else ""
    if last in ("id", "after"):
        return ("task ids use lower-case letters, digits, '.', '_' and '-', and start with a "
                "letter or digit (e.g. fix-987-auth-timeout)")
    if last == "repository":
        return 'write it as "owner/name"'
    if last == "timeout":
        return "write a duration such as 90s, 45m or 1h30m, or a number of seconds"
    return "change the value to match"


# ---------------------------------------------------------------- building


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
            steps.append(Step(kind="run", run=item["run"], timeout_s=timeout,
                              name=item.get("name"), line=line))
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


def _build(doc: Document, path: Path) -> Plan:
    data: dict[str, Any] = doc.data
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
    for i, raw in enumerate(data["tasks"]):
        base: NodePath = ("tasks", i)
        ports = raw.get("ports", 0)
        task_env = dict(env)
        task_env.update({k: str(v) for k, v in raw.get("env", {}).items()})
        tasks.append(Task(
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
        ))
    port_range = data.get("port_range", [3100, 3999])
    return Plan(
        path=path,
        name=data.get("name", path.stem),
        version=data["version"],
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


def may_run_together(chains: Mapping[str, tuple[str, ...]]) -> Any:
    sets = {tid: frozenset(chain) for tid, chain in chains.items()}

    def together(a: str, b: str) -> bool:
        return a not in sets[b] and b not in sets[a]

    return together


def _semantic_problems(doc: Document, plan: Plan) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    index = {t.id: i for i, t in enumerate(plan.tasks)}
    tpath = {t.id: ("tasks", i) for i, t in enumerate(plan.tasks)}

    seen: dict[str, int] = {}
    for i, task in enumerate(plan.tasks):
        if task.id in seen:
            first = doc.mark(("tasks", seen[task.id], "id")).line
            problems.append(doc.diagnostic(("tasks", i, "id"), (
                f'duplicate task id "{task.id}" (first at line {first}); '
                "give each task its own id"), "id"))
        else:
            seen[task.id] = i

    problems.extend(_after_problems(doc, plan, index))
    chains = ancestors(plan)
    together = may_run_together(chains)

    invalid: set[str] = set()
    for i, task in enumerate(plan.tasks):
        base = ("tasks", i)
        if task.agent.preset == "command" and not task.agent.command:
            problems.append(doc.diagnostic((*base,), (
                f'task "{task.id}" uses the command preset but no agent.command is set; '
                'add e.g. agent: {command: ["my-agent", "--task", "{{ task.id }}"]}'),
                "agent", key=True))
        if task.agent.command and task.agent.preset != "command":
            where = (*base, "agent", "command") if "command" in doc.data["tasks"][i].get(
                "agent", {}) else ("agent", "command")
            problems.append(doc.diagnostic(where, (
                f'agent.command is set but task "{task.id}" uses the {task.agent.preset} '
                'preset; set `preset: command` or remove command'), "agent", key=True))
        if isinstance(task.ports, tuple):
            lo, hi = plan.port_range
            for j, port in enumerate(task.ports):
                if not lo <= port <= hi:
                    problems.append(doc.diagnostic((*base, "ports", j), (
                        f'port {port} of task "{task.id}" is outside port_range [{lo}, {hi}]; '
                        "change the port or widen port_range"), "ports"))
        for j, pattern in enumerate(task.scope):
            try:
                scopes.validate(pattern)
            except scopes.ScopeError as e:
                invalid.add(pattern)
                problems.append(doc.diagnostic((*base, "scope", j), (
                    f'scope "{pattern}" of task "{task.id}": {e}'), "scope"))
    for j, pattern in enumerate(plan.shared):
        try:
            scopes.validate(pattern)
        except scopes.ScopeError as e:
            problems.append(doc.diagnostic(("shared", j), f'shared path "{pattern}": {e}',
                                           "scope"))

    problems.extend(_port_problems(doc, plan, together))
    problems.extend(_template_problems(doc, plan))
    valid = [(t.id, tuple(p for p in t.scope if p not in invalid)) for t in plan.tasks]
    for o in scopes.find_overlaps(valid, together):
        a, b = plan.task(o.task_a), plan.task(o.task_b)
        ja, jb = a.scope.index(o.pattern_a), b.scope.index(o.pattern_b)
        problems.append(doc.diagnostic((*tpath[b.id], "scope", jb), (
            f'scope "{o.pattern_b}" of task "{b.id}" overlaps scope "{o.pattern_a}" of '
            f'task "{a.id}" (line {doc.mark((*tpath[a.id], "scope", ja)).line}): both '
            f'match "{o.example}", and the two tasks may run at the same time; add '
            f'`after: {a.id}` to task "{b.id}", or narrow one of the scopes'), "overlap"))
    return problems


def _after_problems(doc: Document, plan: Plan, index: Mapping[str, int]) -> Iterator[Diagnostic]:
    ids = list(index)
    for i, task in enumerate(plan.tasks):
        if task.after is None:
            continue
        if task.after == task.id:
            yield doc.diagnostic(("tasks", i, "after"), (
                f'task "{task.id}" comes after itself; remove `after` or name another task'),
                "after")
        elif task.after not in index:
            close = difflib.get_close_matches(task.after, ids, n=1, cutoff=0.6)
            hint = f'did you mean "{close[0]}"?' if close else f"known tasks: {', '.join(ids)}"
            yield doc.diagnostic(("tasks", i, "after"), (
                f'task "{task.id}" comes after "{task.after}", which is not a task of this '
                f"plan; {hint}"), "after")
    parent = {t.id: t.after for t in plan.tasks}
    reported: set[frozenset[str]] = set()
    for task in plan.tasks:
        chain = [task.id]
        current = parent.get(task.id)
        while current is not None and current in parent and current != task.id:
            if current in chain:
                break
            chain.append(current)
            current = parent[current]
        if current == task.id and len(chain) > 1:
            members = frozenset(chain)
            if members in reported:
                continue
            reported.add(members)
            # Print the cycle from the member that comes first in the plan.
            start = min(chain, key=lambda t: index[t])
            k = chain.index(start)
            ordered = chain[k:] + chain[:k]
            cycle = " -> ".join([*ordered, start])
            yield doc.diagnostic(("tasks", index[start], "after"), (
                f"tasks wait for each other in a cycle: {cycle}; remove `after` from one of "
                "them"), "after")


def _port_problems(doc: Document, plan: Plan, together: Any) -> Iterator[Diagnostic]:
    owners: dict[int, list[tuple[str, int, int]]] = {}
    for i, task in enumerate(plan.tasks):
        if isinstance(task.ports, tuple):
            for j, port in enumerate(task.ports):
                owners.setdefault(port, []).append((task.id, i, j))
    for port, users in owners.items():
        for k, (tid, i, j) in enumerate(users):
            for other, oi, oj in users[:k]:
                if tid == other:
                    continue
                if together(tid, other):
                    yield doc.diagnostic(("tasks", i, "ports", j), (
                        f'port {port} of task "{tid}" is also a port of task "{other}" (line '
                        f'{doc.mark(("tasks", oi, "ports", oj)).line}), and the two may run '
                        "at the same time; pick another port or use `ports: 1` to allocate "
                        "one"), "ports")
                    break
    need = sum(t.ports if isinstance(t.ports, int) else 0 for t in plan.tasks)
    explicit = len(owners)
    lo, hi = plan.port_range
    if need and need + explicit > hi - lo + 1:
        yield doc.diagnostic(("port_range",), (
            f"port_range [{lo}, {hi}] holds {hi - lo + 1} ports, but the tasks ask for "
            f"{need} plus {explicit} explicit ones; widen port_range"), "ports")


def sample_context(plan: Plan, task: Task) -> dict[str, Any]:
    """Template variables with placeholder values where only a run knows the real ones."""
    from .context import task_context

    ports = list(task.ports) if isinstance(task.ports, tuple) else list(
        range(plan.port_range[0], plan.port_range[0] + task.ports))
    return task_context(plan, task, ports=ports, worktree=f"{plan.worktrees}/{task.id}",
                        branch=None, pr=True)


def _template_problems(doc: Document, plan: Plan) -> Iterator[Diagnostic]:
    from .context import branch_name_problem

    def check(path: NodePath, source: str, context: Mapping[str, Any], what: str,
              block: bool) -> str | None:
        try:
            return templates.render(source, context)
        except templates.TemplateError as e:
            mark = doc.mark(path)
            line = mark.line
            if e.lineno is not None and mark is not None:
                line = mark.line + (e.lineno if block else e.lineno - 1)
            col = mark.col if line == mark.line else 1
            problems_here.append(Diagnostic(doc.file, line, col, (
                f"{what}: {e.message}"), "template"))
            return None

    problems_here: list[Diagnostic] = []
    data = doc.data
    tasks_raw = data["tasks"]
    branches: dict[str, str] = {}
    seen_global: set[tuple[NodePath, str]] = set()
    for i, task in enumerate(plan.tasks):
        context = sample_context(plan, task)
        before = len(problems_here)

        def once(path: NodePath, source: str, what: str, block: bool = False,
                 context: Mapping[str, Any] = context) -> str | None:
            # A plan-level template with one mistake would otherwise be reported per task.
            key = (path, source)
            if path[0] != "tasks" and key in seen_global:
                return None
            result = check(path, source, context, what, block)
            if result is None:
                seen_global.add(key)
            return result

        branch = once(("branch",), plan.branch, "branch template")
        if branch is not None:
            problem = branch_name_problem(branch)
            if problem:
                problems_here.append(doc.diagnostic(("tasks", i, "id"), (
                    f'branch "{branch}" of task "{task.id}" is not a valid git branch name: '
                    f"{problem}; change the id or the branch template"), "id"))
            elif branch in branches:
                problems_here.append(doc.diagnostic(("branch",), (
                    f'tasks "{branches[branch]}" and "{task.id}" get the same branch '
                    f'"{branch}"; put {{{{ task.id }}}} in the branch template'), "template"))
            else:
                branches[branch] = task.id
        once(("conventions",), plan.conventions, "conventions", block=True)
        once(("commit_message",), plan.commit_message, "commit_message")
        once(("pr", "title"), plan.pr.title, "pr.title")
        if plan.pr.body is not None:
            once(("pr", "body"), plan.pr.body, "pr.body", block=True)
        raw_agent = tasks_raw[i].get("agent", {})
        for j, item in enumerate(task.agent.command or ()):
            where: NodePath = (("tasks", i, "agent", "command", j) if "command" in raw_agent
                               else ("agent", "command", j))
            once(where, item, "agent command")
        del before
    return iter(problems_here)


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
