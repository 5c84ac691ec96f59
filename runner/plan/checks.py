"""What only a whole plan can tell: ids and branches, `after` cycles, scopes and their
overlaps between tasks that may run at the same time, ports, and templates."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import scopes
from . import schema, templates
from .diagnostics import Diagnostic
from .model import Plan, Task
from .variables import branch_context, branch_name_problem, branch_of, task_context
from .yaml_source import Document, NodePath


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
        if not schema.touches(self.pruned, ("port_range",)):
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
        if schema.touches(self.pruned, ("agent",)):
            return
        told_plan = False
        inherits_command = False
        for k, task in enumerate(self.plan.tasks):
            here = (*self.paths[k], "agent")
            raw: dict[str, Any] = self.data["tasks"][k].get("agent", {})
            if schema.touches(self.pruned, here):
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
                self.add(where, schema.scope_message(self.doc, where, pattern), "scope")
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


def problems(
    doc: Document, data: dict[str, Any], plan: Plan, positions: Sequence[int], pruned: set[NodePath]
) -> list[Diagnostic]:
    return _Checks(doc, data, plan, positions, pruned).run()
