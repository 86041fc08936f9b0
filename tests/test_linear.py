"""Every pattern run over untrusted text is linear: compiled by RE2 (which refuses backtracking constructs) and fed
100,000 characters of its own worst case, with the expected result (no wall-clock bounds: RE2 is the proof)."""

from __future__ import annotations

import re

import pytest
import re2

from bot import context_render, invisible, masking, prose, sanitize
from bot.linear import COMPILED, LinearPatternError, linear

N = 100_000

# Inputs that make backtracking engines quadratic or worse on these rule shapes: long runs of a rule's prefix
# or body class that never complete a match.
WORST_CASES = {
    "repeated eyJ": "eyJ" * (N // 3),
    "dotted run": "a." * (N // 2),
    "dashes": "-" * N,
    "one letter": "a" * N,
    "repeated assignment key": "password=" * (N // 9),
    "repeated scheme and user": "://a:" * (N // 5),
    "aws then letters": "aws" + "x" * N,
    "repeated AKIA": "AKIA" * (N // 4),
    "repeated token prefixes": "ghp_xoxb-glpat-npm_pypi-SG." * (N // 27),
    "repeated BEGIN": "-----BEGIN PRIVATE KEY-----" * (N // 27),
    "spaces": " " * N,
    "zero-width run": "\u200b" * N,
    "selectors after letters": "a\ufe0f" * (N // 2),
    "image starts": "![" * (N // 2),
    "link starts": "[a](" * (N // 4),
    "tags": "<img" * (N // 4),
    "mentions": "_@a" * (N // 3),
    "escapes": "\\" * N,
    "bot words": "bors " * (N // 5),
    "backticks": "`" * N,
    "markers": "<!--" * (N // 4),
    "indented lines": (" " * 299 + "x\n") * (N // 301 + 1),
}


def all_patterns() -> list[object]:
    masking.rules()
    masking._assignment()
    masking._key_patterns()
    invisible._patterns()
    prose._patterns()
    prose._bot_pattern()
    assert sanitize._MARKER in COMPILED and context_render._IMPORT in COMPILED  # compiled at import
    return list(COMPILED)


def test_every_registered_pattern_is_re2() -> None:
    patterns = all_patterns()
    assert len(patterns) >= 40  # every masking rule, detect-secrets' included, and the invisible-character finders
    assert all(type(p).__module__ == re2.__name__ for p in patterns)  # RE2 objects: linear time


def test_backtracking_constructs_are_refused() -> None:
    for pattern in (r"(?<![a-z])x", r"(a)\1", r"x(?=y)", r"x(?!y)"):
        with pytest.raises(LinearPatternError):
            linear(pattern, register=False)


@pytest.mark.parametrize("case", sorted(WORST_CASES))
def test_each_pattern_on_each_worst_case(case: str) -> None:
    text = WORST_CASES[case]
    assert len(text) >= N - 30
    for pattern in all_patterns():
        # Matches found must be real substrings, in order, never overlapping: the scan finishes and is sane.
        end = 0
        for m in pattern.finditer(text):  # type: ignore[attr-defined]
            assert m.start() >= end
            end = m.end()


def test_worst_cases_of_the_issue_give_the_right_answers() -> None:
    assert masking.mask_secrets("eyJ" * (N // 3)) == "eyJ" * (N // 3)  # no JWT: nothing masked
    dotted = "a." * (N // 2)
    assert masking.mask_secrets(dotted) == dotted
    assert masking.mask_secrets("password=" * (N // 9)) == "password=" + masking.MASK  # one key, one long value
    hidden = "x\u200b" * (N // 2)
    assert invisible.mark_invisible(hidden).count("⟦U+200B⟧") == N // 2


def test_library_rules_all_compile_under_re2() -> None:
    names = {rule.name for rule in masking.rules()}
    for plugin in masking.library_plugins():
        assert f"detect-secrets {plugin.__name__}" in names
        for pattern in plugin.denylist:  # type: ignore[attr-defined]
            assert isinstance(pattern, re.Pattern)
            linear(masking._library_expression(pattern), register=False)
