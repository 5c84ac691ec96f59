"""User-facing failures. Anything else that escapes is a bug (exit 3).

Every failure renders itself three ways: text for people, JSON for programs, and a
GitHub workflow command that annotates the plan's line in a pull request. A failure
whose cause is in the plan carries that place (`Position`).
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """A place in a plan file: 1-based line and column."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class WtrunError(Exception):
    """A failure the user can act on: printed as one message, never a traceback."""

    exit_code = 1

    def __init__(self, message: str = "", position: Position | None = None) -> None:
        super().__init__(message)
        self.position = position

    def as_text(self) -> str:
        where = f"{self.position}: " if self.position is not None else ""
        return f"wtrun: error: {where}{self}"

    def as_json(self) -> str:
        return json.dumps(self._fields(), indent=2)

    def as_github(self) -> str:
        p = self.position
        return github_annotation(
            str(self), p.file if p else None, p.line if p else 0, p.col if p else 0
        )

    def _fields(self) -> dict[str, object]:
        p = self.position
        fields: dict[str, object] = {"message": str(self)}
        if p is not None:
            fields.update(file=p.file, line=p.line, col=p.col)
        return fields


class UsageError(WtrunError):
    """The command line itself is wrong (no such file, bad flag): exit 2."""

    exit_code = 2


class DiskFull(WtrunError):
    """A write failed for want of space (or quota): nothing wtrun can do but say so."""

    def __init__(self, path: object) -> None:
        super().__init__(f"no space left on device while writing {path}; free space and run again")
        self.path = path

    @staticmethod
    def caused(error: OSError) -> bool:
        return error.errno in (errno.ENOSPC, errno.EDQUOT)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(
    message: str, file: str | None, line: int, col: int, title: str = "wtrun"
) -> str:
    """An `::error` workflow command; Actions shows it on the file's line in a pull request."""
    where = f"file={_escape_property(file)},line={max(line, 1)},col={max(col, 1)}," if file else ""
    return f"::error {where}title={_escape_property(title)}::{_escape_data(message)}"
