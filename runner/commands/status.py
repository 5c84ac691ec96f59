"""`wtrun status PLAN`: one row per task; `--json` is a stable contract (the README's
"Machine-readable outputs")."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from .. import inputs
from ..git import Git, find_repo
from ..plan import Plan, Task, TemplateError, branch_of, load
from ..report import visible
from ..state import Store, iter_records


def task_rows(plan_path: str) -> dict[str, Any]:
    plan = load(plan_path)
    git = find_repo(Path.cwd())
    store = Store(git.common_dir(), plan.name)
    tasks = []
    for task in plan.tasks:
        r = store.record.tasks.get(task.id)
        tasks.append(
            {
                "id": task.id,
                "state": r.state if r else "pending",
                "step": r.step if r else None,
                "branch": (r.branch if r and r.branch else branch_of(plan, task)),
                "worktree": r.worktree if r else None,
                "cost_usd": r.cost_usd if r else None,
                "pr_url": r.pr_url if r else None,
                "reason": r.reason if r else None,
                "attempts": r.attempts if r else 0,
                "sandbox": r.sandbox if r else None,
                "stale": inputs.stale(plan, task, r.inputs) if r else [],
                "pr_number": r.pr_number if r else None,
                "pr_state": r.pr_state if r and r.pr_number is not None else None,
                "ports": r.ports if r else [],
                "files": r.files if r else [],
                "conflicts": r.conflicts if r else [],
                # From `wtrun sync` and the end of a run: files behind each conflict, what
                # conflicts with the base's tip, commits of that tip the branch lacks.
                "conflict_files": r.conflict_files if r else {},
                "base_conflicts": r.base_conflicts if r else [],
                "behind": r.behind if r else None,
            }
        )
    return {
        "plan": plan.name,
        "base_commit": store.record.base_commit,
        "tasks": tasks,
        "leftovers": leftovers(plan, git, store),
    }


# ---------------------------------------------------------------- leftovers

_PROBE = "wtrunprobe0"
_TASK_ID = r"[a-z0-9][a-z0-9._-]*"


def _branch_pattern(plan: Plan) -> re.Pattern[str] | None:
    """The plan's branch names as a pattern, when its template varies with the task id only."""
    try:
        probe = branch_of(plan, Task(id=_PROBE, title=_PROBE, prompt="", scope=()))
    except TemplateError:  # a template that needs more than a task's basics: no pattern
        return None
    if probe.count(_PROBE) != 1:
        return None
    before, _, after = probe.partition(_PROBE)
    return re.compile(re.escape(before) + _TASK_ID + re.escape(after))


def _other_plans(git: Git, plan: Plan) -> tuple[set[Path], set[str]]:
    """Worktrees and branches that the records of this repository's other plans own."""
    paths: set[Path] = set()
    branches: set[str] = set()
    for folder in iter_records(git.common_dir()):
        if folder.name == plan.name:
            continue
        try:
            data = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable records own nothing
            continue
        tasks = data.get("tasks") if isinstance(data, dict) else None
        if not isinstance(tasks, dict):
            continue
        for t in tasks.values():
            if isinstance(t, dict):
                if t.get("worktree"):
                    paths.add(Path(str(t["worktree"])).resolve())
                if t.get("branch"):
                    branches.add(str(t["branch"]))
    return paths, branches


