"""Where a review comment may land: a finding's `(path, lines, side)` placed on the diff, or precisely why not."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.diff.types import Diff
from bot.domain import InlineComment, Side


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


def is_placeable(diff: Diff, comment: InlineComment) -> bool:
    """Whether GitHub will accept this comment's position: it anchors to exactly the line it names."""
    start = comment.start_line if comment.start_line is not None else comment.line
    placed = anchor(diff, comment.path, start, comment.line, comment.side)
    return isinstance(placed, Anchor) and placed.line == comment.line
