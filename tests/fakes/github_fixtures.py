"""Pytest fixtures for the fake GitHub: one loopback server per session, reset before every test.

Fixtures:
- `fake_github_server`  (session): the running `FakeGitHub`, `.url` = `http://127.0.0.1:PORT`.
- `fake_github`: that fake, reset, with the App (id 1, slug "senior-review", key `rsa_private_key_pem`),
  installation 100 on `octo/repo` and `octo/other` (all App permissions) already registered.
- `fake_github_app`: the `FakeApp` registered by `fake_github`.
- `github_deliveries`: `fake_github` plus the App's webhook delivery log, installations and open-pull listings
  (`tests/fakes/github_reconcile.py`).
- `github_settings`: `Settings` pointing at the fake (`GITHUB_API_URL`, App id and key, retries, no waits).
- `github_settings_ghes`: the same with the GHES-style base URL `…/api/v3`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.github import FakeApp, FakeGitHub
from tests.fakes.github_reconcile import Deliveries, attach
from tests.fakes.loopback import serve_on_loopback

APP_ID = 1
INSTALLATION_ID = 100
OWNER = "octo"
REPO = "repo"


@pytest.fixture(scope="session")
def fake_github_server() -> Iterator[FakeGitHub]:
    """The fake GitHub served on loopback for the whole session."""
    fake = FakeGitHub()
    with serve_on_loopback(fake) as url:
        fake.url = url
        yield fake


@pytest.fixture
def fake_github(fake_github_server: FakeGitHub, rsa_private_key_pem: str) -> FakeGitHub:
    """The fake, reset, with the App and installation 100 on octo/repo and octo/other."""
    fake = fake_github_server
    fake.reset()
    fake.create_app(rsa_private_key_pem, app_id=APP_ID, slug="senior-review")
    fake.add_installation(INSTALLATION_ID, OWNER, [REPO, "other"])
    return fake


@pytest.fixture
def github_deliveries(fake_github: FakeGitHub) -> Deliveries:
    """The App-level endpoints reconciliation uses (webhook deliveries, installations, open pulls), added to the
    reset `fake_github`."""
    return attach(fake_github)


@pytest.fixture
def fake_github_app(fake_github: FakeGitHub) -> FakeApp:
    """The App registered with the fake."""
    return fake_github.apps[APP_ID]


def _settings(base_url: str, pem: str, **overrides: Any) -> Any:
    from bot.settings import load_settings

    values: dict[str, Any] = {
        "github_api_url": base_url,
        "github_app_id": APP_ID,
        "github_app_private_key": pem,
        "github_webhook_secret": "secret",
        "github_max_wait_seconds": 5.0,
        "github_request_retries": 3,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def github_settings(fake_github: FakeGitHub, rsa_private_key_pem: str) -> Any:
    """Settings for the bot talking to the fake (github.com-style base URL)."""
    return _settings(fake_github.url, rsa_private_key_pem)


@pytest.fixture
def github_settings_ghes(fake_github: FakeGitHub, rsa_private_key_pem: str) -> Any:
    """Settings for the bot talking to the fake through a GHES-style base URL (`/api/v3`)."""
    return _settings(fake_github.url + "/api/v3", rsa_private_key_pem)
