"""Safe YAML reading that remembers where every key and value stood.

PyYAML's loaders keep the last of two equal keys without a word and expand aliases
without limit ("billion laughs"). Here the document is composed into a node tree
(cheap: aliases share nodes), its expanded size is measured before anything is
built, and it is converted by hand, so duplicates become diagnostics and alias bombs
stop early.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml

from .diagnostics import Diagnostic

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 2_000_000  # after alias expansion
MAX_DEPTH = 64

NodePath = tuple[str | int, ...]


class Mark(NamedTuple):  # a tuple: a large plan has a hundred thousand of them
    line: int  # 1-based
    col: int  # 1-based
    length: int = 1


@dataclass
class Document:
    """A plan file's data plus where each part of it stands."""

    file: str
    lines: list[str]
    data: Any = None
    # path -> the YAML node of the value, and of its key; placed only when asked, as most
    # never are
    values: dict[NodePath, yaml.Node] = field(default_factory=dict)
    keys: dict[NodePath, yaml.Node] = field(default_factory=dict)

    def mark(self, path: NodePath, *, key: bool = False) -> Mark:
        """The place of `path`, or of its nearest ancestor that has one."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            found = table.get(path[:end])
            if found is None:
                found = self.values.get(path[:end])
            if found is not None:
                return self.place(found)
        return Mark(1, 1)

    def place(self, node: yaml.Node) -> Mark:
        s, e = node.start_mark, node.end_mark
        length = (
            e.column - s.column
            if e.line == s.line
            else len(self.lines[s.line].rstrip()) - s.column
            if s.line < len(self.lines)
            else 1
        )
        return Mark(s.line + 1, s.column + 1, max(1, length))

    def diagnostic(
        self, path: NodePath, message: str, rule: str, *, key: bool = False
    ) -> Diagnostic:
        m = self.mark(path, key=key)
        return Diagnostic(self.file, m.line, m.col, message, rule, m.length)

    def source(self, path: NodePath) -> str | None:
        """The text of the value at `path` as written in the file, when it fits on one line."""
        node = self.values.get(path)
        if node is None:
            return None
        m = self.place(node)
        if not 1 <= m.line <= len(self.lines):
            return None
        return self.lines[m.line - 1][m.col - 1 : m.col - 1 + m.length]


def read(file: str, raw: bytes) -> tuple[Document, list[Diagnostic]]:
    """Parse `raw` (the bytes of `file`); problems come back as diagnostics, never raised."""
    doc = Document(file, [])
    try:
        text = _decode(doc, raw)
        root = _compose(doc, text)
    except _Refused as e:
        return doc, [e.diagnostic]
    problem = _check_size(doc, root)
    if problem is not None:
        return doc, [problem]
    converter = _Converter(doc)
    doc.data = converter.convert(root, ())
    return doc, converter.problems


def too_big(file: str, size: int) -> Diagnostic:
    return Diagnostic(
        file,
        1,
        1,
        f"the file is {size:,} bytes, over the limit of {MAX_BYTES:,} bytes; "
        "split the plan into several files",
        "syntax",
    )


class _Refused(Exception):
    """A file that cannot be read further: its one diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


