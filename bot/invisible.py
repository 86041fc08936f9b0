"""Hidden text made visible: invisible and direction-changing characters become `⟦U+XXXX⟧` markers (no I/O).

Everything from a pull request that reaches the model (title, description, file names, diff lines) goes through
`mark_invisible`, so the model sees what a reader of the PR cannot: Unicode format characters (category Cf: zero-width
spaces and joiners, bidi embeddings, overrides and isolates, the tag block, the BOM...), a few invisible letters
used to hide identifiers (Hangul fillers...), and variation selectors that do not follow an emoji. One character
becomes one marker on the same line, so line numbers and anchoring are unchanged. `strip_html_comments` removes
what GitHub hides in a title or description.
"""

from __future__ import annotations

import bisect
import unicodedata
from functools import cache

from bot.linear import linear

MARK_OPEN, MARK_CLOSE = "\u27e6", "\u27e7"  # ⟦ ⟧

#: Bidi controls (Trojan Source, CVE-2021-42574): embeddings, overrides, isolates, marks.
BIDI_CONTROLS = frozenset(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
# Invisible letters and fillers outside category Cf that render as nothing.
_INVISIBLE_OTHER = (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x3164, 0xFFA0)
_VARIATION_SELECTORS = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
_SELECTORS = frozenset(chr(cp) for cp in [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)])
# What VS15/VS16 legitimately follow: keycap bases and the emoji blocks (not the `⟧` that ends a marker).
_EMOJI_RANGES = (
    (0x23, 0x23), (0x2A, 0x2A), (0x30, 0x39), (0xA9, 0xA9), (0xAE, 0xAE), (0x203C, 0x203C), (0x2049, 0x2049),
    (0x2122, 0x2122), (0x2139, 0x2139), (0x2194, 0x21AA), (0x231A, 0x23FF), (0x24C2, 0x24C2), (0x25AA, 0x27BF),
    (0x2934, 0x2935), (0x2B05, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297), (0x3299, 0x3299),
    (0x1F000, 0x1FAFF),
)
_EMOJI_STARTS = tuple(start for start, _ in _EMOJI_RANGES)


def marker(ch: str) -> str:
    """The visible stand-in for one hidden character, e.g. `⟦U+202E⟧`."""
    return f"{MARK_OPEN}U+{ord(ch):04X}{MARK_CLOSE}"


@cache
def _hidden_code_points() -> tuple[int, ...]:
    """Category Cf (planes 0, 1 and 14 hold all of them) plus the invisible letters and the tag block."""
    found = {cp for plane in (range(0x0, 0x20000), range(0xE0000, 0xE1000))
             for cp in plane if unicodedata.category(chr(cp)) == "Cf"}
    found.update(_INVISIBLE_OTHER)
    found.update(range(0xE0000, 0xE0080))  # the tag block, assigned or not
    found.update(BIDI_CONTROLS)
    return tuple(sorted(found))


def _class_of(code_points: tuple[int, ...]) -> str:
    """An RE2 character class of the code points (as ranges)."""
    parts: list[str] = []
    start = prev = code_points[0]
    for cp in (*code_points[1:], -1):
        if cp == prev + 1:
            prev = cp
            continue
        parts.append(f"\\x{{{start:x}}}" + (f"-\\x{{{prev:x}}}" if prev != start else ""))
        start = prev = cp
    return "[" + "".join(parts) + "]"


@cache
def _patterns() -> tuple[object, object]:
    """(any hidden character or variation selector, any variation selector)."""
    vs = f"[{_VARIATION_SELECTORS}]"
    return linear(f"{_class_of(_hidden_code_points())}|{vs}"), linear(vs)


@cache
def _table() -> dict[int, str]:
    return {cp: marker(chr(cp)) for cp in _hidden_code_points()}


@cache
def _deletions() -> dict[int, None]:
    selectors = [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
    return dict.fromkeys([*_hidden_code_points(), *selectors])


def has_hidden(text: str) -> bool:
    """Whether `text` holds any character `mark_invisible` would change (or a variation selector)."""
    finder, _ = _patterns()
    return finder.search(text) is not None  # type: ignore[attr-defined]


def is_hidden(ch: str) -> bool:
    """Whether the one character `ch` is hidden (a variation selector counts)."""
    return ord(ch) in _deletions()


def mark_invisible(text: str) -> str:
    """`text` with every invisible or direction-changing character replaced by its `⟦U+XXXX⟧` marker."""
    if not has_hidden(text):
        return text
    text = text.translate(_table())  # str.translate: one C-speed pass, whatever the count
    _, selector = _patterns()
    if selector.search(text) is None:  # type: ignore[attr-defined]
        return text
    return _mark_selectors(text)


def _mark_selectors(text: str) -> str:
    """Mark variation selectors, except those right after an emoji base (or after such a kept selector)."""
    out: list[str] = []
    prev = ""  # the last character that is not a selector
    kept: bool | None = None  # whether the current run of selectors follows an emoji base (None: not yet known)
    for ch in text:
        if ch in _SELECTORS:
            if kept is None:
                kept = _is_emoji_base(prev) if prev else False
            out.append(ch if kept else marker(ch))
        else:
            out.append(ch)
            prev, kept = ch, None
    return "".join(out)


def _is_emoji_base(ch: str) -> bool:
    code = ord(ch)
    at = bisect.bisect_right(_EMOJI_STARTS, code) - 1
    return at >= 0 and code <= _EMOJI_RANGES[at][1]


def strip_html_comments(text: str) -> str:
    """`text` without `<!-- ... -->` comments (GitHub hides them), except inside fenced code blocks.

    An unclosed `<!--` hides the rest of the text on GitHub, so it is removed to the end.
    """
    if "<!--" not in text:
        return text
    out: list[str] = []
    fence = ""
    in_comment = False
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if not in_comment and fence:
            out.append(line)
            if stripped.startswith(fence) and not stripped.lstrip(fence[0]).strip():
                fence = ""
            continue
        if not in_comment and stripped[:3] in ("```", "~~~") and len(line) - len(stripped) < 4:
            run = len(stripped) - len(stripped.lstrip(stripped[0]))
            fence = stripped[0] * run
            out.append(line)
            continue
        kept, in_comment = _strip_line(line, in_comment)
        if kept is not None:
            out.append(kept)
    return "\n".join(out)


def _strip_line(line: str, in_comment: bool) -> tuple[str | None, bool]:
    """One line without its comment parts; None when the whole line was inside a comment."""
    parts: list[str] = []
    pos = 0
    touched = in_comment
    while pos <= len(line):
        if in_comment:
            end = line.find("-->", pos)
            if end < 0:
                break
            pos, in_comment = end + 3, False
        else:
            start = line.find("<!--", pos)
            if start < 0:
                parts.append(line[pos:])
                break
            parts.append(line[pos:start])
            pos, in_comment, touched = start + 4, True, True
    kept = "".join(parts)
    if touched and not kept.strip():
        return None, in_comment
    return kept, in_comment
