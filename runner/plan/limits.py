"""Limits on what a plan's template may cost: output size, number sizes, loops and time.

Jinja2's sandbox stops a template from reaching outside (attributes, calls), not from
spending: `{{ 7 ** (7 ** 9) }}`, `{{ 'x' * 2000000000 }}` or two nested loops of
`range(100000)` hang or exhaust memory. Each is checked where the template spends it,
without threads or signals: the operators the sandbox intercepts, every call and filter,
every loop (its iterable is wrapped when the template is compiled), and every piece of
output. The clock is checked at each of those points.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
import jinja2.sandbox
from jinja2 import nodes

MAX_OUTPUT = 1024 * 1024  # characters of one rendered template, and of any value in it
MAX_BITS = 4096  # of a number a template computes
MAX_RANGE = 10_000  # numbers in one range()
SECONDS = 2.0  # to render one template

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("deadline", default=math.inf)
_GUARD = "__wtrun_guard"  # wraps loops' iterables and values that can grow
_SPEC_NUMBER = re.compile(r"\d+")
_PERCENT_NUMBER = re.compile(r"%[-#0 +(]*(?:\([^)]*\))?[-#0 +]*(\d+)?(?:\.(\d+))?")


class LimitError(jinja2.TemplateRuntimeError):
    """A template went over a limit; the message says which and how to stay under it."""

    line: int | None = None  # the template's line, when the traceback cannot tell it


def check_time() -> None:
    if time.monotonic() > _deadline.get():
        raise LimitError(
            f"rendering took over {SECONDS:g} seconds; loop over fewer items, or compute less"
        )


def check_size(value: Any) -> Any:
    if isinstance(value, (str, list, tuple, dict)) and len(value) > MAX_OUTPUT:
        raise LimitError(
            f"a value of {len(value):,} characters or items, over the limit of "
            f"{MAX_OUTPUT:,}; make the template build less"
        )
    return value


def render(template: jinja2.Template, context: Any) -> str:
    """`template` rendered within the limits; raises LimitError past one of them."""
    token = _deadline.set(time.monotonic() + SECONDS)
    try:
        parts: list[str] = []
        size = 0
        chunks = template.generate(context)
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_OUTPUT:
                error = LimitError(
                    f"the output passes {MAX_OUTPUT:,} characters; make the template produce "
                    "less text"
                )
                error.line = _producing_line(template, chunks)
                raise error
            check_time()
            parts.append(chunk)
        return "".join(parts)
    finally:
        _deadline.reset(token)


def _producing_line(template: jinja2.Template, chunks: Any) -> int | None:
    """The template line whose output is being produced (the compiled code's generator)."""
    inner = getattr(chunks, "gi_yieldfrom", None)
    frame = getattr(inner, "gi_frame", None)
    return template.get_corresponding_lineno(frame.f_lineno) if frame is not None else None


def _guard(value: Any) -> Any:
    """A loop's iterable, checked on each item; or a value that may have grown."""
    check_time()
    check_size(value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return value
    return _Items(value)


class _Items:
    """Iterates like the value it wraps, checking the clock on every item."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = items

    def __iter__(self) -> Iterator[Any]:
        for item in self._items:
            check_time()
            yield item

    def __len__(self) -> int:  # `loop.length` and `loop.last` ask for it
        return len(self._items)  # type: ignore[arg-type]


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitError(
            f"range() of {len(numbers):,} numbers, over the limit of {MAX_RANGE:,}; loop over "
            "fewer numbers"
        )
    return numbers


def _bits(value: int) -> int:
    return value.bit_length()


def _binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `**` and `*` whose result would be too large, before computing it."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        if right * math.log2(abs(left)) > MAX_BITS:
            raise LimitError(
                f"{left} ** {right} is a number of more than {MAX_BITS:,} bits; use smaller numbers"
            )
    elif operator == "*" and ints:
        if _bits(left) + _bits(right) > MAX_BITS:
            raise LimitError(f"a product of more than {MAX_BITS:,} bits; use smaller numbers")
    elif operator in ("*", "+"):
        _sequence_size(operator, left, right)
    elif operator == "%" and isinstance(left, str):
        _percent_widths(left)


def _sequence_size(operator: str, left: Any, right: Any) -> None:
    sequences = (str, list, tuple)
    if operator == "*":
        seq, times = (left, right) if isinstance(left, sequences) else (right, left)
        if not isinstance(seq, sequences) or not isinstance(times, int):
            return
        size = len(seq) * max(times, 0)
        what = f"repeating a value {times:,} times"
    elif isinstance(left, sequences) and isinstance(right, sequences):
        size = len(left) + len(right)
        what = "joining two values"
    else:
        return
    if size > MAX_OUTPUT:
        raise LimitError(
            f"{what} makes {size:,} characters or items, over the limit of {MAX_OUTPUT:,}; "
            "make it shorter"
        )


def _width_limit(number: str) -> None:
    if len(number) > 7 or int(number) > MAX_OUTPUT:
        raise LimitError(
            f"a format width or precision of {int(number):,}, over the limit of {MAX_OUTPUT:,}; "
            "use a smaller one"
        )


def _percent_widths(text: str) -> None:
    for m in _PERCENT_NUMBER.finditer(text):
        for number in m.groups():
            if number:
                _width_limit(number)


def _format_widths(text: str) -> None:
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # str.format refuses it itself
    for _, _, spec, _ in fields:
        for number in _SPEC_NUMBER.findall(spec or ""):
            _width_limit(number)


def _limited_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    # The value filtered comes first, after the context or environment for filters that ask.
    skip = 2 if getattr(function, "jinja_pass_arg", None) is not None else 1

    @functools.wraps(function)  # keeps `jinja_pass_arg` (pass_context and the like)
    def limited(*args: Any, **kwargs: Any) -> Any:
        check_time()
        given = (*args[skip:], *kwargs.values())  # the filter's own arguments
        numbers = [a for a in given if isinstance(a, int) and not isinstance(a, bool)]
        if any(abs(n) > MAX_OUTPUT for n in numbers):
            raise LimitError(
                f'a number over {MAX_OUTPUT:,} given to the filter "{name}"; use a smaller one'
            )
        if name == "replace" and len(args) >= 3:
            _replace_size(*args[-3:])
        if name == "format" and args and isinstance(args[-1], str):
            _percent_widths(args[-1])
        return check_size(function(*args, **kwargs))

    return limited


def _replace_size(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str) and old:
        size = len(text) + text.count(old) * (len(new) - len(old))
        if size > MAX_OUTPUT:
            raise LimitError(
                f'"replace" makes {size:,} characters, over the limit of {MAX_OUTPUT:,}; make '
                "it shorter"
            )


class LimitedEnvironment(jinja2.sandbox.SandboxedEnvironment):
    """The sandbox, with the limits above."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _range
        self.globals[_GUARD] = _guard
        self.filters = {name: _limited_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_time()
        _binop(operator, left, right)
        return check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_time()
        return check_size(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _format_widths(value.__self__)
        return wrapped

    def limited_tree(self, source: str) -> nodes.Template:
        """The template's syntax tree with each loop's iterable and each `~` guarded."""
        tree = self.parse(source)
        every = list(tree.find_all(nodes.Node))  # before any change: guards are not walked
        for loop in (n for n in every if isinstance(n, nodes.For)):
            loop.iter = self._guarded(loop.iter)  # type: ignore[arg-type]
        for parent in every:
            for field in parent.fields:
                value = getattr(parent, field, None)
                if isinstance(value, nodes.Concat):
                    setattr(parent, field, self._guarded(value))
                elif isinstance(value, list):
                    value[:] = [
                        self._guarded(v) if isinstance(v, nodes.Concat) else v for v in value
                    ]
        return tree

    @staticmethod
    def _guarded(node: nodes.Expr) -> nodes.Expr:
        guard = nodes.Name(_GUARD, "load", lineno=node.lineno)
        return nodes.Call(guard, [node], [], None, None, lineno=node.lineno)
