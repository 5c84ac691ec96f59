"""Jinja2 templates of a plan: conventions, branch names, PR text, commit messages, commands.

All render in a sandbox with StrictUndefined, so a misspelt variable is an error at
validation time instead of an empty string in an agent's instructions, and within the
limits of `limits.py` (output size, numbers, loops, time).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import nodes

from ..errors import WtrunError
from . import limits


class TemplateError(WtrunError):
    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno  # line inside the template, 1-based, when known


@functools.lru_cache(maxsize=1)
def _env() -> limits.LimitedEnvironment:
    return limits.LimitedEnvironment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


@functools.lru_cache(maxsize=4096)
def compile(source: str) -> jinja2.Template:
    try:
        env = _env()
        return env.from_string(env.limited_tree(source))
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(_syntax_message(e.message or str(e)), e.lineno) from e


def render(source: str, context: Mapping[str, Any]) -> str:
    if "{" not in source:  # most plan strings hold no template at all
        return source
    plain = _plain_render(source, context)
    if plain is not None:
        return plain
    template = compile(source)
    try:
        return limits.render(template, context)
    except limits.LimitError as e:
        raise TemplateError(f"template limit: {e}", e.line or _error_line()) from e
    except (MemoryError, RecursionError) as e:
        what = "too much memory" if isinstance(e, MemoryError) else "too deep a recursion"
        raise TemplateError(
            f"template limit: it needs {what}; make the template compute less", _error_line()
        ) from e
    except jinja2.UndefinedError as e:
        line = _error_line()
        unknown = _unknown_reference(source, context)
        if unknown is not None:
            message, line = unknown
            raise TemplateError(message, line) from e
        raise TemplateError(f"template error: {_sentence(str(e.message))}", line) from e
    except jinja2.TemplateError as e:
        raise TemplateError(f"template error: {_sentence(str(e))}", _error_line()) from e
    except (TypeError, ValueError, ArithmeticError, AttributeError, LookupError) as e:
        raise TemplateError(f"template error: {_sentence(str(e))}", _error_line()) from e


# `{{ name }}` or `{{ name.key.key }}`, spaces around: what most branch, title and commit
# templates are. Rendering them without Jinja2 took half a 10,000-task plan's template checks.
_LOOKUP = re.compile(r"\{\{ *([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*) *\}\}", re.ASCII)
_DICT_ATTRIBUTES = frozenset(dir(dict))  # `task.items` is dict.items to Jinja2, not a key


@functools.lru_cache(maxsize=4096)
def _lookups(source: str) -> tuple[str | tuple[str, ...], ...] | None:
    """`source` as text and dotted lookups when that is all it holds, else None. Text with
    a "{" (a tag, a comment, a brace Jinja2 may read otherwise) or a "\r" (which Jinja2
    turns into "\n") is left to Jinja2."""
    if "\r" in source:
        return None
    parts: list[str | tuple[str, ...]] = []
    end = 0
    for match in _LOOKUP.finditer(source):
        parts += [source[end : match.start()], tuple(match[1].split("."))]
        end = match.end()
    parts.append(source[end:])
    if any(isinstance(part, str) and "{" in part for part in parts):
        return None
    return tuple(parts)


def _plain_render(source: str, context: Mapping[str, Any]) -> str | None:
    """What Jinja2 renders for a template of text and lookups that each end in a string
    key of a dict; None for anything else (Jinja2 then renders it, or explains why not)."""
    parts = _lookups(source)
    if parts is None:
        return None
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value: Any = context
        for name in part:
            if type(value) is not dict or name in _DICT_ATTRIBUTES or name not in value:
                return None
            value = value[name]
        if type(value) is not str:
            return None
        out.append(value)
    text = "".join(out)
    return text if len(text) <= limits.MAX_OUTPUT else None


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:]


_SYNTAX_HINTS = (
    ("unexpected end of template", "close the tag that is still open on this line"),
    ("unexpected '}'", 'check the braces: a value is written "{{ name }}", a block "{% if %}"'),
    ("unexpected char", 'check the expression inside "{{ }}"'),
)


def _syntax_message(raw: str) -> str:
    block = re.search(r"innermost block that needs to be closed is '(\w+)'", raw)
    if block:
        name = block.group(1)
        return (
            f'template syntax error: the "{name}" block is never closed; add '
            f'"{{% end{name} %}}" where it should end'
        )
    missing = re.match(r"No (filter|test) named '([^']+)'", raw)
    if missing:
        kind, name = missing.groups()
        known = sorted(_env().filters if kind == "filter" else _env().tests)
        close = difflib.get_close_matches(name, known, n=1)
        hint = (
            f'did you mean "{close[0]}"?' if close else f"see the Jinja2 list of built-in {kind}s"
        )
        return f'template syntax error: unknown {kind} "{name}"; {hint}'
    message = _sentence(raw)
    hint = next(
        (h for start, h in _SYNTAX_HINTS if message.startswith(start)),
        'check the "{{ }}" and "{% %}" tags on this line',
    )
    return f"template syntax error: {message}; {hint}"


def _error_line() -> int | None:
    """The template line of the exception being handled (Jinja2 rewrites the traceback)."""
    import sys
    import traceback

    line = None
    for frame, lineno in traceback.walk_tb(sys.exc_info()[2]):
        if frame.f_code.co_filename == "<template>":
            line = lineno
    return line


def _unknown_reference(source: str, context: Mapping[str, Any]) -> tuple[str, int] | None:
    """The first variable or attribute of `source` that `context` lacks, with a message.

    Found on the template's syntax tree, because StrictUndefined's own message
    ("'dict object' has no attribute 'idd'") names neither the variable nor the line.
    """
    env = _env()
    tree = env.parse(source)
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    found: list[tuple[int, str]] = []
    for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
        chain: list[str] = []
        current: nodes.Node = node
        while True:
            if isinstance(current, nodes.Getattr):
                chain.append(current.attr)
                current = current.node
            elif (
                isinstance(current, nodes.Getitem)
                and isinstance(current.arg, nodes.Const)
                and isinstance(current.arg.value, str)
            ):
                chain.append(current.arg.value)
                current = current.node
            else:
                break
        if not isinstance(current, nodes.Name) or current.ctx != "load":
            continue
        if current.name in bound:  # set by the template itself: {% set %}, {% for %}
            continue
        chain.append(current.name)
        chain.reverse()
        message = _check_chain(chain, context)
        if message is not None:
            found.append((node.lineno, message))
    if not found:
        return None
    line, message = min(found)
    return message, line


def _check_chain(chain: list[str], context: Mapping[str, Any]) -> str | None:
    value: Any = context
    for depth, name in enumerate(chain):
        if not isinstance(value, Mapping):
            return None  # a method or item of a string or list: not checked here
        if name not in value:
            shown = ".".join(chain[: depth + 1])
            parent = ".".join(chain[:depth])
            known = sorted(str(k) for k in value)
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            if close:
                suggestion = ".".join([*chain[:depth], close[0]])
                hint = f'did you mean "{suggestion}"?'
            elif parent:
                hint = f'"{parent}" has: {", ".join(known)}'
            else:
                hint = f"the variables are: {', '.join(known)}"
            return f'unknown variable "{shown}"; {hint}'
        value = value[name]
    return None
