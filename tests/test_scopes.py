from __future__ import annotations

import itertools
import re
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtrun.scopes import (
    Overlap,
    OverlapStats,
    ScopeError,
    find_overlaps,
    intersection,
    is_literal,
    matches,
    validate,
)

# --- a reference matcher, written independently of the module: pattern -> regex ------------
# (Paths never contain "\n", and the regex never matches one, so ref_matched can scan them all.)


def _ref_is_file_path(path: str) -> bool:
    return path != "" and all(seg not in ("", ".", "..") for seg in path.split("/"))


def _ref_class(body: str) -> str:
    negated = body[:1] in ("!", "^")
    if negated:
        body = body[1:]
    out = ""
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            out += re.escape(body[i]) + "-" + re.escape(body[i + 2])
            i += 3
        else:
            out += re.escape(body[i])
            i += 1
    return "(?![/\n])[" + ("^" if negated else "") + out + "]"


def _ref_segment(seg: str) -> str:
    out = ""
    i = 0
    while i < len(seg):
        ch = seg[i]
        if ch == "*":
            out += "[^/\n]*"
        elif ch == "?":
            out += "[^/\n]"
        elif ch == "[":
            end = seg.index("]", i + 1)
            out += _ref_class(seg[i + 1 : end])
            i = end
        else:
            out += re.escape(ch)
        i += 1
    return out


@cache
def _ref_regex(pattern: str) -> re.Pattern[str]:
    below = pattern.endswith("/")
    segs = pattern.rstrip("/").split("/")
    if len(segs) > 1 and segs[-1] == "**":
        segs.pop()
        below = True
    rx = "".join("(?:[^/\n]+/)*" if seg == "**" else _ref_segment(seg) + "/" for seg in segs)
    if below:
        rx += "[^/\n]+/(?:[^/\n]+/)*"
    return re.compile(rx, re.DOTALL)


def ref_matches(pattern: str, path: str) -> bool:
    return _ref_is_file_path(path) and _ref_regex(pattern).fullmatch(path + "/") is not None


# Every path of up to 3 segments of up to 2 characters, and of up to 2 segments of up to 3
# characters, over {a, b, c, .}; "c" is never in a generated pattern.
def _names(max_len: int) -> list[str]:
    names = [
        "".join(chars)
        for n in range(1, max_len + 1)
        for chars in itertools.product("abc.", repeat=n)
    ]
    return [name for name in names if name not in (".", "..")]


UNIVERSE = sorted(
    {
        "/".join(segs)
        for count, max_len in ((1, 3), (2, 3), (3, 2))
        for segs in itertools.product(_names(max_len), repeat=count)
    },
    key=lambda path: (len(path), path),
)


UNIVERSE_TEXT = "".join(path + "/\n" for path in UNIVERSE)


@cache
def ref_matched(pattern: str) -> frozenset[str]:
    # One scan over all paths (a line each, "/"-terminated); the reference never crosses "\n".
    rx = re.compile(f"^{_ref_regex(pattern).pattern}$", re.MULTILINE)
    return frozenset(m[:-1] for m in rx.findall(UNIVERSE_TEXT) if m)


ATOMS = ["a", "b", ".", "*", "?", "[ab]", "[!a]"]
segments = st.one_of(
    st.just("**"),
    st.lists(st.sampled_from(ATOMS), min_size=1, max_size=3).map("".join),
).filter(lambda seg: seg not in (".", ".."))
patterns = st.builds(
    lambda segs, slash: "/".join(segs) + slash,
    st.lists(segments, min_size=1, max_size=3),
    st.sampled_from(["", "", "/"]),
)


# --- matches -------------------------------------------------------------------------------

