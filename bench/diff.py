"""`wtrun diff` on generated plans of independent tasks: time, peak memory, growth.

    python bench/diff.py [SIZES...] [--repeat 3]

Per size (default 1,000, 3,000 and 10,000 tasks, 5 scope patterns each, no overlaps), three
changes to the plan: one task's scope changed; every task renamed (a new id prefix, so each
is paired with its old self by scope and prompt); a plan compared with nothing before it
(every task new). For each: the whole `wtrun diff OLD NEW` in a fresh process (best of
--repeat; loading and validating both plans included), its peak memory, and the diff alone
(from loaded plans); growth against the previous size, next to the sizes' ratio.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from plans import best, empty_repo, fastest, generate, growths
from wtrun import plan as plan_module
from wtrun import plandiff

CHANGES = ("one scope", "all renamed", "all new")


def variants(n: int, folder: Path) -> dict[str, tuple[Path | None, Path]]:
    text = generate(n)
    old = folder / f"old-{n}.yaml"
    old.write_text(text)
    scope = folder / f"scope-{n}.yaml"
    scope.write_text(text.replace("docs/mod7.md", "docs/mod7-api.md"))
    renamed = folder / f"renamed-{n}.yaml"
    renamed.write_text(
        text.replace("  - id: task-", "  - id: job-").replace("after: task-", "after: job-")
    )
    return {"one scope": (old, scope), "all renamed": (old, renamed), "all new": (None, old)}


def alone(old: Path | None, new: Path, runs: int) -> float:
    before = plan_module.load(old) if old else None
    after = plan_module.load(new)
    return fastest(runs, lambda: plandiff.diff(before, after))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("sizes", type=int, nargs="*", default=[1000, 3000, 10000])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    print(
        f"{'tasks':>7} {'change':>12} {'wtrun diff s':>13} {'growth':>7} {'peak MB':>8} "
        f"{'diff alone s':>13} {'growth':>7} {'size growth':>12}"
    )
    previous: dict[str, tuple[int, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        repo = empty_repo(Path(tmp))
        for n in args.sizes:
            for change, (old, new) in variants(n, repo).items():
                # A plan the repository's HEAD does not have: every task is new.
                argv = (
                    ["diff", str(old), str(new)] if old else ["diff", str(new), "--against", "HEAD"]
                )
                whole, peak, _ = best(args.repeat, argv, cwd=repo)
                inner = alone(old, new, args.repeat)
                size, grow, grow_inner = growths((n, whole, inner), previous.get(change))
                print(
                    f"{n:>7} {change:>12} {whole:>13.2f} {grow:>7} {peak:>8.0f} {inner:>13.3f} "
                    f"{grow_inner:>7} {size:>12}"
                )
                previous[change] = (n, whole, inner)


if __name__ == "__main__":
    main()
