"""Batch fan-out: the first call streams and the others start at its first event, reading the cache it writes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.contract import BatchInput, PullContext
from bot.model.client import make_client
from bot.model.reviewer import Reviewer
from bot.settings import load_settings
from tests.fakes.claude import FakeClaude

CONTEXT = PullContext(repo="acme/api", title="Fan-out", body="")


@pytest.fixture
async def reviewer(fake_claude: FakeClaude) -> AsyncIterator[Reviewer]:
    """A Reviewer on a real client pointed at the fake, four calls at once."""
    settings = load_settings(anthropic_api_key=fake_claude.api_key, anthropic_base_url=fake_claude.base_url,
                             model_max_retries=0)
    async with make_client(settings) as client:
        yield Reviewer(client, "claude-sonnet-5-5", concurrency=4)


def _batches(n: int) -> list[BatchInput]:
    return [BatchInput(i, f"FILE src/f{i}.py (added)\nR 1 + x = {i}\n", (f"src/f{i}.py",)) for i in range(n)]


async def test_others_start_at_the_first_event_and_read_its_cache(
    fake_claude: FakeClaude, reviewer: Reviewer
) -> None:
    fake_claude.latency, fake_claude.first_event_latency = 0.5, 0.02
    outcome = await reviewer.review(CONTEXT, _batches(4))
    assert outcome.failed == () and [b.index for b in outcome.batches] == [0, 1, 2, 3]
    first, *others = fake_claude.requests
    assert first.json.get("stream") is True and all("stream" not in r.json for r in others)
    first_end = max(end for start, end in fake_claude.served if start <= first.at)
    assert all(r.at < first_end for r in others)  # they did not wait for the first answer to finish
    write, *reads = fake_claude.usages  # counted on arrival: the first is first
    assert write["cache_creation_input_tokens"] > 0
    assert all(u["cache_read_input_tokens"] == write["cache_creation_input_tokens"] for u in reads)


async def test_a_single_batch_does_not_stream(fake_claude: FakeClaude, reviewer: Reviewer) -> None:
    await reviewer.review(CONTEXT, _batches(1))
    assert "stream" not in fake_claude.requests[0].json


async def test_first_call_rejected_before_streaming_still_releases_the_others(
    fake_claude: FakeClaude, reviewer: Reviewer
) -> None:
    fake_claude.fail_next("request_too_large")  # 413 before any event: batch 0 is retried in halves
    outcome = await reviewer.review(CONTEXT, _batches(3))
    assert outcome.failed == () and [b.index for b in outcome.batches] == [0, 0, 1, 2]
    assert len(fake_claude.requests) == 5
