"""bot.prose finds exactly the constructs the previous backtracking pattern found, on RE2, in one linear pass.

The reference below is the pattern `bot.sanitize` used before (Python `re`, with lookbehind and lookahead): the
two are compared on generated text, then the scan is fed 100,000 characters of each construct's worst case and its
work is counted (no wall-clock bound: the number of RE2 searches is the proof, each of them linear).
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import prose, sanitize
from bot.linear import search_spans
from bot.prose import bot_words, constructs


def _is_re2(pattern: object) -> bool:
    return type(pattern).__module__ == re2.__name__  # RE2 objects: linear time

REFERENCE = re.compile(
    r"(?P<image>!\[[^\[\]\n]*\]\([^()\s]*(?:[ \t]+\"[^\"\n]*\")?\)|<(?:img|image|svg|picture|video)\b[^>\n]*>?)"
    r"|(?P<link>\[(?P<text>[^\[\]\n]*)\]\((?P<url>[^()\s<>`]*)(?:[ \t]+\"[^\"\n]*\")?\))"
    r"|(?P<url2>(?:[A-Za-z][A-Za-z0-9+.-]{1,20}://|www\.)[^\s<>`\\]*)"
    r"|(?P<xref>(?<![A-Za-z0-9_./-])[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9_.-]+#[0-9]+)"
    r"|(?P<mention>(?<![A-Za-z0-9])\\?@(?P<login>[A-Za-z0-9][A-Za-z0-9_-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)?"
    r"(?:@[A-Za-z0-9_.@/-]*)?))"
    r"|(?<![A-Za-z0-9_])(?P<bot>bors|atlantis|digger)"
    r"(?=\s+(?:r[+\-=]|try|delegate|merge|retry|cancel|ping|p=|apply|plan|unlock|import|approve_policies|state))"
    r"|(?P<esc>\\[!-/:-@\[-`{-~])"
    r"|(?P<entity>&(?:\#[0-9]{1,8}|\#[xX][0-9A-Fa-f]{1,8}|[A-Za-z][A-Za-z0-9]{1,31});)"
    r"|(?P<mask>\*{12,})"
    r"|(?P<tilde>~{3,})"
    r"|(?P<special>[<\[\]|])",
    re.I,
)
REFERENCE_BOT = re.compile(
    r"(?i)(?<![A-Za-z0-9_])(?P<word>bors|atlantis|digger)"
    r"(?=\s+(?:r[+\-=]|try|delegate|merge|retry|cancel|ping|p=|apply|plan|unlock|import|approve_policies|state))"
)
_NAMES = {"url2": "url"}


def reference(text: str) -> list[tuple[str, int, int, str]]:
    """(kind, start, end, detail) of each construct, as the previous pattern found them."""
    out = []
    for m in REFERENCE.finditer(text):
        kind = next(k for k in ("image", "link", "url2", "xref", "mention", "bot", "esc", "entity", "mask", "tilde",
                                "special") if m.group(k) is not None)
        detail = {"link": f"{m.group('text')}|{m.group('url')}", "mention": m.group("login"), "bot": m.group("bot")}
        out.append((_NAMES.get(kind, kind), m.start(), m.end(), detail.get(kind) or ""))
    return out


def found(text: str) -> list[tuple[str, int, int, str]]:
    detail = {"link": lambda c: f"{c.label}|{c.target}", "mention": lambda c: c.login, "bot": lambda c: c.word}
    return [(c.kind, c.start, c.end, detail[c.kind](c) if c.kind in detail else "") for c in constructs(text)]


# Pieces that make the constructs, their near misses, and the characters their context rules look at (case
# folding included: Python's IGNORECASE matches K, ſ, İ and ı for k, s, i).
PIECES = ["@", "\\", "_", "-", ".", "/", "#", "1", "a", "x", "o/r#12", "bors", "BORS", "Atlantis", "digger", " ",
          "\t", "\u00a0", "\u3000", "\x1c", "r+", "try", "tryhard", "p=", "[", "]", "(", ")", "!", "<", ">", "img",
          "svg", "é", "\u212a", "\u017f", "\u0130", "\u0131", "&", ";", "amp", "#x1F", "*", "*" * 12, "~", "~~~",
          "|", "`", '"', "://", "https", "www.", "WWW.", "http://e.com", "ab-c", "ü", "\ud800"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=16).map("".join))
def test_the_same_constructs_as_the_backtracking_pattern(text: str) -> None:
    assert found(text) == reference(text)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from([*PIECES, "\n", "atlantis", " plan", "\n\tapply"]), max_size=16).map("".join))
def test_the_same_bot_words_as_the_backtracking_pattern(text: str) -> None:
    assert bot_words(text) == [m.span("word") for m in REFERENCE_BOT.finditer(text)]


@pytest.mark.parametrize(("text", "expected"), [
    ("]]@a", [("special", 0, 1, ""), ("special", 1, 2, ""), ("mention", 2, 4, "a")]),  # touching: still found
    ("\\_@a", [("esc", 0, 2, ""), ("mention", 2, 4, "a")]),
    ("me@host x@y _@z", [("mention", 13, 15, "z")]),  # e-mail-like text is left alone
    ("x/o/r#1 -o/r#1 (o/r#1)", [("xref", 16, 21, "")]),  # only outside a word or path
    ("bors r+ xbors r+ -bors\u3000try", [("bot", 0, 4, "bors"), ("bot", 18, 22, "bors")]),
    ("<img src=x> <imgx> <image>", [("image", 0, 11, ""), ("special", 12, 13, ""), ("image", 19, 26, "")]),
])
def test_context_rules(text: str, expected: list[tuple[str, int, int, str]]) -> None:
    assert found(text) == expected == reference(text)


def test_every_pattern_is_re2_and_re_is_not_imported() -> None:
    first, later = prose._patterns()
    for pattern in (first, later, prose._bot_pattern(), sanitize._REPO_URL_SAFE, sanitize._BACKTICKS,
                    sanitize._CODE_COMMAND, sanitize._PROSE_COMMAND, sanitize._MARKER, sanitize._FENCE_OPEN):
        assert _is_re2(pattern)
    assert "re" not in vars(prose) and "re" not in vars(sanitize)  # no backtracking engine left to call


N = 100_000
# Each construct's worst case: long runs of its beginning that never complete, or that complete at every step.
WORST = {
    "image starts": "![" * (N // 2),
    "image, no closing parenthesis": ("![a](" + "b" * 95) * (N // 100),
    "tags": "<img" * (N // 4),
    "link starts": "[a](" * (N // 4),
    "unclosed link text": "[" + "a" * N,
    "scheme run": "a" * N + "://",
    "schemes": "a://" * (N // 4),
    "www": "www." * (N // 4),
    "path-like": "a/" * (N // 2),
    "dashed reference": "-a/b#" * (N // 5),
    "at signs": "@" * N,
    "escaped at signs": "\\@" * (N // 2),
    "underscore mentions": "_@a" * (N // 3),
    "entities": "&#" * (N // 2),
    "short star runs": "*" * 11 + " ",
    "tildes": "~~ " * (N // 3),
    "bot words without a command": "bors " * (N // 5),
    "bot word, long whitespace": "bors" + " " * N + "r+",
    "brackets": "]" * N,
}


@pytest.mark.parametrize("case", sorted(WORST))
def test_worst_cases_take_one_search_per_construct(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = WORST[case] * (N // len(WORST[case]) if len(WORST[case]) < N // 2 else 1)
    searches = 0

    def counting(compiled: Any, buf: bytes, pos: int) -> Any:
        nonlocal searches
        searches += 1
        assert _is_re2(compiled)
        return search_spans(compiled, buf, pos)

    monkeypatch.setattr(prose, "search_spans", counting)
    result = constructs(text)
    assert searches <= len(result) + 1  # each search reads on to the next construct
    assert all(a.end <= b.start for a, b in pairwise(result))
    small = text[:2_000]  # the backtracking reference is quadratic on some of these: compare on a slice
    monkeypatch.undo()
    assert found(small) == reference(small)


def test_a_bot_word_after_any_whitespace_run() -> None:
    assert bot_words("bors" + "\u00a0" * N + "r+") == [(0, 4)]
    assert bot_words("x" + "bors " * (N // 5)) == []
