"""GitHub App manifest flow: the setup pages served while the App has no credentials, and credential storage."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import ipaddress
import json
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from bot.github.manifest import APP_EVENTS, APP_PERMISSIONS
from bot.settings import CREDENTIALS_FILE_NAME, Settings

log = logging.getLogger(__name__)

STATE_TTL_SECONDS = 3600.0  # GitHub's conversion code is valid for one hour too.
APP_NAME_PREFIX = "senior-review-"
APP_DESCRIPTION = "Reviews pull requests the way a senior backend developer would (self-hosted)."
# GitHub logins: letters, digits and single inner hyphens, at most 39 characters.
_GITHUB_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
_CODE = re.compile(r"[A-Za-z0-9_-]{1,200}")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_HTML_URL = re.compile(r"https?://[^\s\"'<>#\\]+")
_PEM_CHARS = re.compile(r"[A-Za-z0-9+/= \r\n-]+")
# Characters that would change the meaning of an unquoted dotenv value.
_UNSAFE_ENV_VALUE = re.compile(r"[\s\"'#\\$`]")
_LOCAL_NAMES = ("localhost", "localhost.localdomain")
_FLY_ENV = "FLY_APP_NAME"
TOKEN_COOKIE = "senior_review_setup"  # noqa: S105 - a cookie name, not a secret


class SetupError(Exception):
    """The manifest flow could not complete; the message is safe to show (it holds no secret)."""


# ---------------------------------------------------------------------------------------------------------------
# Manifest


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
    if env.get(_FLY_ENV):
        return f"https://{env[_FLY_ENV]}.fly.dev"
    return request_base.rstrip("/")


def redirect_base_url(public_base: str, request_base: str) -> str:
    """Where GitHub sends the browser back: this server (the state lives here), in its public form when it matches."""
    request_base = request_base.rstrip("/")
    if urlsplit(public_base).netloc == urlsplit(request_base).netloc:
        return public_base
    return request_base


# ---------------------------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True)
class StateSigner:
    """Issues and checks `state` values: HMAC-signed with a per-process key, valid for `ttl` seconds."""

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    ttl: float = STATE_TTL_SECONDS
    clock: Callable[[], float] = time.time

    def issue(self) -> str:
        """A fresh state value."""
        payload = f"{int(self.clock())}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._sign(payload)}"

    def check(self, state: str | None) -> bool:
        """Whether `state` was issued by this signer and has not expired."""
        if not state or state.count(".") != 2:
            return False
        payload, _, signature = state.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return False
        issued = int(payload.split(".", 1)[0])
        return 0 <= self.clock() - issued <= self.ttl

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self.key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# ---------------------------------------------------------------------------------------------------------------
# Conversion and storage


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
    if not _CODE.fullmatch(code):
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


# ---------------------------------------------------------------------------------------------------------------
# Pages (server-rendered; every interpolated value goes through _e)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1f2328}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}
code,pre{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px}
pre{padding:.8rem;white-space:pre-wrap;overflow-wrap:anywhere}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:.6rem .9rem;border-radius:6px}
.error{background:#ffebe9;border:1px solid #cf222e;padding:.6rem .9rem;border-radius:6px}
.ok{background:#dafbe1;border:1px solid #1a7f37;padding:.6rem .9rem;border-radius:6px}
form{margin:1rem 0;padding:1rem;border:1px solid #d0d7de;border-radius:6px}
button{font-size:1rem;padding:.4rem 1rem;cursor:pointer}input[type=text]{font-size:1rem;padding:.3rem}
"""
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _page(title: str, body: str, status: int = 200, referrer: str = "strict-origin-when-cross-origin") -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>{body}</body></html>"
    )
    headers = {**_SECURITY_HEADERS, "Referrer-Policy": referrer}
    return HTMLResponse(document, status_code=status, headers=headers)


