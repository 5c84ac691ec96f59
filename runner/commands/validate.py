"""`wtrun validate PLAN...`: every problem of every plan, runs nothing."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .. import plan
from ..errors import UsageError
from ..plan import diagnostics
from ..plan.diagnostics import Diagnostic


def validate(paths: Sequence[str], fmt: str) -> int:
    found: list[Diagnostic] = []
    sources: dict[str, list[str]] = {}
    usage_errors: list[str] = []
    for path in paths:
        try:
            plan.load(path)
        except plan.PlanError as e:
            found.extend(e.diagnostics)
            sources.update(e.sources)
        except UsageError as e:
            usage_errors.append(str(e))
    found = diagnostics.sort(found)
    if fmt == "json":
        print(diagnostics.format_json(found))
    elif fmt == "github":
        if found:
            print(diagnostics.format_github(found))
    elif found:
        print(diagnostics.format_text(found, sources))
    for message in usage_errors:
        print(f"wtrun: error: {message}", file=sys.stderr)
    if fmt == "text":
        n, files = len(found), len({d.file for d in found})
        checked = len(paths) - len(usage_errors)
        if found:
            print(
                f"\n{n} problem{'s' if n != 1 else ''} in {files} of {checked} "
                f"plan{'s' if checked != 1 else ''}",
                file=sys.stderr,
            )
        elif checked:
            print(f"{checked} plan{'s' if checked != 1 else ''} valid", file=sys.stderr)
    if usage_errors:
        return 2
    return 1 if found else 0
