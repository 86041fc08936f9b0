"""Pytest fixtures for the fake Claude (Messages API on loopback; see `tests.fakes.claude` for its controls).

Fixtures:
    fake_claude          a `FakeClaude`, reset for each test: `.base_url`, `.api_key`, `.queue(...)`,
                         `.fail_next(kind, times, retry_after)`, `.latency`, `.requests`, `.usages`,
                         `.min_cacheable_tokens`, `.default`, `.known_models` (others: 404),
                         `.context_window` (over it: 400 "prompt is too long").
    fake_claude_client   an `anthropic.AsyncAnthropic` pointed at it (max_retries=0: a test opts in to retries).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes.claude import FakeClaude, running_fake_claude


@pytest.fixture(scope="session")
def _fake_claude_server() -> Iterator[FakeClaude]:
    """One loopback server for the whole session; tests get it reset."""
    with running_fake_claude() as fake:
        yield fake


@pytest.fixture
def fake_claude(_fake_claude_server: FakeClaude) -> Iterator[FakeClaude]:
    """The fake Messages API, fresh for this test."""
    _fake_claude_server.reset()
    yield _fake_claude_server
    _fake_claude_server.reset()


@pytest.fixture
async def fake_claude_client(fake_claude: FakeClaude) -> AsyncIterator[object]:
    """A real `AsyncAnthropic` client talking to the fake, without SDK retries."""
    import anthropic

    client = anthropic.AsyncAnthropic(api_key=fake_claude.api_key, base_url=fake_claude.base_url, max_retries=0)
    try:
        yield client
    finally:
        await client.close()
