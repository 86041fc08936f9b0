"""The setup flow's pages, rendered on the server: every interpolated value goes through `esc` (HTML-escaped), and
every page carries a strict Content-Security-Policy, no caching and no framing."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.responses import HTMLResponse

from bot.github.credentials import AppCredentials, credentials_path, fly_secrets_command, quote_shell
from bot.github.manifest import app_capabilities, is_unreachable_host
from bot.settings import Settings


def esc(value: object) -> str:
    """`value` as HTML text or attribute value (quotes escaped)."""
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


def page(title: str, body: str, status: int = 200, referrer: str = "strict-origin-when-cross-origin") -> HTMLResponse:
    """A whole page: `title`, the `body` HTML (escaped by its builder), the security headers."""
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body><h1>{esc(title)}</h1>{body}</body></html>"
    )
    headers = {**_SECURITY_HEADERS, "Referrer-Policy": referrer}
    return HTMLResponse(document, status_code=status, headers=headers)


def capabilities_html() -> str:
    """What the App will be allowed to do: its permissions and events."""
    permissions, events = app_capabilities()
    rows = "".join(f"<li><code>{esc(name)}</code>: {esc(access)}</li>" for name, access in sorted(permissions.items()))
    event_items = "".join(f"<li><code>{esc(event)}</code></li>" for event in events)
    return (
        "<h2>What the App will be allowed to do</h2>"
        "<p>Repository permissions (only on the repositories you install it on):</p>"
        f"<ul>{rows}</ul><p>Webhook events it subscribes to:</p><ul>{event_items}</ul>"
        "<p>The App is private: only the account that registers it can install it.</p>"
    )


def webhook_html(webhook_url: str) -> str:
    """Where GitHub will send webhooks, with a warning when GitHub cannot reach it or it is plain http."""
    text = f"<p>GitHub will send webhooks to <code>{esc(webhook_url)}</code>.</p>"
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


def manifest_form(action: str, manifest: Mapping[str, Any], button: str) -> str:
    """The form that POSTs the manifest to GitHub's "new GitHub App" page."""
    return (
        f'<form method="post" action="{esc(action)}">'
        f'<input type="hidden" name="manifest" value="{esc(json.dumps(manifest))}">'
        f"<button type=\"submit\">{esc(button)}</button></form>"
    )


def org_form(root: str, org: str, error: str | None) -> str:
    """The form asking for the organization to register the App on (with the previous error, if any)."""
    message = f'<p class="error">{esc(error)}</p>' if error else ""
    return (
        f'<h2>Register on an organization</h2><form method="get" action="{esc(root)}/setup/organization">'
        "<p>You need to be an owner (or GitHub App manager) of the organization.</p>"
        f"{message}<label>Organization name <input type=\"text\" name=\"org\" value=\"{esc(org)}\" required "
        'maxlength="39" pattern="[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}" autocomplete="off"></label> '
        '<button type="submit">Continue</button></form>'
    )


def refused(settings: Settings) -> HTMLResponse:
    """409: credentials exist, the flow never replaces them."""
    body = (
        "<p>This server already has GitHub App credentials (in its environment or in "
        f"<code>{esc(credentials_path(settings))}</code>), so the setup flow is disabled: it never replaces them. "
        "Restart the server to pick up credentials written a moment ago. To register a new App, remove the old "
        "credentials first.</p>"
    )
    return page("Already configured", body, status=409)


def _settings_page(settings: Settings, credentials: AppCredentials) -> str:
    owner = f"/organizations/{quote(credentials.organization)}" if credentials.organization else ""
    return f"{settings.web_url}{owner}/settings/apps/{quote(credentials.slug)}"


def not_stored_html(settings: Settings, credentials: AppCredentials, path: Path) -> str:
    """The App exists but its credentials could not be written: how to recover."""
    return (
        f'<p class="error">GitHub App <strong>{esc(credentials.slug)}</strong> (id {esc(credentials.id)}) was created, '
        f"but this server could not write <code>{esc(path)}</code>. GitHub shows the private key only once, so open "
        f'<a href="{esc(_settings_page(settings, credentials))}">the App\'s settings</a>, generate a new private key '
        "and a new webhook secret there, and set <code>GITHUB_APP_ID</code>, <code>GITHUB_APP_PRIVATE_KEY</code> and "
        "<code>GITHUB_WEBHOOK_SECRET</code> in the server's environment.</p>"
    )


def success_html(credentials: AppCredentials, path: Path, fly_app: str | None) -> str:
    """The App is registered and its credentials stored: the next steps (on Fly.io, moving them to secrets)."""
    install = f"{credentials.html_url}/installations/new"
    body = (
        f'<p class="ok">GitHub App <strong>{esc(credentials.slug)}</strong> (id {esc(credentials.id)}) is registered. '
        f"Its id, private key and webhook secret are stored in <code>{esc(path)}</code> (mode 0600).</p>"
        "<h2>Next steps</h2><ol>"
    )
    if fly_app:
        command = fly_secrets_command(fly_app, path)
        body += (
            "<li>Move the credentials into Fly secrets (they then reach every machine, and the file on this "
            "volume can go). Run this on your own computer; it copies the file without printing it, and Fly "
            f"restarts the machines with the new secrets:<pre>{esc(command)}</pre>"
            f"Then remove the file: <pre>{esc(f'fly ssh console --app {quote_shell(fly_app)} --command')} "
            f"{esc(quote_shell(f'rm {quote_shell(str(path))}'))}</pre>"
            f"(Or keep the file and run <code>fly apps restart {esc(quote_shell(fly_app))}</code> so the server "
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
        f'<li><a href="{esc(install)}">Install the App</a> on your organization or account, '
        "choosing the repositories it should review.</li>"
        "<li>Open a pull request on one of them: the review follows within minutes.</li></ol>"
    )
    return body


def token_needed() -> HTMLResponse:
    """403: the setup token is missing or wrong."""
    body = (
        "<p>Setting up this server needs its setup token. Open the address printed in the server's log "
        "(<code>…/?token=…</code>), or set <code>SETUP_TOKEN</code> and open <code>/?token=</code> with it.</p>"
    )
    return page("Setup token needed", body, status=403, referrer="no-referrer")