def _decode(doc: Document, raw: bytes) -> str:
    """The text of the file, its lines kept in `doc`."""
    file = doc.file
    if len(raw) > MAX_BYTES:
        raise _Refused(too_big(file, len(raw)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        before = raw[: e.start]
        line = before.count(b"\n") + 1
        start = before.rfind(b"\n") + 1
        col = len(raw[start : e.start].decode("utf-8", "replace")) + 1
        doc.lines = raw.decode("utf-8", "replace").splitlines()
        raise _Refused(
            Diagnostic(
                file,
                line,
                col,
                f"invalid UTF-8 byte 0x{raw[e.start]:02x}; plan files are UTF-8 text: save the "
                "file as UTF-8",
                "syntax",
            )
        ) from None
    text = text.removeprefix("\ufeff")
    doc.lines = text.splitlines()
    tab = _indent_tab(doc.lines)
    if tab is not None:
        raise _Refused(
            Diagnostic(
                file,
                tab[0],
                tab[1],
                "tab character in indentation; YAML allows only spaces there: replace the tab "
                "with spaces",
                "syntax",
            )
        )
    return text


def _compose(doc: Document, text: str) -> yaml.MappingNode:
    """The node tree of the file's one document, which must be a mapping."""
    file = doc.file
    try:
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.MarkedYAMLError as e:
        if _LIBYAML_TOO_DEEP in (e.problem or ""):  # libyaml's own limit, above ours
            mark = e.problem_mark
            raise _Refused(
                _too_deep(file, mark.line + 1 if mark else 1, mark.column + 1 if mark else 1)
            ) from None
        raise _Refused(_syntax_error(doc, e)) from None
    except yaml.YAMLError as e:
        raise _Refused(Diagnostic(file, 1, 1, f"invalid YAML: {e}", "syntax")) from None
    except RecursionError:  # the pure-Python parser recurses once per level
        raise _Refused(_too_deep(file, 1, 1)) from None
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        raise _Refused(
            Diagnostic(
                file,
                1,
                1,
                "the plan is empty; it needs at least `version: 1` and a list of `tasks` (see "
                "plans/minimal.yaml or `wtrun schema`)",
                "syntax",
            )
        )
    if len(nodes) > 1:
        raise _Refused(_second_document(doc, nodes[1]))
    root = nodes[0]
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        m = root.start_mark
        raise _Refused(
            Diagnostic(
                file,
                m.line + 1,
                m.column + 1,
                f"the plan is {kind}; it must be a mapping of keys such as `version: 1` and "
                "`tasks:` (see plans/minimal.yaml)",
                "syntax",
            )
        )
    return root


def _second_document(doc: Document, node: yaml.Node) -> Diagnostic:
    extra = node.start_mark
    line = extra.line + 1
    for number in range(extra.line, 0, -1):  # point at the "---" that starts it
        if doc.lines[number - 1].startswith("---"):
            line = number
            break
    return Diagnostic(
        doc.file,
        line,
        1,
        "a second YAML document starts here; a plan file holds one document: remove "
        'the "---" and what follows, or move it to its own file',
        "syntax",
        3,
    )


_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


def _too_deep(file: str, line: int, col: int) -> Diagnostic:
    """Whichever limit fires first (ours, libyaml's, Python's recursion), the same advice."""
    return Diagnostic(
        file,
        line,
        col,
        f"the plan nests too deeply here (more than {MAX_DEPTH} levels of lists and mappings); "
        "flatten it",
        "syntax",
    )


# Hints for PyYAML's messages, matched by their start; the first match wins.
_HINTS = (
    (
        "mapping values are not allowed",
        (
            'a value holds ": " or this line is indented too far; quote the value, or align the '
            "key with the keys above it"
        ),
    ),
    (
        "expected <block end>",
        "the indentation does not match the lines above: align this "
        "line with the keys or items it belongs with",
    ),
    (
        "could not find expected ':'",
        'a key is missing its ":", or a value spreads over '
        "lines it should not: add the colon, or quote the value",
    ),
    ("did not find expected ',' or ']'", 'close the list with "]", or separate its items with ","'),
    (
        "did not find expected ',' or '}'",
        'close the mapping with "}", or separate its items with ","',
    ),
    ("expected ',' or ']'", 'close the list with "]"'),
    ("expected ',' or '}'", 'close the mapping with "}"'),
    ("found unexpected end of stream", "close the quote"),
    ("found undefined alias", "define the anchor (&name) before using the alias (*name)"),
    ("found character", "quote the value"),
    (
        "found unknown escape character",
        'in double quotes write a backslash as "\\\\", or use single quotes',
    ),
    ("expected a comment or a line break", "quote the value, or put a space before the #"),
)


_CONTEXTS = {
    "while parsing a flow sequence": "the [ ] list",
    "while parsing a flow mapping": "the { } mapping",
    "while parsing a block mapping": "the mapping",
    "while parsing a block collection": "the list",
    "while scanning a quoted scalar": "the quoted text",
    "while scanning a simple key": "the key",
}


def _syntax_error(doc: Document, e: yaml.MarkedYAMLError) -> Diagnostic:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = (e.problem or e.context or "invalid YAML").replace("<stream end>", "end of file")
    context = ""
    if e.context and e.problem and e.context_mark is not None:
        what = _CONTEXTS.get(e.context)
        at = e.context_mark.line + 1
        context = (
            f" (in {what} that starts at line {at})" if what else f" ({e.context}, at line {at})"
        )
    hint = next(
        (h for start, h in _HINTS if start in (e.problem or "")),
        "check the indentation and the quoting here",
    )
    if line > len(doc.lines) and doc.lines:  # "end of file": point at the last line
        line, col = len(doc.lines), len(doc.lines[-1]) + 1
    return Diagnostic(doc.file, line, col, f"invalid YAML: {problem}{context}; {hint}", "syntax")


def _check_size(doc: Document, root: yaml.Node) -> Diagnostic | None:
    """Refuse alias bombs and recursive aliases before converting anything.

    Aliases share nodes, so the expanded size is computed once per distinct node.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Recursive(node)
        if depth > MAX_DEPTH:
            raise _TooDeep(node)
        total = 1
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            children = (
                node.value
                if isinstance(node, yaml.SequenceNode)
                else [child for pair in node.value for child in pair]
            )
            active.add(key)
            for child in children:
                # Most nodes are text: counted here, not by a call of their own.
                leaf = type(child) is yaml.ScalarNode and depth < MAX_DEPTH
                total += 1 if leaf else size(child, depth + 1)
            active.discard(key)
        sizes[key] = total
        return total

    def place(node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    try:
        total = size(root, 0)
    except _Recursive as e:
        line, col = place(e.node)
        return Diagnostic(
            doc.file,
            line,
            col,
            (
                "this value contains an alias to itself, so it never ends; remove the alias "
                "(*name) that points back to its own anchor"
            ),
            "syntax",
        )
    except _TooDeep as e:
        return _too_deep(doc.file, *place(e.node))
    if total <= MAX_NODES:
        return None
    node = root
    while True:  # the innermost value that is too big by itself
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [v for _, v in node.value]
        big = [c for c in children if sizes.get(id(c), 1) > MAX_NODES]
        if not big:
            break
        node = big[0]
    line, col = place(node)
    what = "this value" if node is not root else "the plan"
    return Diagnostic(
        doc.file,
        line,
        col,
        (
            f"{what} expands to {sizes[id(node)]:,} values through YAML aliases, over the limit "
            f"of {MAX_NODES:,} (an alias bomb?); write the values out or remove the nested "
            "aliases"
        ),
        "syntax",
    )


class _Recursive(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


class _TooDeep(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


_BLOCK_START = re.compile(r"(?:^|[\s:-])[|>][-+1-9]*$")


def _indent_tab(lines: list[str]) -> tuple[int, int] | None:
    """Where a tab indents a line (PyYAML's own message for it is cryptic), or None."""
    block_indent: int | None = None  # indentation of the line that opened a block scalar
    for number, line in enumerate(lines, 1):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if block_indent is not None:
            if not stripped.strip() or indent > block_indent:
                continue  # a block scalar's content: tabs there are text
            block_indent = None
        if stripped.startswith("\t") and stripped.strip():
            return number, indent + 1
        if ("|" in line or ">" in line) and _BLOCK_START.search(line.split(" #", 1)[0].rstrip()):
            block_indent = indent
    return None


_constructor = yaml.constructor.SafeConstructor()
# libyaml parses large plans several times faster; marks and node trees are the same.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_COLLECTION_TAGS = frozenset(("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"))
_STANDARD_TAGS = frozenset(
    ("str", "int", "float", "bool", "null", "timestamp", "binary", "merge", "value")
)


class _Converter:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []

    def convert(self, node: yaml.Node, path: NodePath) -> Any:
        values = self.doc.values
        if path not in values:
            values[path] = node
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if node.tag not in _COLLECTION_TAGS:
            m = self.doc.place(node)
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.problems.append(
                Diagnostic(
                    self.doc.file,
                    m.line,
                    m.col,
                    (
                        f'the YAML tag "{tag}" is not allowed in a plan, which holds plain text, '
                        "numbers, lists and mappings: remove the tag"
                    ),
                    "syntax",
                    len(tag),
                )
            )
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.MappingNode)
        result: dict[Any, Any] = {}
        seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in self._merged(node):
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                m = self.doc.place(key_node)
                self.problems.append(
                    Diagnostic(
                        self.doc.file,
                        m.line,
                        m.col,
                        (
                            "a key is a list or a mapping; keys are plain text: write the key as "
                            "text"
                        ),
                        "syntax",
                    )
                )
                continue
            key = self._scalar(key_node)
            key = key if isinstance(key, str) else key_node.value
            if key in seen and getattr(key_node, "_wtrun_merged", False) is False:
                first = self.doc.place(seen[key])
                place = self.doc.place(key_node)
                self.problems.append(
                    Diagnostic(
                        self.doc.file,
                        place.line,
                        place.col,
                        (
                            f'duplicate key "{key}" (first at line {first.line}); YAML keeps only '
                            "the last one: remove or merge one of them"
                        ),
                        "duplicate-key",
                        place.length,
                    )
                )
            seen[key] = key_node
            key_path = (*path, key)
            self.doc.keys[key_path] = key_node
            result[key] = self.convert(value_node, key_path)
        return result

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR:  # almost every key and value of a plan: the text is the value
            return node.value
        try:
            return _constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as e:
            m = self.doc.place(node)
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            if tag.startswith("!!") and tag[2:] in _STANDARD_TAGS:
                message = (
                    f'"{node.value}" cannot be read as {tag[2:]} ({e}); quote it to keep it as text'
                )
            else:
                message = (
                    f'the YAML tag "{tag}" is not allowed in a plan, which holds plain '
                    "text, numbers, lists and mappings: remove the tag"
                )
            self.problems.append(
                Diagnostic(self.doc.file, m.line, m.col, message, "syntax", m.length)
            )
            return node.value

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
                    m = self.doc.place(source)
                    self.problems.append(
                        Diagnostic(
                            self.doc.file,
                            m.line,
                            m.col,
                            ("a merge key (<<) needs a mapping or a list of mappings"),
                            "syntax",
                        )
                    )
                    continue
                for mk, mv in self._merged(source):
                    if isinstance(mk, yaml.ScalarNode) and mk.value not in own_keys:
                        own_keys.add(mk.value)
                        copy = yaml.ScalarNode(mk.tag, mk.value, mk.start_mark, mk.end_mark)
                        copy._wtrun_merged = True  # type: ignore[attr-defined]
                        yield copy, mv
        yield from own