def leftovers(plan: Plan, git: Git, store: Store) -> list[dict[str, Any]]:
    """Worktrees under the plan's worktree folder, and branches named like the plan's, that
    no task of the plan owns (nor another plan's records), with the command that removes
    each one."""
    folder = (git.root / plan.worktrees).resolve()
    owned_paths, owned_branches = _other_plans(git, plan)
    for task in plan.tasks:
        r = store.record.tasks.get(task.id)
        owned_paths.add(folder / task.id)
        if r is not None and r.worktree:
            owned_paths.add(Path(r.worktree).resolve())
        owned_branches.add(r.branch if r is not None and r.branch else branch_of(plan, task))
    found: list[dict[str, Any]] = []
    checked_out: set[str] = set()
    listed: set[str] = set()
    for path, branch in git.worktrees().items():
        resolved = path.resolve()
        if branch:
            checked_out.add(branch)
        if folder not in resolved.parents or resolved in owned_paths:
            continue
        command = (
            f"git worktree remove {shlex.quote(str(path))}"
            if path.exists()
            else "git worktree prune"
        )
        found.append({"kind": "worktree", "path": str(path), "branch": branch, "command": command})
        if branch and branch not in owned_branches:
            found.append(
                {
                    "kind": "branch",
                    "name": branch,
                    "command": f"git branch -D {shlex.quote(branch)}",
                }
            )
            listed.add(branch)
    pattern = _branch_pattern(plan)
    if pattern is not None:
        names = git("for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads").split()
        for name in names:
            if (
                pattern.fullmatch(name)
                and name not in owned_branches
                and name not in listed
                and name not in checked_out
            ):
                found.append(
                    {
                        "kind": "branch",
                        "name": name,
                        "command": f"git branch -D {shlex.quote(name)}",
                    }
                )
    return found


def status(plan_path: str, as_json: bool) -> int:
    data = task_rows(plan_path)
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    rows = data["tasks"]
    base = data["base_commit"]
    total = sum(t["cost_usd"] or 0 for t in rows)
    lines = [
        *_table(rows),
        "",
        f"plan {data['plan']}; base {base[:12] if base else '(not run yet)'}; cost ${total:.2f}",
        *_conflicts(rows),
        *_behind(rows),
        *_leftovers(data["plan"], data["leftovers"]),
    ]
    # Reasons quote agents' and commands' output, file names come from agents' work.
    print(visible("\n".join(lines)))
    return 0


def _table(rows: list[dict[str, Any]]) -> list[str]:
    headers = ("task", "state", "step", "cost", "branch", "PR / reason")
    table = [headers] + [
        (
            t["id"],
            t["state"],
            t["step"] or "",
            f"${t['cost_usd']:.2f}" if t["cost_usd"] is not None else "",
            t["branch"],
            t["pr_url"] or t["reason"] or (t["worktree"] or ""),
        )
        for t in rows
    ]
    widths = [max(len(visible(str(r[i]))) for r in table) for i in range(len(headers) - 1)]
    return [
        # the last column is not padded
        "  ".join(visible(str(c)).ljust(w) for c, w in zip(r, widths, strict=False))
        + "  "
        + str(r[-1])
        for r in table
    ]


def _conflicts(rows: list[dict[str, Any]]) -> list[str]:
    position = {t["id"]: i for i, t in enumerate(rows)}
    pairs = [
        (t["id"], other, files)
        for t in rows
        for other, files in t["conflict_files"].items()
        if position[t["id"]] < position.get(other, -1)
    ]
    if not pairs:
        return []
    return [
        "",
        "predicted conflicts (git merge-tree):",
        *(f"  {a} <-> {b}: {', '.join(files)}" for a, b, files in pairs),
    ]


def _behind(rows: list[dict[str, Any]]) -> list[str]:
    behind = [t for t in rows if t["behind"]]
    if not behind:
        return []
    lines = [
        "",
        "behind the base (`wtrun sync PLAN --rebase` follows it where that applies cleanly):",
    ]
    for t in behind:
        clash = t["base_conflicts"]
        lines.append(
            f"  {t['id']}: {t['behind']} commit{'s' if t['behind'] != 1 else ''}"
            + (f"; conflicts in {', '.join(clash)}" if clash else "")
        )
    return lines


def _leftovers(plan_name: str, items: list[dict[str, Any]]) -> list[str]:
    if not items:
        return []
    lines = ["", f"leftovers (no task of plan {plan_name} owns them):"]
    for item in items:
        what = (
            f"worktree {item['path']}" if item["kind"] == "worktree" else f"branch {item['name']}"
        )
        lines.append(f"  {what}: {item['command']}")
    return lines
