"""A follow-up run on pushed work: the task's agent once more, in the task's own worktree,
on top of its pushed head, with a new prompt; its commits checked like the first run's
(scope of every commit since the task started, verify, the final check) and pushed as a
fast-forward. Nothing pushed is rewritten or lost.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from . import agents, steps, worktrees
from .agents.launch import launch
from .commit import check_scope, commit_leftovers, owned_by, resolve_head
from .errors import WtrunError
from .git import Git, resolve_base
from .plan import Plan
from .prs import checked_head, push
from .sandbox import Mode, writable_paths
from .sandbox import choose as choose_sandbox
from .state import Store
from .workspace import workspace


@dataclass(frozen=True)
class PushedHead:
    previous: str  # the head pushed before the follow-up
    head: str  # the head pushed now, a descendant of `previous`


def follow_up(
    plan: Plan, git: Git, store: Store, task_id: str, prompt: str, *, message: str
) -> PushedHead | None:
    """Run the task's agent once with `prompt` in its worktree; commit what it left with
    `message`, check and push. None: the agent changed nothing (nothing is pushed).
    Raises `WtrunError` when the worktree is gone, or a check or the push fails: the work
    then stays in the worktree, unpushed."""
    task, record = plan.task(task_id), store.task(task_id)
    previous, start = record.pushed_head, record.start_commit
    if previous is None or start is None:
        raise WtrunError(f'task "{task_id}" has nothing pushed to follow up on')
    ws = workspace(plan, task, git.root, record.ports)
    if not ws.worktree.is_dir():
        raise WtrunError(
            f'the worktree of task "{task_id}" ({ws.worktree}) is gone; run `wtrun run '
            f"{plan.path} --task {task_id}` to make it again from {ws.branch}, then revise"
        )
    if resolve_head(git, ws.worktree, ws.branch, start) != previous:
        raise WtrunError(
            f"branch {ws.branch} is not at the head wtrun pushed ({previous[:12]}); push or "
            f"undo its other commits (`git -C {ws.worktree} log {previous[:12]}..`), then "
            "run again"
        )
    preset = agents.get(task.agent.preset)
    env = ws.env()
    sandbox, warning = choose_sandbox(cast(Mode, task.agent.sandbox))
    if warning:
        print(f"wtrun: {warning}", file=sys.stderr, flush=True)
    writable = writable_paths(
        git.common_dir(),
        worktrees.worktree_git_dir(ws.worktree),
        ws.worktree,
        preset.state_paths(env),
        preset.state_dirs(env),
    )

    def wrap(argv: Sequence[str]) -> list[str]:
        items = list(argv)
        if sandbox.kind == "none":
            return items
        return sandbox.wrap(items, cwd=ws.worktree, writable=writable, env=env)

    # The command preset reads the prompt as `{{ task.prompt }}`: it is the follow-up's.
    run = agents.AgentRun(
        plan=plan,
        task=dataclasses.replace(task, prompt=prompt),
        prompt=prompt,
        worktree=ws.worktree,
        instructions=ws.instructions,
        env=env,
        sandboxed=sandbox.kind != "none",
    )
    attempt = store.agent_started(task_id, sandbox.kind)
    launch(run, env, store.log_path(task_id, "agent"), attempt=attempt, wrap=wrap)
    owned = owned_by(preset)
    commit_leftovers(git, ws.worktree, message, owned, None)
    head = resolve_head(git, ws.worktree, ws.branch, previous)
    if head == previous:
        return None
    files = check_scope(git, ws.worktree, head, start, task.scope, plan.shared, owned, ws.branch)
    results, failure = steps.run_verify(
        task.verify, ws.worktree, env, store.log_path(task_id, "verify"), wrap
    )
    store.verified(task_id, results)
    if failure:
        raise WtrunError(failure.message, failure.position)
    if resolve_head(git, ws.worktree, ws.branch, previous) != head:
        raise WtrunError(
            f"code that verify ran moved branch {ws.branch}; see `git -C {ws.worktree} log`, "
            "put the branch back, run again"
        )
    store.scoped(task_id, files)
    store.committed(task_id, head)
    base_tip = resolve_base(git, plan.remote, plan.base, fetch=True)
    push(plan, git, ws.branch, checked_head(plan, git, store, task_id, base_tip))
    return PushedHead(previous, head)
