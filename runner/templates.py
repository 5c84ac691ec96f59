"""Jinja2 templates of a plan: conventions, branch names, PR text, commit messages, commands.

All render in a sandbox with StrictUndefined, so a misspelt variable is an error at
validation time instead of an empty string in an agent's instructions.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jinja2
import jinja2.sandbox

from .errors import WtrunError


class TemplateError(WtrunError):
    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno  # line inside the template, 1-based, when known


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.sandbox.SandboxedEnvironment:
    return jinja2.sandbox.SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


@functools.lru_cache(maxsize=4096)
def compile(source: str) -> jinja2.Template:
    try:
        return _env().from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(f"template syntax error: {e.message}", e.lineno) from e


def render(source: str, context: Mapping[str, Any]) -> str:
    if "{" not in source:  # most plan strings hold no template at all
        return source
    template = compile(source)
    try:
        return template.render(context)
    except jinja2.UndefinedError as e:
        raise TemplateError(f"unknown variable: {e.message}", _error_line()) from e
    except jinja2.TemplateError as e:
        raise TemplateError(f"template error: {e}", _error_line()) from e
    except (TypeError, ValueError, ArithmeticError, AttributeError, LookupError) as e:
        raise TemplateError(f"template error: {e}", _error_line()) from e


def _error_line() -> int | None:
    import sys
    import traceback

    tb = sys.exc_info()[2]
    line = None
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == "<template>":
            line = frame.f_globals.get("__jinja_template__") and lineno
            debug = frame.f_globals.get("__jinja_template__")
            if debug is not None:
                line = debug.get_corresponding_lineno(lineno)
    return line
