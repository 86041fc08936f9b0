"""The diff engine: what changed in a pull request, exactly, and where a review comment may land.

Pure code, no I/O. This is the only module that imports `unidiff`. Rendering, filtering and batching
for the model live in `bot.diff_render`.

Model (all immutable):
- `Diff.files` is in diff order; `FileDiff.path` is the path GitHub uses in its API (new path; the old
  path for deleted files), UTF-8, never git-quoted. `old_path` is None for added files, else the path
  before the change (differs from `path` for renames and copies).
- Commentable lines, as GitHub's review API accepts them: RIGHT = added and context lines by new-file
  line number (every new-side line of a hunk); LEFT = removed lines by old-file line number.
- `\\ No newline at end of file` is not a line (dropped, never commentable); a `\\r` before the newline
  is content (kept in `DiffLine.text`).
- A path that appears twice (git's file <-> symlink type change: a deletion then an addition) becomes
  one `FileDiff` with status `type_change` whose hunks are the deletion's then the addition's, so LEFT
  and RIGHT lines are both known. Any other repeated path (e.g. `git format-patch` output with several
  commits) is kept once, without hunks, and marked not reviewable: its line numbers are ambiguous.
- Statuses: a binary content change is `binary` (whatever else happened); a submodule (gitlink) change
  is `submodule` (not reviewable); a mode change without content change is `mode_only`.

For speed a `Hunk` keeps its lines compactly (`kinds`, one character per line, and `texts`); the
`DiffLine` objects of `Hunk.lines` are built on first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from itertools import chain
from typing import Any, Literal

from unidiff.errors import UnidiffParseError
from unidiff.patch import Hunk as UnidiffHunk
from unidiff.patch import PatchedFile, PatchSet

from bot.domain import InlineComment, Side
from bot.errors import BotError
from bot.invisible import has_hidden

LineKind = Literal["+", "-", " "]
_REMOVED_RUN = re.compile("-+")


class DiffParseError(BotError):
    """The text is not a unified diff this module can read (the message says where)."""


class FileStatus(StrEnum):
    """What happened to one file."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"
    COPIED = "copied"
    MODE_ONLY = "mode_only"
    BINARY = "binary"
    SUBMODULE = "submodule"
    TYPE_CHANGE = "type_change"


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a hunk: kind `+`/`-`/` `, its old and new line numbers, and its text (no newline)."""

    kind: LineKind
    old_no: int | None
    new_no: int | None
    text: str


@dataclass(frozen=True)
class Hunk:
    """One `@@` hunk: its header numbers, section heading, and lines (`kinds[i]` is line i's kind)."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int
    section: str
    kinds: str
    texts: tuple[str, ...]  # line texts without the kind character and without the "\n"
    escape: bool = True  # False when no text holds a character in UNSAFE_CHARS (rendering skips escaping)

    @cached_property
    def lines(self) -> tuple[DiffLine, ...]:
        """The hunk's lines with their old/new numbers (built on first use)."""
        out: list[DiffLine] = []
        old, new = self.old_start, self.new_start
        for kind, text in zip(self.kinds, self.texts, strict=True):
            if kind == "+":
                out.append(DiffLine("+", None, new, text))
                new += 1
            elif kind == "-":
                out.append(DiffLine("-", old, None, text))
                old += 1
            else:
                out.append(DiffLine(" ", old, new, text))
                old += 1
                new += 1
        return tuple(out)

    @property
    def right_lines(self) -> range:
        """New-side line numbers of this hunk (all RIGHT-commentable)."""
        return range(self.new_start, self.new_start + self.new_count) if self.new_count else range(0)

    @cached_property
    def left_lines(self) -> tuple[int, ...]:
        """Old-side line numbers of this hunk's removed lines (LEFT-commentable), ascending."""
        kinds = self.kinds
        out: list[int] = []
        for m in _REMOVED_RUN.finditer(kinds):
            first = self.old_start + m.start() - kinds.count("+", 0, m.start())
            out.extend(range(first, first + m.end() - m.start()))
        return tuple(out)

    @cached_property
    def left_set(self) -> frozenset[int]:
        """`left_lines` as a set."""
        return frozenset(self.left_lines)

    @property
    def additions(self) -> int:
        """Number of added lines."""
        return self.kinds.count("+")

    @property
    def deletions(self) -> int:
        """Number of removed lines."""
        return self.kinds.count("-")


@dataclass(frozen=True)
class FileDiff:
    """One changed file (see the module docstring for `path`/`old_path` and the statuses)."""

    path: str
    old_path: str | None
    status: FileStatus
    hunks: tuple[Hunk, ...] = ()
    not_reviewable: str | None = None
    old_mode: str | None = None
    new_mode: str | None = None

    def commentable(self, side: Side | str) -> frozenset[int]:
        """Line numbers GitHub accepts a comment on, on that side."""
        return self._right if Side(side) is Side.RIGHT else self._left

    def hunk_of(self, line: int, side: Side | str) -> int | None:
        """Index of the hunk where `line` is commentable on `side`, or None."""
        right = Side(side) is Side.RIGHT
        for i, h in enumerate(self.hunks):
            if (line in h.right_lines) if right else (line in h.left_set):
                return i
        return None

    @cached_property
    def _right(self) -> frozenset[int]:
        """RIGHT-commentable lines."""
        return frozenset(chain.from_iterable(h.right_lines for h in self.hunks))

    @cached_property
    def _left(self) -> frozenset[int]:
        """LEFT-commentable lines."""
        return frozenset(chain.from_iterable(h.left_lines for h in self.hunks))

    @property
    def additions(self) -> int:
        """Number of added lines in all hunks."""
        return sum(h.additions for h in self.hunks)

    @property
    def deletions(self) -> int:
        """Number of removed lines in all hunks."""
        return sum(h.deletions for h in self.hunks)


@dataclass(frozen=True)
class Diff:
    """All changed files of a pull request, in diff order."""

    files: tuple[FileDiff, ...] = ()

    def file(self, path: str) -> FileDiff | None:
        """The file whose (new) path is exactly `path`, or None."""
        return self._by_path.get(path)

    @cached_property
    def _by_path(self) -> dict[str, FileDiff]:
        """Path -> file."""
        return {f.path: f for f in self.files}

    def __iter__(self) -> Iterator[FileDiff]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


# ---------------------------------------------------------------------------------------------- paths

_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_OCTAL = re.compile(r"\\([0-7]{1,3}|.)", re.DOTALL)


def unquote_git_path(name: str) -> str:
    """A path as git prints it (possibly C-quoted with octal UTF-8 escapes) as the plain UTF-8 path."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body = name[1:-1]
    out = bytearray()
    pos = 0
    for m in _OCTAL.finditer(body):
        out += body[pos : m.start()].encode("utf-8")
        esc = m.group(1)
        out.append(int(esc, 8) & 0xFF if esc[0] in "01234567" else _ESCAPES.get(esc, ord(esc) & 0xFF))
        pos = m.end()
    out += body[pos:].encode("utf-8")
    return out.decode("utf-8", "replace")


def _strip_prefix(name: str | None) -> str | None:
    """`a/x` -> `x` (after unquoting); `/dev/null` -> None."""
    if name is None:
        return None
    name = unquote_git_path(name)
    if name == "/dev/null":
        return None
    return name[2:] if name[:2] in ("a/", "b/") else name


def _header_paths(line: str) -> tuple[str, str] | None:
    """Old and new path from a `diff --git a/X b/Y` line, when unambiguous."""
    rest = line[len("diff --git ") :].rstrip("\n")
    if rest.startswith('"') or rest.endswith('"'):
        m = re.fullmatch(r'("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)', rest)
        if not m:
            return None
        old, new = _strip_prefix(m.group(1)), _strip_prefix(m.group(2))
        return (old, new) if old and new else None
    half = (len(rest) - 1) // 2  # "a/P b/P": same P on both sides
    if len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3 :]:
        return rest[2:half], rest[half + 3 :]
    return None


# ---------------------------------------------------------------------------------------------- parse


@dataclass
class _Header:
    """What a file block's extended header lines say."""

    rename_from: str | None = None
    rename_to: str | None = None
    copy_from: str | None = None
    copy_to: str | None = None
    old_mode: str | None = None
    new_mode: str | None = None
    new_file: bool = False
    deleted_file: bool = False
    binary: bool = False
    git_paths: tuple[str, str] | None = None


_INFO_KEYS = ("rename from ", "rename to ", "copy from ", "copy to ")
_HUNK_HEAD = re.compile(r"@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
SUBMODULE_MODE = "160000"
#: Characters some readers treat as line breaks; rendering escapes them (see bot.diff_render).
UNSAFE_CHARS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _read_header(info: Sequence[str]) -> _Header:
    """Interpret a file block's extended header lines (unidiff's `patch_info`)."""
    h = _Header()
    for raw in info:
        line = raw.rstrip("\n")
        if line.startswith("diff --git "):
            h.git_paths = _header_paths(line)
        elif line.startswith(_INFO_KEYS):
            for prefix in _INFO_KEYS:
                if line.startswith(prefix):
                    setattr(h, prefix.strip().replace(" ", "_"), unquote_git_path(line[len(prefix) :]))
        elif line.startswith(("old mode ", "deleted file mode ")):
            h.old_mode = line.rsplit(" ", 1)[1]
            h.deleted_file = h.deleted_file or line.startswith("deleted")
        elif line.startswith(("new mode ", "new file mode ")):
            h.new_mode = line.rsplit(" ", 1)[1]
            h.new_file = h.new_file or line.startswith("new file")
        elif line.startswith("index ") and line.count(" ") == 2:
            h.old_mode = h.old_mode or line.rsplit(" ", 1)[1]
            h.new_mode = h.new_mode or line.rsplit(" ", 1)[1]
        elif line.startswith("Binary files ") or line == "GIT binary patch":
            h.binary = True
    return h


class _Lines:
    """The diff's lines (split on "\\n" only, as unidiff reads them) and the positions of its hunk headers."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.heads: list[int] = []
        self.escape = any(ch in text for ch in UNSAFE_CHARS) or has_hidden(text)
        starts = [0] if text.startswith("@@ -") else []
        at = text.find("\n@@ -")
        while at >= 0:
            starts.append(at + 1)
            at = text.find("\n@@ -", at + 1)
        line, pos = 0, 0
        for start in starts:  # line index of each hunk header (cheap: C-level find and count)
            line += text.count("\n", pos, start)
            pos = start
            if _HUNK_HEAD.match(text, start):
                self.heads.append(line)
        self.next = 0

    def body(self, uh: UnidiffHunk) -> tuple[str, tuple[str, ...], bool]:
        """Kinds and texts of the next hunk's body, checked against unidiff's counts."""
        if self.next >= len(self.heads):
            raise DiffParseError("hunk headers out of step with the parser")
        start = self.heads[self.next] + 1
        self.next += 1
        need = uh.removed + uh.target_length  # removed + added + context lines
        chunk = self.lines[start : start + need]
        kinds = "".join([line[:1] for line in chunk])
        if len(kinds) != need or "\\" in kinds:
            chunk = self._slow_chunk(start, need)
            kinds = "".join([line[:1] for line in chunk])
        if kinds.count("+") != uh.added or kinds.count("-") != uh.removed:
            raise DiffParseError(f"hunk at diff line {start} does not match its header")
        texts = tuple([line[1:] for line in chunk])
        joined = "\n".join(chunk) + uh.section_header
        escape = self.escape and (any(ch in joined for ch in UNSAFE_CHARS) or has_hidden(joined))
        return kinds, texts, escape

    def _slow_chunk(self, start: int, need: int) -> list[str]:
        """Body lines skipping no-newline markers; a bare empty line is an empty context line."""
        out: list[str] = []
        i = start
        while len(out) < need and i < len(self.lines):
            line = self.lines[i]
            i += 1
            if line.startswith("\\"):
                continue
            out.append(line if line else " ")
        return out


def _hunks(pf: PatchedFile, lines: _Lines) -> tuple[Hunk, ...]:
    """The file's hunks, with their line bodies sliced from the diff text."""
    out: list[Hunk] = []
    for uh in pf:
        kinds, texts, escape = lines.body(uh)
        out.append(Hunk(uh.source_start, uh.source_length, uh.target_start, uh.target_length,
                        uh.section_header, kinds, texts, escape))
    return tuple(out)


def _status(h: _Header, old: str | None, new: str | None, hunks: tuple[Hunk, ...]) -> FileStatus:
    """The file's status from its header facts."""
    if SUBMODULE_MODE in (h.old_mode, h.new_mode):
        return FileStatus.SUBMODULE
    if h.binary:
        return FileStatus.BINARY
    if old is None:
        return FileStatus.ADDED
    if new is None:
        return FileStatus.DELETED
    if h.copy_from is not None:
        return FileStatus.COPIED
    if old != new:
        return FileStatus.RENAMED
    if not hunks and h.old_mode != h.new_mode:
        return FileStatus.MODE_ONLY
    return FileStatus.MODIFIED


def _file(pf: PatchedFile, lines: _Lines) -> FileDiff:
    """One unidiff `PatchedFile` as a `FileDiff`."""
    h = _read_header(pf.patch_info or ())
    git_old, git_new = h.git_paths or (None, None)
    old = h.rename_from or h.copy_from or git_old or _strip_prefix(pf.source_file)
    new = h.rename_to or h.copy_to or git_new or _strip_prefix(pf.target_file)
    if h.new_file or pf.source_file == "/dev/null":
        old = None
    if h.deleted_file or pf.target_file == "/dev/null":
        new = None
    hunks = _hunks(pf, lines)
    status = _status(h, old, new, hunks)
    path = new if new is not None else old
    if path is None:
        raise DiffParseError(f"file block at diff line {pf.diff_line_no} names no path")
    reason = None
    if status is FileStatus.BINARY:
        reason = "binary file"
    elif status is FileStatus.SUBMODULE:
        reason = "submodule (gitlink) change: no reviewable source"
    return FileDiff(path, old, status, hunks, reason, h.old_mode if old else None, h.new_mode if new else None)


def _merge(first: FileDiff, second: FileDiff) -> FileDiff:
    """Two blocks for one path: a type change (deletion then addition) or an ambiguous repeat."""
    deletion = first.status is FileStatus.DELETED or (first.new_mode is None and first.old_mode is not None)
    if deletion and second.old_path is None:
        return FileDiff(first.path, first.path, FileStatus.TYPE_CHANGE, first.hunks + second.hunks,
                        first.not_reviewable or second.not_reviewable, first.old_mode, second.new_mode)
    return FileDiff(first.path, first.old_path, first.status, (),
                    "the diff lists this path more than once (several commits?); its line numbers are ambiguous",
                    first.old_mode, second.new_mode)


def _collect(files: Sequence[FileDiff]) -> Diff:
    """Files in order, merging repeated paths."""
    by_path: dict[str, int] = {}
    out: list[FileDiff] = []
    for f in files:
        at = by_path.get(f.path)
        if at is None:
            by_path[f.path] = len(out)
            out.append(f)
        else:
            out[at] = _merge(out[at], f)
    return Diff(tuple(out))


def _parse(text: str) -> list[FileDiff]:
    """unidiff reads the structure (metadata only: files, headers, validated hunk counts); the hunk
    bodies are then sliced from the text directly, which avoids one Python object per line."""
    try:
        patch = PatchSet(text, metadata_only=True)
    except UnidiffParseError as exc:
        raise DiffParseError(f"not a readable unified diff: {exc}") from exc
    lines = _Lines(text)
    return [_file(pf, lines) for pf in patch]


def parse_diff(text: str) -> Diff:
    """Parse `git diff` output (GitHub's `application/vnd.github.diff`) into a `Diff`."""
    return _collect(_parse(text))


# ---------------------------------------------------------------------------------------- files API

_API_STATUS = {
    "added": FileStatus.ADDED,
    "removed": FileStatus.DELETED,
    "modified": FileStatus.MODIFIED,
    "renamed": FileStatus.RENAMED,
    "copied": FileStatus.COPIED,
    "changed": FileStatus.MODIFIED,
    "unchanged": FileStatus.MODIFIED,
}


def _api_hunks(path: str, patch: str) -> tuple[Hunk, ...]:
    """Parse a files-API `patch` (header-less hunks) into hunks."""
    body = patch if patch.endswith("\n") else patch + "\n"
    try:
        files = _parse(f"--- a/f\n+++ b/f\n{body}")
    except DiffParseError as exc:
        raise DiffParseError(f"patch of {path}: {exc}") from exc
    return files[0].hunks if files else ()


def _api_file(entry: Mapping[str, Any]) -> FileDiff:
    """One `pulls/{n}/files` entry as a `FileDiff`."""
    path = str(entry["filename"])
    raw_status = str(entry.get("status", "modified"))
    status = _API_STATUS.get(raw_status, FileStatus.MODIFIED)
    old_path = None if status is FileStatus.ADDED else str(entry.get("previous_filename") or path)
    patch = entry.get("patch")
    changes = int(entry.get("changes") or 0) or int(entry.get("additions") or 0) + int(entry.get("deletions") or 0)
    if patch:
        hunks = _api_hunks(path, str(patch))
        if raw_status in ("changed", "unchanged") and not hunks:
            status = FileStatus.MODE_ONLY
        return FileDiff(path, old_path, status, hunks)
    if status in (FileStatus.RENAMED, FileStatus.COPIED) and changes == 0:
        return FileDiff(path, old_path, status)
    if raw_status in ("changed", "unchanged") and changes == 0:
        return FileDiff(path, old_path, FileStatus.MODE_ONLY)
    if changes == 0:
        return FileDiff(path, old_path, status, (), "binary file (GitHub shows no textual patch)")
    return FileDiff(path, old_path, status, (), f"too large: GitHub omitted the patch ({changes} changed lines)")


def diff_from_files_api(entries: Sequence[Mapping[str, Any]]) -> Diff:
    """Build a `Diff` from `GET /repos/{o}/{r}/pulls/{n}/files` entries (files without `patch` are not reviewable)."""
    return _collect([_api_file(e) for e in entries])


# -------------------------------------------------------------------------------------------- anchor


@dataclass(frozen=True, slots=True)
class Anchor:
    """A comment position GitHub accepts; `start_line`/`start_side` only for a multi-line range."""

    path: str
    line: int
    side: Side
    start_line: int | None = None
    start_side: Side | None = None
    narrowed: bool = field(default=False, compare=False)

    def comment(self, body: str) -> InlineComment:
        """The review comment at this position."""
        return InlineComment(self.path, self.line, self.side, body, self.start_line, self.start_side)


@dataclass(frozen=True, slots=True)
class Unanchorable:
    """A finding that cannot be placed on the diff, and precisely why."""

    path: str
    reason: str


def normalize_path(path: str) -> str | None:
    """Strip leading `./`; None for empty, absolute, or `..`-containing paths (never guessed further)."""
    while path.startswith("./"):
        path = path[2:]
    if not path or path.startswith("/") or ".." in path.split("/"):
        return None
    return path


def anchor(diff: Diff, path: str, start_line: int, end_line: int, side: Side | str) -> Anchor | Unanchorable:
    """Place a finding's `(path, start_line..end_line, side)` on the diff, or say why it cannot be placed.

    Rules: the path must match exactly after `normalize_path`; `start_line > end_line` is swapped; the
    end line must be commentable on `side`. A range whose start is not commentable in the end line's
    hunk is narrowed to that hunk: start becomes the smallest commentable line of that hunk on `side`
    that is >= the original start (the end line itself at worst), and `narrowed` is set. Equal ends give
    a single-line anchor (`start_line` None).
    """
    try:
        side = Side(side)
    except ValueError:
        return Unanchorable(path, f"side {side!r} is neither RIGHT nor LEFT")
    clean = normalize_path(path)
    if clean is None:
        return Unanchorable(path, f"path {path!r} is not a repository-relative path")
    file = diff.file(clean)
    if file is None:
        return Unanchorable(clean, _missing_path_reason(diff, clean))
    start, end = sorted((start_line, end_line))
    hunk = file.hunk_of(end, side)
    if hunk is None:
        return Unanchorable(clean, f"line {end} is not part of the diff of {clean} ({side.value} side)")
    if start == end:
        return Anchor(clean, end, side)
    if file.hunk_of(start, side) == hunk:
        return Anchor(clean, end, side, start, side)
    candidates = file.hunks[hunk].right_lines if side is Side.RIGHT else file.hunks[hunk].left_lines
    first = min(n for n in candidates if start <= n <= end)
    if first == end:
        return Anchor(clean, end, side, narrowed=True)
    return Anchor(clean, end, side, first, side, narrowed=True)


def _missing_path_reason(diff: Diff, path: str) -> str:
    """Why `path` is not a file of the diff (naming a rename when that is the cause)."""
    for f in diff.files:
        if f.old_path == path and f.path != path:
            return f"path {path} is not in this pull request (it was renamed to {f.path})"
    return f"path {path} is not in this pull request"


def diff_from(text: str | None, file_entries: Sequence[Mapping[str, Any]] | None) -> Diff:
    """The unified diff when GitHub served one, else (diff too large) the files API's patches."""
    if text is not None:
        return parse_diff(text)
    return diff_from_files_api(list(file_entries or ()))


def is_placeable(diff: Diff, comment: InlineComment) -> bool:
    """Whether GitHub will accept this comment's position: it anchors to exactly the line it names."""
    start = comment.start_line if comment.start_line is not None else comment.line
    placed = anchor(diff, comment.path, start, comment.line, comment.side)
    return isinstance(placed, Anchor) and placed.line == comment.line
