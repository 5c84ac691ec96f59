"""Templates: each renders for every task with the variables it really gets, and the
branch template gives every task a valid branch of its own."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import templates
from ..diagnostics import Diagnostic
from ..model import Plan, Task
from ..refnames import ref_problem
from ..variables import branch_context, sample_context
from ..yaml_source import Document, NodePath
from .base import PlanView


@dataclass
class _Renderer:
    """Renders templates for the checks; a plan-level template is reported once."""

    view: PlanView
    failed: set[NodePath] = field(default_factory=set)

    def __call__(
        self, path: NodePath, source: str, what: str, context: Mapping[str, Any], task: Task
    ) -> str | None:
        if path in self.failed:
            return None
        try:
            return templates.render(source, context)
        except templates.TemplateError as e:
            if path[0] != "tasks":
                self.failed.add(path)
            message = _explain(e.message, context, task)
            self.view.problems.append(
                _template_diagnostic(self.view.doc, path, e.lineno, f"{what}: {message}")
            )
            return None


def _explain(message: str, context: Mapping[str, Any], task: Task) -> str:
    if message.startswith('unknown variable "run') and "run" not in context:
        return (
            'unknown variable "run"; run.* (files, verify, cost_usd, stacked_on, children, '
            "conflicts) exists only in pr.title and pr.body, once the task has run: use task.* "
            "and plan.* here"
        )
    if message.startswith("template error:"):  # depends on the task's values
        return (
            f'{message} (rendering it for task "{task.id}"); change the template, or guard the '
            "value with {% if %}"
        )
    return message


def check(view: PlanView) -> None:
    render = _Renderer(view)
    branches = _branches(view, render)
    for k, task in enumerate(view.plan.tasks):
        _task_templates(view, render, k, task, branches)


def _branches(view: PlanView, render: _Renderer) -> dict[str, str | None]:
    """Each task's rendered branch (None where the template failed); reports bad ones."""
    plan = view.plan
    rendered: dict[str, str | None] = {}
    owners: dict[str, list[str]] = {}
    invalid: list[tuple[int, str, str]] = []  # task index, branch, why git refuses it
    for k, task in enumerate(plan.tasks):
        context = branch_context(plan, task)
        branch = render(("branch",), plan.branch, "branch template", context, task)
        rendered.setdefault(task.id, branch)
        if branch is None or view.first[task.id] != k:
            continue
        problem = ref_problem(branch)
        if problem:
            invalid.append((k, branch, problem))
        owners.setdefault(branch, []).append(task.id)
    _invalid_branches(view, invalid)
    for branch, tids in owners.items():
        if len(tids) > 1:
            names = ", ".join(f'"{t}"' for t in tids[:-1]) + f' and "{tids[-1]}"'
            view.add(
                ("branch",),
                f'tasks {names} all get the branch "{branch}"; put {{{{ task.id }}}} in the '
                "branch template",
                "branch",
            )
    return rendered


def _invalid_branches(view: PlanView, invalid: list[tuple[int, str, str]]) -> None:
    plan = view.plan
    if plan.branch == Plan.branch:  # the default template: the id is to blame
        for k, branch, problem in invalid:
            tid = plan.tasks[k].id
            view.add(
                (*view.paths[k], "id"),
                f'branch "{branch}" of task "{tid}" is not a valid git branch name: {problem}; '
                "change the id",
                "id",
            )
        return
    if not invalid:
        return
    gets = [f'task "{plan.tasks[k].id}" gets "{b}" ({problem})' for k, b, problem in invalid]
    listed = ", ".join(gets[:-1]) + f" and {gets[-1]}" if len(gets) > 1 else gets[0]
    names = "a valid git branch name" if len(gets) == 1 else "valid git branch names"
    view.add(
        ("branch",),
        f"the branch template {json.dumps(plan.branch)} does not give {names}: {listed}; "
        "change the template, or the task values it uses",
        "branch",
    )


def _task_templates(
    view: PlanView, render: _Renderer, k: int, task: Task, branches: Mapping[str, str | None]
) -> None:
    plan = view.plan
    pr_context = sample_context(plan, task, branches, pr=True)
    context = {key: value for key, value in pr_context.items() if key != "run"}
    render(("conventions",), plan.conventions, "conventions", context, task)
    render(("commit_message",), plan.commit_message, "commit_message", context, task)
    render(("pr", "title"), plan.pr.title, "pr.title", pr_context, task)
    if plan.pr.body is not None:
        render(("pr", "body"), plan.pr.body, "pr.body", pr_context, task)
    own_command = "command" in view.raw_task(k).get("agent", {})
    for j, item in enumerate(task.agent.command or ()):
        if own_command:
            where: NodePath = (*view.paths[k], "agent", "command", j)
            what = f'agent.command item {j + 1} of task "{task.id}"'
        else:
            where, what = ("agent", "command", j), f"agent.command item {j + 1}"
        render(where, item, what, context, task)


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
