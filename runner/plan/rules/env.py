"""`env` of the plan and of each task: no credential wtrun keeps from agent-written code."""

from __future__ import annotations

from typing import Any

from ...tokens import SECRETS
from ..yaml_source import NodePath
from .base import PlanView


def check(view: PlanView) -> None:
    places: list[tuple[NodePath, str]] = [(("env",), "env")]
    for k, task in enumerate(view.plan.tasks):
        places.append(((*view.paths[k], "env"), f'env of task "{task.id}"'))
    for where, label in places:
        _secrets(view, where, label)


def _secrets(view: PlanView, where: NodePath, label: str) -> None:
    for name in _mapping_at(view.doc.data, where):
        if name in SECRETS:
            view.add(
                (*where, name),
                f'{label} sets "{name}", a credential that setup, the agent and verify never '
                "get (they run code the agent may have written); remove it: wtrun reads it from "
                "its own environment for pushes and pull requests",
                "env",
                key=True,
            )


def _mapping_at(data: Any, path: NodePath) -> dict[str, Any]:
    for key in path:
        if isinstance(data, dict) and isinstance(key, str):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return {}
    return data if isinstance(data, dict) else {}
