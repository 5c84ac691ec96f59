"""Templates of text and `{{ a.b }}` lookups render without Jinja2: the result must be what
Jinja2 gives, and anything else must still go to Jinja2."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtrun.plan import limits, templates

CONTEXT: dict[str, Any] = {
    "task": {
        "id": "api-1",
        "title": "Añadir {llaves} y }} cierres",
        "number": 7,
        "missing": None,
        "tags": ["a", "b"],
        "nested": {"deep": "down"},
        "items": "a key named like a dict method",
    },
    "plan": {"name": "sprint-12", "base": "main"},
}


def jinja(source: str, context: dict[str, Any]) -> str:
    return limits.render(templates.compile(source), context)


@pytest.mark.parametrize(
    "source",
    [
        "wtrun/{{ task.id }}",
        "{{task.id}}",
        "{{   plan.name   }}/{{ task.id }}\n",
        "{{ task.title }} ({{ plan.base }})\n\n",
        "{{ task.nested.deep }}",
        "}} {{ task.id }} }}",
        "ünïcödé {{ task.id }} 🚀",
    ],
)
def test_lookups_render_as_jinja_does(source: str) -> None:
    assert templates._plain_render(source, CONTEXT) is not None
    assert templates.render(source, CONTEXT) == jinja(source, CONTEXT)


@pytest.mark.parametrize(
    "source",
    [
        "{{ task.number }}",  # not a string: Jinja2 formats it
        "{{ task.missing }}",
        "{{ task.tags }}",
        "{{ task.nested }}",
        "{{ task.items }}",  # dict.items to Jinja2
        "{{ task.nope }}",  # an error Jinja2 explains
        "{{ nope }}",
        "{{ task.id | upper }}",
        "{{- task.id }}",
        "{% if true %}{{ task.id }}{% endif %}",
        "{# note #}{{ task.id }}",
        "{{{ task.id }}",
        "{ {{ task.id }}",
        "a\r\n{{ task.id }}",
        "{{ task.id\n}}",
        "{{ range }}",
    ],
)
def test_anything_else_is_left_to_jinja(source: str) -> None:
    assert templates._plain_render(source, CONTEXT) is None


def test_an_error_still_comes_from_jinja() -> None:
    with pytest.raises(templates.TemplateError, match=r'unknown variable "task\.nope"'):
        templates.render("{{ task.nope }}", CONTEXT)


def test_output_over_the_limit_is_left_to_jinja() -> None:
    big = {"task": {"id": "x" * (limits.MAX_OUTPUT // 2 + 1)}}
    assert templates._plain_render("{{ task.id }}{{ task.id }}", big) is None
    with pytest.raises(templates.TemplateError, match="template limit"):
        templates.render("{{ task.id }}{{ task.id }}", big)


_PIECES = st.sampled_from(
    [
        "{{ task.id }}",
        "{{task.title}}",
        "{{ plan.name }}",
        "{{ task.number }}",
        "{{ task.items }}",
        "{{ task.nope }}",
        "{{",
        "}}",
        "{",
        "}",
        "{%",
        "%}",
        "{#",
        "#}",
        " ",
        "\n",
        "\r",
        "-",
        "x",
        "é",
        ".",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=8).map("".join))
def test_random_templates_render_as_jinja_does(source: str) -> None:
    plain = templates._plain_render(source, CONTEXT)
    if plain is None:
        return
    assert plain == jinja(source, CONTEXT)
