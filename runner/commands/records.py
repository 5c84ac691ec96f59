"""`wtrun records pull|push PLAN`: the plan's records on the remote (`refs/wtrun/<plan>`).

`pull` merges the remote's records into this clone's (then `wtrun status PLAN` shows what the
last run anywhere did); `push` writes this clone's records there, merged with what another
writer pushed meanwhile.
"""

from __future__ import annotations

from pathlib import Path

from .. import shared_records
from ..errors import UsageError
from ..git import find_repo
from ..plan import load
from ..state import Store
from ..workspace import check_records


def records(action: str, plan_path: str, remote: str | None) -> int:
    plan = load(plan_path)
    git = find_repo(Path.cwd())
    remote = remote or plan.remote
    if not git.has_remote(remote):
        raise UsageError(
            f"this repository has no remote {remote!r}; add it, or name another with --remote"
        )
    ref = shared_records.ref_name(plan)
    store = Store(git.common_dir(), plan.name)
    with store.lock():
        store.reload()
        check_records(plan, git.root, store.record.tasks)
        if action == "pull":
            taken = shared_records.pull(plan, git, store, remote)
            if taken is None:
                print(f"wtrun: {remote} has no records of plan {plan.name!r} ({ref}) yet")
            else:
                n = len(taken)
                print(
                    f"wtrun: pulled the records of plan {plan.name!r} from {remote} ({ref}); "
                    f"{n} task{'' if n == 1 else 's'} further along there"
                )
            return 0
        commit = shared_records.push(plan, git, store, remote)
    if commit is None:
        print(f"wtrun: {remote} holds these records of plan {plan.name!r} already ({ref})")
    else:
        print(f"wtrun: pushed the records of plan {plan.name!r} to {remote} ({ref} {commit[:12]})")
    return 0
