"""Webhook intake, a plain ASGI handler: size cap -> HMAC on the raw bytes -> routing fields -> record -> 2xx.

The HMAC is checked on the raw bytes (in a thread: see _HASHING) before anything else. The answer is 2xx only
once the delivery is committed (`Store.accept_delivery`, group commit); bad input gets a precise 4xx, a database
problem a 503 (GitHub's redelivery, or our reconciler, brings it back); never a 500. Request and Response objects
are not used on this path: they cost more than everything else but the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import Receive, Scope, Send

from bot.logs import log_context
from bot.registry import AppContext
from bot.routing import BodyError, PayloadError, decode, route

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
SIGNATURE_PREFIX = "sha256="
UNVERIFIED = frozenset({"setup_mode", "too_large", "disconnected", "bad_signature", "busy"})
DATABASE_ERRORS = (SQLAlchemyError, sqlite3.Error)  # SQLite intake runs on a plain sqlite3 connection
MAX_DELIVERY_ID = 64  # the deliveries.id column

SMALL_BODY_BYTES = 1024 * 1024  # nearly every real delivery; larger ones are read LARGE_BODY_SLOTS at a time
LARGE_BODY_SLOTS = 4
LARGE_BODY_WAIT_SECONDS = 5.0
_JSON = (b"content-type", b"application/json")
_encode = msgspec.json.Encoder().encode
# The body's two digests are computed off the event loop: hashlib and hmac release the GIL while they hash, so the
# loop reads and answers other requests meanwhile (about 50 us a 30 KB delivery, 40 ms a 25 MB one).
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhook-digest")


class BodyTooLarge(Exception):
    """The request body exceeded MAX_BODY_BYTES."""


class BodyBusy(Exception):
    """Too many large bodies are being read at once; GitHub should redeliver later."""


class ClientGone(Exception):
    """The client disconnected before its body was read."""


def sign(secret: str | bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return SIGNATURE_PREFIX + hmac.digest(key, body, "sha256").hex()


def signature_ok(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of an `X-Hub-Signature-256` header (`sha256=` only) against the raw body."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def _verified_sha256(secret: str, body: bytes, header: str) -> str | None:
    """The body's SHA-256 (hex, the replay key) when `header` is its valid signature; None when it is not."""
    if not signature_ok(secret, body, header):
        return None
    return hashlib.sha256(body).hexdigest()


