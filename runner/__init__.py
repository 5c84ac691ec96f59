"""wtrun: run several AI coding agents in parallel on one repository, from a reviewed plan."""

from __future__ import annotations

__version__ = "0.1.0"