MATCH_TABLE = [
    # literal paths name one path, case-sensitively
    ("src/auth", "src/auth", True),
    ("src/auth", "src/auth/x.py", False),
    ("src/auth", "src/Auth", False),
    ("README.md", "README.md", True),
    # "*" and "?" stay within a segment
    ("src/*.ts", "src/a.ts", True),
    ("src/*.ts", "src/.ts", True),
    ("src/*.ts", "src/a/b.ts", False),
    ("*", "a", True),
    ("*", "a/b", False),
    ("?.md", "a.md", True),
    ("?.md", "ab.md", False),
    ("a?b", "a/b", False),
    # "**" as a whole segment: any number of segments, including none
    ("src/**/x.ts", "src/x.ts", True),
    ("src/**/x.ts", "src/a/b/x.ts", True),
    ("src/**/x.ts", "lib/x.ts", False),
    ("**/*.md", "x.md", True),
    ("**/*.md", "docs/a/x.md", True),
    ("**", "a/b/c", True),
    ("a/**/b/**/c", "a/b/c", True),
    ("a/**/b/**/c", "a/x/b/y/z/c", True),
    # "**" inside a segment is "*"
    ("a**b", "axyb", True),
    ("a**b", "a/b", False),
    ("a**b", "ab", True),
    # classes
    ("[abc].py", "b.py", True),
    ("[abc].py", "d.py", False),
    ("[a-z]1", "q1", True),
    ("[a-z]1", "Q1", False),
    ("[!a]x", "bx", True),
    ("[!a]x", "ax", False),
    ("[^a]x", "bx", True),
    ("[^a]x", "ax", False),
    ("a[!b]c", "a/c", False),
    ("[a-]", "-", True),
    ("[[]", "[", True),
    # trailing "/" and "/**": everything below, not the directory itself
    ("a/", "a/x", True),
    ("a/", "a/x/y", True),
    ("a/", "a", False),
    ("a/**", "a/x", True),
    ("a/**", "a/x/y", True),
    ("a/**", "a", False),
    ("a/**", "ab/x", False),
    ("src/*/", "src/a/b", True),
    ("src/*/", "src/a", False),
    # wildcards match names starting with a dot
    ("*", ".env", True),
    ("**/*", ".github/workflows/ci.yml", True),
    ("?env", ".env", True),
    ("[!a]env", ".env", True),
    (".env*", ".env.local", True),
    # not repo-relative file paths: match nothing
    ("**", "", False),
    ("**", "/a", False),
    ("**", "a/", False),
    ("**", "a//b", False),
    ("**", "./a", False),
    ("**", "a/../b", False),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), MATCH_TABLE)
def test_matches_table(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected
    assert ref_matches(pattern, path) is expected


@settings(max_examples=300, deadline=None)
@given(patterns, st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=40))
def test_matches_agrees_with_reference(pattern: str, paths: list[str]) -> None:
    for path in paths:
        assert matches(pattern, path) == ref_matches(pattern, path), path


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab.*?[]!^-/\\", max_size=8), st.sampled_from(UNIVERSE))
def test_any_valid_pattern_agrees_with_reference(pattern: str, path: str) -> None:
    try:
        validate(pattern)
    except ScopeError:
        return
    assert matches(pattern, path) == ref_matches(pattern, path)


