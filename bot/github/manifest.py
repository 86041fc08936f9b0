"""The GitHub App manifest: what the App asks GitHub for (permissions and webhook events, the single list the
README names too), its name, and where GitHub sends webhooks and the browser back."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from bot.settings import Settings

APP_PERMISSIONS: Mapping[str, str] = {
    "pull_requests": "write",
    "contents": "read",
    "issues": "write",
    "checks": "write",
    "metadata": "read",
}
APP_EVENTS: tuple[str, ...] = (
    "pull_request", "issue_comment", "pull_request_review_comment",
    # Resolving a finding's thread tells the bot never to raise that finding again.
    "pull_request_review_thread",
)
APP_NAME_PREFIX = "senior-review-"
APP_DESCRIPTION = "Reviews pull requests the way a senior backend developer would (self-hosted)."
# GitHub logins: letters, digits and single inner hyphens, at most 39 characters.
_GITHUB_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")
FLY_ENV = "FLY_APP_NAME"


def is_github_login(name: str) -> bool:
    """Whether `name` is a valid GitHub user or organization login."""
    return _GITHUB_LOGIN.fullmatch(name) is not None


def default_app_name() -> str:
    """A unique default App name (GitHub App names are global); editable on GitHub's confirmation page."""
    return APP_NAME_PREFIX + secrets.token_hex(3)


def app_capabilities() -> tuple[dict[str, str], list[str]]:
    """The App's permissions and events, from their single list in `bot.github.manifest`."""
    return dict(APP_PERMISSIONS), list(APP_EVENTS)


def build_manifest(name: str, public_base: str, redirect_base: str) -> dict[str, Any]:
    """The GitHub App manifest: webhooks to `{public_base}/webhook`, back to `{redirect_base}/setup/callback`."""
    permissions, events = app_capabilities()
    return {
        "name": name,
        "url": public_base,
        "description": APP_DESCRIPTION,
        "hook_attributes": {"url": f"{public_base}/webhook", "active": True},
        "redirect_url": f"{redirect_base}/setup/callback",
        "public": False,
        "default_permissions": permissions,
        "default_events": events,
    }


def registration_url(web_url: str, state: str, org: str | None = None) -> str:
    """Where the manifest form POSTs: the personal or organization "new GitHub App" page."""
    if org is not None and not is_github_login(org):
        raise ValueError(f"not a GitHub organization name: {org!r}")
    path = f"/organizations/{org}/settings/apps/new" if org else "/settings/apps/new"
    return f"{web_url}{path}?{urlencode({'state': state})}"


def is_unreachable_host(url: str) -> bool:
    """Whether GitHub cannot deliver webhooks to `url` (loopback, private or link-local address, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


def public_base_url(settings: Settings, request_base: str, environ: Mapping[str, str] | None = None) -> str:
    """The address GitHub sends webhooks to: PUBLIC_URL, else `https://$FLY_APP_NAME.fly.dev`, else this request's."""
    env = os.environ if environ is None else environ
    if settings.public_url:
        return settings.public_url
    if env.get(FLY_ENV):
        return f"https://{env[FLY_ENV]}.fly.dev"
    return request_base.rstrip("/")


def redirect_base_url(public_base: str, request_base: str) -> str:
    """Where GitHub sends the browser back: this server (the state lives here), in its public form when it matches."""
    request_base = request_base.rstrip("/")
    if urlsplit(public_base).netloc == urlsplit(request_base).netloc:
        return public_base
    return request_base
