"""The records file: what a save writes is what `json.dumps` of the whole record gives,
whichever tasks changed since the last save (only those are encoded again)."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from wtrun.state import PrOpened, Step, Store, TaskState


def reference(store: Store) -> str:
    data = {
        "plan": store.record.plan,
        "base_commit": store.record.base_commit,
        "started": store.record.started,
        "tasks": {tid: vars(t) for tid, t in store.record.tasks.items()},
    }
    return json.dumps(data, sort_keys=True) + "\n"


def test_each_save_writes_the_whole_records_whatever_changed(tmp_path: Path) -> None:
    store = Store(tmp_path, "demo")
    store.save()
    assert store.path.read_text() == reference(store)
    store.set_base("a" * 40)
    for tid in ("b", "a", "c"):
        store.set_state(tid, TaskState.RUNNING)
        assert store.path.read_text() == reference(store)
    store.begin_step("a", Step.AGENT)  # kept in memory...
    store.end_step("b", Step.AGENT, ok=True, started=1.0)  # ...written with this save
    assert store.path.read_text() == reference(store)
    store.pr_opened("c", PrOpened(3, "u", "main", "t", 'body \u2713 "quoted"', "open"))
    store.forget("b")
    assert store.path.read_text() == reference(store)
    again = Store(tmp_path, "demo")  # no run holds the lock: "running" reads as interrupted
    assert sorted(again.record.tasks) == ["a", "c"]
    assert again.task("a").state is TaskState.FAILED
    again.agent_ran("a", "prompt", 0.5, {"turns": 2})
    again.save()
    assert again.path.read_text() == reference(again)


def test_a_follow_up_made_elsewhere_is_folded_in_on_the_head_it_builds_on(
    tmp_path: Path,
) -> None:
    """What `wtrun pr --merge-records` takes of a job's `revise --no-pr`: the follow-up's own
    fields, never the PR or what was pushed; and nothing once the branch moved here."""
    ours = Store(tmp_path / "ours", "demo")
    ours.pr_opened("a", PrOpened(4, "u", "main", "t", "b", "open"))
    ours.committed("a", "1" * 40)
    ours.pushed("a", "1" * 40)
    theirs = Store(tmp_path / "theirs", "demo")
    theirs.record = copy.deepcopy(ours.record)
    theirs.pr_opened("a", PrOpened(99, "evil", "release", "t", "b", "open"))
    theirs.agent_ran("a", "Build it.", 1.0, {})
    theirs.spent("a", 0.25)  # the follow-up's cost adds up; what it was asked is not kept
    assert (theirs.task("a").cost_usd, theirs.task("a").prompt) == (1.25, "Build it.")
    theirs.revised("a", addressed=["k1"], head="2" * 40)

    assert ours.merge(copy.deepcopy(theirs.record)) == ["a"]
    a = ours.task("a")
    assert (a.head, a.unanswered, a.addressed, a.revisions) == ("2" * 40, ["k1"], ["k1"], 1)
    assert a.cost_usd == 1.25
    assert (a.pr_number, a.pr_base, a.pushed_head) == (4, "main", "1" * 40)
    ours.answered("a")
    assert (a.pushed_head, a.unanswered) == ("2" * 40, [])

    # The same follow-up again, or one on a head that moved since: not taken.
    assert ours.merge(copy.deepcopy(theirs.record)) == []
    ours.restacked("a", head="3" * 40, pushed_head="3" * 40, start_commit="0" * 40)
    theirs.record.tasks["a"].revisions = 5
    assert ours.merge(copy.deepcopy(theirs.record)) == []
    assert ours.task("a").head == "3" * 40


def test_a_follow_up_that_cannot_be_pushed_gives_its_feedback_back(tmp_path: Path) -> None:
    store = Store(tmp_path, "demo")
    store.committed("a", "1" * 40)
    store.pushed("a", "1" * 40)
    store.revised("a", addressed=["k0"], head=None)
    store.answered("a")
    store.revised("a", addressed=["k1", "k2"], head="2" * 40)

    store.follow_up_dropped("a", "push refused")
    a = store.task("a")
    assert (a.head, a.addressed, a.unanswered, a.revisions) == ("1" * 40, ["k0"], [], 2)
    assert a.reason == "push refused"


def test_a_record_taken_whole_leaves_its_follow_up_behind(tmp_path: Path) -> None:
    """Records that know nothing of the task (a fresh clone, a lost prs job) cannot tell what
    the follow-up builds on: it is not pushed from them, its feedback is read again."""
    theirs = Store(tmp_path / "theirs", "demo")
    theirs.pr_opened("a", PrOpened(4, "u", "main", "t", "b", "open"))
    theirs.committed("a", "1" * 40)
    theirs.pushed("a", "1" * 40)
    theirs.revised("a", addressed=["k1"], head="2" * 40)
    fresh = Store(tmp_path / "fresh", "demo")

    assert fresh.merge(copy.deepcopy(theirs.record)) == ["a"]
    a = fresh.task("a")
    assert (a.head, a.unanswered, a.addressed, a.revisions) == ("1" * 40, [], [], 1)


def test_in_a_batch_saves_wait_for_the_timer_and_leaving_writes_what_waits(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, "demo")
    store.set_base("a" * 40)
    written = store.path.read_text()
    with store.batched(every=60):
        store.set_state("a", TaskState.RUNNING)
        store.end_step("a", Step.SETUP, ok=True, started=1.0)
        assert store.path.read_text() == written  # both wait
    assert store.path.read_text() == reference(store)


def test_in_a_batch_a_durable_or_guarding_save_writes_at_once_with_what_waits(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, "demo")
    with store.batched(every=60):
        store.set_state("a", TaskState.RUNNING)
        store.claim(
            "b",
            branch="wtrun/b",
            worktree="w/b",
            ports=[],
            inputs={},
            created_branch=True,
            created_worktree=True,
        )  # before git makes them: a run killed next must find them
        assert store.path.read_text() == reference(store)
        store.end_step("b", Step.WORKTREE, ok=True, started=1.0)
        store.agent_started("a", "none")  # counted before the agent starts
        assert store.path.read_text() == reference(store)
        store.end_step("a", Step.AGENT, ok=True, started=1.0)
        store.pushed("a", "c" * 40)
        assert store.path.read_text() == reference(store)


def test_in_a_batch_the_timer_writes(tmp_path: Path) -> None:
    store = Store(tmp_path, "demo")
    with store.batched(every=0.05):
        store.set_state("a", TaskState.RUNNING)
        deadline = time.monotonic() + 10
        while store.path.exists() is False or store.path.read_text() != reference(store):
            assert time.monotonic() < deadline, "the batched save was never written"
            time.sleep(0.01)
