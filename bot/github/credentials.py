"""The App's credentials: GitHub's manifest conversion (the one-hour code traded for id, key and webhook secret),
checked shape by shape, and stored once in `DATA_DIR/credentials.env` (mode 0600, never overwritten)."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bot.settings import CREDENTIALS_FILE_NAME, Settings

_CODE = re.compile(r"[A-Za-z0-9_-]{1,200}")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_HTML_URL = re.compile(r"https?://[^\s\"'<>#\\]+")
_PEM_CHARS = re.compile(r"[A-Za-z0-9+/= \r\n-]+")
# Characters that would change the meaning of an unquoted dotenv value.
_UNSAFE_ENV_VALUE = re.compile(r"[\s\"'#\\$`]")


class SetupError(Exception):
    """The manifest flow could not complete; the message is safe to show (it holds no secret)."""


def is_manifest_code(code: str) -> bool:
    """Whether `code` has the shape of the code GitHub sends back with the browser."""
    return _CODE.fullmatch(code) is not None


@dataclass(frozen=True)
class AppCredentials:
    """What GitHub returns for a converted manifest; secrets never appear in repr."""

    id: int
    slug: str
    html_url: str
    organization: str | None  # the owning organization's login; None when a user owns the App
    pem: str = field(repr=False)
    webhook_secret: str | None = field(repr=False)


def parse_conversion(data: Mapping[str, Any]) -> AppCredentials:
    """Validate GitHub's manifest-conversion answer."""
    try:
        app_id = data["id"]
        slug, html_url, pem = data["slug"], data["html_url"], data["pem"]
    except KeyError as exc:
        raise SetupError(f"GitHub's answer lacks {exc.args[0]!r}") from None
    # Everything lands in a dotenv file and on a page: accept only the shapes GitHub documents.
    if not isinstance(app_id, int) or not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise SetupError("GitHub's answer has an unexpected App id or slug")
    if not isinstance(html_url, str) or not _HTML_URL.fullmatch(html_url):
        raise SetupError("GitHub's answer has an unexpected App URL")
    if not isinstance(pem, str) or "PRIVATE KEY-----" not in pem or not _PEM_CHARS.fullmatch(pem):
        raise SetupError("GitHub's answer has no PEM private key")
    secret = data.get("webhook_secret")
    if secret is not None and (not isinstance(secret, str) or _UNSAFE_ENV_VALUE.search(secret)):
        raise SetupError("GitHub's answer has an unusable webhook secret")
    owner = data.get("owner")
    org = owner.get("login") if isinstance(owner, Mapping) and owner.get("type") == "Organization" else None
    return AppCredentials(app_id, slug, html_url, org if isinstance(org, str) else None, pem, secret or None)


async def exchange_code(settings: Settings, code: str) -> AppCredentials:
    """Trade the one-hour manifest code for the App's credentials (`POST /app-manifests/{code}/conversions`)."""
    if not is_manifest_code(code):
        raise SetupError("the code GitHub sent back is malformed")
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": settings.github_api_version}
    url = f"{settings.github_api_url}/app-manifests/{quote(code, safe='')}/conversions"
    try:
        async with httpx.AsyncClient(timeout=20.0, headers=headers) as client:
            response = await client.post(url)
    except httpx.HTTPError as exc:
        raise SetupError(f"could not reach GitHub at {settings.github_api_url} ({type(exc).__name__})") from None
    if response.status_code in (404, 422):
        raise SetupError("GitHub did not accept the code: it is valid for one hour and only once")
    if response.status_code != 201:
        raise SetupError(f"GitHub answered HTTP {response.status_code} to the manifest conversion")
    try:
        data = response.json()
    except ValueError:
        raise SetupError("GitHub's answer is not JSON") from None
    if not isinstance(data, Mapping):
        raise SetupError("GitHub's answer has an unexpected shape")
    return parse_conversion(data)


def credentials_path(settings: Settings) -> Path:
    """`<DATA_DIR>/credentials.env`, the file load_settings() reads after the environment."""
    return settings.data_dir / CREDENTIALS_FILE_NAME


def credentials_present(settings: Settings) -> bool:
    """Whether any App credential is already configured (then the setup flow must not run: no takeover)."""
    configured = (
        settings.github_app_id,
        settings.github_app_private_key,
        settings.github_app_private_key_file,
        settings.github_webhook_secret,
    )
    return any(value is not None for value in configured) or credentials_path(settings).exists()


def credentials_env_text(credentials: AppCredentials) -> str:
    """The dotenv text for the credentials: one unquoted line each, the PEM's newlines as literal `\\n`."""
    lines = [
        f"# GitHub App {credentials.slug} ({credentials.html_url}), written by the setup page. Keep private.",
        f"GITHUB_APP_ID={credentials.id}",
        "GITHUB_APP_PRIVATE_KEY=" + credentials.pem.strip().replace("\r\n", "\n").replace("\n", "\\n"),
    ]
    if credentials.webhook_secret:
        lines.append(f"GITHUB_WEBHOOK_SECRET={credentials.webhook_secret}")
    return "\n".join(lines) + "\n"


def write_credentials(path: Path, credentials: AppCredentials) -> None:
    """Create `path` with mode 0600 atomically; FileExistsError if it exists (never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(prefix=".credentials.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(credentials_env_text(credentials))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o600)
        os.link(tmp_name, path)  # atomic, and fails instead of replacing an existing file
    finally:
        os.unlink(tmp_name)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)


def fly_secrets_command(app_name: str, path: Path) -> str:
    """The command that copies the stored credentials into Fly secrets without showing them."""
    app, read = quote_shell(app_name), quote_shell(f"cat {quote_shell(str(path))}")
    return f"fly ssh console --app {app} --command {read} | fly secrets import --app {app}"


def quote_shell(value: str) -> str:
    """`value` quoted for a POSIX shell only when it needs it."""
    if re.fullmatch(r"[A-Za-z0-9_./:=@%+-]+", value):
        return value
    return "'" + value.replace("'", "'\"'\"'") + "'"
