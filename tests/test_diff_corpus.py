"""Every real-world corpus diff parses, and its commentable lines agree with git's own numbers.

Two independent references: `git_numstat_truth.json` (git's numstat and raw status for each diff) and
the diff's own `@@` headers and line prefixes, read here by a minimal walker that shares no code with
`bot.diff`. Skips cleanly when the corpus is absent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.diff.batches import make_batches
from bot.diff.filter import filter_files
from bot.diff.parse import parse_diff
from bot.diff.types import FileStatus
from bot.domain import Side
from tests.conftest import CORPUS

pytestmark = pytest.mark.corpus

CORPUS_DIFFS = CORPUS / "diffs"
NAMES = sorted(p.name for p in CORPUS_DIFFS.glob("*.diff")) if CORPUS_DIFFS.is_dir() else ["(corpus absent)"]
HEAD = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
RAW_STATUS = {
    "A": {FileStatus.ADDED, FileStatus.BINARY, FileStatus.SUBMODULE},
    "D": {FileStatus.DELETED, FileStatus.BINARY, FileStatus.SUBMODULE},
    "M": {FileStatus.MODIFIED, FileStatus.MODE_ONLY, FileStatus.BINARY, FileStatus.SUBMODULE},
    "R": {FileStatus.RENAMED, FileStatus.BINARY},
    "C": {FileStatus.COPIED, FileStatus.BINARY},
    "T": {FileStatus.TYPE_CHANGE},
}


def _read(corpus_dir: Path, name: str) -> str:
    if name == "(corpus absent)":
        pytest.skip("corpus absent")
    return (corpus_dir / "diffs" / name).read_bytes().decode("utf-8")


@pytest.fixture(scope="module")
def truth(corpus_dir: Path) -> dict[str, Any]:
    """git's numstat and raw output for every corpus diff."""
    data: dict[str, Any] = json.loads((corpus_dir / "diffs" / "git_numstat_truth.json").read_text())
    return data


def _blocks(text: str) -> list[tuple[set[int], set[int], int, int]]:
    """Per `diff --git` block: (RIGHT lines, LEFT lines, added, removed), from @@ headers and prefixes."""
    out: list[tuple[set[int], set[int], int, int]] = []
    old_left = new_left = 0
    old = new = 0
    for line in text.split("\n"):
        if old_left or new_left:
            kind = line[:1]
            right, left, added, removed = out[-1]
            if kind == "+":
                right.add(new)
                new, new_left, added = new + 1, new_left - 1, added + 1
            elif kind == "-":
                left.add(old)
                old, old_left, removed = old + 1, old_left - 1, removed + 1
            elif kind == " ":
                right.add(new)
                old, new, old_left, new_left = old + 1, new + 1, old_left - 1, new_left - 1
            out[-1] = (right, left, added, removed)
            continue
        if line.startswith("diff --git "):
            out.append((set(), set(), 0, 0))
        m = HEAD.match(line)
        if m:
            old, new = int(m.group(1)), int(m.group(3))
            old_left = 1 if m.group(2) is None else int(m.group(2))
            new_left = 1 if m.group(4) is None else int(m.group(4))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_corpus_diff_parses_and_agrees_with_git(corpus_dir: Path, truth: dict[str, Any], name: str) -> None:
    diff = parse_diff(_read(corpus_dir, name))
    numstat = {row["new"]: row for row in truth[name]["numstat"]}
    raw = {row["new"]: row for row in truth[name]["raw"]}
    assert [f.path for f in diff.files] == list(dict.fromkeys(row["new"] for row in truth[name]["numstat"]))
    for f in diff.files:
        row = numstat[f.path]
        if row["binary"]:
            no_content = f.hunks == () and f.status in (FileStatus.RENAMED, FileStatus.MODE_ONLY)
            assert f.status is FileStatus.BINARY or no_content, f.path
        else:
            assert (f.additions, f.deletions) == (row["added"], row["removed"]), f.path
        assert f.status in RAW_STATUS[raw[f.path]["status"][0]], (f.path, f.status)
        if f.old_path is not None and raw[f.path]["status"][0] in "RC":
            assert f.old_path == raw[f.path]["old"]


@pytest.mark.parametrize("name", NAMES)
def test_corpus_commentable_lines_match_hunk_headers(corpus_dir: Path, name: str) -> None:
    text = _read(corpus_dir, name)
    diff = parse_diff(text)
    blocks = iter(_blocks(text))
    for f in diff.files:
        right, left, added, removed = next(blocks)
        if f.status is FileStatus.TYPE_CHANGE:  # git prints one block per side
            r2, l2, a2, d2 = next(blocks)
            right, left, added, removed = right | r2, left | l2, added + a2, removed + d2
        assert f.commentable(Side.RIGHT) == right, f.path
        assert f.commentable(Side.LEFT) == left, f.path
        assert (f.additions, f.deletions) == (added, removed), f.path
        for h in f.hunks:
            assert [ln.new_no for ln in h.lines if ln.kind != "-"] == list(h.right_lines)
            assert [ln.old_no for ln in h.lines if ln.kind == "-"] == list(h.left_lines)
    assert next(blocks, None) is None


@pytest.mark.parametrize("name", NAMES)
def test_corpus_diff_renders_every_reviewable_hunk(corpus_dir: Path, name: str) -> None:
    diff = parse_diff(_read(corpus_dir, name))
    kept, skipped = filter_files(diff)
    assert len(kept) + len(skipped) == len(diff.files)
    batches = make_batches(kept, 20_000)
    covered = {h for b in batches for h in b.hunks}
    assert covered == {(f.path, i) for f in kept for i in range(len(f.hunks))}
    assert all(b.est_tokens <= 20_000 or b.notes for b in batches)


def test_format_patch_parses_with_repeated_paths_marked(corpus_dir: Path) -> None:
    diff = parse_diff(_read(corpus_dir, "pr_flask_4672_return_list.patch"))
    assert diff.files
    assert any(f.not_reviewable and "more than once" in f.not_reviewable for f in diff.files)
