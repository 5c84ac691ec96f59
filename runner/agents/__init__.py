"""Agent presets behind one Protocol: a plain registry of name -> preset."""

from __future__ import annotations

from .aider import AiderPreset
from .base import AgentResult, AgentRun, Preset
from .claude import ClaudePreset
from .codex import CodexPreset
from .command import CommandPreset
from .gemini import GeminiPreset

PRESETS: dict[str, Preset] = {
    "claude": ClaudePreset(),
    "codex": CodexPreset(),
    "aider": AiderPreset(),
    "gemini": GeminiPreset(),
    "command": CommandPreset(),
}


def get(name: str) -> Preset:
    return PRESETS[name]


__all__ = ["PRESETS", "AgentResult", "AgentRun", "Preset", "get"]