# --- literals and validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("src/auth", True),
        ("README.md", True),
        (".env", True),
        ("src/", False),
        ("src/**", False),
        ("*.md", False),
        ("a?", False),
        ("[ab]", False),
    ],
)
def test_is_literal(pattern: str, expected: bool) -> None:
    assert is_literal(pattern) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            "",
            'empty scope pattern; write a path relative to the repository root, such as "src/" '
            'or "src/**/*.ts"',
        ),
        (
            "/src/x",
            'scope "/src/x" is an absolute path; write it relative to the repository root: "src/x"',
        ),
        ("/", 'scope "/" is an absolute path; write it relative to the repository root: "**"'),
        (
            "a/../b",
            'scope "a/../b" has a ".." segment; scopes cannot refer to parent directories, name '
            "the path from the repository root instead",
        ),
        ("./src/", 'scope "./src/" has a "." segment; remove it: "src/"'),
        ("a/./b", 'scope "a/./b" has a "." segment; remove it: "a/b"'),
        (".", 'scope "." has a "." segment; remove it: "**"'),
        ("a//b", 'scope "a//b" has an empty segment ("//"); use a single "/": "a/b"'),
        ("a//", 'scope "a//" has an empty segment ("//"); use a single "/": "a/"'),
        (
            "src\\x",
            'scope "src\\x" contains "\\"; separate directories with "/", and note that '
            "backslash escapes are not supported",
        ),
        (
            "a[bc",
            'scope "a[bc" has an unterminated character class (no "]" after "[" in the same '
            'path segment); close it with "]", or write "[[]" for a literal "["',
        ),
        (
            "a[b/c]",
            'scope "a[b/c]" has an unterminated character class (no "]" after "[" in the same '
            'path segment); close it with "]", or write "[[]" for a literal "["',
        ),
        (
            "a[]",
            'scope "a[]" has an empty character class "[]"; list the characters it may match, '
            'such as "[abc]"',
        ),
        (
            "[!]x",
            'scope "[!]x" has an empty character class "[!]"; list the characters it may '
            'match, such as "[abc]"',
        ),
        (
            "[z-a]",
            'scope "[z-a]" has a reversed range "z-a" in a character class; put the lower '
            'character first: "a-z"',
        ),
    ],
)
def test_invalid_patterns(pattern: str, message: str) -> None:
    with pytest.raises(ScopeError) as info:
        validate(pattern)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)
    with pytest.raises(ScopeError):
        matches(pattern, "a")
    with pytest.raises(ScopeError):
        intersection(pattern, "a")


@pytest.mark.parametrize(
    "pattern", ["a**b", "***", "src/**/", "**/", "a/**/**", "]", ".a/..b", "a/.../b"]
)
def test_unusual_valid_patterns(pattern: str) -> None:
    validate(pattern)


# --- intersection --------------------------------------------------------------------------

INTERSECTION_TABLE = [
    ("src/**/*.ts", "src/api/pay*.ts", "src/api/pay.ts"),
    ("a/", "a", None),
    ("a/**", "a", None),
    ("a/**", "a/b", "a/b"),
    ("a/", "a/**", "a/x"),
    ("*.md", "docs/x.md", None),
    ("**/*.md", "docs/x.md", "docs/x.md"),
    ("[!a]*", "a*", None),
    (".env*", "*", ".env"),
    ("src/auth", "src/auth", "src/auth"),
    ("src/auth", "src/auth.ts", None),
    ("src/auth", "src/", "src/auth"),
    ("src/auth/", "src/auth/**", "src/auth/x"),
    ("src/**", "**/*.ts", "src/.ts"),
    ("**", "**", "x"),
    ("*", "*", "x"),
    ("*", "a/b", None),
    ("**/x", "x", "x"),
    ("**/x/**", "a/**/b", "a/x/b"),
    ("a/**/b/**", "**/c/*", "a/b/c/x"),
    ("[a-z]x", "[!b-y]?", "ax"),
    ("[ab]", "[!ab]", None),
    ("[a-c]", "[c-e]", "c"),
    ("?", "??", None),
    (".?", "?.", None),
    (".*", "*", ".x"),
    ("*.*", "*", "x."),
    ("a*", "*b", "ab"),
    ("a*b*c", "*c*b*", "acbc"),
    ("**/*.ts", "src/**/*.tsx", None),
    ("src/*/", "src/a", None),
    ("src/*/", "src/a/b", "src/a/b"),
    ("docs/", "*/x", "docs/x"),
    ("a**b", "a/b", None),
]


@pytest.mark.parametrize(("a", "b", "expected"), INTERSECTION_TABLE)
def test_intersection_table(a: str, b: str, expected: str | None) -> None:
    assert intersection(a, b) == expected
    assert intersection(b, a) == expected


