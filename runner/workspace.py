"""Where a task works and what it sees: its worktree, branch, instructions file, ports and
environment, computed once from the plan for the run and the dry-run alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import agents, proc
from .errors import WtrunError
from .plan import Plan, Task, branch_of
from .state import TaskRecord
from .tokens import SECRETS


@dataclass(frozen=True)
class Workspace:
    task: Task
    worktree: Path
    branch: str
    instructions: Path  # absolute path of the task's instructions file
    ports: tuple[int, ...]
    variables: Mapping[str, str]  # what wtrun adds to the environment, then the plan's `env`

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of setup steps, the agent and verify steps: the user's own (or
        `base`) less git's leaking variables and the GitHub tokens, plus `variables`."""
        env = proc.clean_env(self.variables, base)
        for name in SECRETS:
            env.pop(name, None)
        return env


def workspace(plan: Plan, task: Task, root: Path, ports: Sequence[int]) -> Workspace:
    worktree = root / plan.worktrees / task.id
    branch = branch_of(plan, task)
    instructions = worktree / agents.get(task.agent.preset).instructions_file
    variables = {
        "COMPOSE_PROJECT_NAME": f"{plan.name}-{task.id}".replace(".", "-"),
        "WTRUN_PLAN": plan.name,
        "WTRUN_TASK_ID": task.id,
        "WTRUN_WORKTREE": str(worktree),
        "WTRUN_BRANCH": branch,
        "WTRUN_INSTRUCTIONS": str(instructions),
        "WTRUN_PORTS": ",".join(map(str, ports)),
    }
    if ports:
        variables["PORT"] = str(ports[0])
    variables.update(task.env)
    return Workspace(task, worktree, branch, instructions, tuple(ports), variables)


def check_records(plan: Plan, root: Path, records: Mapping[str, TaskRecord]) -> None:
    """Refuse records that name another branch or worktree than the plan gives a task: the
    names wtrun acts on come from the plan, and records that disagree were written by
    something else (an agent, a process it left behind)."""
    wrong = []
    for task in plan.tasks:
        r = records.get(task.id)
        if r is None:
            continue
        ws = workspace(plan, task, root, ())
        if r.branch is not None and r.branch != ws.branch:
            wrong.append(f'task "{task.id}" names branch {r.branch!r}, the plan {ws.branch!r}')
        if r.worktree is not None and Path(r.worktree) != ws.worktree:
            wrong.append(
                f'task "{task.id}" names worktree {r.worktree!r}, the plan {str(ws.worktree)!r}'
            )
    if wrong:
        raise WtrunError(
            f"the run records of plan {plan.name!r} disagree with the plan: {'; '.join(wrong)}. "
            "Something other than wtrun changed them, and wtrun acts on nothing they say; look "
            f"at .git/wtrun/{plan.name}/state.json, then move it away to start the plan's "
            "records afresh"
        )
