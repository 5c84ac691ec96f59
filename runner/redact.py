"""Secret values out of everything wtrun writes: logs, records, step summaries, PR texts.

The secrets are the values of the credentials in `tokens` (GitHub's and Actions' tokens, the
model APIs' keys), taken from wtrun's own environment
when it starts and as it is now. Each is replaced by `***` as it is, and as it reads escaped
inside a JSON string (the records are JSON).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable

from .tokens import MODEL_KEYS, SECRETS

MASK = "***"
# Shorter values are left alone: "1", "true" or a short word would be masked everywhere they
# occur, and no real token is that short.
MIN_LENGTH = 8

MASKED = (*SECRETS, *MODEL_KEYS)
_AT_START = {name: os.environ[name] for name in MASKED if name in os.environ}


class Redactor:
    """Replaces the given secret values; the longest first, so one that contains another
    is masked whole."""

    def __init__(self, values: Iterable[str]) -> None:
        forms = {form for v in values if len(v) >= MIN_LENGTH for form in (v, _in_json(v))}
        ordered = sorted(forms, key=len, reverse=True)
        self.longest = len(ordered[0].encode()) if ordered else 0
        self._text = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._bytes = (
            re.compile(b"|".join(re.escape(v.encode()) for v in ordered)) if ordered else None
        )

    def __bool__(self) -> bool:
        return self._text is not None

    def text(self, text: str) -> str:
        return self._text.sub(MASK, text) if self._text else text

    def data(self, data: bytes) -> bytes:
        return self._bytes.sub(MASK.encode(), data) if self._bytes else data

    def split(self, data: bytes) -> tuple[bytes, bytes]:
        """`data` redacted up to where a secret could still be cut off by the end of the
        chunk, and the rest, to be put before the next chunk."""
        if self._bytes is None:
            return data, b""
        cut = max(0, len(data) - self.longest + 1)
        for match in self._bytes.finditer(data):
            if match.start() < cut < match.end():
                cut = match.end()
        return self.data(data[:cut]), data[cut:]


def current() -> Redactor:
    values = dict(_AT_START)
    values.update((name, os.environ[name]) for name in MASKED if name in os.environ)
    return _redactor(tuple(sorted(set(values.values()))))


@functools.lru_cache(maxsize=8)
def _redactor(values: tuple[str, ...]) -> Redactor:
    return Redactor(values)


def text(value: str) -> str:
    """`value` with the secrets of wtrun's environment masked."""
    return current().text(value)


def _in_json(value: str) -> str:
    return json.dumps(value)[1:-1]
