"""Validation time of generated plans: 100 to 10,000 tasks, 5 scope patterns each.

    python bench/validate.py [SIZES...]

Prints, per size: the plan's bytes; the whole load in-process (parse, schema, every check incl.
overlaps), best of 3, and its growth against the previous size next to the sizes' ratio;
`wtrun validate` in a fresh process (interpreter start included), best of 3, and its peak
memory; the overlap check alone; how many pattern pairs it compared against the naive
all-pairs count. Targets at 10,000 tasks: `wtrun validate` under 2 s and 300 MB.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from plans import best, fastest, generate, growths
from wtrun import plan as plan_module
from wtrun import scopes
from wtrun.plan import graph as checks


def main(sizes: list[int]) -> None:
    print(
        f"{'tasks':>7} {'patterns':>9} {'bytes':>10} {'load s':>7} {'growth':>7} {'sizes':>6} "
        f"{'wtrun validate s':>16} {'peak MB':>8} {'overlap s':>10} {'pairs compared':>15} "
        f"{'naive pairs':>13}"
    )
    previous: tuple[int, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"plan-{n}.yaml"
            path.write_text(generate(n, stack_every=50))
            loaded = plan_module.load(path)
            chains = checks.ancestors(loaded)
            together = checks.may_run_together(chains)
            groups = [(t.id, t.scope) for t in loaded.tasks]
            stats = scopes.OverlapStats(0, 0)
            scopes.find_overlaps(groups, together, stats)
            whole = fastest(3, lambda p=path: plan_module.load(p))
            overlap = fastest(3, lambda g=groups, t=together: scopes.find_overlaps(g, t))
            cli, peak, _ = best(3, ["validate", str(path)])
            patterns = sum(len(g[1]) for g in groups)
            naive = patterns * (patterns - 1) // 2
            sizes, growth = growths((n, whole), previous)
            previous = (n, whole)
            print(
                f"{n:>7} {patterns:>9} {path.stat().st_size:>10,} {whole:>7.3f} {growth:>7} "
                f"{sizes:>6} {cli:>16.2f} {peak:>8.0f} {overlap:>10.3f} "
                f"{stats.pairs_compared:>15,} {naive:>13,}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 5000, 10000])
