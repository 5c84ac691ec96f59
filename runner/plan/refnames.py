"""Names git takes from a plan: refs (`base`, branches) and remotes.

The schema's patterns say the same for `base` and `remote`; the functions here say
why a name is refused, for messages and for branches that templates make.
"""

from __future__ import annotations

import json
import re

_REF_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
REMOTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def ref_problem(name: str) -> str | None:
    """Why git would refuse `name` as a ref (git check-ref-format rules), or None."""
    if not name:
        return "it is empty"
    if name.startswith(("/", "-")):
        return f'it starts with "{name[0]}"'
    m = _REF_BAD.search(name)
    if m:
        return f"it contains {_shown(m.group())}"
    if name == "@":
        return 'it is "@"'
    for bad in ("..", "//", "@{"):
        if bad in name:
            return f'it contains "{bad}"'
    if name.endswith(("/", ".")):
        return f'it ends with "{name[-1]}"'
    for part in name.split("/"):
        if part.startswith("."):
            return f'its part "{part}" starts with "."'
        if part.endswith(".lock"):
            return f'its part "{part}" ends with ".lock"'
    return None


def remote_problem(name: str) -> str | None:
    """Why `name` is not a remote name wtrun accepts, or None."""
    if REMOTE.fullmatch(name):
        return None
    if not name:
        return "it is empty"
    if not REMOTE.match(name[0]):
        return f"it starts with {_shown(name[0])}"
    bad = re.search(r"[^A-Za-z0-9._-]", name)
    return f"it contains {_shown(bad.group() if bad else name)}"


def _shown(char: str) -> str:
    names = {" ": "a space", "\t": "a tab", "\n": "a line break"}
    return names.get(char) or json.dumps(char)
