"""Loading a plan: parse, check, apply defaults, return frozen dataclasses.

`load` collects every problem of a file as a `Diagnostic` (schema, duplicate keys,
ids, `after` cycles, scopes, overlaps, ports, templates) and raises `PlanError`
carrying all of them, sorted; on success the `Plan` is complete and nothing
downstream looks at raw YAML again.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError, WtrunError
from . import checks, schema
from .diagnostics import Diagnostic
from .diagnostics import sort as sort_diagnostics
from .model import AgentSpec, Plan, PrSpec, Step, Task
from .yaml_source import Document, NodePath
from .yaml_source import read as read_yaml

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
    errors = [e for e in schema.validator().iter_errors(doc.data) if not _about_version(e)]
    for error in errors:
        problems.extend(schema.describe(doc, error))
    usable = schema.prune(doc.data, errors)
    if usable is None:
        return None
    data, positions, pruned = usable
    plan = _build(doc, data, positions, path)
    problems.extend(checks.problems(doc, data, plan, positions, pruned))
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
    written = doc.source(("version",)) or schema.show(version)
    problems.append(
        doc.diagnostic(
            ("version",),
            (
                f"version is {schema.type_name(version)} {schema.show(version)}, but it must be "
                f"the number {known}; write `version: 1`"
                + (" without quotes" if isinstance(version, str) else "")
                + f" (found `version: {written}`)"
            ),
            "version",
        )
    )
    return True


def _about_version(error: Any) -> bool:
    """Schema errors that `_version_ok` has already told in its own words."""
    return tuple(error.absolute_path)[:1] == ("version",)


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
