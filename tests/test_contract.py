"""The core's side of the model contract: splitting a failed batch in halves."""

from __future__ import annotations

from bot.contract import BatchInput, split_batch
from bot.diff.batches import make_batches
from bot.diff.parse import parse_diff
from tests.fakes.gitdiff import git_diff


def test_split_batch_cuts_rendered_batches_at_a_file_header() -> None:
    base = {"a.py": "", "b.py": "", "c.py": ""}
    head = {"a.py": "x = 1\n" * 3, "b.py": "y = 2\n" * 12, "c.py": "z = 3\n" * 2}
    batch = make_batches(parse_diff(git_diff(base, head)).files, 10_000)[0]
    first, second = split_batch(BatchInput(batch.index, batch.text, batch.files))
    assert second.text.startswith("FILE b.py ")
    assert (first.files, second.files) == (("a.py",), ("b.py", "c.py"))
    assert first.text + second.text == batch.text
