"""Scope patterns: which files a task may change, and whether two tasks' scopes can collide.

Scope syntax
------------
- A pattern is a path relative to the repository root, with ``/`` as the separator.
- ``*`` matches any run of characters within one path segment (it never crosses ``/``);
  ``?`` matches exactly one character other than ``/``.
- ``**`` as a whole segment matches any number of segments, including none:
  ``src/**/x.ts`` matches ``src/x.ts`` and ``src/a/b/x.ts``. Anywhere else a run of stars
  means ``*`` (``a**b`` is ``a*b``).
- ``[abc]``, ``[a-z]``, ``[!a]`` (also ``[^a]``) match one character from, or not from, the
  class; a class never matches ``/``. The first ``]`` closes a class, so a class cannot contain
  ``]``; write ``[[]`` for a literal ``[``.
- A pattern ending in ``/`` means everything below that directory, and so does a trailing
  ``/**``: ``a/`` and ``a/**`` match ``a/x`` and ``a/x/y`` but not ``a`` itself.
- Wildcards match names starting with a dot (``*`` matches ``.env``).
- Matching is case-sensitive and covers whole paths: ``src/auth`` is that one path only.
- Refused: an empty pattern, an absolute path (``/x``), ``.`` or ``..`` segments, empty
  segments (``a//b``), backslashes (there are no escapes), an unterminated ``[``, an empty
  class ``[]``, and a reversed range such as ``[z-a]``.

Paths given to :func:`matches` are repository-relative file paths such as git prints them; a
string that is not one (empty, absolute, ending in ``/``, or with an empty, ``.`` or ``..``
segment) matches no pattern.

:func:`intersection` decides exactly whether two patterns can match the same file path, and
returns one such path with the fewest characters in all (not the fewest segments). Characters
that wildcards leave free are ``x`` where a class allows it, so ``src/**`` and ``**/*.ts`` give
``src/.ts``, and ``*`` and ``*`` give ``x``. :func:`find_overlaps` applies it to every pair of
tasks that may run at the same time.
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, TypeAlias

from .errors import WtrunError

__all__ = [
    "Overlap",
    "OverlapStats",
    "ScopeError",
    "find_overlaps",
    "intersection",
    "is_literal",
    "matches",
    "validate",
]


class ScopeError(WtrunError, ValueError):
    """An invalid scope pattern: `reason` says what is wrong with it and how to fix it;
    `offset` is where in `pattern` the problem starts (0-based)."""

    def __init__(self, pattern: str, reason: str, offset: int = 0) -> None:
        super().__init__(f'scope "{pattern}" {reason}' if pattern else reason)
        self.pattern = pattern
        self.reason = reason
        self.offset = offset


@dataclass(frozen=True)
class Overlap:
    """Two tasks that may run together and can both write ``example``."""

    task_a: str
    pattern_a: str
    task_b: str
    pattern_b: str
    example: str


@dataclass
class OverlapStats:
    """How much work :func:`find_overlaps` did: patterns seen and pattern pairs compared."""

    patterns: int = 0
    pairs_compared: int = 0


# A set of characters as sorted, disjoint, inclusive code point ranges, never containing "/".
_CharSet: TypeAlias = tuple[tuple[int, int], ...]
# One step of a segment glob: a character set, or None for "*".
_Token: TypeAlias = "_CharSet | None"

_SLASH = ord("/")
_DOT = ord(".")
_MAX = 0x10FFFF
_ANY: _CharSet = ((0, _SLASH - 1), (_SLASH + 1, _MAX))
_DSTAR = "**"
_WILD_RE = re.compile(r"[*?\[]")
_PREFERRED = tuple(
    ord(c) for c in "xabcdefghijklmnopqrstuvwyzXABCDEFGHIJKLMNOPQRSTUVWYZ0123456789_-"
)
# After a segment's characters so far: 0 none, 1 ".", 2 "..", 3 anything else (a valid name).
_AFTER_DOT = (1, 2, 3, 3)


class _Pattern(NamedTuple):
    text: str
    segs: tuple[str, ...]  # "**" or a segment glob; a trailing "/" becomes "*", "**"
    lits: tuple[str, ...]  # leading segments without wildcards
    cpre: str  # literal characters that start the segment after ``lits``
    min_segs: int
    bounded: bool  # False when some "**" lets the pattern match any number of segments
    literal: bool


def validate(pattern: str) -> None:
    """Raise :class:`ScopeError` if ``pattern`` is not a valid scope pattern."""
    _parse(pattern)


def matches(pattern: str, path: str) -> bool:
    """Whether the repo-relative file ``path`` is inside the scope ``pattern``."""
    parsed = _parse(pattern)
    if not _is_file_path(path):
        return False
    if parsed.literal:
        return path == parsed.text
    # Refused without a regex when the segment count or a literal first segment rules the
    # path out: compiling one per glob cost seconds on a 10,000-task plan.
    names = path.split("/")
    if parsed.min_segs > len(names) or (parsed.bounded and parsed.min_segs != len(names)):
        return False
    first = _literal_text(parsed.segs[0])
    if first is not None and first != names[0]:
        return False
    return _regex(pattern).fullmatch(path + "/") is not None


@lru_cache(maxsize=4096)
def _literal_text(seg: str) -> str | None:
    """The one name segment `seg` matches, or None when it has a wildcard or a set."""
    if seg == _DSTAR:
        return None
    chars = []
    for token in _tokens(seg):
        if token is None or len(token) != 1 or token[0][0] != token[0][1]:
            return None
        chars.append(chr(token[0][0]))
    return "".join(chars)


def is_literal(pattern: str) -> bool:
    """Whether ``pattern`` names exactly one path: no wildcards and no trailing ``/``."""
    return _parse(pattern).literal


def intersection(a: str, b: str) -> str | None:
    """A path with the fewest characters matched by both patterns, or None if none exists."""
    return _intersect(_parse(a), _parse(b))


def find_overlaps(
    scopes: Sequence[tuple[str, Sequence[str]]],
    may_run_together: Callable[[str, str], bool],
    stats: OverlapStats | None = None,
) -> list[Overlap]:
    """The first overlapping pattern pair of every two tasks that may run at the same time.

    ``scopes`` is ``(task_id, patterns)`` in plan order. Results come in plan order of
    ``task_a``, then ``task_b``, with ``task_a`` the earlier task; for each task pair the pair
    of patterns reported is the first in the order of the tasks' own pattern lists.

    Patterns are indexed in a trie of their leading literal segments. Two patterns can only
    match a common path if one's literal segments are a prefix of the other's, their next
    literal characters agree and their numbers of segments can be equal, so each pattern is
    compared only with such patterns stored on its own trie path. Patterns that start with a
    wildcard sit at the root and meet everyone. ``stats.pairs_compared`` counts the pattern
    pairs whose intersection was computed.
    """
    entries: list[tuple[int, int, _Pattern]] = []
    for task_index, (_, patterns) in enumerate(scopes):
        for pattern_index, pattern in enumerate(patterns):
            entries.append((task_index, pattern_index, _parse(pattern)))
    if stats is not None:
        stats.patterns += len(entries)

    root = _Node({}, [])
    for entry_index, (_, _, parsed) in enumerate(entries):
        node = root
        for seg in parsed.lits:
            child = node.children.get(seg)
            if child is None:
                child = node.children[seg] = _Node({}, [])
            node = child
        node.entries.append(entry_index)

    # For each task pair, the first overlapping pattern pair in the order of the tasks' own
    # lists: entries are in plan order, so that is the smallest (entry, entry). A pair past
    # one already found is not compared.
    found: dict[tuple[int, int], tuple[int, int, str]] = {}
    together: dict[tuple[int, int], bool] = {}
    for index, (task, _, parsed) in enumerate(entries):
        node = root
        for depth in range(len(parsed.lits) + 1):
            own = depth == len(parsed.lits)
            for other_index in node.entries:
                if own and other_index >= index:
                    break
                other_task, _, other = entries[other_index]
                if other_task == task or not _may_meet(parsed, other, depth):
                    continue
                if other_index < index:
                    tasks, pair = (other_task, task), (other_index, index)
                else:
                    tasks, pair = (task, other_task), (index, other_index)
                known = found.get(tasks)
                if known is not None and known[:2] < pair:
                    continue
                allowed = together.get(tasks)
                if allowed is None:
                    allowed = together[tasks] = may_run_together(
                        scopes[tasks[0]][0], scopes[tasks[1]][0]
                    )
                if not allowed:
                    continue
                if stats is not None:
                    stats.pairs_compared += 1
                example = _intersect(entries[pair[0]][2], entries[pair[1]][2])
                if example is not None:
                    found[tasks] = (*pair, example)
            if not own:
                node = node.children[parsed.lits[depth]]

    overlaps: list[Overlap] = []
    for task_a, task_b in sorted(found):
        entry_a, entry_b, example = found[task_a, task_b]
        overlaps.append(
            Overlap(
                scopes[task_a][0],
                entries[entry_a][2].text,
                scopes[task_b][0],
                entries[entry_b][2].text,
                example,
            )
        )
    return overlaps


def _may_meet(p: _Pattern, q: _Pattern, depth: int) -> bool:
    """Cheap necessary conditions for an overlap of ``p`` and ``q``, which is stored ``depth``
    literal segments down ``p``'s trie path: the next literal characters and the number of
    segments must agree."""
    if depth < len(p.lits):
        if not p.lits[depth].startswith(q.cpre):
            return False
    elif not (p.cpre.startswith(q.cpre) or q.cpre.startswith(p.cpre)):
        return False
    return not ((q.bounded and p.min_segs > q.min_segs) or (p.bounded and q.min_segs > p.min_segs))


class _Node(NamedTuple):
    children: dict[str, _Node]
    entries: list[int]


# --- parsing -----------------------------------------------------------------------------


@lru_cache(maxsize=1 << 17)  # a 10,000-task plan has ~50,000 patterns
def _parse(pattern: str) -> _Pattern:
    if not pattern:
        raise ScopeError(
            pattern,
            'empty scope pattern; write a path relative to the repository root, such as "src/" '
            'or "src/**/*.ts"',
        )
    if "\\" in pattern:
        raise ScopeError(
            pattern,
            'contains "\\"; separate directories with "/", and note that '
            "backslash escapes are not supported",
            pattern.index("\\"),
        )
    if pattern.startswith("/"):
        fixed = pattern.lstrip("/") or "**"
        raise ScopeError(
            pattern, f'is an absolute path; write it relative to the repository root: "{fixed}"'
        )
    is_dir = pattern.endswith("/")
    segs = (pattern[:-1] if is_dir else pattern).split("/")
    if "" in segs:
        fixed = re.sub("/+", "/", pattern)
        raise ScopeError(
            pattern, f'has an empty segment ("//"); use a single "/": "{fixed}"', pattern.find("//")
        )
    if ".." in segs:
        raise ScopeError(
            pattern,
            'has a ".." segment; scopes cannot refer to parent directories, '
            "name the path from the repository root instead",
            max(pattern.find(".."), 0),
        )
    if "." in segs:
        kept = [seg for seg in segs if seg != "."]
        fixed = "/".join(kept) + "/" if is_dir and kept else "/".join(kept) or "**"
        raise ScopeError(pattern, f'has a "." segment; remove it: "{fixed}"')
    for seg in segs:
        if "[" in seg:
            _scan(seg, pattern)

    if len(segs) > 1 and segs[-1] == _DSTAR:
        segs.pop()
        is_dir = True
    literal = not is_dir and _WILD_RE.search(pattern) is None
    if is_dir:
        segs += ["*", _DSTAR]
    collapsed: list[str] = []
    for seg in segs:
        if not (seg == _DSTAR and collapsed and collapsed[-1] == _DSTAR):
            collapsed.append(seg)

    lits: list[str] = []
    cpre = ""
    for seg in collapsed:
        wild = _WILD_RE.search(seg)
        if wild is None:
            lits.append(seg)
        else:
            cpre = seg[: wild.start()]
            break
    return _Pattern(
        text=pattern,
        segs=tuple(collapsed),
        lits=tuple(lits),
        cpre=cpre,
        min_segs=sum(seg != _DSTAR for seg in collapsed),
        bounded=_DSTAR not in collapsed,
        literal=literal,
    )


def _scan(seg: str, pattern: str) -> tuple[_Token, ...]:
    """The tokens of one segment glob (not "**"); ``pattern`` is only for error messages."""
    tokens: list[_Token] = []
    i = 0
    while i < len(seg):
        ch = seg[i]
        if ch == "*":
            if not tokens or tokens[-1] is not None:
                tokens.append(None)
            i += 1
        elif ch == "?":
            tokens.append(_ANY)
            i += 1
        elif ch == "[":
            end = seg.find("]", i + 1)
            if end < 0:
                raise ScopeError(
                    pattern,
                    'has an unterminated character class (no "]" after "[" in '
                    'the same path segment); close it with "]", or write "[[]" for a literal "["',
                )
            body = seg[i + 1 : end]
            negated = body[:1] in ("!", "^")
            if negated:
                body = body[1:]
            if not body:
                raise ScopeError(
                    pattern,
                    f'has an empty character class "{seg[i : end + 1]}"; list '
                    'the characters it may match, such as "[abc]"',
                )
            tokens.append(_class(body, negated, pattern))
            i = end + 1
        else:
            tokens.append(((ord(ch), ord(ch)),))
            i += 1
    return tuple(tokens)


def _class(body: str, negated: bool, pattern: str) -> _CharSet:
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            first, last = body[i], body[i + 2]
            if first > last:
                raise ScopeError(
                    pattern,
                    f'has a reversed range "{first}-{last}" in a character '
                    f'class; put the lower character first: "{last}-{first}"',
                )
            ranges.append((ord(first), ord(last)))
            i += 3
        else:
            ranges.append((ord(body[i]), ord(body[i])))
            i += 1
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    chars = tuple(merged)
    return _and(_complement(chars) if negated else chars, _ANY)


def _complement(chars: _CharSet) -> _CharSet:
    out: list[tuple[int, int]] = []
    start = 0
    for lo, hi in chars:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= _MAX:
        out.append((start, _MAX))
    return tuple(out)


@lru_cache(maxsize=4096)
def _tokens(seg: str) -> tuple[_Token, ...]:
    return _scan(seg, seg)


def _is_file_path(path: str) -> bool:
    return bool(path) and all(seg not in ("", ".", "..") for seg in path.split("/"))


# --- matching ----------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    """A regex for ``path + "/"``, so that every segment, "**" included, ends in "/"."""
    parts: list[str] = []
    for seg in _parse(pattern).segs:
        parts.append("(?:[^/]+/)*" if seg == _DSTAR else _seg_regex_source(seg) + "/")
    return re.compile("".join(parts), re.DOTALL)


@lru_cache(maxsize=4096)
def _seg_regex(seg: str) -> re.Pattern[str]:
    return re.compile(_seg_regex_source(seg), re.DOTALL)


def _seg_regex_source(seg: str) -> str:
    parts: list[str] = []
    for token in _tokens(seg):
        if token is None:
            parts.append("[^/]*")
        elif len(token) == 1 and token[0][0] == token[0][1]:
            parts.append(re.escape(chr(token[0][0])))
        elif not token:
            parts.append("[^\\s\\S]")
        else:
            # Negated classes become "[^/...]": a set spanning most of Unicode is slow to compile.
            excluded = _complement(token)
            negate = len(excluded) <= len(token)
            ranges = "".join(
                f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}"
                for lo, hi in (excluded if negate else token)
            )
            parts.append(f"[^{ranges}]" if negate else f"[{ranges}]")
    return "".join(parts)


# --- intersection ------------------------------------------------------------------------


def _intersect(pa: _Pattern, pb: _Pattern) -> str | None:
    if (pb.bounded and pa.min_segs > pb.min_segs) or (pa.bounded and pb.min_segs > pa.min_segs):
        return None
    if pa.literal and pb.literal:
        return pa.text if pa.text == pb.text else None
    if pa.bounded and pb.bounded:
        # Without "**" there is one way to line the segments up, and each pair's shortest
        # common name is independent of the others': the path the search would find.
        names = []
        for a, b in zip(pa.segs, pb.segs, strict=True):
            name = _segment_witness(a, b)
            if name is None:
                return None
            names.append(name)
        return "/".join(names)
    last_a, last_b = pa.segs[-1], pb.segs[-1]
    if last_a != _DSTAR and last_b != _DSTAR and _segment_witness(last_a, last_b) is None:
        return None  # a common path would end in a name both last segments match
    return _shortest_path(pa.segs, pb.segs)


def _shortest_path(sa: tuple[str, ...], sb: tuple[str, ...]) -> str | None:
    """Dijkstra over (segment of a, segment of b, any segment yet), costs in characters.

    A "**" either steps aside for free or eats one segment while staying put; two segment
    globs eat one segment together. An eaten segment costs its shortest common name plus "/".
    """
    State = tuple[int, int, bool]
    start: State = (0, 0, False)
    best: dict[State, int] = {start: 0}
    came_from: dict[State, tuple[State, str | None]] = {}
    heap: list[tuple[int, int, int, bool]] = [(0, 0, 0, False)]

    def relax(state: State, cost: int, prev: State, name: str | None) -> None:
        if cost < best.get(state, cost + 1):
            best[state] = cost
            came_from[state] = (prev, name)
            heapq.heappush(heap, (cost, *state))

    while heap:
        cost, i, j, some = heapq.heappop(heap)
        here: State = (i, j, some)
        if best[here] < cost:
            continue
        if i == len(sa) and j == len(sb) and some:
            names: list[str] = []
            while here != start:
                here, name = came_from[here]
                if name is not None:
                    names.append(name)
            return "/".join(reversed(names))
        a_star = i < len(sa) and sa[i] == _DSTAR
        b_star = j < len(sb) and sb[j] == _DSTAR
        if a_star:
            relax((i + 1, j, some), cost, here, None)
        if b_star:
            relax((i, j + 1, some), cost, here, None)
        if i < len(sa) and j < len(sb) and not (a_star and b_star and some):
            name = _segment_witness("*" if a_star else sa[i], "*" if b_star else sb[j])
            if name is not None:
                nxt = (i if a_star else i + 1, j if b_star else j + 1, True)
                relax(nxt, cost + len(name) + 1, here, name)
    return None


@lru_cache(maxsize=65536)
def _segment_witness(a: str, b: str) -> str | None:
    """The shortest valid file name (not empty, "." or "..") matched by both segment globs."""
    a_literal = _WILD_RE.search(a) is None
    b_literal = _WILD_RE.search(b) is None
    if a_literal and b_literal:
        return a if a == b else None
    if a_literal:
        return a if _seg_regex(b).fullmatch(a) else None
    if b_literal:
        return b if _seg_regex(a).fullmatch(b) else None

    # 0-1 BFS over (token of a, token of b, dot state); "*" may step aside for free.
    ta, tb = _tokens(a), _tokens(b)
    State = tuple[int, int, int]
    start: State = (0, 0, 0)
    dist: dict[State, int] = {start: 0}
    came_from: dict[State, tuple[State, int]] = {}
    queue: deque[State] = deque([start])
    done: set[State] = set()
    while queue:
        here = queue.popleft()
        if here in done:
            continue
        done.add(here)
        p, q, dots = here
        if p == len(ta) and q == len(tb) and dots == 3:
            chars: list[str] = []
            while here != start:
                here, char = came_from[here]
                if char >= 0:
                    chars.append(chr(char))
            return "".join(reversed(chars))
        cost = dist[here]
        steps: list[tuple[State, int]] = []
        if p < len(ta) and ta[p] is None:
            steps.append(((p + 1, q, dots), -1))
        if q < len(tb) and tb[q] is None:
            steps.append(((p, q + 1, dots), -1))
        if p < len(ta) and q < len(tb):
            tok_a, tok_b = ta[p], tb[q]
            both = _and(_ANY if tok_a is None else tok_a, _ANY if tok_b is None else tok_b)
            nxt_p = p if tok_a is None else p + 1
            nxt_q = q if tok_b is None else q + 1
            other = _pick(both)
            if other is not None:
                steps.append(((nxt_p, nxt_q, 3), other))
            if _contains(both, _DOT):
                steps.append(((nxt_p, nxt_q, _AFTER_DOT[dots]), _DOT))
        for nxt, char in steps:
            step_cost = 0 if char < 0 else 1
            if cost + step_cost < dist.get(nxt, cost + step_cost + 1):
                dist[nxt] = cost + step_cost
                came_from[nxt] = (here, char)
                if step_cost:
                    queue.append(nxt)
                else:
                    queue.appendleft(nxt)
    return None


def _and(a: _CharSet, b: _CharSet) -> _CharSet:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _contains(chars: _CharSet, code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in chars)


def _pick(chars: _CharSet) -> int | None:
    """A readable character of ``chars`` other than ".", or None if there is none."""
    for code in _PREFERRED:
        if _contains(chars, code):
            return code
    for lo, hi in chars:
        for code in (lo, lo + 1):
            if code <= hi and code != _DOT:
                return code
    return None
