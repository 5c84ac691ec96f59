"""The agent of `wtrun demo`: a stand-in for a coding agent, offline and free.

It reads its instructions file as a real agent would, then makes the small, real edit
scripted for its task in the demo's sample project. Run by the `command` preset:
`python -m wtrun.demo_agent`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

EDITS: dict[str, dict[str, str]] = {
    "fix-auth-timeout": {
        "src/shop/auth.py": '''\
"""Sessions."""

SESSION_MINUTES = 30


def session_seconds() -> int:
    return SESSION_MINUTES * 60
''',
        "tests/test_auth.py": """\
from shop.auth import session_seconds


def test_sessions_last_thirty_minutes() -> None:
    assert session_seconds() == 30 * 60
""",
    },
    "feat-discounts": {
        "src/shop/discounts.py": '''\
"""Discount codes."""

CODES = {"WELCOME10": 10, "SPRING25": 25}


def apply(total_cents: int, code: str) -> int:
    percent = CODES.get(code.upper(), 0)
    return total_cents - total_cents * percent // 100
''',
        "tests/test_discounts.py": """\
from shop.discounts import apply


def test_a_known_code_takes_its_percentage_off() -> None:
    assert apply(2000, "welcome10") == 1800


def test_an_unknown_code_changes_nothing() -> None:
    assert apply(2000, "NOPE") == 2000
""",
    },
    "docs-discounts": {
        "docs/discounts.md": """\
# Discount codes

`shop.discounts.apply(total_cents, code)` returns the total after the code's discount.
Codes are case-insensitive; an unknown code gives no discount.

| code | discount |
|---|---|
| WELCOME10 | 10% |
| SPRING25 | 25% |
""",
    },
}


def main() -> int:
    task = os.environ.get("WTRUN_TASK_ID", "")
    instructions = Path(os.environ.get("WTRUN_INSTRUCTIONS", "AGENTS.md"))
    if instructions.is_file():
        first = instructions.read_text(encoding="utf-8").splitlines()[0]
        print(f"demo agent: read {instructions.name}: {first}")
    edits = EDITS.get(task)
    if edits is None:
        print(f"demo agent: no scripted edit for task {task!r}; changing nothing")
        return 0
    for rel, text in edits.items():
        path = Path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"demo agent: wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
