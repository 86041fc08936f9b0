"""Context in the request: related files batched together, and each file's context block after its hunks.

Pure. `related_order` puts a module next to its tests and files that import each other next to each other, so the
greedy batcher keeps them in one request. `add_context` appends, to each batch, the `CONTEXT` block (code at the
head commit, `C <n> | ` gutter, read-only) and the `TESTS` line of every file it covers, within the room the batch
has left under the token budget: a block that does not fit is shortened to the enclosing definitions, then left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.context import RepoView, context_ranges, is_test_path, module_name, module_of_test, related_tests
from bot.contract import BatchInput
from bot.diff.render import escape_breaks, estimate_tokens
from bot.diff.types import FileDiff
from bot.linear import linear

# Import lines (Python, JS/TS, Go, Java...): one RE2 pass over a file's first lines (linear on untrusted text).
_IMPORT = linear(r"(?m)^[^\S\n]*(?:from[^\S\n]+\S+[^\S\n]+import\b|import\b|const[^\S\n].*\brequire\(|"
                 r".*\bfrom[^\S\n]+['\"]).*")
_WORD = linear(r"\w+")
IMPORT_LINES, IMPORT_LINE_CHARS = 400, 300  # what `related_order` reads of a file


@dataclass(frozen=True, slots=True)
class ContextStats:
    """What context a review sent: files shown with code, files with a TESTS line, and its estimated tokens."""

    files: int = 0
    tests_lines: int = 0
    tokens: int = 0


def _imports(text: str) -> str:
    """The import lines among a file's first IMPORT_LINES lines, each cut to IMPORT_LINE_CHARS, as one text."""
    head = "\n".join(line[:IMPORT_LINE_CHARS] for line in text.splitlines()[:IMPORT_LINES])
    return "\n".join(m.group(0) for m in _IMPORT.finditer(head))


def related_order(files: Sequence[FileDiff], view: RepoView | None = None) -> list[FileDiff]:
    """`files` grouped so a module, its tests and the files importing each other are adjacent (first-seen order).

    File i is linked to file j when i is a test named for j's module, or when j's module name (3 characters or
    more) is a whole word of i's import lines. Names are looked up among each file's words, so the work grows with
    the text, not with the square of the number of files.
    """
    parent = list(range(len(files)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    names = [module_name(f.path) for f in files]
    imports = [_imports((view.texts.get(f.path, "") if view else "") or _added(f)) for f in files]
    modules: dict[str, list[int]] = {}  # module name -> files of that name that are not tests
    by_name: dict[str, list[int]] = {}
    for j, (f, name) in enumerate(zip(files, names, strict=True)):
        by_name.setdefault(name, []).append(j)
        if not is_test_path(f.path):
            modules.setdefault(name, []).append(j)
    lookup = _NameLookup(name for name in by_name if len(name) > 2)
    for i, f in enumerate(files):
        linked = set(modules.get(module_of_test(f.path) or "", ()))
        for name in lookup.whole_words(imports[i]):
            linked.update(by_name[name])
        linked.discard(i)
        for j in linked:
            parent[root(i)] = root(j)
    order: dict[int, list[FileDiff]] = {}
    for i, f in enumerate(files):
        order.setdefault(root(i), []).append(f)
    return [f for group in order.values() for f in group]


class _NameLookup:
    """Which of some names occur in a text as a whole word, as `\\bname\\b` would find them.

    A whole-word occurrence of a name starts with its leading word (all of `users`; `user` of `user-service`) as a
    whole word of the text, so names are indexed by that word and only those whose word the text has are checked.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._by_head: dict[str, list[str]] = {}
        self._headless: list[str] = []  # names starting with a non-word character (rare): always checked
        for name in names:
            head = _WORD.match(name)
            if head is None:
                self._headless.append(name)
            else:
                self._by_head.setdefault(head.group(0), []).append(name)

    def whole_words(self, text: str) -> set[str]:
        """The names that occur in `text` as a whole word."""
        if not text:
            return set()
        words = {m.group(0) for m in _WORD.finditer(text)}
        candidates = [name for word in words for name in self._by_head.get(word, ())]
        return {name for name in (*candidates, *self._headless) if _whole_word(name, text)}


def _whole_word(name: str, text: str) -> bool:
    """Whether `name` occurs in `text` between word boundaries (a scan of its occurrences: no pattern)."""
    start = text.find(name)
    while start >= 0:
        end = start + len(name)
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if _boundary(before, name[0]) and _boundary(name[-1], after):
            return True
        start = text.find(name, start + 1)
    return False


def _boundary(left: str, right: str) -> bool:
    """Whether a word boundary (`\\b`) lies between the characters `left` and `right` ('' at the text's ends)."""
    return _is_word(left) != _is_word(right)


def _is_word(ch: str) -> bool:
    return bool(ch) and (ch.isalnum() or ch == "_")


def _added(f: FileDiff) -> str:
    return "\n".join(text for h in f.hunks for kind, text in zip(h.kinds, h.texts, strict=True) if kind == "+")


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
