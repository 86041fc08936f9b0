"""What a senior reviewer reads besides the diff: the enclosing code of each hunk, small files whole, and the tests.

Pure: works on texts read elsewhere (`bot.github.context` for the App, the case files for `bot eval`). Three parts:

- Which repository paths to read: `wanted_dirs` lists the directories where the tests of a changed module live by
  the usual conventions (next to it, `tests/`, `test/`, `__tests__/`, `spec/`, Maven's `src/test/...`).
- Which tests belong to which module: `module_of_test` names the module a test file is for (`test_users.py`,
  `users_test.go`, `users.test.ts`, `UsersTest.java`, `users_spec.rb` -> `users`), `related_tests` matches them.
- What to show of a file at the head commit: `context_ranges` gives the whole file when it is small
  (`WHOLE_FILE_LINES`), else the whole enclosing function or class of every hunk (`enclosing`), found by
  indentation (Python and other colon/indent languages) or by brace balance (C-like languages).

Only the diff is reviewable: what this module produces is shown to the model marked as context.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

#: A file with at most this many lines is shown whole (about 2,500 tokens of typical code).
WHOLE_FILE_LINES = 250
#: An enclosing definition longer than this is shown only around the hunk (`WINDOW` lines either side).
MAX_SCOPE_LINES = 160
WINDOW = 40
#: Only this many characters of a line are examined for a definition header.
HEADER_CHARS = 240
#: Scopes separated by at most this many lines are shown as one range.
MERGE_GAP = 3
#: At most this many directories are listed per review (one GraphQL query holds them all).
MAX_DIRS = 80

_TEST_DIRS = ("tests", "test", "__tests__", "spec")
# Definition headers of the common backend languages: Python, Go, JS/TS, Java/Kotlin/C#, Rust, Ruby, PHP.
# Simple alternations with no nested quantifiers, run on one line at a time (linear on untrusted text).
_MODIFIERS = r"(?:(?:export|default|public|private|protected|internal|static|async|final|abstract|override|open|" \
             r"sealed|virtual|pub|pub\(crate\)|unsafe|suspend|inline)\s+)*"
_DEF = re.compile(
    r"^[ \t]*" + _MODIFIERS + r"(?:def|class|func|function|fn|interface|struct|impl|trait|enum|module|object|"
    r"record|fun)\b"
)
# Methods and typed functions: `ResponseEntity<User> get(Long id) {`, `func (s *S) Run(ctx context.Context) {`.
_METHOD = re.compile(
    r"^[ \t]*(?:(?:public|private|protected|internal|static|final|async|override|virtual|synchronized)[ \t]+)+"
    r"[\w<>\[\],.? \t]*\([^;]*$"
)
_ARROW = re.compile(r"^[ \t]*(?:export[ \t]+)?(?:const|let|var)[ \t]+\w+[ \t]*(?::[^=]*)?=[ \t]*(?:async[ \t]+)?"
                    r"(?:function\b|\([^)]*\)[ \t]*(?::[^=]*)?=>|\w+[ \t]*=>)")
_INDENT_LANGS = (".py", ".pyi", ".rb", ".yml", ".yaml", ".coffee", ".nim")


@dataclass(frozen=True, slots=True)
class Scope:
    """A range of lines of a file at the head commit shown as context, and what it is."""

    start: int
    end: int
    label: str


@dataclass(frozen=True, slots=True)
class RelatedTest:
    """A test file that belongs to a changed module, and whether this pull request changes it."""

    path: str
    changed: bool


@dataclass(frozen=True, slots=True)
class RepoView:
    """What was read from the repository at the head commit: file texts and directory listings (file names)."""

    texts: Mapping[str, str] = field(default_factory=dict)
    listings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def paths(self) -> list[str]:
        """Every file path the listings name."""
        return [posixpath.join(d, name) if d else name for d, names in self.listings.items() for name in names]


# --------------------------------------------------------------------------------------------- tests by convention


def is_test_path(path: str) -> bool:
    """Whether `path` is a test file by the usual conventions (name, or a test directory)."""
    return module_of_test(path) is not None or any(part in _TEST_DIRS for part in path.split("/")[:-1])


def module_of_test(path: str) -> str | None:
    """The module name a test file is named for (`tests/test_users.py` -> `users`), or None if not a test name."""
    name = posixpath.basename(path)
    stem, ext = posixpath.splitext(name)
    if ext in (".py", ".pyi"):
        if stem.startswith("test_"):
            return stem[5:] or None
        if stem.endswith("_test"):
            return stem[:-5] or None
        return None
    if ext == ".go" and stem.endswith("_test"):
        return stem[:-5] or None
    if ext == ".rb" and stem.endswith("_spec"):
        return stem[:-5] or None
    match = re.fullmatch(r"(.+)\.(?:test|spec)\.[cm]?[jt]sx?", name)
    if match:
        return match.group(1)
    match = re.fullmatch(r"(.+?)(?:Tests?|IT|Spec)\.(?:java|kt|cs|scala|groovy)", name)
    return match.group(1) if match else None


def module_name(path: str) -> str:
    """The name tests use for a module: its file name without extension (`app/users.py` -> `users`)."""
    stem = posixpath.splitext(posixpath.basename(path))[0]
    return stem.removesuffix(".d")  # `types.d.ts`


def wanted_dirs(paths: Iterable[str]) -> list[str]:
    """Directories to list so that the tests of the changed modules can be found by name (at most MAX_DIRS; the
    work stops there, so a pull request of 3,000 files costs no more than one of a few)."""
    out: dict[str, None] = {}
    for path in paths:
        if len(out) >= MAX_DIRS:
            break
        if is_test_path(path):
            continue
        folder = posixpath.dirname(path)
        parts = [p for p in folder.split("/") if p]
        candidates = [folder, *(posixpath.join(folder, t) for t in _TEST_DIRS)]
        for root in _TEST_DIRS:
            candidates.append(root)
            candidates += [posixpath.join(root, *parts[i:]) for i in range(len(parts))]
        if "/main/" in f"/{folder}/":
            candidates.append(f"/{folder}/".replace("/main/", "/test/", 1).strip("/"))
        for candidate in candidates:
            out.setdefault(candidate.strip("/"), None)
    return list(out)[:MAX_DIRS]


def related_tests(module: str, repo_paths: Iterable[str], changed_paths: Iterable[str]) -> list[RelatedTest]:
    """The test files (in the repository or in this change) named for `module`'s name, sorted by path."""
    name = module_name(module)
    changed = set(changed_paths)
    found = {p for p in (*repo_paths, *changed) if p != module and module_of_test(p) == name}
    return [RelatedTest(p, p in changed) for p in sorted(found)]


