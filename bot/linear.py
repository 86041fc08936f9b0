"""Linear-time regular expressions: every pattern run over untrusted text is compiled here, by RE2 (no backtracking).

RE2 guarantees time linear in the text for any pattern it accepts; it rejects what cannot be linear (lookaround,
backreferences). `COMPILED` lists every pattern compiled through `linear`, so a test can feed each one its worst case.
"""

from __future__ import annotations

from typing import Any

import re2

#: Every pattern compiled by `linear`, in compilation order (for the linearity test and bench).
COMPILED: list[Any] = []

class LinearPatternError(ValueError):
    """A pattern RE2 cannot run in linear time (lookaround, backreference) or cannot parse."""


def linear(pattern: str, *, dot_nl: bool = False, register: bool = True) -> Any:
    """Compile `pattern` with RE2 (Python `re` syntax minus lookaround/backreferences); raises LinearPatternError."""
    options = re2.Options()
    options.log_errors = False  # a rejected pattern raises LinearPatternError; RE2 need not also print it
    options.dot_nl = dot_nl
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        raise LinearPatternError(f"not a linear-time pattern: {pattern!r}: {exc}") from None
    if register:
        COMPILED.append(compiled)
    return compiled


def search_spans(compiled: Any, buf: bytes, pos: int) -> list[tuple[int, int]] | None:
    """The spans (byte offsets; (-1, -1) for a group that did not take part) of the leftmost match in `buf` at or
    after `pos`, or None: the binding's search without the Python objects it builds for each match (a match object,
    a generator, group lookups by name), which cost more than the search on text full of matches."""
    spans: list[tuple[int, int]] = compiled._regexp.Match(re2._Anchor.UNANCHORED, buf, pos, len(buf))
    return None if spans[0] == (-1, -1) else spans
