"""After a run, and in `wtrun sync`: how far the base moved under the open tasks, and the
conflicts predicted between them (`wtrun.conflicts`). Both go into the records
(`status --json`), the summary, and the PR texts.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import conflicts, forge, prs, redact, report
from .errors import WtrunError
from .git import Git, resolve_base
from .plan import Plan
from .state import Store


@dataclass
class Drift:
    base_tip: str | None
    moved: int | None  # commits on the base since the run's base commit
    behind: dict[str, int] = field(default_factory=dict)


def count(git: Git, revisions: str) -> int:
    return int(git("rev-list", "--count", revisions).strip() or 0)


def short(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def measure(plan: Plan, git: Git, store: Store, tip: str) -> Drift:
    """How many commits of `tip` each open task lacks, written into the records."""
    base_commit = store.record.base_commit
    moved = None
    if base_commit and git.rev_parse(base_commit):
        moved = count(git, f"{base_commit}..{tip}")
    drift = Drift(tip, moved)
    heads = conflicts.open_heads(plan, store.record)
    dirty = False
    for tid, r in store.record.tasks.items():
        behind = count(git, f"{heads[tid]}..{tip}") if tid in heads else None
        if behind is not None:
            drift.behind[tid] = behind
        if r.behind != behind:
            store.drifted(tid, behind)
            dirty = True
    if dirty:
        store.save()
    drift.behind = {t.id: drift.behind[t.id] for t in plan.tasks if t.id in drift.behind}
    return drift


def check(
    plan: Plan, git: Git, store: Store, tip: str | None
) -> tuple[Drift | None, conflicts.Prediction]:
    """Drift (when the base's tip is known) and the conflict prediction, both recorded."""
    drift = measure(plan, git, store, tip) if tip else None
    prediction = conflicts.predict_plan(plan, git, store.record, tip)
    conflicts.record_prediction(plan, store, prediction, checked_base=tip is not None)
    return drift, prediction


def drift_lines(
    plan: Plan, drift: Drift, store: Store, following: Mapping[str, str] | None = None
) -> list[str]:
    """`following`: tasks stacked on a parent whose PR is open -> that parent. `wtrun sync`
    moves them with it (rebased, merged), never onto the base alone."""
    if not any(drift.behind.values()):
        return []
    since = store.record.base_commit
    moved = (
        ""
        if drift.moved is None
        else f" ({plural(drift.moved, 'commit')} since the run's base {short(since)})"
    )
    lines = [f"base {plan.base} is at {short(drift.base_tip)}{moved}:"]
    for tid, behind in drift.behind.items():
        if not behind:
            continue
        clash = store.task(tid).base_conflicts
        parent = (following or {}).get(tid)
        if parent is not None:
            tail = f"; stacked on {parent}, it moves when {parent} does"
        elif clash:
            tail = f"; conflicts with {plan.base} in {', '.join(clash)}"
        else:
            tail = "; applies cleanly"
        lines.append(f"  {tid}: {plural(behind, 'commit')} behind{tail}")
    return lines


def conflict_lines(prediction: conflicts.Prediction, plan: Plan) -> list[str]:
    described = conflicts.describe(prediction, plan.base)
    if not described:
        return []
    return ["predicted conflicts (git merge-tree):", *(f"  {line}" for line in described)]


def markdown(
    plan: Plan, drift: Drift | None, prediction: conflicts.Prediction, store: Store
) -> str:
    out = []
    if prediction.pairs or prediction.base:
        out += ["#### Predicted conflicts", "", "| tasks | files |", "|---|---|"]
        for (a, b), files in prediction.pairs.items():
            out.append(f"| `{a}` and `{b}` | {', '.join(f'`{f}`' for f in files)} |")
        for tid, files in prediction.base.items():
            out.append(f"| `{tid}` and `{plan.base}` | {', '.join(f'`{f}`' for f in files)} |")
        out.append("")
    if drift is not None and any(drift.behind.values()):
        out += [
            f"#### Base `{plan.base}` moved",
            "",
            "| task | behind | conflicts |",
            "|---|---|---|",
        ]
        for tid, behind in drift.behind.items():
            if behind:
                clash = ", ".join(f"`{f}`" for f in store.task(tid).base_conflicts)
                out.append(f"| `{tid}` | {behind} | {clash or 'none'} |")
        out.append("")
    return "\n".join(out) + "\n" if out else ""


# ---------------------------------------------------------------- the end of a run

Say = Callable[..., None]


def after_run(plan: Plan, git: Git, store: Store, reporter: report.Reporter) -> None:
    """The end of `wtrun run`: base drift and predicted conflicts in the summary and the
    records, then every PR text that changed (children opened, conflicts found) sent once.
    Never fails the run: a problem is one line."""

    say = reporter.note

    if conflicts.open_heads(plan, store.record):
        _guarded(
            store,
            say,
            "check base drift and conflicts",
            lambda: _report(plan, git, store, reporter, say),
        )
    if plan.pr.provider != "none":
        _guarded(store, say, "update the PR texts", lambda: _send_texts(plan, git, store, say))


def _report(plan: Plan, git: Git, store: Store, reporter: report.Reporter, say: Say) -> None:
    tip = None
    if git.has_remote(plan.remote):
        try:
            tip = resolve_base(git, plan.remote, plan.base, fetch=True)
        except WtrunError as e:  # offline: the tasks can still be compared
            say(f"wtrun: base drift not checked: {e}")
    else:
        tip = git.rev_parse(plan.base)
    drift, prediction = check(plan, git, store, tip)
    if drift:
        reporter.section(
            "drift",
            f"base {plan.base} moved",
            drift_lines(plan, drift, store),
            base_tip=drift.base_tip,
            behind=drift.behind,
        )
    reporter.section(
        "conflicts",
        "predicted conflicts",
        conflict_lines(prediction, plan),
        pairs=[{"tasks": list(p), "files": list(f)} for p, f in prediction.pairs.items()],
        base={t: list(f) for t, f in prediction.base.items()},
    )
    report.write_step_summary(markdown(plan, drift, prediction, store))


def _send_texts(plan: Plan, git: Git, store: Store, say: Say) -> None:
    stale = prs.stale_texts(plan, store, [t.id for t in plan.tasks])
    if stale:
        provider = forge.make(plan, git, store.root)
        prs.send_texts(store, provider, stale, lambda text: say(text.strip()))


def _guarded(store: Store, say: Say, what: str, work: Callable[[], None]) -> None:
    try:
        work()
    except WtrunError as e:
        say(f"wtrun: could not {what}: {e}")
    except Exception:  # the run itself is over and recorded: report, do not crash
        log = store.log_path("_wtrun", "after-run-error")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(redact.text(traceback.format_exc()), encoding="utf-8")
        say(f"wtrun: could not {what} (internal error; details in {log})")