# --------------------------------------------------------------------------------------------- enclosing code


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _is_header(line: str) -> bool:
    head = line[:HEADER_CHARS]  # bounds the regex work on pathological lines of untrusted code
    return bool(_DEF.match(head) or _METHOD.match(head) or _ARROW.match(head))


def _block_end(lines: Sequence[str], header: int, by_indent: bool) -> int:
    """The last line (0-based) of the block opened at `header`, by indentation or by brace balance."""
    if not by_indent:
        depth, opened = 0, False
        for i in range(header, len(lines)):
            for ch in lines[i]:
                if ch == "{":
                    depth, opened = depth + 1, True
                elif ch == "}":
                    depth -= 1
            if opened and depth <= 0:
                return i
            if not opened and i > header + 5:  # a signature that never opens a brace: not a block
                break
        by_indent = True
    base = _indent(lines[header])
    last = header
    for i in range(header + 1, len(lines)):
        if not lines[i].strip():
            continue
        if _indent(lines[i]) <= base and not lines[i].lstrip().startswith((")", "]", "}")):
            break
        last = i
    return last


def enclosing(lines: Sequence[str], start: int, end: int, path: str = "") -> Scope | None:
    """The outermost definition around lines `start`-`end` (1-based) no longer than MAX_SCOPE_LINES; when even the
    innermost is longer, a window of WINDOW lines either side of the range inside it; None at module level."""
    by_indent = path.endswith(_INDENT_LANGS)
    start, end = max(1, start), min(len(lines), end)
    found: list[tuple[int, int]] = []
    floor = _indent(lines[start - 1]) + 1 if 0 < start <= len(lines) and lines[start - 1].strip() else 10**6
    for i in range(start - 1, -1, -1):
        line = lines[i]
        if not line.strip() or _indent(line) >= floor:
            continue
        if _is_header(line):
            last = _block_end(lines, i, by_indent)
            if last + 1 >= start:
                found.append((i + 1, last + 1))
        floor = min(floor, _indent(line))
        if floor == 0:
            break
    if not found:
        return None
    fitting = [s for s in found if s[1] - s[0] + 1 <= MAX_SCOPE_LINES]
    if fitting:
        lo, hi = fitting[-1]
        return Scope(lo, hi, f"enclosing definition, lines {lo}-{hi}")
    lo, hi = found[0]
    window = (max(lo, start - WINDOW), min(hi, end + WINDOW))
    return Scope(window[0], window[1], f"part of a long definition (lines {lo}-{hi}), lines {window[0]}-{window[1]}")


def context_ranges(text: str, hunks: Sequence[tuple[int, int]], path: str = "") -> list[Scope]:
    """What to show of a file whose head text is `text`, given its hunks' new-side line ranges (merged, in order)."""
    lines = text.splitlines()
    if not lines:
        return []
    if len(lines) <= WHOLE_FILE_LINES:
        return [Scope(1, len(lines), f"the whole file ({len(lines)} lines)")]
    scopes = [s for lo, hi in hunks if (s := enclosing(lines, lo, hi, path)) is not None]
    merged: list[Scope] = []
    for scope in sorted(scopes, key=lambda s: (s.start, s.end)):
        if merged and scope.start <= merged[-1].end + MERGE_GAP + 1:
            last = merged[-1]
            if scope.end > last.end:
                merged[-1] = Scope(last.start, scope.end, f"enclosing definitions, lines {last.start}-{scope.end}")
            continue
        merged.append(scope)
    return merged
