"""Property tests: random trees and edits, real `git diff`, and an oracle independent of the parser.

The oracle never re-derives hunks (git and difflib may legitimately choose different ones). Instead
it checks what must hold for *any* correct reading of git's output:
- the set of paths equals `git diff --numstat -z` (raw, unquoted paths), and added/removed counts agree;
- every RIGHT line's text equals the new file's line at that number, every LEFT line's text equals
  the old file's line at that number, and a context line is equal on both sides;
- applying the parsed hunks to the old content reproduces the new content exactly (so the hunks cover
  exactly the changed ranges: nothing missing, nothing invented);
- the commentable sets are exactly the new numbers of added/context lines and old numbers of removed lines.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.diff.anchor import Anchor, Unanchorable, anchor
from bot.diff.parse import parse_diff
from bot.diff.types import Diff, FileDiff, FileStatus, Hunk
from bot.domain import Side
from tests.fakes.gitdiff import git_repo

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DIRS = ["", "src/", "with space/", "données/", "基础/"]
STEMS = ["x", "READ ME", "naïve", "基础", 'q"uote', "b\\s", "t\tab"]
EXTS = [".py", ".txt", ".md"]
LINES = ["a", "b", "c", "def f():", "    return 1", "", "ünïcode ✓", "cr\rmid", "ff\x0cand\u2028sep", "x" * 30]

paths = st.builds(lambda d, s, e: d + s + e, st.sampled_from(DIRS), st.sampled_from(STEMS), st.sampled_from(EXTS))
line_lists = st.lists(st.sampled_from(LINES), max_size=25)


@st.composite
def text_content(draw: st.DrawFn, lines: list[str] | None = None) -> str:
    """A text file: lines, CRLF or LF endings, with or without a final newline."""
    body = draw(line_lists) if lines is None else lines
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(body)
    if body and draw(st.booleans()):
        text += eol
    return text


binary_content = st.binary(min_size=1, max_size=200).map(lambda b: b"\x00" + b)


@st.composite
def edited(draw: st.DrawFn, text: str) -> str:
    """`text` with random line deletions, replacements and insertions."""
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    for line in lines:
        op = draw(st.sampled_from(["keep", "keep", "keep", "drop", "replace", "insert"]))
        if op in ("keep", "insert"):
            out.append(line)
        if op == "replace":
            out.append(draw(st.sampled_from(LINES)))
        if op == "insert":
            out.extend(draw(st.lists(st.sampled_from(LINES), min_size=1, max_size=3)))
    eol = "\r\n" if "\r\n" in text and draw(st.booleans()) else "\n"
    return eol.join(out)


@st.composite
def tree_pairs(draw: st.DrawFn) -> tuple[dict[str, str | bytes], dict[str, str | bytes]]:
    """A base tree and a head tree derived from it by random file operations."""
    names = draw(st.lists(paths, min_size=1, max_size=5, unique=True))
    before: dict[str, str | bytes] = {}
    for name in names:
        before[name] = draw(binary_content) if draw(st.integers(0, 9)) == 0 else draw(text_content())
    after: dict[str, str | bytes] = {}
    for name, content in before.items():
        op = draw(st.sampled_from(["keep", "modify", "modify", "delete", "rename", "rename_modify"]))
        new_name = name
        if op.startswith("rename"):
            new_name = draw(paths.filter(lambda p: p not in before and p not in after))
        if op == "delete":
            continue
        if op in ("modify", "rename_modify"):
            content = draw(binary_content) if isinstance(content, bytes) else draw(edited(content))
        after[new_name] = content
    for name in draw(st.lists(paths, max_size=2, unique=True)):
        if name not in before and name not in after:
            after[name] = draw(text_content())
    return before, after


def lines_of(content: str | bytes) -> list[str]:
    """A text file's lines as git numbers them (split on LF only; CR stays content)."""
    assert isinstance(content, str)
    parts = content.split("\n")
    return parts[:-1] if parts and parts[-1] == "" else parts


