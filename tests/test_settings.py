"""Settings: names, defaults, DATABASE_URL forms, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings, to_async_database_url


def test_defaults_need_no_environment() -> None:
    settings = load_settings()
    assert settings.port == 8000
    assert settings.review_model == "claude-sonnet-5-5"
    assert settings.github_api_url == "https://api.github.com"
    assert settings.async_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.missing_app_settings == ["GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_WEBHOOK_SECRET"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("postgres://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?ssl=require"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_database_url_forms(url: str, expected: str) -> None:
    assert to_async_database_url(url) == expected


def test_malformed_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith("PORT:")
    assert "\n" not in str(info.value)


def test_unsupported_database_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/db")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings()


def test_private_key_with_literal_newlines(monkeypatch: pytest.MonkeyPatch, rsa_private_key_pem: str) -> None:
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", rsa_private_key_pem.replace("\n", "\\n"))
    settings = load_settings()
    assert settings.private_key_pem == rsa_private_key_pem
    assert rsa_private_key_pem not in repr(settings)


def test_private_key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rsa_private_key_pem: str) -> None:
    key = tmp_path / "app.pem"
    key.write_text(rsa_private_key_pem)
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY_FILE", str(key))
    assert load_settings().private_key_pem == rsa_private_key_pem
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="GITHUB_APP_PRIVATE_KEY_FILE"):
        load_settings()


def test_ghes_web_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example.com/api/v3/")
    settings = load_settings()
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert settings.web_url == "https://ghe.example.com"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen assignment
        settings.port = 1  # type: ignore[misc]
