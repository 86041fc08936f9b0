"""The server's settings: one frozen object read once from the environment (and `.env`), never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

DEFAULT_DATA_DIR = Path("data")
CREDENTIALS_FILE_NAME = "credentials.env"


class Settings(BaseSettings):
    """Server settings; names are a contract with deployments (see README, "Settings")."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        env_file=".env",
        env_file_encoding="utf-8",
    )

    github_app_id: int | None = None
    github_app_private_key: SecretStr | None = None
    github_app_private_key_file: Path | None = None
    github_webhook_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    github_api_version: str = "2022-11-28"
    # The web host people open in a browser (setup flow); derived from GITHUB_API_URL when empty.
    github_url: str = ""

    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    review_model: str = "claude-sonnet-5-5"
    review_effort: Literal["low", "medium", "high"] | None = None
    allowed_models: tuple[str, ...] = ("claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-4-5")
    # Budget ceilings: the server's values are both the defaults and the highest a `.github` file may set.
    max_tokens_per_review: int = Field(default=400_000, ge=1_000, le=10_000_000)
    max_cost_usd_per_review: float = Field(default=5.0, gt=0, le=1_000)
    max_cost_usd_per_installation_per_day: float = Field(default=50.0, gt=0, le=100_000)
    max_cost_usd_per_pr_per_day: float = Field(default=15.0, gt=0, le=100_000)
    max_cost_usd_per_author_per_day: float = Field(default=25.0, gt=0, le=100_000)
    # Retention: deliveries, finished jobs, command records and spend rows; findings of PRs closed this long ago.
    retention_days: float = Field(default=30.0, gt=0)
    findings_retention_days: float = Field(default=90.0, gt=0)
    model_concurrency: int = Field(default=4, ge=1, le=32)
    review_deadline_seconds: float = Field(default=600.0, gt=0)
    batch_token_budget: int = Field(default=60_000, ge=2_000)

    github_max_wait_seconds: float = Field(default=60.0, ge=0)
    github_request_retries: int = Field(default=3, ge=0, le=10)

    model_max_retries: int = Field(default=2, ge=0, le=10)

    job_max_attempts: int = Field(default=5, ge=1, le=50)
    job_lease_seconds: float = Field(default=60.0, gt=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)

    # Reconciliation with GitHub (bot/reconcile.py): redeliver failed webhooks, catch up on missed pull requests.
    reconcile_interval_seconds: float = Field(default=600.0, ge=0)  # 0: never redeliver
    reconcile_window_hours: float = Field(default=72.0, gt=0, le=720)
    reconcile_max_redeliveries: int = Field(default=100, ge=0, le=10_000)
    catch_up: bool = True
    catch_up_interval_seconds: float = Field(default=86_400.0, gt=0)
    catch_up_max_reviews: int = Field(default=20, ge=0, le=10_000)
    catch_up_max_repositories: int = Field(default=500, ge=1, le=100_000)

    database_url: str = ""
    data_dir: Path = DEFAULT_DATA_DIR
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=2, ge=0, le=64)
    # Names this host in worker lease owners (default: the hostname); see bot/instance.py.
    instance_id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9._-]*$")
    public_url: str = ""
    metrics_token: SecretStr | None = None  # when set, /metrics wants `Authorization: Bearer <token>`
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "console"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("github_api_url", "github_url", "public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("github_app_private_key", mode="before")
    @classmethod
    def _unescape_pem(cls, value: Any) -> Any:
        # Deployment tools often flatten the PEM into one line with literal "\n".
        if isinstance(value, str) and "\\n" in value:
            return value.replace("\\n", "\n")
        return value

    @model_validator(mode="after")
    def _check_key(self) -> Settings:
        if self.github_app_private_key is not None:
            pem = self.github_app_private_key.get_secret_value()
            if "PRIVATE KEY-----" not in pem:
                raise ValueError("GITHUB_APP_PRIVATE_KEY: not a PEM private key")
        if self.github_app_private_key_file is not None and not self.github_app_private_key_file.is_file():
            raise ValueError(f"GITHUB_APP_PRIVATE_KEY_FILE: no such file: {self.github_app_private_key_file}")
        return self

    @property
    def private_key_pem(self) -> str | None:
        """The App's private key, from the variable or the file."""
        if self.github_app_private_key is not None:
            return self.github_app_private_key.get_secret_value()
        if self.github_app_private_key_file is not None:
            return self.github_app_private_key_file.read_text()
        return None

    @property
    def missing_app_settings(self) -> list[str]:
        """Names of the GitHub App settings still unset (empty when the App can run)."""
        missing = []
        if self.github_app_id is None:
            missing.append("GITHUB_APP_ID")
        if self.github_app_private_key is None and self.github_app_private_key_file is None:
            missing.append("GITHUB_APP_PRIVATE_KEY")
        if self.github_webhook_secret is None:
            missing.append("GITHUB_WEBHOOK_SECRET")
        return missing

    @property
    def web_url(self) -> str:
        """GitHub's web host: github.com, or the GHES host derived from `/api/v3`."""
        if self.github_url:
            return self.github_url
        if self.github_api_url == "https://api.github.com":
            return "https://github.com"
        return self.github_api_url.removesuffix("/api/v3")

    @property
    def async_database_url(self) -> str:
        """DATABASE_URL with the async driver the bot uses (aiosqlite or asyncpg)."""
        return to_async_database_url(self.database_url or f"sqlite:///{self.data_dir / 'bot.sqlite3'}")


def to_async_database_url(url: str) -> str:
    """Map `sqlite:///`, `postgres://` and `postgresql://` URLs to their async SQLAlchemy driver form."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        # urlunsplit would fold "sqlite:///rel/path" into an absolute path: swap the scheme as text.
        return "sqlite+aiosqlite" + url[len(parts.scheme):]
    if scheme in ("postgres", "postgresql"):
        # asyncpg spells libpq's sslmode as ssl.
        query = urlencode([("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(parts.query)])
        return urlunsplit(parts._replace(scheme="postgresql+asyncpg", query=query))
    raise ValueError(f"DATABASE_URL: unsupported scheme {parts.scheme!r} (use sqlite:/// or postgresql://)")


def load_settings(**overrides: Any) -> Settings:
    """Read settings once; a bad value raises ConfigError with one line naming the variable."""
    try:
        data_dir = Path(overrides.get("data_dir") or _env("DATA_DIR") or DEFAULT_DATA_DIR)
        env_files = (".env", str(data_dir / CREDENTIALS_FILE_NAME))
        settings = Settings(_env_file=env_files, **overrides)
        settings.async_database_url  # noqa: B018 - validate DATABASE_URL now, not at first query
    except ValidationError as exc:
        raise ConfigError(_first_error_line(exc)) from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return settings


def _env(name: str) -> str | None:
    import os

    return os.environ.get(name)


def _first_error_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith(name):
        return message
    return f"{name}: {message}"