def apply(old: list[str], hunks: tuple[Hunk, ...]) -> list[str]:
    """Apply parsed hunks to old lines, checking context and removals against the old text."""
    out: list[str] = []
    pos = 0  # 0-based index of the next old line not yet copied
    for h in hunks:
        start = h.old_start if h.old_count == 0 else h.old_start - 1
        assert start >= pos
        out += old[pos:start]
        pos = start
        for ln in h.lines:
            if ln.kind == "+":
                out.append(ln.text)
            else:
                assert old[pos] == ln.text
                pos += 1
                if ln.kind == " ":
                    out.append(ln.text)
    return out + old[pos:]


def check_file(f: FileDiff, before: Mapping[str, str | bytes], after: Mapping[str, str | bytes]) -> None:
    """The oracle for one parsed file."""
    new = after.get(f.path) if f.status is not FileStatus.DELETED else None
    old = before.get(f.old_path) if f.old_path is not None else None
    assert (new is None) == (f.path not in after)
    assert (old is None) == (f.old_path is None or f.old_path not in before)
    if isinstance(new, bytes) or isinstance(old, bytes):
        assert f.status in (FileStatus.BINARY, FileStatus.RENAMED) and f.hunks == ()
        return
    old_lines = lines_of(old) if old is not None else []
    new_lines = lines_of(new) if new is not None else []
    right: set[int] = set()
    left: set[int] = set()
    for h in f.hunks:
        for ln in h.lines:
            if ln.new_no is not None:
                assert new_lines[ln.new_no - 1] == ln.text
                right.add(ln.new_no)
            if ln.old_no is not None:
                assert old_lines[ln.old_no - 1] == ln.text
                if ln.kind == "-":
                    left.add(ln.old_no)
    assert apply(old_lines, f.hunks) == new_lines
    assert f.commentable(Side.RIGHT) == right
    assert f.commentable(Side.LEFT) == left


@SETTINGS
@given(tree_pairs())
def test_parse_agrees_with_git_and_file_contents(trees: tuple[dict[str, str | bytes], dict[str, str | bytes]]) -> None:
    before, after = trees
    with git_repo(before, after) as repo:
        text = repo.diff_bytes().decode("utf-8")
        numstat = repo.numstat()
    diff = parse_diff(text)
    assert sorted(f.path for f in diff.files) == sorted(path for _, _, path in numstat)
    counts = {path: (added, removed) for added, removed, path in numstat}
    for f in diff.files:
        added, removed = counts[f.path]
        if added is not None and removed is not None:
            assert (f.additions, f.deletions) == (added, removed)
        else:  # binary per git; a pure rename of a binary file has no "Binary files" line to see
            assert f.status is FileStatus.BINARY or (f.status is FileStatus.RENAMED and f.hunks == ())
        check_file(f, before, after)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    mentioned = {f.path for f in diff.files} | {f.old_path for f in diff.files if f.old_path}
    assert changed <= mentioned


def check_anchor(diff: Diff, result: Anchor | Unanchorable) -> None:
    """An anchor is always inside one hunk: both ends commentable on their side, in the same hunk."""
    if isinstance(result, Unanchorable):
        assert result.reason
        return
    f = diff.file(result.path)
    assert f is not None
    hunk = f.hunk_of(result.line, result.side)
    assert hunk is not None
    if result.start_line is not None:
        assert result.start_side is result.side
        assert result.start_line < result.line
        assert f.hunk_of(result.start_line, result.side) == hunk


@SETTINGS
@given(tree_pairs(), st.data())
def test_anchor_never_leaves_a_hunk(trees: tuple[dict[str, str | bytes], dict[str, str | bytes]],
                                    data: st.DataObject) -> None:
    before, after = trees
    with git_repo(before, after) as repo:
        diff = parse_diff(repo.diff_bytes().decode("utf-8"))
    candidates = [f.path for f in diff.files] + ["missing.py", "../x", "./" + next(iter(after), "a")]
    placed = 0
    for _ in range(30):
        path = data.draw(st.sampled_from(candidates))
        start = data.draw(st.integers(-1, 40))
        end = data.draw(st.integers(-1, 40))
        side = data.draw(st.sampled_from([Side.RIGHT, Side.LEFT]))
        result = anchor(diff, path, start, end, side)
        check_anchor(diff, result)
        placed += isinstance(result, Anchor)
    for f in diff.files:  # every commentable line anchors to itself
        for side in (Side.RIGHT, Side.LEFT):
            for line in f.commentable(side):
                assert anchor(diff, f.path, line, line, side) == Anchor(f.path, line, side)
