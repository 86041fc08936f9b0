"""Context in the request: related files batched together, and each file's context block after its hunks.

Pure. `related_order` puts a module next to its tests and files that import each other next to each other, so the
greedy batcher keeps them in one request. `add_context` appends, to each batch, the `CONTEXT` block (code at the
head commit, `C <n> | ` gutter, read-only) and the `TESTS` line of every file it covers, within the room the batch
has left under the token budget: a block that does not fit is shortened to the enclosing definitions, then left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.context import RepoView, context_ranges, is_test_path, module_name, module_of_test, related_tests
from bot.contract import BatchInput
from bot.diff.render import escape_breaks, estimate_tokens
from bot.diff.types import FileDiff

_IMPORT = re.compile(r"^\s*(?:from\s+\S+\s+import\b|import\b|const\s.*\brequire\(|.*\bfrom\s+['\"])")


@dataclass(frozen=True, slots=True)
class ContextStats:
    """What context a review sent: files shown with code, files with a TESTS line, and its estimated tokens."""

    files: int = 0
    tests_lines: int = 0
    tokens: int = 0


def _imports(text: str) -> str:
    """The import lines of a file, as one text (what `related_order` searches for module names)."""
    return "\n".join(line for line in text.splitlines()[:400] if _IMPORT.match(line[:300]))


def related_order(files: Sequence[FileDiff], view: RepoView | None = None) -> list[FileDiff]:
    """`files` grouped so a module, its tests and the files importing each other are adjacent (first-seen order)."""
    parent = list(range(len(files)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    names = [module_name(f.path) for f in files]
    imports = [_imports((view.texts.get(f.path, "") if view else "") or _added(f)) for f in files]
    for i, f in enumerate(files):
        target = module_of_test(f.path)
        for j in range(len(files)):
            if i == j:
                continue
            linked = (target is not None and target == names[j] and not is_test_path(files[j].path)) or (
                len(names[j]) > 2 and re.search(rf"\b{re.escape(names[j])}\b", imports[i]) is not None
            )
            if linked:
                parent[root(i)] = root(j)
    order: dict[int, list[FileDiff]] = {}
    for i, f in enumerate(files):
        order.setdefault(root(i), []).append(f)
    return [f for group in order.values() for f in group]


def _added(f: FileDiff) -> str:
    return "\n".join(line.text for h in f.hunks for line in h.lines if line.kind == "+")


def _changed_ranges(f: FileDiff) -> list[tuple[int, int]]:
    """Per hunk, the new-side lines it changes (its whole new range when it only removes lines)."""
    ranges: list[tuple[int, int]] = []
    for h in f.hunks:
        added = [line.new_no for line in h.lines if line.kind == "+" and line.new_no is not None]
        if added:
            ranges.append((min(added), max(added)))
        else:
            ranges.append((h.new_start, h.new_start + max(h.new_count, 1) - 1))
    return ranges


def context_block(f: FileDiff, view: RepoView, changed: Iterable[str], room: int) -> str:
    """The `CONTEXT` block and `TESTS` line of one file, at most `room` estimated tokens ('' when nothing fits)."""
    parts: list[str] = []
    tests = module_tests_line(f.path, view, changed) if view.listings else ""
    text = view.texts.get(f.path)
    if text is not None and f.status not in ("deleted", "binary"):
        lines = text.splitlines()
        for scope in context_ranges(text, _changed_ranges(f), f.path):
            body = "".join(f"C {n} | {lines[n - 1]}\n" for n in range(scope.start, scope.end + 1))
            head = f"CONTEXT {f.path}: {scope.label}, at the head commit (read-only, not part of the diff)\n"
            parts.append(escape_breaks(head + body))
    block = "".join(parts) + tests
    while parts and estimate_tokens(block) > room:
        parts.pop()  # the last scopes go first: the first hunks' context is kept
        block = "".join(parts) + tests
    return block if estimate_tokens(block) <= room else ""


def module_tests_line(path: str, view: RepoView, changed: Iterable[str]) -> str:
    """`TESTS <path>: ...` naming the module's test files and which this change touches ('' for a test file)."""
    if is_test_path(path):
        return ""
    found = related_tests(path, view.paths(), changed)
    if not found:
        return escape_breaks(f"TESTS {path}: none found\n")
    listed = ", ".join(f"{t.path} ({'changed in this pull request' if t.changed else 'not changed'})" for t in found)
    return escape_breaks(f"TESTS {path}: {listed}\n")


def add_context(
    batches: Sequence[BatchInput], files: Sequence[FileDiff], view: RepoView, changed: Iterable[str], budget: int
) -> tuple[list[BatchInput], ContextStats]:
    """Each batch with its files' context appended, never past `budget` estimated tokens per batch."""
    by_path = {f.path: f for f in files}
    changed = tuple(changed)
    out: list[BatchInput] = []
    shown = tests = tokens = 0
    for batch in batches:
        room = budget - estimate_tokens(batch.text)
        extra: list[str] = []
        for path in batch.files:
            f = by_path.get(path)
            if f is None or room <= 0:
                continue
            block = context_block(f, view, changed, room)
            if block:
                extra.append(block)
                cost = estimate_tokens(block)
                room -= cost
                tokens += cost
                shown += "CONTEXT " in block
                tests += "TESTS " in block
        text = batch.text + "".join(extra)
        out.append(BatchInput(batch.index, text, batch.files))
    return out, ContextStats(shown, tests, tokens)
