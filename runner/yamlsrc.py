"""Safe YAML reading that remembers where every key and value stood.

PyYAML's loaders keep the last of two equal keys without a word and expand aliases
without limit ("billion laughs"). Here the document is composed into a node tree
(cheap: aliases share nodes) and converted by hand, counting every node produced,
so duplicates become diagnostics and alias bombs stop early.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from .diagnostics import Diagnostic

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 2_000_000  # after alias expansion
MAX_DEPTH = 64

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    col: int  # 1-based
    length: int = 1


@dataclass
class Document:
    """A plan file's data plus where each part of it stands."""

    file: str
    lines: list[str]
    data: Any = None
    values: dict[Path, Mark] = field(default_factory=dict)  # path -> the value's place
    keys: dict[Path, Mark] = field(default_factory=dict)  # path -> the key's place

    def mark(self, path: Path, *, key: bool = False) -> Mark:
        """The place of `path`, or of its nearest ancestor that has one."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            found = table.get(path[:end]) or self.values.get(path[:end])
            if found is not None:
                return found
        return Mark(1, 1)

    def diagnostic(self, path: Path, message: str, rule: str, *, key: bool = False) -> Diagnostic:
        m = self.mark(path, key=key)
        return Diagnostic(self.file, m.line, m.col, message, rule, m.length)


class _TooBig(Exception):
    pass


def read(file: str, raw: bytes) -> tuple[Document, list[Diagnostic]]:
    """Parse `raw` (the bytes of `file`); problems come back as diagnostics, never raised."""
    doc = Document(file, [])
    if len(raw) > MAX_BYTES:
        return doc, [Diagnostic(file, 1, 1, (
            f"file is {len(raw):,} bytes, over the limit of {MAX_BYTES:,}; "
            "split the plan into several files"), "syntax")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        before = raw[: e.start]
        line = before.count(b"\n") + 1
        col = e.start - (before.rfind(b"\n") + 1) + 1
        return doc, [Diagnostic(file, line, col, (
            f"invalid UTF-8 byte 0x{raw[e.start]:02x}; save the file as UTF-8"), "syntax")]
    if text.startswith("\ufeff"):
        text = text[1:]
    doc.lines = text.splitlines()
    tab = _indent_tab(doc.lines)
    if tab is not None:
        return doc, [Diagnostic(file, tab[0], tab[1], (
            "tab character in indentation; YAML allows only spaces there: "
            "replace the tab with spaces"), "syntax")]
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = e.problem or e.context or "invalid YAML"
        return doc, [Diagnostic(file, line, col, f"invalid YAML: {problem}", "syntax")]
    except yaml.YAMLError as e:
        return doc, [Diagnostic(file, 1, 1, f"invalid YAML: {e}", "syntax")]
    if not nodes or nodes[0] is None:
        return doc, [Diagnostic(file, 1, 1, (
            "the plan is empty; start from `wtrun schema` or plans/minimal.yaml"), "syntax")]
    if len(nodes) > 1:
        extra = nodes[1].start_mark
        return doc, [Diagnostic(file, extra.line + 1, 1, (
            "more than one YAML document in the file; keep one plan per file"), "syntax")]
    root = nodes[0]
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        m = root.start_mark
        return doc, [Diagnostic(file, m.line + 1, m.column + 1, (
            f"the plan is {kind}; it must be a mapping of keys such as "
            "version, tasks"), "syntax")]
    converter = _Converter(doc)
    try:
        doc.data = converter.convert(root, (), 0)
    except _TooBig as e:
        return doc, [Diagnostic(file, 1, 1, str(e), "syntax")]
    return doc, converter.problems


def _indent_tab(lines: list[str]) -> tuple[int, int] | None:
    in_block = False
    for number, line in enumerate(lines, 1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t") and stripped.strip():
            # Tabs inside a literal block scalar's content are text, not indentation.
            if not in_block:
                return number, len(line) - len(stripped) + 1
        head = line.split("#", 1)[0].rstrip()
        if head.endswith(("|", ">", "|-", ">-", "|+", ">+")):
            in_block = True
        elif stripped and not stripped.startswith("\t") and in_block:
            in_block = line.startswith(" ") and in_block
    return None


_constructor = yaml.constructor.SafeConstructor()


class _Converter:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.count = 0
        self.problems: list[Diagnostic] = []

    def _place(self, node: yaml.Node) -> Mark:
        s, e = node.start_mark, node.end_mark
        length = e.column - s.column if e.line == s.line else len(
            self.doc.lines[s.line].rstrip()) - s.column if s.line < len(self.doc.lines) else 1
        return Mark(s.line + 1, s.column + 1, max(1, length))

    def convert(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(
                f"the plan expands to over {MAX_NODES:,} values through YAML aliases; "
                "remove the nested aliases (an alias bomb?)")
        if depth > MAX_DEPTH:
            raise _TooBig(f"the plan nests deeper than {MAX_DEPTH} levels; flatten it")
        self.doc.values.setdefault(path, self._place(node))
        if isinstance(node, yaml.ScalarNode):
            return _constructor.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.MappingNode)
        result: dict[Any, Any] = {}
        seen: dict[Any, Mark] = {}
        for key_node, value_node in self._merged(node):
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                m = self._place(key_node)
                self.problems.append(Diagnostic(self.doc.file, m.line, m.col, (
                    "a key must be a plain value, not a list or mapping"), "syntax"))
                continue
            key = _constructor.construct_object(key_node)
            key = key if isinstance(key, str) else str(key)
            place = self._place(key_node)
            if key in seen and getattr(key_node, "_wtrun_merged", False) is False:
                first = seen[key]
                self.problems.append(Diagnostic(self.doc.file, place.line, place.col, (
                    f'duplicate key "{key}" (first at line {first.line}); YAML keeps only '
                    "the last one: remove or merge one of them"), "duplicate-key", place.length))
            seen[key] = place
            self.doc.keys[(*path, key)] = place
            result[key] = self.convert(value_node, (*path, key), depth + 1)
        return result

    def _merged(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """`<<: *defaults` merge keys: the mapping's own keys win over merged ones."""
        own = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
        own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        for k, v in node.value:
            if k.tag != "tag:yaml.org,2002:merge":
                continue
            sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    m = self._place(source)
                    self.problems.append(Diagnostic(self.doc.file, m.line, m.col, (
                        "a merge key (<<) needs a mapping or a list of mappings"), "syntax"))
                    continue
                for mk, mv in self._merged(source):
                    if isinstance(mk, yaml.ScalarNode) and mk.value not in own_keys:
                        own_keys.add(mk.value)
                        copy = yaml.ScalarNode(mk.tag, mk.value, mk.start_mark, mk.end_mark)
                        copy._wtrun_merged = True  # type: ignore[attr-defined]
                        yield copy, mv
        yield from own
