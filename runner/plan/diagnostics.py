"""Problems found in plan files, and the three ways to print them.

Text follows actionlint: `file:line:col: message [rule]`, then the line with a caret
under the offending token. JSON is a list of objects for programs; `github` prints
workflow commands so that Actions annotates the changed lines of a pull request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


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


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(diagnostics: Sequence[Diagnostic]) -> str:
    return "\n".join(
        f"::error file={_escape_property(d.file)},line={max(d.line, 1)},col={max(d.col, 1)},"
        f"title={_escape_property('wtrun ' + d.rule)}::{_escape_data(d.message)}"
        for d in diagnostics
    )
