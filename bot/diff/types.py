"""The diff's model, all immutable: what changed in a pull request and where a review comment may land.

- `Diff.files` is in diff order; `FileDiff.path` is the path GitHub uses in its API (new path; the old
  path for deleted files), UTF-8, never git-quoted. `old_path` is None for added files, else the path
  before the change (differs from `path` for renames and copies).
- Commentable lines, as GitHub's review API accepts them: RIGHT = added and context lines by new-file
  line number (every new-side line of a hunk); LEFT = removed lines by old-file line number.
- Statuses: a binary content change is `binary` (whatever else happened); a submodule (gitlink) change
  is `submodule` (not reviewable); a mode change without content change is `mode_only`; a path git lists
  twice as a deletion then an addition (file <-> symlink) is `type_change` (`diff_of`).

For speed a `Hunk` keeps its lines compactly (`kinds`, one character per line, and `texts`); the
`DiffLine` objects of `Hunk.lines` are built on each use and not kept: 100,000 kept line objects would make every
full garbage collection of a large review scan them (a pause of tens of milliseconds holding the GIL).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from itertools import chain
from typing import Literal

from bot.domain import Side
from bot.errors import BotError

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
    escape: bool = True  # False when no text holds one of `bot.diff.render.UNSAFE_CHARS` (no escaping needed)

    @property
    def lines(self) -> tuple[DiffLine, ...]:
        """The hunk's lines with their old/new numbers (built on each use: see the module docstring)."""
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


def _merge(first: FileDiff, second: FileDiff) -> FileDiff:
    """Two blocks for one path: a type change (deletion then addition) or an ambiguous repeat."""
    deletion = first.status is FileStatus.DELETED or (first.new_mode is None and first.old_mode is not None)
    if deletion and second.old_path is None:
        return FileDiff(first.path, first.path, FileStatus.TYPE_CHANGE, first.hunks + second.hunks,
                        first.not_reviewable or second.not_reviewable, first.old_mode, second.new_mode)
    return FileDiff(first.path, first.old_path, first.status, (),
                    "the diff lists this path more than once (several commits?); its line numbers are ambiguous",
                    first.old_mode, second.new_mode)


def diff_of(files: Sequence[FileDiff]) -> Diff:
    """The files in order as a `Diff`, a repeated path merged (a type change) or marked ambiguous."""
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
