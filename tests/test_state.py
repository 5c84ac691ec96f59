"""The records file: what a save writes is what `json.dumps` of the whole record gives,
whichever tasks changed since the last save (only those are encoded again)."""

from __future__ import annotations

import json
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
