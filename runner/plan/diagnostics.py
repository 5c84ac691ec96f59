"""Problems found in plan files, and the three ways to print them.

Text follows actionlint: `file:line:col: message [rule]`, then the line with a caret
under the offending token. JSON is a list of objects for programs; `github` prints
workflow commands so that Actions annotates the changed lines of a pull request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import Position, WtrunError, github_annotation


@dataclass(frozen=True, order=True)
class Diagnostic:
    file: str
    line: int  # 1-based; 0 when the problem has no place in the file
    col: int  # 1-based
    message: str
    rule: str
    length: int = 1  # how many characters the caret line underlines

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "rule": self.rule,
            "message": self.message,
        }


def sort(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    unique = {(d.file, d.line, d.col, d.rule, d.message): d for d in diagnostics}
    return sorted(unique.values(), key=lambda d: (d.file, d.line, d.col, d.rule, d.message))


def format_text(diagnostics: Sequence[Diagnostic], sources: dict[str, list[str]]) -> str:
    out: list[str] = []
    for d in diagnostics:
        out.append(f"{d.file}:{d.line}:{d.col}: {d.message} [{d.rule}]")
        lines = sources.get(d.file, [])
        if 1 <= d.line <= len(lines):
            text = lines[d.line - 1].rstrip("\r\n").expandtabs(1)
            gutter = " " * len(str(d.line))
            width = max(1, min(d.length, len(text) - d.col + 1))
            out.append(f"{gutter} |")
            out.append(f"{d.line} | {text}")
            out.append(f"{gutter} | {' ' * (d.col - 1)}^{'~' * (width - 1)}")
    return "\n".join(out)


def format_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps([d.as_json() for d in diagnostics], indent=2)


def format_github(diagnostics: Sequence[Diagnostic]) -> str:
    return "\n".join(
        github_annotation(d.message, d.file, d.line, d.col, f"wtrun {d.rule}") for d in diagnostics
    )


class PlanError(WtrunError):
    """A plan with problems; `diagnostics` holds every one, sorted."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, list[str]]) -> None:
        self.diagnostics = sort(diagnostics)
        self.sources = sources
        n = len(self.diagnostics)
        where = self.diagnostics[0].file if self.diagnostics else "the plan"
        first = self.diagnostics[0] if self.diagnostics else None
        position = Position(first.file, first.line, first.col) if first else None
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in {where}", position)

    def as_text(self) -> str:
        return (
            f"{format_text(self.diagnostics, self.sources)}\n\n"
            f"wtrun: {self}; fix them and try again (`wtrun validate` lists them too)"
        )

    def as_json(self) -> str:
        return format_json(self.diagnostics)

    def as_github(self) -> str:
        return format_github(self.diagnostics)
