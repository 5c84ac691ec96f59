"""`wtrun matrix` on generated plans of independent tasks: time, peak memory, growth.

    python bench/matrix.py [SIZES...] [--repeat 3]

Per size (default 1,000, 3,000 and 10,000 tasks, 5 scope patterns each, no overlaps): the
whole command in a fresh process (best of --repeat; loading and validating the plan
included), its peak memory, the matrix alone (from a loaded plan, best of --repeat), and
each time's growth against the previous size's (near-linear: the ratio of the sizes).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from plans import best, fastest, generate, growths
from wtrun import plan as plan_module
from wtrun.commands.matrix import entries


def alone(path: Path, runs: int) -> float:
    loaded = plan_module.load(path)
    return fastest(runs, lambda: entries(loaded))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("sizes", type=int, nargs="*", default=[1000, 3000, 10000])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    print(
        f"{'tasks':>7} {'wtrun matrix s':>15} {'growth':>7} {'peak MB':>8} "
        f"{'matrix alone s':>15} {'growth':>7} {'size growth':>12}"
    )
    previous: tuple[int, float, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"plan-{n}.yaml"
            path.write_text(generate(n))
            whole, peak, _ = best(args.repeat, ["matrix", str(path)])
            inner = alone(path, args.repeat)
            size, grow, grow_inner = growths((n, whole, inner), previous)
            print(
                f"{n:>7} {whole:>15.2f} {grow:>7} {peak:>8.0f} {inner:>15.3f} {grow_inner:>7} "
                f"{size:>12}"
            )
            previous = (n, whole, inner)


if __name__ == "__main__":
    main()
