"""A semantic diff of two plans, as Markdown for pull-request review.

The YAML diff of a plan shows lines; a reviewer wants to know what a merge would spend and
allow: which tasks appear, go or change, which files each may now write, which tasks now
wait for others. `diff` answers that from two loaded plans (the old one may be missing:
every task is then new); `invalid` formats the problems of a new plan that does not load.

Task values are compared as loaded (the plan's `agent`, `env`, `setup` and `verify` already
merged into each task), so a change of a plan-wide default shows as the same change in every
task; such a change, when every task shared by both plans has it, is told once under
"Plan settings" instead.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import scopes
from .plan import AgentSpec, Plan, Step, Task, format_duration
from .plan.diagnostics import Diagnostic, format_text
from .plan.graph import ancestors

RENAME_RATIO = 0.8  # difflib ratio of two prompts above which a vanished id may be renamed
_SHORT_TEXT = 40  # lines; a text diff this short is shown whole, as one hunk
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~#])")


@dataclass
class _Section:
    """The changes of one task or of the plan: one-line bullets, then fenced blocks."""

    bullets: list[str] = field(default_factory=list)
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (label, Markdown)
    keys: list[str] = field(default_factory=list)  # what changed, for the headline

    def __bool__(self) -> bool:
        return bool(self.bullets or self.blocks)

    def render(self) -> list[str]:
        out = [f"- {b}" for b in self.bullets]
        for label, block in self.blocks:
            if out:
                out.append("")
            out += [f"{label}:", "", block]
        return out


@dataclass
class _Pairing:
    pairs: list[tuple[Task, Task]]  # (old, new) of every task in both plans, in new plan order
    added: list[Task]
    removed: list[Task]
    renamed: dict[str, str]  # old id -> new id
    similarity: dict[str, float]  # new id of a renamed task -> prompt ratio


def diff(old: Plan | None, new: Plan, *, notes: Sequence[str] = ()) -> str:
    """Markdown telling what changed from `old` (None: a new plan) to `new`.

    `notes` are printed as a quote under the headline (e.g. why `old` is missing).
    """
    pairing = _pair(old, new)
    plans = (old, new) if old is not None else (new, new)
    task_changes = [(o, n, _task_section(o, n, pairing.renamed, plans)) for o, n in pairing.pairs]
    common = _hoist_common([s for _, _, s in task_changes])
    plan_section = _plan_section(old, new, common) if old is not None else _Section()
    changed = [(o, n, s) for o, n, s in task_changes if s]
    stacks = _stack_lines(old, new, pairing)

    out = [_headline(old, new, pairing, len(changed), plan_section)]
    if notes:
        out += ["", *(f"> {note}" for note in notes)]
    if pairing.added:
        out += ["", f"### Tasks added ({len(pairing.added)})", "", *_added(pairing.added)]
    if pairing.removed:
        out += [
            "",
            f"### Tasks removed ({len(pairing.removed)})",
            "",
            *_table(
                ("id", "title", "scope"),
                [(_code(t.id), _md(t.title), _codes(t.scope)) for t in pairing.removed],
            ),
        ]
    if pairing.renamed:
        out += ["", f"### Tasks renamed ({len(pairing.renamed)})", ""]
        new_of = {n.id: o for o, n in pairing.pairs}
        for new_id, ratio in pairing.similarity.items():
            how = "same prompt" if ratio == 1.0 else f"prompt {int(ratio * 100)}% similar"
            out.append(f"- {_code(new_of[new_id].id)} -> {_code(new_id)} ({how}, same scope)")
    if changed:
        out += ["", f"### Tasks changed ({len(changed)})"]
        for o, n, section in changed:
            was = f" (renamed from {_code(o.id)})" if o.id != n.id else ""
            out += ["", f"#### {_code(n.id)}{was}", "", *section.render()]
    if old is None:
        out += ["", "### Plan settings", "", *_settings(new)]
    elif plan_section:
        out += ["", "### Plan settings", "", *plan_section.render()]
    if stacks:
        out += ["", "### New overlaps or stacks", "", *stacks]
    return "\n".join(out) + "\n"


def invalid(
    label: str,
    problems: Sequence[Diagnostic],
    sources: dict[str, list[str]],
    *,
    notes: Sequence[str] = (),
) -> str:
    """Markdown for a new plan that does not validate: its problems, as `validate` prints them."""
    n = len(problems)
    out = [
        f"**{_md(label)}**: the new plan does not validate ({n} problem{_s(n)}); fix "
        f"{'it' if n == 1 else 'them'} before merging"
    ]
    if notes:
        out += ["", *(f"> {note}" for note in notes)]
    out += ["", "### Validation problems", "", _fence(format_text(problems, sources), "text")]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- pairing tasks


# Each (-similarity, i, j) of a vanished task gone[i] and a new task fresh[j] that may be
# its rename.
Candidates = list[tuple[float, int, int]]


def _pair(old: Plan | None, new: Plan) -> _Pairing:
    return _pair_by(old, new, _rename_candidates)


def _rename_candidates(gone: Sequence[Task], fresh: Sequence[Task]) -> Candidates:
    """The vanished and new tasks with the same set of scope patterns (a rename keeps the
    scope: only those are compared) whose prompts are at least `RENAME_RATIO` alike."""
    same_scope: dict[frozenset[str], list[int]] = {}
    for j, n in enumerate(fresh):
        same_scope.setdefault(frozenset(n.scope), []).append(j)
    candidates: Candidates = []
    for i, o in enumerate(gone):
        for j in same_scope.get(frozenset(o.scope), ()):
            n = fresh[j]
            a, b = o.prompt.strip(), n.prompt.strip()
            if a == b:
                candidates.append((-1.0, i, j))
                continue
            matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
            if matcher.real_quick_ratio() >= RENAME_RATIO and matcher.quick_ratio() >= RENAME_RATIO:
                ratio = matcher.ratio()
                if ratio >= RENAME_RATIO:
                    candidates.append((-ratio, i, j))
    return candidates


def _pair_by(
    old: Plan | None,
    new: Plan,
    find: Callable[[Sequence[Task], Sequence[Task]], Candidates],
) -> _Pairing:
    """Tasks paired by id, then renames: the most alike candidates `find` gives first, each
    task in at most one pair."""
    old_tasks = old.tasks if old is not None else ()
    old_by_id = {t.id: t for t in old_tasks}
    new_ids = {t.id for t in new.tasks}
    gone = [t for t in old_tasks if t.id not in new_ids]
    fresh = [t for t in new.tasks if t.id not in old_by_id]
    candidates = find(gone, fresh)
    matched_old: dict[int, tuple[int, float]] = {}
    matched_new: set[int] = set()
    for neg_ratio, i, j in sorted(candidates):
        if i not in matched_old and j not in matched_new:
            matched_old[i] = (j, -neg_ratio)
            matched_new.add(j)

    old_of_new = {fresh[j].id: gone[i] for i, (j, _) in matched_old.items()}
    ratio_of_new = {fresh[j].id: ratio for _, (j, ratio) in matched_old.items()}
    pairs: list[tuple[Task, Task]] = []
    similarity: dict[str, float] = {}
    for t in new.tasks:
        if t.id in old_by_id:
            pairs.append((old_by_id[t.id], t))
        elif t.id in old_of_new:
            pairs.append((old_of_new[t.id], t))
            similarity[t.id] = ratio_of_new[t.id]
    renamed = {old_of_new[tid].id: tid for tid in similarity}
    return _Pairing(
        pairs=pairs,
        added=[t for t in fresh if t.id not in old_of_new],
        removed=[t for i, t in enumerate(gone) if i not in matched_old],
        renamed=renamed,
        similarity=similarity,
    )


# ---------------------------------------------------------------- what changed in a task


def _task_section(
    o: Task, n: Task, renamed: Mapping[str, str], inherited: tuple[Plan, Plan]
) -> _Section:
    s = _Section()
    defaulted = o.title == o.id and n.title == n.id  # a renamed task without a title
    if o.title != n.title and not defaulted:
        s.bullets.append(f"title: {_quote(o.title)} -> {_quote(n.title)}")
    s.bullets += _scope_bullets("scope", o.scope, n.scope)
    old_after = renamed.get(o.after, o.after) if o.after is not None else None
    if old_after != n.after:
        if n.after is None:
            s.bullets.append(f"no longer stacked (was after {_code(str(old_after))})")
        elif old_after is None:
            s.bullets.append(f"now stacked: runs after {_code(n.after)} (was independent)")
        else:
            s.bullets.append(f"stacked on {_code(n.after)} instead of {_code(old_after)}")
    if o.ports != n.ports:
        s.bullets.append(f"ports: {_ports(o.ports)} -> {_ports(n.ports)}")
    s.bullets += _agent_bullets(o.agent, n.agent, inherited)
    env = _env_bullet(*_own_env(o, n, inherited))
    if env:
        s.bullets.append(env)
    prompt = _text_change("prompt", o.prompt, n.prompt)
    if isinstance(prompt, str):
        s.bullets.append(prompt)
    elif prompt is not None:
        s.blocks.append(prompt)
    for label, before, after in (("setup", o.setup, n.setup), ("verify", o.verify, n.verify)):
        if (before, after) != (getattr(inherited[0], label), getattr(inherited[1], label)):
            s.blocks += _steps_block(label, before, after)
    return s


def _steps_block(
    label: str, before: Sequence[Step], after: Sequence[Step]
) -> list[tuple[str, str]]:
    old_lines = [line for step in before for line in _step_lines(step)]
    new_lines = [line for step in after for line in _step_lines(step)]
    if old_lines == new_lines:
        return []
    return [(label, _fence(_unified(old_lines, new_lines), "diff"))]


_AGENT_FIELDS = (
    ("preset", "agent preset"),
    ("model", "agent model"),
    ("args", "agent args"),
    ("command", "agent command"),
    ("timeout_s", "agent timeout"),
    ("budget_usd", "agent budget"),
)


def _agent_bullets(a: AgentSpec, b: AgentSpec, inherited: tuple[Plan, Plan] | None) -> list[str]:
    """What changed between two agents; with `inherited`, not what the task only inherits
    from its plan on both sides (told once, under the plan's settings)."""
    out = []
    for name, label in _AGENT_FIELDS:
        before, after = getattr(a, name), getattr(b, name)
        if before == after:
            continue
        if inherited is not None and (before, after) == (
            getattr(inherited[0].agent, name),
            getattr(inherited[1].agent, name),
        ):
            continue
        out.append(f"{label}: {_agent_change(name, before, after)}")
    return out


def _agent_change(name: str, before: Any, after: Any) -> str:
    if name == "budget_usd":
        return _money_change(before, after, "no cap")
    if name == "timeout_s":
        return f"{format_duration(before)} -> {format_duration(after)}"
    if name in ("args", "command"):
        return f"{_argv(before)} -> {_argv(after)}"
    if name == "model":
        return f"{_model(before)} -> {_model(after)}"
    return f"{_code(before)} -> {_code(after)}"


def _own_env(
    o: Task, n: Task, inherited: tuple[Plan, Plan]
) -> tuple[dict[str, str], dict[str, str]]:
    """The task's environment without the keys whose change it only inherits."""
    before, after = dict(o.env), dict(n.env)
    plan_before, plan_after = dict(inherited[0].env), dict(inherited[1].env)
    same = {
        k
        for k in {*before, *after}
        if (before.get(k), after.get(k)) == (plan_before.get(k), plan_after.get(k))
    }
    return (
        {k: v for k, v in before.items() if k not in same},
        {k: v for k, v in after.items() if k not in same},
    )


def _hoist_common(sections: Sequence[_Section]) -> _Section:
    """Take out of `sections` what every one of them has, and return it."""
    common = _Section()
    if len(sections) < 2:
        return common
    first = sections[0]
    common.bullets = [b for b in first.bullets if all(b in s.bullets for s in sections[1:])]
    common.blocks = [b for b in first.blocks if all(b in s.blocks for s in sections[1:])]
    for s in sections:
        s.bullets = [b for b in s.bullets if b not in common.bullets]
        s.blocks = [b for b in s.blocks if b not in common.blocks]
    return common


# ---------------------------------------------------------------- what changed in the plan


def _plan_section(old: Plan, new: Plan, common: _Section) -> _Section:
    s = _Section()

    def bullets(key: str, items: Sequence[str]) -> None:
        if items:
            s.bullets.extend(items)
            s.keys.append(key)

    def text(key: str, change: str | tuple[str, str] | None) -> None:
        if isinstance(change, str):
            bullets(key, [change])
        elif change is not None:
            s.blocks.append(change)
            s.keys.append(key)

    for label, x, y in (
        ("name", old.name, new.name),
        ("base", old.base, new.base),
        ("remote", old.remote, new.remote),
        ("worktrees", old.worktrees, new.worktrees),
        ("branch", old.branch, new.branch),
    ):
        if x != y:
            bullets(label, [f"{label}: {_code(x)} -> {_code(y)}"])
    if old.max_parallel != new.max_parallel:
        bullets("max_parallel", [f"max_parallel: {old.max_parallel} -> {new.max_parallel}"])
    if old.budget_usd != new.budget_usd:
        bullets(
            "budget_usd", [f"budget_usd: {_money_change(old.budget_usd, new.budget_usd, 'no cap')}"]
        )
    old_total, new_total = _task_budgets(old), _task_budgets(new)
    if old_total != new_total:
        bullets(
            "task budgets total",
            [
                f"task budgets total: {old_total} -> {new_total}"
                + _delta(_task_budget_sum(old), _task_budget_sum(new))
            ],
        )
    if old.port_range != new.port_range:
        bullets("port_range", [f"port_range: {_range(old.port_range)} -> {_range(new.port_range)}"])
    bullets("shared", _scope_bullets("shared", old.shared, new.shared))
    for bullet in _agent_bullets(old.agent, new.agent, None):
        bullets(bullet.split(":", 1)[0], [bullet])
    env = _env_bullet(dict(old.env), dict(new.env))
    if env:
        bullets("env", [env])
    for label in ("setup", "verify"):
        for steps_block in _steps_block(label, getattr(old, label), getattr(new, label)):
            s.blocks.append(steps_block)
            s.keys.append(label)
    for bullet in common.bullets:
        bullets(f"{bullet.split(':', 1)[0]} of every task", [f"every task: {bullet}"])
    for label, block in common.blocks:
        s.blocks.append((f"{label} of every task", block))
        s.keys.append(f"{label} of every task")
    text("conventions", _text_change("conventions", old.conventions, new.conventions))
    text("commit_message", _text_change("commit_message", old.commit_message, new.commit_message))
    optional: tuple[tuple[str, str | None, str | None], ...] = (
        ("pr.provider", old.pr.provider, new.pr.provider),
        ("pr.repository", old.pr.repository, new.pr.repository),
        ("pr.title", old.pr.title, new.pr.title),
    )
    for key, before, after in optional:
        if before != after:
            bullets(key, [f"{key}: {_opt_code(before)} -> {_opt_code(after)}"])
    if old.pr.draft != new.pr.draft:
        bullets("pr.draft", [f"pr.draft: {_yes(old.pr.draft)} -> {_yes(new.pr.draft)}"])
    bullets("pr.labels", _scope_bullets("pr.labels", old.pr.labels, new.pr.labels))
    bullets("pr.reviewers", _scope_bullets("pr.reviewers", old.pr.reviewers, new.pr.reviewers))
    builtin = "the built-in body"
    if old.pr.body is None and new.pr.body is not None:
        body = new.pr.body.rstrip("\n")
        if "\n" not in body and len(body) <= 80:
            bullets("pr.body", [f"pr.body: {builtin} -> {_code(body)}"])
        else:
            bullets("pr.body", [f"pr.body: {builtin} -> a template of its own (below)"])
            s.blocks.append(("pr.body", _fence(body, "jinja")))
    elif new.pr.body is None and old.pr.body is not None:
        bullets("pr.body", [f"pr.body: a template of its own -> {builtin}"])
    elif old.pr.body is not None and new.pr.body is not None:
        text("pr.body", _text_change("pr.body", old.pr.body, new.pr.body))
    return s


def _settings(plan: Plan) -> list[str]:
    """The settings of a plan that has no old version to compare with."""
    lines = [
        f"- base: {_code(plan.base)}",
        f"- max_parallel: {plan.max_parallel}",
        f"- budget_usd: {_money(plan.budget_usd, 'no cap')}",
        f"- task budgets total: {_task_budgets(plan)}",
    ]
    if plan.shared:
        lines.append(f"- shared: {_codes(plan.shared)}")
    lines.append(f"- pr.provider: {_code(plan.pr.provider)}")
    return lines


# ---------------------------------------------------------------- stacks and overlaps


def _stack_lines(old: Plan | None, new: Plan, pairing: _Pairing) -> list[str]:
    """Tasks that now wait for others, no longer do, or now share paths with a parent."""

    def rename(tid: str) -> str:
        return pairing.renamed.get(tid, tid)

    old_chains: dict[str, tuple[str, ...]] = {}
    old_tasks: dict[str, Task] = {}
    if old is not None:
        for tid, chain in ancestors(old).items():
            old_chains[rename(tid)] = tuple(rename(a) for a in chain)
        old_tasks = {rename(t.id): t for t in old.tasks}
    new_chains = ancestors(new)
    new_tasks = {t.id: t for t in new.tasks}
    out: list[str] = []
    for task in new.tasks:
        chain = new_chains[task.id]
        before = set(old_chains.get(task.id, ()))
        gained = [a for a in chain if a not in before]
        if gained:
            path = " -> ".join(_code(t) for t in (*reversed(chain), task.id))
            if task.id in old_tasks:
                out.append(f"- {_code(task.id)} now waits for {_codes(reversed(gained))}: {path}")
            else:
                out.append(f"- {_code(task.id)} (new) is stacked: {path}")
        lost = [
            a
            for a in old_chains.get(task.id, ())
            if a in new_tasks and a not in chain and task.id not in new_chains[a]
        ]
        if lost:
            out.append(
                f"- {_code(task.id)} no longer waits for {_codes(reversed(lost))}: "
                "they may now run at the same time"
            )
        for parent in chain:
            known = task.id in old_tasks and parent in old_tasks and parent in before
            if (
                known
                and old_tasks[parent].scope == new_tasks[parent].scope
                and old_tasks[task.id].scope == task.scope
            ):
                continue  # nothing new to tell, and a deep stack would cost many pairs
            example = _overlap(new_tasks[parent].scope, task.scope)
            if example is None:
                continue
            if known and _overlap(old_tasks[parent].scope, old_tasks[task.id].scope):
                continue
            pattern_a, pattern_b, path = example
            out.append(
                f"- {_code(task.id)} and {_code(parent)} can both write {_code(path)} "
                f"({_code(pattern_b)} and {_code(pattern_a)}): allowed because "
                f"{_code(task.id)} runs after {_code(parent)}"
            )
    return out


def _overlap(a: Sequence[str], b: Sequence[str]) -> tuple[str, str, str] | None:
    for pa in a:
        for pb in b:
            path = scopes.intersection(pa, pb)
            if path is not None:
                return pa, pb, path
    return None


# ---------------------------------------------------------------- the headline


def _headline(
    old: Plan | None, new: Plan, pairing: _Pairing, changed: int, plan_section: _Section
) -> str:
    name = f"**{_md(new.name)}**"
    if old is None:
        n = len(new.tasks)
        return (
            f"{name}: {n} task{_s(n)}, all new; budget "
            f"{_money(new.budget_usd, 'no cap')}; task budgets {_task_budgets(new)}"
        )
    if old.name != new.name:
        name += f" (was **{_md(old.name)}**)"
    counts = [
        (len(pairing.added), "added"),
        (len(pairing.removed), "removed"),
        (len(pairing.renamed), "renamed"),
        (changed, "changed"),
    ]
    words = [f"{n} {what}" for n, what in counts if n]
    parts = []
    if words:
        first = next(n for n, _ in counts if n)
        parts.append(
            words[0].replace(" ", f" task{_s(first)} ", 1) + "".join(f", {w}" for w in words[1:])
        )
    if old.budget_usd != new.budget_usd:
        parts.append(
            f"budget {_money(old.budget_usd, 'no cap')} -> {_money(new.budget_usd, 'no cap')}"
        )
    old_total, new_total = _task_budgets(old), _task_budgets(new)
    if old_total != new_total:
        parts.append(f"task budgets {old_total} -> {new_total}")
    settings = [k for k in plan_section.keys if k not in ("budget_usd", "task budgets total")]
    if settings:
        parts.append("settings changed: " + ", ".join(dict.fromkeys(settings)))
    if not parts:
        return f"{name}: no changes"
    return f"{name}: " + "; ".join(parts)


# ---------------------------------------------------------------- formatting


def _added(tasks: Sequence[Task]) -> list[str]:
    rows = []
    for t in tasks:
        agent = _code(t.agent.preset) + (f" / {_code(t.agent.model)}" if t.agent.model else "")
        after = f" (after {_code(t.after)})" if t.after else ""
        rows.append(
            (
                _code(t.id) + after,
                _md(t.title),
                _codes(t.scope),
                agent,
                _money(t.agent.budget_usd, "no cap"),
            )
        )
    out = _table(("id", "title", "scope", "agent", "budget"), rows)
    for t in tasks:
        out += [
            "",
            f"<details><summary>prompt of <code>{t.id}</code></summary>",
            "",
            _fence(t.prompt.rstrip("\n"), "text"),
            "",
            "</details>",
        ]
    return out


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [row(head), "|" + "---|" * len(head), *(row(r) for r in rows)]


def _scope_bullets(label: str, old: Sequence[str], new: Sequence[str]) -> list[str]:
    added = [p for p in new if p not in old]
    removed = [p for p in old if p not in new]
    out = []
    if label in ("scope", "shared"):
        wider = [p for p in added if not any(_within(p, q) for q in old)]
        inside = [p for p in added if p not in wider]
        if wider:
            out.append(f"{label} widened: {_codes(wider, '+ ')}")
        if removed:
            narrowed = _codes(removed, "- ") + (f", {_codes(inside, '+ ')}" if inside else "")
            out.append(f"{label} narrowed: {narrowed}")
        elif inside:  # a pattern inside one the scope keeps changes nothing it may write
            out.append(f"{label} unchanged in effect: {_codes(inside, '+ ')}")
    else:
        if added:
            out.append(f"{label} added: {_codes(added)}")
        if removed:
            out.append(f"{label} removed: {_codes(removed)}")
    return out


def _within(pattern: str, outer: str) -> bool:
    """Whether every path `pattern` matches is matched by `outer` too (checked for a
    literal path, and for a pattern under a directory that `outer` takes whole)."""
    if scopes.is_literal(pattern):
        return scopes.matches(outer, pattern)
    folder = outer.removesuffix("**") if outer.endswith("/**") else outer
    return folder.endswith("/") and scopes.is_literal(folder[:-1]) and pattern.startswith(folder)


def _env_bullet(old: dict[str, str], new: dict[str, str]) -> str | None:
    parts = []
    added = [f"{k}={v}" for k, v in new.items() if k not in old]
    removed = [k for k in old if k not in new]
    changed = [
        f"{_code(f'{k}={old[k]}')} -> {_code(f'{k}={v}')}"
        for k, v in new.items()
        if k in old and old[k] != v
    ]
    if added:
        parts.append(f"added {_codes(added)}")
    if removed:
        parts.append(f"removed {_codes(removed)}")
    if changed:
        parts.append("changed " + ", ".join(changed))
    return "env: " + "; ".join(parts) if parts else None


def _text_change(label: str, old: str, new: str) -> str | tuple[str, str] | None:
    """None when equal; a bullet when only line ends differ or both are one short line;
    else a (label, fenced diff) block."""
    if old == new:
        return None
    a, b = old.splitlines(), new.splitlines()
    if a == b:
        return f"{label}: only whitespace at line ends changed"
    if len(a) <= 1 and len(b) <= 1 and len(old) + len(new) <= 120:
        return f"{label}: {_opt_code(old or None)} -> {_opt_code(new or None)}"
    return label, _fence(_unified(a, b), "diff")


def _unified(a: Sequence[str], b: Sequence[str]) -> str:
    short = len(a) + len(b) <= _SHORT_TEXT
    context = max(len(a), len(b)) if short else 3
    lines = list(difflib.unified_diff(a, b, lineterm="", n=context))[2:]
    if short and lines and lines[0].startswith("@@"):
        lines = lines[1:]
    return "\n".join(lines)


def _step_lines(step: Step) -> list[str]:
    if step.kind != "run":
        return [f"{step.kind}: {' '.join(step.paths)}"]
    extras = []
    if step.name:
        extras.append(f"name: {step.name}")
    if step.timeout_s != Step.timeout_s:
        extras.append(f"timeout: {format_duration(step.timeout_s)}")
    suffix = f"  ({', '.join(extras)})" if extras else ""
    command = (step.run or "").rstrip("\n").splitlines() or [""]
    if len(command) == 1:
        return [f"run: {command[0]}{suffix}"]
    return [f"run: |{suffix}", *(f"    {line}" for line in command)]


def _fence(text: str, lang: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def _md(text: str) -> str:
    """Plain text in Markdown: specials escaped, on one line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _code(text: str) -> str:
    text = " ".join(text.splitlines())
    if "`" not in text:
        return f"`{text}`"
    longest = max(len(m) for m in re.findall(r"`+", text))
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def _codes(items: Iterable[str], prefix: str = "") -> str:
    return ", ".join(prefix + _code(i) for i in items) or "none"


def _opt_code(text: str | None) -> str:
    return "none" if text is None else _code(text)


def _quote(text: str) -> str:
    return f'"{_md(text)}"'


def _model(model: str | None) -> str:
    return "the preset's default" if model is None else _code(model)


def _argv(argv: Sequence[str] | None) -> str:
    return _code(shlex.join(argv)) if argv else "none"


def _ports(ports: int | tuple[int, ...]) -> str:
    if isinstance(ports, tuple):
        return ", ".join(str(p) for p in ports) or "none"
    return f"{ports} allocated" if ports else "none"


def _range(r: tuple[int, int]) -> str:
    return f"[{r[0]}, {r[1]}]"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _money(value: float | None, missing: str) -> str:
    if value is None:
        return missing
    return f"${int(value)}" if value == int(value) else f"${value:.2f}"


def _money_change(old: float | None, new: float | None, missing: str) -> str:
    return f"{_money(old, missing)} -> {_money(new, missing)}{_delta(old, new)}"


def _delta(old: float | None, new: float | None) -> str:
    if old is None or new is None or old == new:
        return ""
    d = new - old
    return f" ({'+' if d > 0 else '-'}{_money(abs(d), '')})"


def _task_budget_sum(plan: Plan) -> float:
    return sum(t.agent.budget_usd for t in plan.tasks if t.agent.budget_usd is not None)


def _task_budgets(plan: Plan) -> str:
    """The sum of the tasks' budgets, and how many tasks have none."""
    uncapped = sum(1 for t in plan.tasks if t.agent.budget_usd is None)
    if uncapped == len(plan.tasks):
        return "none"
    text = _money(_task_budget_sum(plan), "")
    return text + (f" + {uncapped} uncapped" if uncapped else "")


def _s(n: int) -> str:
    return "" if n == 1 else "s"