def _capabilities_html() -> str:
    permissions, events = app_capabilities()
    rows = "".join(f"<li><code>{_e(name)}</code>: {_e(access)}</li>" for name, access in sorted(permissions.items()))
    event_items = "".join(f"<li><code>{_e(event)}</code></li>" for event in events)
    return (
        "<h2>What the App will be allowed to do</h2>"
        "<p>Repository permissions (only on the repositories you install it on):</p>"
        f"<ul>{rows}</ul><p>Webhook events it subscribes to:</p><ul>{event_items}</ul>"
        "<p>The App is private: only the account that registers it can install it.</p>"
    )


def _webhook_html(webhook_url: str) -> str:
    text = f"<p>GitHub will send webhooks to <code>{_e(webhook_url)}</code>.</p>"
    if is_unreachable_host(webhook_url):
        text += (
            '<p class="warn">GitHub cannot reach this address. For local development, expose the server through a '
            "tunnel (for example <code>cloudflared tunnel --url http://127.0.0.1:8000</code> or ngrok) and restart "
            "it with <code>PUBLIC_URL</code> set to the tunnel's https address; or forward a "
            '<a href="https://smee.io">smee.io</a> channel to <code>/webhook</code> and set the App\'s webhook URL '
            "to the channel after registering.</p>"
        )
    elif urlsplit(webhook_url).scheme != "https":
        text += '<p class="warn">This address is plain http: set <code>PUBLIC_URL</code> to the https address.</p>'
    return text


def _manifest_form(action: str, manifest: Mapping[str, Any], button: str) -> str:
    return (
        f'<form method="post" action="{_e(action)}">'
        f'<input type="hidden" name="manifest" value="{_e(json.dumps(manifest))}">'
        f"<button type=\"submit\">{_e(button)}</button></form>"
    )


def _org_form(root: str, org: str, error: str | None) -> str:
    message = f'<p class="error">{_e(error)}</p>' if error else ""
    return (
        f'<h2>Register on an organization</h2><form method="get" action="{_e(root)}/setup/organization">'
        "<p>You need to be an owner (or GitHub App manager) of the organization.</p>"
        f"{message}<label>Organization name <input type=\"text\" name=\"org\" value=\"{_e(org)}\" required "
        'maxlength="39" pattern="[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}" autocomplete="off"></label> '
        '<button type="submit">Continue</button></form>'
    )


