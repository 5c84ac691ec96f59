"""`agent.preset` and `agent.command` agree, for the plan and for each task."""

from __future__ import annotations

from typing import Any

from .base import PlanView

_EXAMPLE = 'e.g. `command: [my-agent, --task, "{{ task.id }}"]`'


def check(view: PlanView) -> None:
    if view.refused(("agent",)):
        return
    told_plan = False
    inherits_command = False
    for k, task in enumerate(view.plan.tasks):
        here = (*view.paths[k], "agent")
        raw: dict[str, Any] = view.raw_task(k).get("agent", {})
        if view.refused(here):
            continue
        if task.agent.preset == "command" and not task.agent.command:
            if "preset" in raw:
                view.add(
                    (*here, "preset"),
                    f'agent.preset of task "{task.id}" is "command", but no agent.command is '
                    f"set; add the program to run, {_EXAMPLE}",
                    "agent",
                )
            elif not told_plan:
                told_plan = True
                view.add(
                    ("agent", "preset"),
                    'agent.preset is "command", but agent.command is not set; add the program '
                    f"to run, {_EXAMPLE}",
                    "agent",
                )
        if "command" in raw and task.agent.preset != "command":
            view.add(
                (*here, "command"),
                f'agent.command of task "{task.id}" is set, but its agent.preset is '
                f'"{task.agent.preset}"; set `preset: command`, or remove command',
                "agent",
                key=True,
            )
        inherits_command |= task.agent.preset == "command" and "command" not in raw
    _unused_plan_command(view, inherits_command)


def _unused_plan_command(view: PlanView, inherited: bool) -> None:
    plan_agent: dict[str, Any] = view.data.get("agent", {})
    preset = plan_agent.get("preset", "claude")
    if "command" in plan_agent and preset != "command" and not inherited:
        default = "" if "preset" in plan_agent else " (the default)"
        view.add(
            ("agent", "command"),
            f'agent.command is set, but agent.preset is "{preset}"{default} and no task uses '
            "the command preset; set `preset: command`, or remove command",
            "agent",
            key=True,
        )
