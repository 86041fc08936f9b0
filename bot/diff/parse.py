"""Reading `git diff` output (GitHub's `application/vnd.github.diff`) into a `Diff`: the only module importing
`unidiff`. Pure code, no I/O.

- Paths are unquoted as git quotes them (C escapes, octal UTF-8) and never guessed.
- `\\ No newline at end of file` is not a line (dropped, never commentable); a `\\r` before the newline
  is content (kept in `DiffLine.text`).
- A path that appears twice (git's file <-> symlink type change: a deletion then an addition) becomes
  one `FileDiff` with status `type_change` whose hunks are the deletion's then the addition's, so LEFT
  and RIGHT lines are both known. Any other repeated path (e.g. `git format-patch` output with several
  commits) is kept once, without hunks, and marked not reviewable: its line numbers are ambiguous.
- unidiff reads the structure (files, headers, validated hunk counts); hunk bodies are sliced from the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from unidiff.errors import UnidiffParseError
from unidiff.patch import Hunk as UnidiffHunk
from unidiff.patch import PatchedFile, PatchSet

from bot.diff.render import UNSAFE_CHARS
from bot.diff.types import Diff, DiffParseError, FileDiff, FileStatus, Hunk, diff_of
from bot.invisible import has_hidden

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
    return diff_of(_parse(text))
