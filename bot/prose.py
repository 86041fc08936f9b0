"""The constructs of a line of markdown prose that `bot.sanitize` defuses, found in linear time by RE2.

In priority order (at one position the first that matches wins; the leftmost position wins): an image (`![..](..)`
or an `<img>`-like tag), a link, a URL, a cross-repository reference (`owner/repo#12`), a mention, a bot command
word (`bors` followed by a command), a backslash escape, an HTML entity, a run of 12 or more `*`, a run of 3 or more
`~`, and the characters `<`, `[`, `]`, `|`.

Three of them depend on the character just before them: a reference must not continue a word or a path
(`x/a/b#1`), a mention must not follow a letter or digit (`me@host`), a bot word must not continue a word. RE2 has
no lookbehind, so every match includes the character before its construct (or starts the text): four branches, one
per class of that character, each trying only the constructs that class allows. After a construct the next search
starts at its last character, which is then the character before the next construct, so constructs that touch are
found as they would be by a backtracking engine. The command after a bot word is matched too, and the scan resumes
after the word. Matching runs on the UTF-8 bytes, so a search from an offset costs what it reads, not the length of
the text: the whole scan is one linear pass plus a constant amount of work per construct found.

Case is ignored as Python's `re.IGNORECASE` ignores it (`K`, `ſ`, `İ` and `ı` included), so the constructs are
exactly those the previous backtracking pattern found (tests/test_prose.py compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from bot.linear import linear, search_spans

#: Every character `str.isspace()` accepts (what `\s` matches in Python), for RE2 classes.
WS = r"\t-\r\x1c-\x20\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
# Python's IGNORECASE also matches `İ` and `ı` for `i` (RE2 does not fold them): they are written in.
_I = r"[i\x{130}\x{131}]"
_AZ = r"a-z\x{130}\x{131}"
BOT_WORDS = rf"bors|atlant{_I}s|d{_I}gger"
BOT_COMMANDS = (rf"r[+\-=]|try|delegate|merge|retry|cancel|p{_I}ng|p=|apply|plan|unlock|{_I}mport"
                rf"|approve_pol{_I}c{_I}es|state")
KINDS = ("image", "link", "url", "xref", "mention", "bot", "esc", "entity", "mask", "tilde", "special")
# What RE2 looks for; `escapes` is a run of backslash escapes and of the characters `]` and `|`, which no other
# construct can start with: one search for a run, split by hand. `\@` only begins a run (where no mention matched):
# inside one it would hide the mention `\@login` that may start there.
_SEARCHED = ("image", "link", "url", "xref", "mention", "bot", "escapes", "entity", "mask", "tilde")
_BOUND = ("xref", "mention", "bot")  # the constructs bound by the character before them
# That character, by what it allows: any other (or none), `.`/`/`/`-` (no reference), `_` (a mention only); after a
# letter or digit none of the three may start.
_BEFORE = {"a": (f"[^{_AZ}0-9_./-]", _BOUND), "b": ("[./-]", ("mention", "bot")), "c": ("_", ("mention",))}


@dataclass(frozen=True, slots=True)
class Construct:
    """One construct of a prose text: its kind (see KINDS), its span, and the parts the sanitiser needs."""

    kind: str
    start: int
    end: int
    text: str  # the construct as written
    label: str = ""  # link: the text between the brackets
    target: str = ""  # link: the destination
    login: str = ""  # mention: what follows the `@`
    word: str = ""  # bot: the bot's name as written


def _alternatives(tag: str, kinds: tuple[str, ...]) -> str:
    """`kinds` in priority order, as named groups suffixed with `tag`."""
    alts = {
        "image": rf"!\[[^\[\]\n]*\]\([^(){WS}]*(?:[ \t]+\"[^\"\n]*\")?\)"
                 rf"|<(?:{_I}mg|{_I}mage|svg|p{_I}cture|v{_I}deo)(?:>|[^\pL\pN_>\n][^>\n]*>?|$)",
        "link": rf"\[(?P<label{tag}>[^\[\]\n]*)\]\((?P<target{tag}>[^(){WS}<>`]*)(?:[ \t]+\"[^\"\n]*\")?\)",
        "url": rf"(?:[{_AZ}][{_AZ}0-9+.-]{{1,20}}://|www\.)[^{WS}<>`\\]*",
        "xref": rf"[{_AZ}0-9][{_AZ}0-9-]*/[{_AZ}0-9_.-]+#[0-9]+",
        "mention": rf"\\?@(?P<login{tag}>[{_AZ}0-9][{_AZ}0-9_-]*(?:/[{_AZ}0-9_][{_AZ}0-9_.-]*)?"
                   rf"(?:@[{_AZ}0-9_.@/-]*)?)",
        "bot": rf"(?P<word{tag}>{BOT_WORDS})[{WS}]+(?:{BOT_COMMANDS})",
        "escapes": r"\\@(?:\\[!-/:-?\[-`{-~]|[\]|])*|(?:\\[!-/:-?\[-`{-~]|[\]|])+",
        "entity": rf"&(?:#[0-9]{{1,8}}|#x[0-9a-f]{{1,8}}|[{_AZ}][{_AZ}0-9]{{1,31}});",
        "mask": r"\*{12,}",
        "tilde": r"~{3,}",
    }
    return "|".join(f"(?P<{kind}{tag}>{alts[kind]})" for kind in _SEARCHED if kind in kinds)


@cache
def _patterns() -> tuple[Any, Any]:
    """(the first search of a text, which may also find a construct at its start; every later search)."""
    # Every match starts with the character before its construct. At one start the branches come in the order of
    # priority of what follows: image, link, URL; the bound ones that character allows; the rest.
    bound = [f"(?P<p{tag}>{before})(?:{_alternatives(tag, allowed)})" for tag, (before, allowed) in _BEFORE.items()]
    high, low = _alternatives("h", _SEARCHED[:3]), _alternatives("l", _SEARCHED[6:])
    branches = [f"(?s:.)(?:{high})", *bound, f"(?s:.)(?:{low})"]
    first = f"^(?:{_alternatives('s', _SEARCHED)})"
    return linear("(?i)" + "|".join([first, *branches])), linear("(?i)" + "|".join(branches))


@cache
def _group_numbers(pattern: Any) -> dict[str, int]:
    """`pattern.groupindex`, which RE2's binding builds again on every access (tens of microseconds)."""
    return dict(pattern.groupindex)