@settings(max_examples=400, deadline=None)
@given(patterns, patterns)
def test_intersection_is_exact_and_shortest(a: str, b: str) -> None:
    example = intersection(a, b)
    if example is not None:
        # no false overlap: both patterns match the example
        assert matches(a, example)
        assert matches(b, example)
        assert ref_matches(a, example)
        assert ref_matches(b, example)
    common = ref_matched(a) & ref_matched(b)
    if common:
        # no false "disjoint", and nothing shorter exists in the brute-force universe
        assert example is not None
        assert len(example) <= min(len(path) for path in common)
    reverse = intersection(b, a)
    assert (reverse is None) == (example is None)
    if reverse is not None and example is not None:
        assert len(reverse) == len(example)


@settings(max_examples=200, deadline=None)
@given(patterns, st.sampled_from(UNIVERSE))
def test_literal_path_intersection_is_matching(pattern: str, path: str) -> None:
    expected = path if ref_matches(pattern, path) else None
    assert intersection(pattern, path) == expected
    assert intersection(path, pattern) == expected


# --- find_overlaps -------------------------------------------------------------------------


def naive_overlaps(
    scopes: list[tuple[str, list[str]]], together: set[frozenset[str]]
) -> tuple[list[Overlap], int]:
    found: list[Overlap] = []
    pairs = 0
    for (i, (id_a, pats_a)), (id_b, pats_b) in itertools.product(enumerate(scopes), scopes):
        if [s[0] for s in scopes].index(id_b) <= i:
            continue
        pairs += len(pats_a) * len(pats_b)
        if frozenset((id_a, id_b)) not in together:
            continue
        for pat_a, pat_b in itertools.product(pats_a, pats_b):
            example = intersection(pat_a, pat_b)
            if example is not None:
                found.append(Overlap(id_a, pat_a, id_b, pat_b, example))
                break
    return found, pairs


# Patterns for plans: shared literal prefixes (at segment and character level) before globs.
PLAN_PATTERNS = sorted(
    {
        prefix + tail
        for prefix in ["", "src/", "src/a/", "src/ab/", "docs/", "a/"]
        for tail in [
            *["**", "*", "a", "ab", "x.md", ".a", "b/", "a/", "a/**", "src/"],
            *["*.md", "**/*.md", "a*", "ab*", "*b", "[ab]?", "[!a]", "?/x.md", "*/b", "a/**/b"],
        ]
    }
)


@st.composite
def plans(draw: st.DrawFn) -> tuple[list[tuple[str, list[str]]], set[frozenset[str]]]:
    count = draw(st.integers(min_value=1, max_value=7))
    ids = [f"t{i}" for i in range(count)]
    scopes = [
        (task, draw(st.lists(st.sampled_from(PLAN_PATTERNS), min_size=1, max_size=3)))
        for task in ids
    ]
    pairs = [frozenset(pair) for pair in itertools.combinations(ids, 2)]
    together = {pair for pair in pairs if draw(st.booleans())}
    return scopes, together


@settings(max_examples=300, deadline=None)
@given(plans())
def test_find_overlaps_equals_naive(
    plan: tuple[list[tuple[str, list[str]]], set[frozenset[str]]],
) -> None:
    scopes, together = plan
    asked: list[tuple[str, str]] = []

    def may_run_together(a: str, b: str) -> bool:
        asked.append((a, b))
        return frozenset((a, b)) in together

    stats = OverlapStats(patterns=0, pairs_compared=0)
    found = find_overlaps(scopes, may_run_together, stats)
    expected, naive_pairs = naive_overlaps(scopes, together)
    assert found == expected
    assert stats.patterns == sum(len(pats) for _, pats in scopes)
    assert stats.pairs_compared <= naive_pairs
    order = [task for task, _ in scopes]
    assert all(order.index(a) < order.index(b) for a, b in asked)
    assert len(asked) == len(set(asked))


