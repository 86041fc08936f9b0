"""GitHub App manifest flow: the setup routes served while the App has no credentials (gated by a setup token,
the `state` signed and short-lived), from the first page to the stored credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from bot.github.credentials import (
    AppCredentials,
    SetupError,
    credentials_path,
    credentials_present,
    exchange_code,
    is_manifest_code,
    write_credentials,
)
from bot.github.manifest import (
    FLY_ENV,
    build_manifest,
    default_app_name,
    is_github_login,
    public_base_url,
    redirect_base_url,
    registration_url,
)
from bot.github.setup_pages import (
    capabilities_html,
    esc,
    manifest_form,
    not_stored_html,
    org_form,
    page,
    refused,
    success_html,
    token_needed,
    webhook_html,
)
from bot.settings import Settings

log = logging.getLogger(__name__)

STATE_TTL_SECONDS = 3600.0  # GitHub's conversion code is valid for one hour too.
TOKEN_COOKIE = "senior_review_setup"  # noqa: S105 - a cookie name, not a secret


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


def _root(request: Request) -> str:
    """The path the app is mounted at ("" at the root), for links that work from every page."""
    return str(request.scope.get("root_path", "")).rstrip("/")


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
            return refused(self.settings)
        if not self.authorised(request):
            return token_needed()
        return self.with_cookie(request, self._index(request))

    def _index(self, request: Request, org: str = "", error: str | None = None) -> HTMLResponse:
        public, redirect = self.bases(request)
        manifest = build_manifest(default_app_name(), public, redirect)
        personal = registration_url(self.settings.web_url, self.signer.issue())
        body = (
            "<p>This server has no GitHub App credentials yet. Register a private GitHub App for it in two clicks: "
            "GitHub shows what it will create (you can change the name there), then sends you back here.</p>"
            f"{capabilities_html()}{webhook_html(manifest['hook_attributes']['url'])}"
            "<h2>Register on your personal account</h2>"
            f"{manifest_form(personal, manifest, 'Register on my account')}"
            f"{org_form(_root(request), org, error)}"
        )
        return page("Set up Senior Review", body, status=400 if error else 200)

    async def organization(self, request: Request) -> Response:
        if credentials_present(self.settings):
            return refused(self.settings)
        if not self.authorised(request):
            return token_needed()
        org = request.query_params.get("org", "").strip()
        if not is_github_login(org):
            return self._index(request, org, "Not a GitHub organization name: letters, digits and single hyphens.")
        public, redirect = self.bases(request)
        manifest = build_manifest(default_app_name(), public, redirect)
        action = registration_url(self.settings.web_url, self.signer.issue(), org)
        body = (
            f"<p>GitHub will ask you to confirm the App on <strong>{esc(org)}</strong> "
            "(you can change its name there), then send you back here.</p>"
            f"{webhook_html(manifest['hook_attributes']['url'])}"
            f"{manifest_form(action, manifest, f'Register on {org}')}"
            f'<p><a href="{esc(_root(request))}/">Back</a></p>'
        )
        return page(f"Register on {org}", body)

    async def callback(self, request: Request) -> Response:
        if credentials_present(self.settings):
            return refused(self.settings)
        if not self.authorised(request):
            return token_needed()
        if not self.signer.check(request.query_params.get("state")):
            body = (
                "<p>The <code>state</code> value is missing, wrong or older than an hour, so this server did not "
                f'start this registration. <a href="{esc(_root(request))}/">Start again</a>.</p>'
            )
            return page("Setup link not recognised", body, status=400, referrer="no-referrer")
        code = request.query_params.get("code", "")
        if not is_manifest_code(code):
            body = f'<p>GitHub sent no usable <code>code</code>. <a href="{esc(_root(request))}/">Start again</a>.</p>'
            return page("Setup link not recognised", body, status=400, referrer="no-referrer")
        try:
            credentials = await exchange_code(self.settings, code)
        except SetupError as exc:
            body = f'<p class="error">{esc(exc)}.</p><p><a href="{esc(_root(request))}/">Start again</a>.</p>'
            return page("Registration failed", body, status=502, referrer="no-referrer")
        return self._store(credentials)

    def _store(self, credentials: AppCredentials) -> HTMLResponse:
        path = credentials_path(self.settings)
        try:
            write_credentials(path, credentials)
        except FileExistsError:
            return refused(self.settings)
        except OSError as exc:
            log.error("could not store the credentials of GitHub App %s in %s: %s", credentials.slug, path,
                      exc.strerror)
            return page("Credentials not stored", not_stored_html(self.settings, credentials, path), status=500,
                         referrer="no-referrer")
        log.info("GitHub App %s (id %s) registered; credentials stored in %s", credentials.slug, credentials.id, path)
        return page("GitHub App registered", success_html(credentials, path, self.environ.get(FLY_ENV)),
                     referrer="no-referrer")


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
