"""The loaded plan: frozen dataclasses with every default applied.

Nothing outside `wtrun.plan` builds these from raw YAML; everything downstream
indexes their fields.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model stays loadable on its own, as the schema's tests load it
    from ..errors import Position


@dataclass(frozen=True)
class AgentSpec:
    preset: str = "claude"  # claude | codex | aider | gemini | command
    model: str | None = None
    args: tuple[str, ...] = ()
    timeout_s: float = 45 * 60.0
    budget_usd: float | None = None
    command: tuple[str, ...] | None = None  # Jinja2 templates, `command` preset only
    sandbox: str = "auto"  # auto | bwrap | none
    attempts: int = 1  # agent runs a verify failure may take, in all


@dataclass(frozen=True)
class Step:
    """One setup or verify step: exactly one of copy, link, run."""

    kind: str  # copy | link | run
    paths: tuple[str, ...] = ()  # copy / link
    run: str | None = None  # shell command
    timeout_s: float = 10 * 60.0
    name: str | None = None
    position: Position | None = None  # where the step stands in the plan, for messages

    def describe(self) -> str:
        if self.name:
            return self.name
        return (
            self.run if self.kind == "run" and self.run else f"{self.kind} {' '.join(self.paths)}"
        )


@dataclass(frozen=True)
class PrSpec:
    provider: str = "github"  # github | local | none
    repository: str | None = None
    title: str = "{{ task.id }}: {{ task.title }}"
    body: str | None = None  # None: the built-in body
    draft: bool = True
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    prompt: str
    scope: tuple[str, ...]
    ports: int | tuple[int, ...] = 0  # a count to allocate, or explicit numbers
    after: str | None = None
    agent: AgentSpec = field(default_factory=AgentSpec)  # already merged over the plan's
    setup: tuple[Step, ...] = ()  # the plan's, or the task's own list
    verify: tuple[Step, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # merged over the plan's, key order kept
    position: Position | None = None  # where the task stands in the plan, for messages


@dataclass(frozen=True)
class Plan:
    path: Path
    name: str
    version: int = 1
    base: str = "main"
    remote: str = "origin"
    worktrees: str = ".claude/worktrees"
    branch: str = "worktree-{{ task.id }}"
    max_parallel: int = 3
    budget_usd: float | None = None
    port_range: tuple[int, int] = (3100, 3999)
    shared: tuple[str, ...] = ()
    conventions: str = ""
    commit_message: str = "feat({{ task.id }}): {{ task.title }}"
    pr: PrSpec = field(default_factory=PrSpec)
    tasks: tuple[Task, ...] = ()
    # What tasks inherit (each task holds its merged copy); kept for the plan's own diff.
    agent: AgentSpec = field(default_factory=AgentSpec)
    env: tuple[tuple[str, str], ...] = ()
    setup: tuple[Step, ...] = ()
    verify: tuple[Step, ...] = ()

    @functools.cached_property
    def _by_id(self) -> dict[str, Task]:
        by_id: dict[str, Task] = {}
        for task in self.tasks:
            by_id.setdefault(task.id, task)
        return by_id

    def task(self, task_id: str) -> Task:
        return self._by_id[task_id]
