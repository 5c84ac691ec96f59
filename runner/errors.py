"""User-facing failures. Anything else that escapes is a bug (exit 3)."""

from __future__ import annotations


class WtrunError(Exception):
    """A failure the user can act on: printed as one message, never a traceback."""

    exit_code = 1


class UsageError(WtrunError):
    """The command line itself is wrong (no such file, bad flag): exit 2."""

    exit_code = 2
