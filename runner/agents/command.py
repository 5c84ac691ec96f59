"""`command`: any program (an in-house agent, a script in tests). Each argv item is a template.

The process runs in the task's worktree with the task's environment; it reads `AGENTS.md`, the
convention most agent CLIs share. It succeeds when it exits 0; it reports no cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import WtrunError
from ..plan import task_context, templates
from .base import AgentResult, AgentRun, exited, failed, last_line, output_tail, timed_out


class CommandPreset:
    name = "command"
    executable = ""  # the plan's agent.command[0]: checked by the run, per task
    instructions_file = "AGENTS.md"
    carries_over: str | None = None
    owned_paths: tuple[str, ...] = ()

    def argv(self, run: AgentRun) -> list[str]:
        items = run.task.agent.command or ()
        if not items:
            raise WtrunError(
                f'task "{run.task.id}" uses the command preset but has no '
                'agent.command; set it, e.g. [my-agent, --task, "{{ task.id }}"]'
            )
        ports = [int(p) for p in run.env.get("WTRUN_PORTS", "").split(",") if p.strip()]
        context = task_context(
            run.plan,
            run.task,
            ports=ports,
            worktree=str(run.worktree),
            branch=run.env.get("WTRUN_BRANCH"),
        )
        argv = []
        for index, item in enumerate(items):
            try:
                argv.append(templates.render(item, context))
            except templates.TemplateError as e:
                raise WtrunError(
                    f'agent.command item {index + 1} of task "{run.task.id}" '
                    f"({item!r}): {e.message}"
                ) from e
        return [*argv, *run.task.agent.args]

    def session(self, details: Mapping[str, object]) -> str | None:
        return None  # a later attempt starts a new session, told what failed

    def state_paths(self, env: Mapping[str, str]) -> list[Path]:
        return []

    def state_dirs(self, env: Mapping[str, str]) -> list[Path]:
        return []

    def env(self, run: AgentRun) -> dict[str, str]:
        # What this run asks: the task's prompt, or a follow-up (a verify failure, a change).
        return {"WTRUN_PROMPT": run.prompt}

    def result(self, returncode: int | None, output: str, run: AgentRun) -> AgentResult:
        if returncode is None:
            return failed(timed_out(run))
        if returncode != 0:
            return failed(
                f"{exited(self._program(run), returncode)}: {last_line(output)}",
                details={"output_tail": output_tail(output)},
            )
        return AgentResult(True, None, None, {})

    @staticmethod
    def _program(run: AgentRun) -> str:
        command = run.task.agent.command or ("the command",)
        return command[0].rsplit("/", 1)[-1] or command[0]