def _root(request: Request) -> str:
    """The path the app is mounted at ("" at the root), for links that work from every page."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _refused(settings: Settings) -> HTMLResponse:
    body = (
        "<p>This server already has GitHub App credentials (in its environment or in "
        f"<code>{_e(credentials_path(settings))}</code>), so the setup flow is disabled: it never replaces them. "
        "Restart the server to pick up credentials written a moment ago. To register a new App, remove the old "
        "credentials first.</p>"
    )
    return _page("Already configured", body, status=409)


@dataclass(frozen=True)
class _Flow:
    """Per-server state of the setup flow."""

    settings: Settings
    signer: StateSigner
    environ: Mapping[str, str]
    token: str

    def authorised(self, request: Request) -> bool:
        """The setup token, from `?token=` or the cookie it sets: without it, whoever reaches a fresh server
        first could register *their* App on it and have it review their code on the operator's API key."""
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    def with_cookie(self, request: Request, response: Response) -> Response:
        """Remember the token in this browser (HttpOnly, SameSite=Lax: GitHub's redirect back still carries it)."""
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="lax",
                                secure=request.url.scheme == "https", max_age=3600)
        return response

    def bases(self, request: Request) -> tuple[str, str]:
        request_base = str(request.base_url).rstrip("/")
        public = public_base_url(self.settings, request_base, self.environ)
        return public, redirect_base_url(public, request_base)

    async def index(self, request: Request) -> Response:
        if credentials_present(self.settings):
            return _refused(self.settings)
        if not self.authorised(request):
            return _token_needed()
        return self.with_cookie(request, self._index(request))

    def _index(self, request: Request, org: str = "", error: str | None = None) -> HTMLResponse:
        public, redirect = self.bases(request)
        manifest = build_manifest(default_app_name(), public, redirect)
        personal = registration_url(self.settings.web_url, self.signer.issue())
        body = (
            "<p>This server has no GitHub App credentials yet. Register a private GitHub App for it in two clicks: "
            "GitHub shows what it will create (you can change the name there), then sends you back here.</p>"
            f"{_capabilities_html()}{_webhook_html(manifest['hook_attributes']['url'])}"
            "<h2>Register on your personal account</h2>"
            f"{_manifest_form(personal, manifest, 'Register on my account')}"
            f"{_org_form(_root(request), org, error)}"
        )
        return _page("Set up Senior Review", body, status=400 if error else 200)

    async def organization(self, request: Request) -> Response:
        if credentials_present(self.settings):
            return _refused(self.settings)
        if not self.authorised(request):
            return _token_needed()
        org = request.query_params.get("org", "").strip()
        if not is_github_login(org):
            return self._index(request, org, "Not a GitHub organization name: letters, digits and single hyphens.")
        public, redirect = self.bases(request)
        manifest = build_manifest(default_app_name(), public, redirect)
        action = registration_url(self.settings.web_url, self.signer.issue(), org)
        body = (
            f"<p>GitHub will ask you to confirm the App on <strong>{_e(org)}</strong> "
            "(you can change its name there), then send you back here.</p>"
            f"{_webhook_html(manifest['hook_attributes']['url'])}"
            f"{_manifest_form(action, manifest, f'Register on {org}')}"
            f'<p><a href="{_e(_root(request))}/">Back</a></p>'
        )
        return _page(f"Register on {org}", body)

    async def callback(self, request: Request) -> Response:
        if credentials_present(self.settings):
            return _refused(self.settings)
        if not self.authorised(request):
            return _token_needed()
        if not self.signer.check(request.query_params.get("state")):
            body = (
                "<p>The <code>state</code> value is missing, wrong or older than an hour, so this server did not "
                f'start this registration. <a href="{_e(_root(request))}/">Start again</a>.</p>'
            )
            return _page("Setup link not recognised", body, status=400, referrer="no-referrer")
        code = request.query_params.get("code", "")
        if not _CODE.fullmatch(code):
            body = f'<p>GitHub sent no usable <code>code</code>. <a href="{_e(_root(request))}/">Start again</a>.</p>'
            return _page("Setup link not recognised", body, status=400, referrer="no-referrer")
        try:
            credentials = await exchange_code(self.settings, code)
        except SetupError as exc:
            body = f'<p class="error">{_e(exc)}.</p><p><a href="{_e(_root(request))}/">Start again</a>.</p>'
            return _page("Registration failed", body, status=502, referrer="no-referrer")
        return self._store(credentials)

    def _store(self, credentials: AppCredentials) -> HTMLResponse:
        path = credentials_path(self.settings)
        try:
            write_credentials(path, credentials)
        except FileExistsError:
            return _refused(self.settings)
        except OSError as exc:
            log.error("could not store the credentials of GitHub App %s in %s: %s", credentials.slug, path,
                      exc.strerror)
            return _page("Credentials not stored", _not_stored_html(self.settings, credentials, path), status=500,
                         referrer="no-referrer")
        log.info("GitHub App %s (id %s) registered; credentials stored in %s", credentials.slug, credentials.id, path)
        return _page("GitHub App registered", _success_html(credentials, path, self.environ.get(_FLY_ENV)),
                     referrer="no-referrer")


def _settings_page(settings: Settings, credentials: AppCredentials) -> str:
    owner = f"/organizations/{quote(credentials.organization)}" if credentials.organization else ""
    return f"{settings.web_url}{owner}/settings/apps/{quote(credentials.slug)}"


