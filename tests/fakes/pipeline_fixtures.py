"""Pytest fixture for pipeline tests: an AppContext as the workers build it, its clients pointed at the fakes.

Fixture:
    app_context   `bot.registry.AppContext` with settings for the fake GitHub and fake Claude, a migrated SQLite
                  store (copied from the session's template), a real `GitHubApp` (no write spacing, fast
                  backoff) and a real `AsyncAnthropic` (no SDK retries); closed after the test.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import pytest

from bot.github.auth import GitHubApp
from bot.metrics import Metrics
from bot.registry import AppContext, Registry
from bot.settings import load_settings
from bot.store.base import Store
from tests.fakes.claude import FakeClaude
from tests.fakes.github import FakeGitHub


@pytest.fixture
async def app_context(
    fake_github: FakeGitHub, fake_claude: FakeClaude, rsa_private_key_pem: str, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[AppContext]:
    """The workers' context, wired to the loopback fakes."""
    settings = load_settings(
        github_api_url=fake_github.url,
        github_app_id=1,
        github_app_private_key=rsa_private_key_pem,
        github_webhook_secret="secret",
        github_max_wait_seconds=2.0,
        github_request_retries=2,
        anthropic_api_key=fake_claude.api_key,
        anthropic_base_url=fake_claude.base_url,
        database_url=f"sqlite:///{tmp_path / 'bot.sqlite3'}",
    )
    shutil.copy(sqlite_template, tmp_path / "bot.sqlite3")  # migrated once per session
    store = Store.from_settings(settings)
    context = AppContext(settings, store, Metrics(), Registry())
    context.github = GitHubApp(settings, write_interval=0, backoff_base=0.01)
    context.model = anthropic.AsyncAnthropic(api_key=fake_claude.api_key, base_url=fake_claude.base_url,
                                             max_retries=0)
    try:
        yield context
    finally:
        await context.model.close()
        await context.github.aclose()
        await store.close()
