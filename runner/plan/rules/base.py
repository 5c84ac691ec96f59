"""What every rule sees: the plan as built, its data and where each part stands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic
from ..model import Plan
from ..yaml_source import Document, NodePath


@dataclass
class PlanView:
    doc: Document
    data: dict[str, Any]  # the plan's data without the values the schema refused
    plan: Plan
    paths: list[NodePath]  # paths[k]: where task k of `plan` stands in the file
    pruned: set[NodePath]  # values the schema refused
    dropped: list[int]  # positions in the file of the tasks left out (no usable id)
    together: Callable[[str, str], bool]
    first: dict[str, int] = field(init=False)  # task id -> index of the first task with it
    problems: list[Diagnostic] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.first = {}
        for k, task in enumerate(self.plan.tasks):
            self.first.setdefault(task.id, k)

    def add(self, path: NodePath, message: str, rule: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.diagnostic(path, message, rule, key=key))

    def line(self, path: NodePath) -> int:
        return self.doc.mark(path).line

    def raw_task(self, k: int) -> dict[str, Any]:
        raw: dict[str, Any] = self.data["tasks"][k]
        return raw

    def refused(self, prefix: NodePath) -> bool:
        """Whether the schema refused a value at or around `prefix`."""
        return any(p[: len(prefix)] == prefix or prefix[: len(p)] == p for p in self.pruned)
