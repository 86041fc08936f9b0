"""What the model is shown of a file: line-numbered rendering behind a gutter, and token estimates.

Rendering format (see `RENDER_LEGEND`, meant for the prompt):

    FILE src/app.py (renamed from app.py)
    HUNK 1/2 @@ -10,4 +10,5 @@ def handler():
    R 10   unchanged line (context; new-side number)
    L 11 - removed line (old-side number)
    R 11 + added line (new-side number)

Safety: every line of file content is rendered behind a gutter (`R <n> <kind> ` or `L <n> - `), and
characters that some readers treat as line breaks (`\\r`, `\\v`, `\\f`, `\\x1c-\\x1e`, `\\x85`,
`\\u2028`, `\\u2029`) are escaped (`\\r` is shown as the two characters backslash-r), so no content
can start a line of its own and fake a `FILE`/`HUNK`/`NOTE` header. Paths with control characters are
shown JSON-quoted. Invisible and direction-changing characters (zero-width, bidi controls, tags) are shown as
`⟦U+XXXX⟧` markers (`bot.invisible`), one per character on its own line, so numbering is unchanged. The
untrusted-content delimiters around the whole text are the prompt layer's job.
"""

from __future__ import annotations

import json
import re

from bot.diff.types import FileDiff, Hunk
from bot.invisible import mark_invisible

RENDER_LEGEND = (
    "Each file starts with a `FILE <path> (<status>)` line and each hunk with a `HUNK <i>/<n> @@ ... @@` line. "
    "Every code line starts with a gutter: `R <n> + ` is an added line and `R <n>   ` an unchanged context "
    "line, both numbered in the NEW file (cite them with side RIGHT); `L <n> - ` is a removed line numbered "
    "in the OLD file (cite it with side LEFT). `\\r` marks a carriage return in the content and `⟦U+XXXX⟧` an "
    "invisible or direction-changing character. "
    "`NOTE` lines are remarks of the tool, not code."
)

#: Characters some readers treat as line breaks: escaped in what the model is shown (the parser marks the hunks
#: that hold one, so the others skip escaping).
UNSAFE_CHARS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_UNSAFE = re.compile(f"[{UNSAFE_CHARS}]")
_UNSAFE_PATH = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    """A visible stand-in for a character that could act as a line break."""
    ch = match.group(0)
    return "\\r" if ch == "\r" else f"\\u{ord(ch):04x}"


def show_path(path: str | None) -> str:
    """A path for a header line (JSON-quoted when it holds control characters)."""
    text = path or ""
    return mark_invisible(json.dumps(text, ensure_ascii=False) if _UNSAFE_PATH.search(text) else text)


def file_header(f: FileDiff, continued: bool = False) -> str:
    """The `FILE` line of a file."""
    detail = f.status.value
    if f.status in ("renamed", "copied"):
        detail = f"{f.status.value} from {show_path(f.old_path)}"
    elif f.status == "type_change":
        detail = f"type change, mode {f.old_mode} → {f.new_mode}"
    elif f.old_mode and f.new_mode and f.old_mode != f.new_mode:
        detail = f"{detail}, mode {f.old_mode} → {f.new_mode}"
    return f"FILE {show_path(f.path)} ({detail}){' (continued)' if continued else ''}\n"


def hunk_header(h: Hunk, index: int, total: int, part: str = "") -> str:
    """The `HUNK` line of a hunk (its section heading is file content, so it is escaped later)."""
    section = f" {h.section}" if h.section else ""
    return f"HUNK {index + 1}/{total}{part} @@ -{h.old_start},{h.old_count} +{h.new_start},{h.new_count} @@{section}\n"


_RUNS = re.compile(r"\++|-+| +")


def gutter_lines(h: Hunk) -> list[str]:
    """Each line of the hunk with its gutter, newline-terminated (built run by run, for speed)."""
    out: list[str] = []
    texts = h.texts
    old, new = h.old_start, h.new_start
    for m in _RUNS.finditer(h.kinds):
        a, b = m.start(), m.end()
        run = texts[a:b]
        kind = h.kinds[a]
        if kind == "+":
            out += [f"R {n} + {t}\n" for n, t in zip(range(new, new + b - a), run, strict=True)]
            new += b - a
        elif kind == "-":
            out += [f"L {n} - {t}\n" for n, t in zip(range(old, old + b - a), run, strict=True)]
            old += b - a
        else:
            out += [f"R {n}   {t}\n" for n, t in zip(range(new, new + b - a), run, strict=True)]
            old += b - a
            new += b - a
    return out


def safe_text(text: str) -> str:
    """Escape line-break look-alikes and mark hidden characters as `⟦U+XXXX⟧` (see the module docstring)."""
    return mark_invisible(_UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text)


def escape_breaks(text: str) -> str:
    """`text` with every line-break look-alike escaped, for other file content shown to the model (context)."""
    return safe_text(text)


def render_hunk(h: Hunk, index: int, total: int) -> str:
    """One hunk as model text: its `HUNK` line and gutter-prefixed lines."""
    text = hunk_header(h, index, total) + "".join(gutter_lines(h))
    return safe_text(text) if h.escape else text


def render_file(f: FileDiff) -> str:
    """One file as model text: its `FILE` line and all its hunks."""
    total = len(f.hunks)
    return file_header(f) + "".join(render_hunk(h, i, total) for i, h in enumerate(f.hunks))


def estimate_tokens(text: str) -> int:
    """Estimated input tokens of `text`: 3.5 ASCII characters a token, one token per other character, rounded up.

    Calibrated against the input tokens the Messages API reports, as the fake Claude counts them (Anthropic
    documents ~3.5 English characters a token; bench/diff.py prints the error over the real-world corpus). The
    former estimate, UTF-8 bytes / 3, was 15-20% high and left files "over budget" that would have fit.
    """
    if text.isascii():  # the common case, and a fast one
        return -(-2 * len(text) // 7)
    other = len(text) - len(text.encode("ascii", "ignore"))
    return -(-(2 * (len(text) - other) + 7 * other) // 7)