async def read_capped(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read the ASGI request body, refusing more than `limit` bytes whatever Content-Length claimed."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _read_body(receive: Receive, declared: str, context: AppContext) -> bytes:
    """Read the body; large ones (still unverified) a few at a time, so strangers cannot exhaust memory."""
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge
    if declared.isdigit() and int(declared) <= SMALL_BODY_BYTES:
        return await read_capped(receive)
    if context.large_body_slots is None:
        context.large_body_slots = asyncio.Semaphore(LARGE_BODY_SLOTS)
    slots = context.large_body_slots
    try:
        await asyncio.wait_for(slots.acquire(), timeout=LARGE_BODY_WAIT_SECONDS)
    except TimeoutError:
        raise BodyBusy from None
    try:
        return await read_capped(receive)
    finally:
        slots.release()


_WANTED = {b"x-github-event": 0, b"x-github-delivery": 1, b"x-hub-signature-256": 2, b"content-length": 3}


def _headers(scope: Scope) -> list[str]:
    """X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256 and Content-Length ('' when absent)."""
    found = ["", "", "", ""]
    for name, value in scope["headers"]:  # ASGI servers lower-case header names
        index = _WANTED.get(name)
        if index is not None:
            found[index] = value.decode("latin-1")
    return found


async def handle_webhook(scope: Scope, receive: Receive, send: Send, context: AppContext) -> None:
    """POST /webhook (ASGI): the one broad catch of the web edge lives here; no input ever yields a 500."""
    event, delivery, signature, declared = _headers(scope)
    fields: dict[str, Any] = {}
    try:
        status, outcome, body = await _intake(receive, context, event, delivery, signature, declared, fields)
    except DATABASE_ERRORS as exc:
        status, outcome, body = 503, "unavailable", {"error": "database unavailable; redeliver later"}
        fields["error"] = exc.__class__.__name__
    except Exception:
        with log_context(delivery=delivery[:MAX_DELIVERY_ID] or None, event=event[:64] or None):
            log.exception("unexpected error in webhook intake; answering 503 (redeliver later)")
        status, outcome, body = 503, "error", {"error": "internal error; redeliver later"}
    # Label by event only once the signature proved GitHub sent it: no unbounded labels from strangers.
    context.metrics.delivery(event[:64] if outcome not in UNVERIFIED else "unverified", outcome)
    # One line per delivery, whatever happened to it.
    fields = {"delivery": delivery[:MAX_DELIVERY_ID] or None, "event": event[:64] or None, **fields}
    log.info("webhook %s: %d", outcome, status, extra={"context": {k: v for k, v in fields.items() if v is not None}})
    if status == 204:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    content = _encode(body)
    headers = [_JSON, (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


async def _intake(receive: Receive, context: AppContext, event: str, delivery: str, signature: str,
                  declared: str, fields: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    secret = context.settings.github_webhook_secret
    missing = context.settings.missing_app_settings
    if missing or secret is None:
        return 503, "setup_mode", {"error": "setup mode: missing " + ", ".join(missing)}
    try:
        raw = await _read_body(receive, declared, context)
    except BodyTooLarge:
        return 413, "too_large", {"error": f"payload over {MAX_BODY_BYTES} bytes"}
    except BodyBusy:
        return 503, "busy", {"error": "too many large deliveries at once; redeliver later"}
    except ClientGone:
        return 400, "disconnected", {"error": "client disconnected"}
    # Nothing of the body is looked at before its signature is proven.
    loop = asyncio.get_running_loop()
    body_sha256 = await loop.run_in_executor(_HASHING, _verified_sha256, secret.get_secret_value(), raw, signature)
    if body_sha256 is None:
        return 401, "bad_signature", {"error": "missing or invalid X-Hub-Signature-256"}
    try:
        payload = decode(event, raw)
    except BodyError as exc:
        return 400, "malformed", {"error": str(exc)}
    except PayloadError as exc:
        return 400, "malformed", {"error": f"unexpected payload: {exc}"}
    if event == "ping":
        return 200, "ping", {"ok": True, "zen": payload.get("zen")}
    if not event or not delivery or len(delivery) > MAX_DELIVERY_ID:
        return 400, "malformed", {"error": "missing X-GitHub-Event or X-GitHub-Delivery (at most 64 characters)"}
    return await _route_and_record(context, event, delivery, payload, fields, body_sha256)


async def _route_and_record(
    context: AppContext, event: str, delivery: str, payload: dict[str, Any], fields: dict[str, Any],
    body_sha256: str | None = None,
) -> tuple[int, str, dict[str, Any]]:
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    fields["action"] = action
    try:
        routed = route(event, payload)
    except PayloadError as exc:
        return 400, "malformed", {"error": f"unexpected payload: {exc}"}
    if not routed.known:
        return 204, "unknown", {}
    if not routed.specs:  # a bot sender, a plain issue's comment, an edit that changes nothing reviewed
        return 200, "ignored", {"ok": True, "jobs": []}
    first = routed.specs[0]
    fields.update(repo=f"{first.owner}/{first.repo}", pr=first.pr)
    accepted = await context.store.accept_delivery(delivery, event, action, routed.specs, body_sha256)
    if accepted.duplicate:
        return 200, "duplicate", {"ok": True, "duplicate": True}
    context.wake.set()
    fields["jobs"] = list(accepted.job_ids)
    if accepted.redelivery:
        fields["redelivery"] = True
    return 202, "accepted", {"ok": True, "jobs": list(accepted.job_ids)}


async def record_event(context: AppContext, event: str, delivery: str, payload: dict[str, Any]) -> str:
    """Route and record an event that did not arrive over HTTP (the reconciler's catch-up) exactly as a verified
    webhook is: same routing, same rules, same dedupe by delivery id. Returns the intake outcome."""
    fields: dict[str, Any] = {}
    _, outcome, _ = await _route_and_record(context, event, delivery, payload, fields)
    with log_context(delivery=delivery, event=event, **fields):
        log.info("event %s recorded: %s", event, outcome)
    return outcome
