"""Loading a plan: parse, check, apply defaults, return frozen dataclasses.

`load` collects every problem of a file as a `Diagnostic` (schema, duplicate keys,
ids, `after` cycles, scopes, overlaps, ports, templates) and raises `PlanError`
carrying all of them, sorted; on success the `Plan` is complete and nothing
downstream looks at raw YAML again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import gc
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import Position, UsageError
from . import checks, schema
from .diagnostics import Diagnostic, PlanError
from .model import AgentSpec, Plan, PrSpec, ReviseSpec, Step, Task
from .yaml_source import MAX_BYTES, Document, NodePath, too_big
from .yaml_source import read as read_yaml

KNOWN_VERSIONS = (1,)
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: int | float | str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    m = _DURATION.match(value.strip())
    if not value.strip() or m is None:
        raise ValueError(value)
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return float(h * 3600 + mi * 60 + s)


def format_duration(seconds: float) -> str:
    """A duration as plans write it: `1h30m`, `45m`, `90s` (`1.5s` below whole seconds)."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "") or "0s"


_KINDS = (
    (stat.S_ISFIFO, "is a named pipe (FIFO)"),
    (stat.S_ISCHR, "is a character device"),
    (stat.S_ISBLK, "is a block device"),
    (stat.S_ISSOCK, "is a socket"),
)


def read_source(path: Path, label: str | None = None) -> bytes:
    """The bytes of the plan file at `path`, which must be a regular file of at most
    `MAX_BYTES`: checked before reading, so `/dev/zero` or a FIFO is refused, not read."""
    label = label or str(path)
    try:
        # O_NONBLOCK: a FIFO swapped in after the check must not hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a plan file") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UsageError(f"{path}: is a directory, not a plan file")
        kind = next((what for test, what in _KINDS if test(info.st_mode)), "is not a regular file")
        raise UsageError(f"{path}: {kind}, not a plan file; give the path of a YAML file")
    with os.fdopen(fd, "rb") as f:
        if info.st_size > MAX_BYTES:
            raise PlanError([too_big(label, info.st_size)], {label: []})
        try:
            return f.read(MAX_BYTES + 1)  # a file growing meanwhile is still cut off
        except OSError as e:
            raise UsageError(f"{path}: cannot read: {e.strerror}") from None


def load(path: str | Path, *, display: str | None = None, raw: bytes | None = None) -> Plan:
    """Load and check the plan at `path`; raise PlanError listing every problem."""
    path = Path(path)
    file = display or str(path)
    if raw is None:
        raw = read_source(path, file)
    with _no_cycle_collection():
        doc, problems = read_yaml(file, raw)
        plan = _check(doc, path, problems) if doc.data is not None else None
    sources = {file: doc.lines}
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
    errors = [e for e in schema.errors(doc.data) if not _about_version(e)]
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
        m = doc.mark((*base, i))
        position = Position(doc.file, m.line, m.col)
        if "copy" in item or "link" in item:
            kind = "copy" if "copy" in item else "link"
            value = item[kind]
            paths = (value,) if isinstance(value, str) else tuple(value)
            steps.append(Step(kind=kind, paths=paths, position=position))
            continue
        given = _present(item, name="name")
        if "timeout" in item:
            given["timeout_s"] = parse_duration(item["timeout"])
        steps.append(Step(kind="run", run=item["run"], position=position, **given))
    return tuple(steps)


def _present(raw: Mapping[str, Any], **keys: str) -> dict[str, Any]:
    """`{field: raw[key]}` for the keys the plan sets: the model's defaults fill the rest."""
    return {name: raw[key] for name, key in keys.items() if key in raw}


def _agent(raw: Mapping[str, Any], over: AgentSpec) -> AgentSpec:
    return AgentSpec(
        preset=raw.get("preset", over.preset),
        model=raw.get("model", over.model),
        args=tuple(raw["args"]) if "args" in raw else over.args,
        timeout_s=parse_duration(raw["timeout"]) if "timeout" in raw else over.timeout_s,
        budget_usd=float(raw["budget_usd"]) if "budget_usd" in raw else over.budget_usd,
        command=tuple(raw["command"]) if "command" in raw else over.command,
        sandbox=raw.get("sandbox", over.sandbox),
        attempts=int(raw["attempts"]) if "attempts" in raw else over.attempts,
    )


def _env(raw: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in raw.items()}


def _pr(raw: Mapping[str, Any]) -> PrSpec:
    given = _present(raw, provider="provider", repository="repository", title="title")
    given.update(_present(raw, body="body", draft="draft"))
    given.update({key: tuple(raw[key]) for key in ("labels", "reviewers") if key in raw})
    return PrSpec(**given)


def _revise(raw: Mapping[str, Any]) -> ReviseSpec:
    given = _present(raw, reviews="reviews", checks="checks", max_rounds="max_rounds")
    if "bots" in raw:
        given["bots"] = tuple(raw["bots"])
    return ReviseSpec(**given)


def _task(doc: Document, raw: Mapping[str, Any], base: NodePath, plan: Plan) -> Task:
    ports = raw.get("ports", 0)
    m = doc.mark(base)
    return Task(
        id=raw["id"],
        title=raw.get("title", raw["id"]),
        prompt=raw["prompt"],
        scope=tuple(raw["scope"]),
        ports=tuple(ports) if isinstance(ports, list) else int(ports),
        after=raw.get("after"),
        agent=_agent(raw.get("agent", {}), plan.agent),
        setup=_steps(raw["setup"], doc, (*base, "setup")) if "setup" in raw else plan.setup,
        verify=_steps(raw["verify"], doc, (*base, "verify")) if "verify" in raw else plan.verify,
        env=tuple({**dict(plan.env), **_env(raw.get("env", {}))}.items()),
        position=Position(doc.file, m.line, m.col),
    )


def _build(doc: Document, data: dict[str, Any], positions: Sequence[int], path: Path) -> Plan:
    given = _present(
        data,
        base="base",
        remote="remote",
        branch="branch",
        max_parallel="max_parallel",
        conventions="conventions",
        commit_message="commit_message",
    )
    if "worktrees" in data:
        given["worktrees"] = data["worktrees"].rstrip("/")
    if "budget_usd" in data:
        given["budget_usd"] = float(data["budget_usd"])
    if "port_range" in data:
        given["port_range"] = tuple(data["port_range"])
    if "shared" in data:
        given["shared"] = tuple(data["shared"])
    plan = Plan(
        path=path,
        name=data.get("name", path.stem),
        version=KNOWN_VERSIONS[-1],  # only plans of a known version are built
        pr=_pr(data.get("pr", {})),
        revise=_revise(data.get("revise", {})),
        agent=_agent(data.get("agent", {}), AgentSpec()),
        env=tuple(_env(data.get("env", {})).items()),
        setup=_steps(data.get("setup", []), doc, ("setup",)),
        verify=_steps(data.get("verify", []), doc, ("verify",)),
        **given,
    )
    tasks = [
        _task(doc, raw, ("tasks", position), plan)
        for position, raw in zip(positions, data["tasks"], strict=True)
    ]
    return dataclasses.replace(plan, tasks=tuple(tasks))


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


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Loading makes hundreds of thousands of objects and no garbage cycles worth finding:
    the collector's passes over them were 30-40 % of loading a 10,000-task plan."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