def _not_stored_html(settings: Settings, credentials: AppCredentials, path: Path) -> str:
    return (
        f'<p class="error">GitHub App <strong>{_e(credentials.slug)}</strong> (id {_e(credentials.id)}) was created, '
        f"but this server could not write <code>{_e(path)}</code>. GitHub shows the private key only once, so open "
        f'<a href="{_e(_settings_page(settings, credentials))}">the App\'s settings</a>, generate a new private key '
        "and a new webhook secret there, and set <code>GITHUB_APP_ID</code>, <code>GITHUB_APP_PRIVATE_KEY</code> and "
        "<code>GITHUB_WEBHOOK_SECRET</code> in the server's environment.</p>"
    )


def _success_html(credentials: AppCredentials, path: Path, fly_app: str | None) -> str:
    install = f"{credentials.html_url}/installations/new"
    body = (
        f'<p class="ok">GitHub App <strong>{_e(credentials.slug)}</strong> (id {_e(credentials.id)}) is registered. '
        f"Its id, private key and webhook secret are stored in <code>{_e(path)}</code> (mode 0600).</p>"
        "<h2>Next steps</h2><ol>"
    )
    if fly_app:
        command = fly_secrets_command(fly_app, path)
        body += (
            "<li>Move the credentials into Fly secrets (they then reach every machine, and the file on this "
            "volume can go). Run this on your own computer; it copies the file without printing it, and Fly "
            f"restarts the machines with the new secrets:<pre>{_e(command)}</pre>"
            f"Then remove the file: <pre>{_e(f'fly ssh console --app {quote_shell(fly_app)} --command')} "
            f"{_e(quote_shell(f'rm {quote_shell(str(path))}'))}</pre>"
            f"(Or keep the file and run <code>fly apps restart {_e(quote_shell(fly_app))}</code> so the server "
            "reads it; with one machine on this volume that is enough.)</li>"
        )
    else:
        body += "<li>Restart the server (stop it, then <code>python -m bot serve</code>) so it reads the file.</li>"
    if not credentials.webhook_secret:
        body += (
            "<li>GitHub returned no webhook secret: set one in the App's settings and the same value as "
            "<code>GITHUB_WEBHOOK_SECRET</code>.</li>"
        )
    body += (
        f'<li><a href="{_e(install)}">Install the App</a> on your organization or account, '
        "choosing the repositories it should review.</li>"
        "<li>Open a pull request on one of them: the review follows within minutes.</li></ol>"
    )
    return body


def _token_needed() -> HTMLResponse:
    body = (
        "<p>Setting up this server needs its setup token. Open the address printed in the server's log "
        "(<code>…/?token=…</code>), or set <code>SETUP_TOKEN</code> and open <code>/?token=</code> with it.</p>"
    )
    return _page("Setup token needed", body, status=403, referrer="no-referrer")


def setup_routes(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    signer: StateSigner | None = None,
    token: str | None = None,
) -> list[BaseRoute]:
    """Routes of the setup flow (`/`, `/setup/organization`, `/setup/callback`); none once fully configured.

    The flow is gated by a setup token: `SETUP_TOKEN`, else a random one printed to the log once.
    """
    if not settings.missing_app_settings:
        return []
    environ = os.environ if environ is None else environ
    if token is None:
        token = environ.get("SETUP_TOKEN") or secrets.token_urlsafe(18)
        if not environ.get("SETUP_TOKEN"):
            # Only the operator reads the server's log: it is how they prove they own this fresh server.
            log.warning("setup mode: open this server's address with /?token=%s to register the GitHub App", token)
    flow = _Flow(settings, signer or StateSigner(), environ, token)
    routes: Sequence[BaseRoute] = (
        Route("/", flow.index, methods=["GET"], name="setup"),
        Route("/setup/organization", flow.organization, methods=["GET"], name="setup_organization"),
        Route("/setup/callback", flow.callback, methods=["GET"], name="setup_callback"),
    )
    return list(routes)
