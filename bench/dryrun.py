"""`wtrun run --dry-run` on generated plans of independent tasks: time, peak memory, growth.

    python bench/dryrun.py [SIZES...] [--repeat 3]

Per size (default 1,000, 3,000 and 10,000 tasks, 5 scope patterns each, no overlaps, every
50th task stacked on the one before), in a fresh repository: the whole command in a fresh
process (best of --repeat; loading and validating the plan included; the agent CLI may be
missing, which the preview reports with exit code 1), its peak memory, the preview alone
(from a loaded plan), and each time's growth next to the sizes' ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from pathlib import Path

from plans import best, empty_repo, fastest, generate, growths
from wtrun import dryrun
from wtrun import plan as plan_module
from wtrun.git import Git
from wtrun.run import Options


def alone(repo: Path, path: Path, runs: int) -> float:
    loaded = plan_module.load(path)
    selected = [t.id for t in loaded.tasks]

    def preview() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            dryrun.preview(loaded, Git(repo), selected, Options(dry_run=True))

    return fastest(runs, preview)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("sizes", type=int, nargs="*", default=[1000, 3000, 10000])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    print(
        f"{'tasks':>7} {'run --dry-run s':>16} {'growth':>7} {'peak MB':>8} "
        f"{'preview alone s':>16} {'growth':>7} {'size growth':>12}"
    )
    previous: tuple[int, float, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        repo = empty_repo(Path(tmp))
        for n in args.sizes:
            path = repo / f"plan-{n}.yaml"
            path.write_text(generate(n, stack_every=50))
            whole, peak, _ = best(args.repeat, ["run", path.name, "--dry-run"], cwd=repo)
            inner = alone(repo, path, args.repeat)
            size, grow, grow_inner = growths((n, whole, inner), previous)
            print(
                f"{n:>7} {whole:>16.2f} {grow:>7} {peak:>8.0f} {inner:>16.3f} {grow_inner:>7} "
                f"{size:>12}"
            )
            previous = (n, whole, inner)


if __name__ == "__main__":
    main()
