"""The token estimate against the fake Claude's count (which follows Anthropic's documented average)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.analysis import estimate_batch
from bot.contract import BatchInput, PullContext
from bot.diff.render import estimate_tokens
from bot.prompts import batch_prompt
from tests.fakes.claude import count_tokens


@given(st.text(max_size=400))
def test_estimate_is_the_fake_count_within_a_token(text: str) -> None:
    assert abs(estimate_tokens(text) - count_tokens(text)) <= 1


def test_batch_estimate_covers_the_prompt_around_the_diff() -> None:
    context = PullContext("octo/repo", "Add a handler", "Adds it.", instructions="Handlers are async.")
    batch = BatchInput(0, "FILE app.py (added)\nR 1 + x = 1\n", ("app.py",))
    sent = batch_prompt(repo=context.repo, title=context.title, body=context.body, files=batch.files,
                        diff=batch.text, instructions=context.instructions).text
    assert abs(estimate_batch(context, batch) - count_tokens(sent)) <= 0.02 * count_tokens(sent) + 2
    assert estimate_batch(context, batch) > 5 * estimate_tokens(batch.text)  # the frame dominates a tiny diff
