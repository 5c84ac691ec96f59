"""`wtrun status PLAN`: one row per task; `--json` is a stable contract (see DESIGN.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import plan as plan_module
from ..context import branch_of
from ..git import find_repo
from ..state import Store


def task_rows(plan_path: str) -> dict[str, Any]:
    plan = plan_module.load(plan_path)
    git = find_repo(Path.cwd())
    store = Store(git.common_dir(), plan.name)
    tasks = []
    for task in plan.tasks:
        r = store.record.tasks.get(task.id)
        tasks.append({
            "id": task.id,
            "state": r.state if r else "pending",
            "step": r.step if r else None,
            "branch": (r.branch if r and r.branch else branch_of(plan, task)),
            "worktree": r.worktree if r else None,
            "cost_usd": r.cost_usd if r else None,
            "pr_url": r.pr_url if r else None,
            "reason": r.reason if r else None,
            "pr_number": r.pr_number if r else None,
            "ports": r.ports if r else [],
            "files": r.files if r else [],
            "conflicts": r.conflicts if r else [],
        })
    return {"plan": plan.name, "base_commit": store.record.base_commit, "tasks": tasks}


def status(plan_path: str, as_json: bool) -> int:
    data = task_rows(plan_path)
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    rows = data["tasks"]
    headers = ("task", "state", "step", "cost", "branch", "PR / reason")
    table = [headers] + [
        (t["id"], t["state"], t["step"] or "",
         f"${t['cost_usd']:.2f}" if t["cost_usd"] is not None else "",
         t["branch"], t["pr_url"] or t["reason"] or (t["worktree"] or ""))
        for t in rows]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(headers) - 1)]
    for r in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + str(r[-1]))
    base = data["base_commit"]
    total = sum(t["cost_usd"] or 0 for t in rows)
    print(f"\nplan {data['plan']}; base {base[:12] if base else '(not run yet)'}; "
          f"cost ${total:.2f}")
    return 0