def test_find_overlaps_example() -> None:
    scopes = [
        ("auth", ["src/auth/**", "tests/auth/**"]),
        ("payments", ["src/api/payments.ts", "src/api/payments/**"]),
        ("api-types", ["src/api/**/*.ts"]),
        ("docs", ["docs/payments.md"]),
        ("all-docs", ["**/*.md"]),
        ("stacked", ["src/auth/session.ts"]),
    ]
    after = {frozenset(("auth", "stacked"))}
    found = find_overlaps(scopes, lambda a, b: frozenset((a, b)) not in after)
    assert found == [
        Overlap("auth", "src/auth/**", "all-docs", "**/*.md", "src/auth/.md"),
        Overlap("payments", "src/api/payments.ts", "api-types", "src/api/**/*.ts",
                "src/api/payments.ts"),
        Overlap("payments", "src/api/payments/**", "all-docs", "**/*.md",
                "src/api/payments/.md"),
        Overlap("docs", "docs/payments.md", "all-docs", "**/*.md", "docs/payments.md"),
    ]  # fmt: skip


def test_find_overlaps_skips_tasks_that_never_run_together() -> None:
    scopes = [("a", ["src/"]), ("b", ["src/x"])]
    assert find_overlaps(scopes, lambda a, b: False) == []
    assert find_overlaps(scopes, lambda a, b: True) == [Overlap("a", "src/", "b", "src/x", "src/x")]


def test_find_overlaps_compares_only_compatible_prefixes() -> None:
    scopes = [
        (f"t{i}", [f"src/mod{i}/**", f"tests/mod{i}.py", f"docs/m{i}-*.md"]) for i in range(60)
    ]
    scopes.append(("root-files", ["*.toml", "Makefile", "**/*.lock"]))
    stats = OverlapStats(patterns=0, pairs_compared=0)
    found = find_overlaps(scopes, lambda a, b: True, stats)
    assert found == [
        Overlap(f"t{i}", f"src/mod{i}/**", "root-files", "**/*.lock", f"src/mod{i}/.lock")
        for i in range(60)
    ]
    naive = sum(len(a[1]) * len(b[1]) for a, b in itertools.combinations(scopes, 2))
    assert stats.patterns == 183
    # literal prefixes keep the tasks apart; "*.toml" has one segment, so it meets no other
    # pattern; "**/*.lock" meets everyone, and one overlap per task pair is enough
    assert stats.pairs_compared == 60
    assert stats.pairs_compared < naive / 200


def test_find_overlaps_character_prefixes() -> None:
    scopes = [("a", ["src/pay*.ts"]), ("b", ["src/api/x.ts"]), ("c", ["src/p*"])]
    stats = OverlapStats(patterns=0, pairs_compared=0)
    found = find_overlaps(scopes, lambda a, b: True, stats)
    assert found == [Overlap("a", "src/pay*.ts", "c", "src/p*", "src/pay.ts")]
    assert stats.pairs_compared == 1


def test_matches_refuses_early_only_what_the_regex_refuses() -> None:
    """`matches` skips the regex when the segment count or a literal first segment rules a
    path out: on every pattern and path here it answers what the reference matcher does."""
    patterns = [
        "src/**",
        "src/*.py",
        "src/",
        "**/*.md",
        "*.md",
        "CLAUDE*",
        "*",
        "**",
        "s?c/**",
        "[st]rc/**",
        "src/**/test_*.py",
        "docs/*/index.md",
        "a/b/c",
        ".wtrun/*.md",
        "src/mod4/part8/**",
        "src/mod4/*-8.md",
        "**/CLAUDE.local.md",
        "[!a]*",
        "{a,b}/**",
    ]
    paths = [
        "src",
        "src/a.py",
        "src/x/y.py",
        "src/x/test_y.py",
        "docs/a/index.md",
        "README.md",
        "CLAUDE.local.md",
        "AGENTS.md",
        ".wtrun/instructions.md",
        "*/x",
        "a/b/c",
        "a/b",
        "src/mod4/part8/x.ts",
        "src/mod4/a-8.md",
        "stc/q",
        "b/c",
        "x/CLAUDE.local.md",
    ]
    for pattern in patterns:
        for path in paths:
            assert matches(pattern, path) == ref_matches(pattern, path), (pattern, path)
    assert matches("src/**", "src/a.py") and not matches("src/**", "docs/a.md")
