"""A plan's records on the remote, so that they travel with the repository: one commit under
`refs/wtrun/<plan>` whose tree holds `state.json` (as wtrun writes it, without worktree paths,
which are one machine's; never logs). A local run, each job of a workflow, a re-run and a
developer's clone all read and update the same ref.

Writes are a compare-and-swap: the push leases the ref at the commit this clone last read, so
two writers cannot clobber each other; the loser fetches, merges the winner's records by the
rule `wtrun pr --merge-records` uses (a task's record is replaced only by one further along),
and tries again. Anyone who can push a ref can write these records, so what is read is held
against the plan like any other machine's records: tasks the plan lacks are dropped, and
records naming other branches than the plan's are refused.
"""

from __future__ import annotations

import dataclasses

from . import redact
from .errors import WtrunError
from .git import Git
from .plan import Plan
from .state import RunRecord, Store, parse_records, records_json
from .workspace import check_records

PREFIX = "refs/wtrun/"
FILE = "state.json"
ATTEMPTS = 5
# The records commit is wtrun's, whoever runs it: a fresh clone may have no identity.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "wtrun",
    "GIT_AUTHOR_EMAIL": "wtrun@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "wtrun",
    "GIT_COMMITTER_EMAIL": "wtrun@users.noreply.github.com",
}
_LOST_RACE = ("stale info", "fetch first", "non-fast-forward")


def ref_name(plan: Plan) -> str:
    return PREFIX + plan.name


def pull(plan: Plan, git: Git, store: Store, remote: str) -> list[str] | None:
    """Fetch the remote's records and merge them into the local ones; the ids of the tasks
    taken, or None when the remote holds no records of the plan."""
    tip = _fetch(git, remote, ref_name(plan))
    if tip is None:
        return None
    return store.merge(_admitted(plan, git, tip, remote))


def push(plan: Plan, git: Git, store: Store, remote: str) -> str | None:
    """Write the local records (merged with the remote's) to the remote; the new commit, or
    None when the remote already held them."""
    ref = ref_name(plan)
    tip = git.rev_parse(ref)
    for _ in range(ATTEMPTS):
        commit = _commit(git, store.record, tip)
        if commit is None:
            return None
        if _leased_push(git, remote, ref, commit, tip):
            git("update-ref", ref, commit)
            return commit
        tip = _fetch(git, remote, ref)
        if tip is not None:
            store.merge(_admitted(plan, git, tip, remote))
    raise WtrunError(
        f"the records of plan {plan.name!r} on {remote!r} ({ref}) changed {ATTEMPTS} times "
        "while wtrun pushed its own; run `wtrun records push` again"
    )


def _fetch(git: Git, remote: str, ref: str) -> str | None:
    """The remote's records commit, fetched into the same ref here (None: it has none)."""
    r = git.run("fetch", "--quiet", "--no-tags", remote, f"+{ref}:{ref}", check=False)
    if r.returncode != 0:
        if "couldn't find remote ref" not in r.stdout + r.stderr:
            raise WtrunError(
                f"cannot fetch the records {ref} from {remote!r}:"
                + "".join(f"\n    {line}" for line in (r.stdout + r.stderr).strip().splitlines())
            )
        git.run("update-ref", "-d", ref, check=False)
        return None
    return git.rev_parse(ref)


def _admitted(plan: Plan, git: Git, tip: str, remote: str) -> RunRecord:
    """The records of commit `tip`, held against the plan."""
    where = f"the records {ref_name(plan)} on {remote!r}"
    r = git.run("show", f"{tip}:{FILE}", check=False)
    try:
        incoming = parse_records(r.stdout if r.returncode == 0 else "")
    except (ValueError, TypeError, AttributeError) as e:
        raise WtrunError(
            f"{where} hold no wtrun records ({e}); delete them with "
            f"`git push {remote} :{ref_name(plan)}` to start afresh"
        ) from None
    if incoming.plan != plan.name:
        raise WtrunError(f"{where} are of plan {incoming.plan!r}, not {plan.name!r}")
    known = {t.id for t in plan.tasks}
    incoming.tasks = {
        tid: dataclasses.replace(r, worktree=None)
        for tid, r in incoming.tasks.items()
        if tid in known
    }
    try:
        check_records(plan, git.root, incoming.tasks)
    except WtrunError as e:
        raise WtrunError(f"{where}: {e}") from None
    return incoming


def shared(record: RunRecord) -> str:
    """The records as they travel: secrets masked as on disk, no worktree paths (another
    machine's folders)."""
    tasks = {tid: dataclasses.replace(r, worktree=None) for tid, r in record.tasks.items()}
    return redact.text(records_json(dataclasses.replace(record, tasks=tasks)))


def _commit(git: Git, record: RunRecord, parent: str | None) -> str | None:
    """A commit of the records on top of `parent`; None when `parent` holds them already."""
    blob = git("hash-object", "-w", "--stdin", input=shared(record)).strip()
    tree = git("mktree", input=f"100644 blob {blob}\t{FILE}\n").strip()
    if parent is not None and git("rev-parse", f"{parent}^{{tree}}").strip() == tree:
        return None
    parents = ["-p", parent] if parent else []
    message = f"wtrun records of plan {record.plan}"
    return git("commit-tree", tree, *parents, "-m", message, env=dict(_IDENTITY)).strip()


def _leased_push(git: Git, remote: str, ref: str, commit: str, expected: str | None) -> bool:
    """Push `commit` to `ref` if the remote's ref is still `expected` (None: absent); False
    when another writer got there first."""
    lease = f"--force-with-lease={ref}:{expected or ''}"
    r = git.run("push", "--porcelain", lease, remote, f"{commit}:{ref}", check=False)
    if r.returncode == 0:
        return True
    said = r.stdout + r.stderr
    if any(reason in said for reason in _LOST_RACE):
        return False
    raise WtrunError(
        f"cannot push the records to {remote!r} ({ref}):"
        + "".join(f"\n    {line}" for line in said.strip().splitlines() if line.strip())
    )
