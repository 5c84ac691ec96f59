from __future__ import annotations

from .cli import entry

raise SystemExit(entry())
