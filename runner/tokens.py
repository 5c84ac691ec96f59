"""The environment variables that hold credentials.

Never given to setup, the agent or verify: they run code the agent may have written. A
plan's `env` may not set them either.
"""

from __future__ import annotations

SECRETS = (
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_CACHE_URL",
    "ACTIONS_RESULTS_URL",
)

# The model APIs' keys: the agent needs its own, so they are passed on, but their values are
# masked in everything wtrun writes (an agent that prints its environment into a log).
MODEL_KEYS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
)
