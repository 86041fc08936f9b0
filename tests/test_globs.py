"""Path globs: equivalence with a reference matcher, absurd patterns rejected with their line, compiled once."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.config.globs import (
    GlobError,
    check_glob,
    compile_globs,
    first_match,
    glob_regex,
    path_matches,
)
from bot.config.layer import parse_layer
from bot.linear import linear

# ---------------------------------------------------------------- the reference: the semantics, one char at a time


def _ref_normalise(pattern: str) -> str:
    pat = pattern.strip()
    while pat[:2] == "./":
        pat = pat[2:]
    if pat[-1:] == "/":
        pat = pat + "**"
    if pat[:1] == "/":
        return pat.lstrip("/")
    core = pat.rstrip("/")
    if core.endswith("/**"):
        core = core[: -len("/**")]
    return pat if "/" in core else "**/" + pat


def _ref_class(body: str, ch: str) -> bool:
    """Whether `ch` is in the glob class `body` (between the brackets); a class never matches '/'."""
    if ch == "/":
        return False
    negated = body[:1] in ("!", "^")
    if negated:
        body = body[1:]
    found = False
    j = 0
    while j < len(body):
        if j + 2 < len(body) and body[j + 1] == "-":
            found = found or body[j] <= ch <= body[j + 2]
            j += 3
        else:
            found = found or body[j] == ch
            j += 1
    return found != negated


def reference_match(path: str, pattern: str) -> bool:
    """A direct backtracking matcher of the documented semantics (exponential: small inputs only)."""
    pat = _ref_normalise(pattern)

    @cache
    def go(i: int, j: int) -> bool:
        if i == len(pat):
            return j == len(path)
        if pat[i : i + 3] == "**/":
            # nothing, or anything ending with "/"
            return go(i + 3, j) or any(path[k] == "/" and go(i + 3, k + 1) for k in range(j, len(path)))
        if pat[i : i + 2] == "**":
            return any(go(i + 2, k) for k in range(j, len(path) + 1))
        if pat[i] == "*":
            k = j
            while True:
                if go(i + 1, k):
                    return True
                if k == len(path) or path[k] == "/":
                    return False
                k += 1
        if j == len(path):
            return False
        if pat[i] == "?":
            return path[j] != "/" and go(i + 1, j + 1)
        if pat[i] == "[":
            end = pat.find("]", i + 2)
            if end >= 0 and "/" not in pat[i:end]:
                return _ref_class(pat[i + 1 : end], path[j]) and go(end + 1, j + 1)
        return pat[i] == path[j] and go(i + 1, j + 1)

    return go(0, 0)


def _valid(pattern: str) -> bool:
    try:
        check_glob(pattern)
    except GlobError:
        return False
    return True


patterns = st.text(alphabet="ab/*?[]!-.", min_size=1, max_size=10).filter(_valid)
paths = st.text(alphabet="ab/.-", min_size=0, max_size=12)


@hypothesis_settings(max_examples=1500, deadline=None)
@given(patterns, paths)
def test_matches_like_the_reference(pattern: str, path: str) -> None:
    assert path_matches(path, pattern) is reference_match(path, pattern)


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=5), paths)
def test_first_match_is_the_first_reference_match(globs: list[str], path: str) -> None:
    expected = next((i for i, g in enumerate(globs) if reference_match(path, g)), None)
    assert first_match(path, globs) == expected


@pytest.mark.parametrize(
    ("path", "glob", "expected"),
    [
        ("a/b/x.lock", "*.lock", True),
        ("a/vendor/x.py", "vendor/", True),
        ("a/b", "a/**/b", True),
        ("a/x/y/b", "a/**/b", True),
        ("ab", "a/**/b", False),
        ("a/c", "a/[!b]", True),
        ("a/b", "a/[!b]", False),
        ("a/-", "a/[+-0]", True),
        ("a/b/c", "a/[+-0]b/c", False),  # a class never matches "/", even through a range spanning it
        ("a\nb", "a*b", True),  # a newline in a name is just a character
        ("x/[ab]", "x/[ab]", False),
        ("x/a", "x/[ab]", True),
        ("x/[/]", "x/[/]", True),  # "[" before a "/" is literal
    ],
)
def test_examples(path: str, glob: str, expected: bool) -> None:
    assert path_matches(path, glob) is expected
    assert reference_match(path, glob) is expected


@pytest.mark.parametrize(
    ("glob", "fragment"),
    [
        ("", "must not be empty"),
        ("a" * 201, "at most 200 characters"),
        ("**/" * 9 + "x", "`**` at most 8 times"),
        ("src/[z-a].py", "out of order"),
    ],
)
def test_absurd_globs_are_rejected(glob: str, fragment: str) -> None:
    with pytest.raises(GlobError, match=fragment.replace("`", "\\`").replace("*", "\\*")):
        check_glob(glob)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("enabled: true\npaths:\n  exclude:\n    - ok/**\n    - '" + "**/" * 9 + "x'\n", 5, "at most 8 times"),
        ("paths:\n  include:\n    - '" + "*a" * 101 + "'\n", 3, "at most 200 characters"),
        ("instructions:\n  - path: '[z-a]'\n    text: t\n", 2, "out of order"),
        ("instructions:\n  - path: '" + "**/" * 9 + "x'\n    text: t\n", 2, "at most 8 times"),
    ],
)
def test_config_rejects_absurd_globs_with_their_line(text: str, line: int, fragment: str) -> None:
    data, problems = parse_layer(text, "f.yml")
    assert data == {}
    hits = [p for p in problems if fragment in p.message]
    assert hits and hits[0].line == line, problems


def test_eight_double_stars_are_still_valid() -> None:
    glob = "**/" * 8 + "x"
    check_glob(glob)
    assert path_matches("a/b/c/x", glob)


def test_compiled_once_per_pattern_set() -> None:
    globs = ("src/**", "*.py")
    assert compile_globs(globs) is compile_globs(globs)


def test_every_glob_is_an_re2_expression() -> None:
    # RE2 refuses anything that could backtrack, so compiling is the linearity proof.
    for glob in ("**/" * 8 + "*a*a*a*b", "[!a-z]*?/**", "a/**", "*"):
        linear(glob_regex(glob), register=False)


def test_pathological_glob_on_a_long_path_answers() -> None:
    # The stalls: nine `**/` against a 64-char path; `*a*a*a*b` on 800 chars (here 4,096, both answers known).
    assert not path_matches("a/" * 2047 + "c", "**/" * 8 + "*a*a*a*b")
    assert path_matches("a" * 4095 + "b", "*a*a*a*b")
