"""Loading and validating a plan: the file, its schema, its rules, and the frozen model.

`load` parses a plan file, checks everything a plan can get wrong without running it,
applies the defaults and returns a `Plan`; every other module reads plans through here.
"""

from __future__ import annotations

from .diagnostics import Diagnostic, PlanError
from .loader import format_duration, load, parse_duration, read_source, task_by_id
from .model import AgentSpec, Plan, PrSpec, Step, Task
from .templates import TemplateError
from .variables import base_branch, branch_of, task_context

__all__ = [
    "AgentSpec",
    "Diagnostic",
    "Plan",
    "PlanError",
    "PrSpec",
    "Step",
    "Task",
    "TemplateError",
    "base_branch",
    "branch_of",
    "format_duration",
    "load",
    "parse_duration",
    "read_source",
    "task_by_id",
    "task_context",
]