@cache
def _kinds(pattern: Any) -> tuple[tuple[int, str, str], ...]:
    """(group number, kind, tag) of every construct group of `pattern`, in the order of its branches."""
    index = _group_numbers(pattern)
    return tuple(sorted((number, name[:-1], name[-1]) for name, number in index.items() if name[:-1] in _SEARCHED))


class _Offsets:
    """Character offsets of byte offsets of a text's UTF-8 form, asked in increasing order (each decode is short)."""

    def __init__(self, buf: bytes) -> None:
        self._buf, self._byte, self._char = buf, 0, 0

    def char(self, byte: int) -> int:
        """The character offset of `byte` (not before the previous one asked)."""
        self._char += len(self._buf[self._byte : byte].decode("utf-8", "surrogatepass"))
        self._byte = byte
        return self._char


def _last_char(buf: bytes, end: int) -> int:
    """The byte offset where the character ending at `end` begins."""
    pos = end - 1
    while buf[pos] & 0xC0 == 0x80:
        pos -= 1
    return pos


def constructs(text: str) -> list[Construct]:
    """The constructs of `text` (one line, no newline), in order, none overlapping."""
    first, later = _patterns()
    buf = text.encode("utf-8", "surrogatepass")
    offsets = _Offsets(buf)
    found: list[Construct] = []
    pos, pattern, done = 0, first, 0  # done: the character offset up to which `found` is complete
    while pos < len(buf):
        spans = search_spans(pattern, buf, pos)
        if spans is None:
            break
        index = _group_numbers(pattern)
        number, kind, tag = next(k for k in _kinds(pattern) if spans[k[0]][0] >= 0)
        pattern = later
        start, end = spans[number]
        if kind == "bot":  # the command was matched to check it: the construct is the word
            end = spans[index["word" + tag]][1]
        char_start, char_end = offsets.char(start), offsets.char(end)
        found += _specials(text, done, char_start)
        if kind == "escapes":
            found += _escapes(text, char_start, char_end)
        else:
            found.append(Construct(
                kind, char_start, char_end, text[char_start:char_end],
                label=_group(buf, spans, index, "label" + tag), target=_group(buf, spans, index, "target" + tag),
                login=_group(buf, spans, index, "login" + tag), word=_group(buf, spans, index, "word" + tag),
            ))
        done = char_end
        pos = _last_char(buf, end)  # the next search sees the character before the next construct
    return found + _specials(text, done, len(text))


def _specials(text: str, start: int, end: int) -> list[Construct]:
    """The `<` and `[` between `start` and `end`, where no other construct begins: each is a construct by itself."""
    found = []
    for ch in "<[":
        at = text.find(ch, start, end)
        while at >= 0:
            found.append(Construct("special", at, at + 1, ch))
            at = text.find(ch, at + 1, end)
    return sorted(found, key=lambda c: c.start) if len(found) > 1 else found


def _escapes(text: str, start: int, end: int) -> list[Construct]:
    """A run of backslash escapes and of `]`, `|` split into its constructs."""
    found = []
    at = start
    while at < end:
        if text[at] == "\\":
            found.append(Construct("esc", at, at + 2, text[at : at + 2]))
            at += 2
        else:
            found.append(Construct("special", at, at + 1, text[at]))
            at += 1
    return found


def _group(buf: bytes, spans: list[tuple[int, int]], index: dict[str, int], name: str) -> str:
    if name not in index:
        return ""
    start, end = spans[index[name]]
    return buf[start:end].decode("utf-8", "surrogatepass") if start >= 0 else ""


@cache
def _bot_pattern() -> Any:
    return linear(rf"(?i)(?:^|[^{_AZ}0-9_])(?P<word>{BOT_WORDS})[{WS}]+(?:{BOT_COMMANDS})")


def bot_words(text: str) -> list[tuple[int, int]]:
    """The spans of the bot words of `text` (any number of lines) that begin a word and are followed by whitespace
    and one of the bot's commands: `bors r+`, `atlantis apply` (the bots act on those)."""
    pattern = _bot_pattern()
    word = _group_numbers(pattern)["word"]
    buf = text.encode("utf-8", "surrogatepass")
    offsets = _Offsets(buf)
    found: list[tuple[int, int]] = []
    pos = 0
    while (spans := search_spans(pattern, buf, pos)) is not None:
        start, end = spans[word]
        found.append((offsets.char(start), offsets.char(end)))
        pos = _last_char(buf, end)
    return found
