"""Path globs of the configuration (`paths`, `instructions`) and of the diff filter: gitignore-like, linear time.

A glob is translated once into an RE2 expression (`*` is `[^/]*`, `**/` is `(?:.*/)?`; nothing crosses a NUL, which
no git path holds), which RE2 matches in time linear in the path whatever the pattern: no backtracking, so no
pattern can stall the server. A list of globs is compiled once (`compile_globs`, cached per tuple of patterns).
`check_glob` rejects what no sane configuration needs (too long, too many `**`, a bad `[...]` class).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import re2

from bot.linear import LinearPatternError, linear

MAX_GLOB_CHARS = 200
MAX_DOUBLE_STARS = 8

__all__ = [
    "MAX_DOUBLE_STARS",
    "MAX_GLOB_CHARS",
    "GlobError",
    "GlobSet",
    "PathInstruction",
    "check_glob",
    "compile_globs",
    "first_match",
    "glob_regex",
    "instructions_for",
    "path_matches",
]


class GlobError(ValueError):
    """A glob the configuration may not use (the message says why)."""


def _normalise(pattern: str) -> str:
    """The pattern as matched against the whole path: `./` dropped, name patterns and `dir/` made `**/`-relative."""
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    if pat.endswith("/"):
        pat += "**"
    if pat.startswith("/"):
        return pat.lstrip("/")
    if "/" not in pat.rstrip("/").removesuffix("/**"):
        return "**/" + pat
    return pat


def _class_end(pat: str, i: int) -> int | None:
    """Index of the `]` closing the class opened at `pat[i]`, or None when `[` is literal (no `]`, or a `/` inside)."""
    end = pat.find("]", i + 2)
    if end < 0 or "/" in pat[i:end]:
        return None
    return end


def _char(ch: str) -> str:
    """One character as an RE2 class member."""
    return f"\\x{{{ord(ch):x}}}"


def _class(body: str) -> str:
    """A `[...]` body (`!`/`^` negates, `a-z` ranges) as an RE2 class that never matches `/`."""
    negated = body[:1] in ("!", "^")
    if negated:
        body = body[1:]
    members: list[str] = []
    j = 0
    while j < len(body):
        if j + 2 < len(body) and body[j + 1] == "-":
            lo, hi = body[j], body[j + 2]
            if lo > hi:
                raise GlobError(f"character range {lo}-{hi} is out of order")
            # `/` is never matched by a class: cut it out of a range that spans it.
            if lo < "/" < hi or lo == "/" or hi == "/":
                if lo < "/":
                    members.append(f"{_char(lo)}-{_char(chr(ord('/') - 1))}")
                if hi > "/":
                    members.append(f"{_char(chr(ord('/') + 1))}-{_char(hi)}")
            else:
                members.append(f"{_char(lo)}-{_char(hi)}")
            j += 3
        else:
            members.append(_char(body[j]))
            j += 1
    if negated:
        return "[^/\\x00" + "".join(members) + "]"
    return "[" + "".join(members) + "]" if members else "[^\\x00-\\x{10ffff}]"


def glob_regex(pattern: str) -> str:
    """The RE2 expression (matched against the whole path) of a glob; semantics in `path_matches`."""
    pat = _normalise(pattern)
    out: list[str] = []
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:[^\\x00]*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append("[^\\x00]*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/\\x00]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/\\x00]")
            i += 1
        elif pat[i] == "[" and (end := _class_end(pat, i)) is not None:
            out.append(_class(pat[i + 1 : end]))
            i = end + 1
        else:
            out.append(re2.escape(pat[i]))
            i += 1
    return "(?:" + "".join(out) + ")"


def check_glob(pattern: str) -> None:
    """Raise GlobError when a configuration may not use `pattern`: empty, too long, too many `**`, a bad class."""
    if not pattern.strip():
        raise GlobError("a glob must not be empty")
    if len(pattern) > MAX_GLOB_CHARS:
        raise GlobError(f"a glob must be at most {MAX_GLOB_CHARS} characters")
    if pattern.count("**") > MAX_DOUBLE_STARS:
        raise GlobError(f"a glob may use `**` at most {MAX_DOUBLE_STARS} times")
    try:
        linear(glob_regex(pattern), register=False)
    except LinearPatternError:
        raise GlobError("a glob with an invalid [...] class") from None


@dataclass(frozen=True, slots=True)
class GlobSet:
    """Globs compiled once: which of them (first in order) a path matches, in time linear in the path.

    RE2 runs the alternation of the first k patterns in one pass; the first matching pattern is the smallest such
    k, found by binary search (about log2(n) passes, not n: RE2's Python binding costs microseconds a call). Plain
    RE2 expressions rather than an `re2.Set`: a set reports "no match" when its automaton runs out of memory, an
    expression falls back to RE2's (still linear) NFA and stays correct.
    """

    patterns: tuple[str, ...]
    _expressions: tuple[str, ...]
    _prefixes: dict[int, Any] = field(default_factory=dict)  # k -> the compiled alternation of patterns[:k]

    def _prefix(self, k: int) -> Any:
        compiled = self._prefixes.get(k)
        if compiled is None:
            compiled = linear("|".join(self._expressions[:k]), register=False)
            self._prefixes[k] = compiled
        return compiled

    def first(self, path: str) -> int | None:
        """Index of the first pattern `path` matches, or None."""
        count = len(self._expressions)
        if not count or self._prefix(count).fullmatch(path) is None:
            return None
        low, high = 1, count  # the smallest k whose prefix alternation matches lies in [low, high]
        while low < high:
            middle = (low + high) // 2
            if self._prefix(middle).fullmatch(path) is not None:
                high = middle
            else:
                low = middle + 1
        return low - 1

    def any(self, path: str) -> bool:
        """Whether `path` matches any of the patterns."""
        return self.first(path) is not None


@lru_cache(maxsize=256)
def compile_globs(patterns: tuple[str, ...]) -> GlobSet:
    """Compile `patterns` once (cached per tuple of patterns); a pattern that does not compile raises GlobError."""
    expressions = []
    for pattern in patterns:
        expression = glob_regex(pattern)
        try:
            linear(expression, register=False)
        except LinearPatternError:
            raise GlobError(f"invalid glob {pattern!r}") from None
        expressions.append(expression)
    globs = GlobSet(patterns, tuple(expressions))
    if expressions:
        globs._prefix(len(expressions))  # the one every lookup needs, compiled now
    return globs


def first_match(path: str, patterns: Sequence[str]) -> int | None:
    """Index of the first pattern in `patterns` that `path` matches (`path_matches` semantics), or None."""
    return compile_globs(tuple(patterns)).first(path) if patterns else None


def path_matches(path: str, pattern: str) -> bool:
    """Whether `path` matches the glob `pattern`.

    Semantics (gitignore-like, always matched against the whole repository-relative path):
    `*` and `?` never cross `/`; `**` crosses any number of directories (`a/**/b` matches `a/b`);
    `[abc]`/`[!abc]` are character classes (ranges allowed; never matching `/`); a pattern without `/` matches
    the file name at any depth (`*.lock`); a pattern ending in `/` matches everything under such a directory at
    any depth when it has no other `/` (`vendor/`), else under that path from the root; a leading `/` anchors at
    the root.
    """
    return compile_globs((pattern,)).first(path) is not None


class PathInstruction(Protocol):
    """An instruction for the files matching a glob (the configuration's `instructions` items)."""

    @property
    def path(self) -> str:
        """The glob."""
        ...

    @property
    def text(self) -> str:
        """The instruction."""
        ...


def instructions_for(instructions: Iterable[PathInstruction], paths: Iterable[str]) -> str:
    """The texts of the `instructions` whose glob matches any of `paths`, in their order."""
    joined = "\x00".join(paths)  # git paths never hold NUL: one linear search per instruction covers every path
    texts = [item.text for item in instructions if _any_path(joined, item.path)]
    return "\n\n".join(texts)


@lru_cache(maxsize=256)
def _any_path_regex(pattern: str) -> Any:
    return linear("(?:^|\\x00)" + glob_regex(pattern) + "(?:\\x00|$)", register=False)


def _any_path(joined: str, pattern: str) -> bool:
    """Whether any of the NUL-joined paths matches `pattern`."""
    return _any_path_regex(pattern).search(joined) is not None
