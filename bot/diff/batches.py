"""Packing rendered hunks into batches (one model request each) within a token budget, cutting a hunk that alone
exceeds it into parts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.diff.render import estimate_tokens, file_header, gutter_lines, hunk_header, render_hunk, safe_text, show_path
from bot.diff.types import FileDiff


@dataclass(frozen=True, slots=True)
class Batch:
    """One model request's worth of diff text and exactly which files and hunks it covers."""

    index: int
    text: str
    files: tuple[str, ...]
    hunks: tuple[tuple[str, int], ...]  # (path, hunk index in FileDiff.hunks)
    est_tokens: int
    notes: tuple[str, ...] = ()


@dataclass
class _Builder:
    """Accumulates blocks for the batch being filled."""

    parts: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    hunks: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tokens: int = 0

    def add(self, text: str, tokens: int, path: str, hunk: int | None = None) -> None:
        """Append a block; record its file and hunk."""
        self.parts.append(text)
        self.tokens += tokens
        if not self.files or self.files[-1] != path:
            self.files.append(path)
        if hunk is not None and (path, hunk) not in self.hunks[-1:]:
            self.hunks.append((path, hunk))


class _Packer:
    """Greedy, order-preserving packing of hunks into batches under a token budget."""

    def __init__(self, budget: int) -> None:
        self.budget = max(1, budget)
        self.batches: list[Batch] = []
        self.cur = _Builder()

    def flush(self) -> None:
        """Close the current batch (if it has content)."""
        if self.cur.parts:
            c = self.cur
            self.batches.append(Batch(len(self.batches), "".join(c.parts), tuple(c.files), tuple(c.hunks),
                                      c.tokens, tuple(c.notes)))
        self.cur = _Builder()

    def _header(self, f: FileDiff) -> tuple[str, int]:
        """The file header to emit before the next block, if the current batch lacks it."""
        if self.cur.files and self.cur.files[-1] == f.path:
            return "", 0
        text = file_header(f, continued=any(b.files and b.files[-1] == f.path for b in self.batches[-1:]))
        return text, estimate_tokens(text)

    def add_hunk(self, f: FileDiff, index: int) -> None:
        """Place one hunk, starting a new batch or cutting it when it does not fit."""
        block = render_hunk(f.hunks[index], index, len(f.hunks))
        cost = estimate_tokens(block)
        header, hcost = self._header(f)
        if self.cur.tokens + hcost + cost > self.budget and self.cur.parts:
            self.flush()
            header, hcost = self._header(f)
        if hcost + cost <= self.budget:
            self.cur.add(header + block, hcost + cost, f.path, index)
            return
        self._cut(f, index)

    def _cut(self, f: FileDiff, index: int) -> None:
        """Split an oversized hunk into parts that each fit (at least one line per part)."""
        h = f.hunks[index]
        lines = [safe_text(line) for line in gutter_lines(h)]
        start, part = 0, 1
        while start < len(lines):
            header, hcost = self._header(f)
            head = safe_text(hunk_header(h, index, len(f.hunks), f" part {part}"))
            widest = len(lines)  # the NOTE line's size with the widest numbers it can hold
            note_room = estimate_tokens(f"NOTE {_cut_note(f.path, index, part, widest, widest, widest)}\n")
            room = self.budget - hcost - estimate_tokens(head) - note_room
            end, used = start, 0
            while end < len(lines) and (end == start or used + estimate_tokens(lines[end]) <= room):
                used += estimate_tokens(lines[end])
                end += 1
            note = _cut_note(f.path, index, part, start + 1, end, len(lines))
            text = header + head + "".join(lines[start:end]) + f"NOTE {note}\n"
            self.cur.add(text, estimate_tokens(text), f.path, index)
            self.cur.notes.append(note)
            start, part = end, part + 1
            if start < len(lines):
                self.flush()


def _cut_note(path: str, index: int, part: int, first: int, last: int, total: int) -> str:
    """The remark attached to one part of a hunk cut to fit the budget."""
    return (f"{show_path(path)} hunk {index + 1} is larger than the token budget: cut into parts; "
            f"part {part} shows its lines {first}-{last} of {total}")


def make_batches(files: Iterable[FileDiff], token_budget: int) -> list[Batch]:
    """Pack the files' hunks, in order, into batches whose estimated tokens stay within `token_budget`.

    A hunk is never split across batches unless it alone exceeds the budget; then it is cut into
    consecutive parts, each with a `NOTE` line in the text and in `Batch.notes`. A file spanning batches
    gets its `FILE` line again, marked `(continued)`. Files without hunks produce no text. A budget
    too small for even one line still yields one line per batch (exceeding the budget).
    """
    packer = _Packer(token_budget)
    for f in files:
        for index in range(len(f.hunks)):
            packer.add_hunk(f, index)
    packer.flush()
    return packer.batches
