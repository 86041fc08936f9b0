"""Shared fixtures: webhook payloads (ours, and the real-world corpus), generated keys, the loopback fakes' plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.keys import private_key_pem

pytest_plugins = [
    "tests.fakes.github_fixtures",
    "tests.fakes.claude_fixtures",
    "tests.helpers_db",
    "tests.fakes.pipeline_fixtures",
]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
# Webhook payloads written for this repository, shaped like GitHub's documented ones ("Webhook events and payloads"),
# so a fresh clone runs the payload tests; the corpus's real captures run too when it is present.
PAYLOADS = ROOT / "tests" / "fixtures" / "payloads"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """`../shared/corpus`, or skip with the reason when this checkout has none beside it."""
    if not CORPUS.is_dir():
        pytest.skip(f"real-world corpus not present at {CORPUS}")
    return CORPUS


@pytest.fixture(params=["fixtures", pytest.param("corpus", marks=pytest.mark.corpus)])
def webhook_dir(request: pytest.FixtureRequest) -> Path:
    """A directory of `<event>.<action>[.variant].json` payloads: tests/fixtures/payloads, then the corpus's."""
    if request.param == "fixtures":
        return PAYLOADS
    if not (CORPUS / "webhooks").is_dir():
        pytest.skip(f"real-world corpus not present at {CORPUS}")
    return CORPUS / "webhooks"


@pytest.fixture(scope="session")
def rsa_private_key_pem() -> str:
    """A fresh RSA private key (PEM) for the fake GitHub App, generated once per test session."""
    return private_key_pem()


@pytest.fixture(autouse=True)
def _clean_bot_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's real credentials or .env: settings come from the test."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "ANTHROPIC_", "REVIEW_", "DATABASE_URL", "LOG_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
