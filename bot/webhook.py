"""Webhook intake: size cap -> HMAC signature -> JSON -> dedupe -> route -> record jobs -> 202, never a 500."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from bot.logs import log_context
from bot.registry import AppContext
from bot.routing import PayloadError, route

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
SIGNATURE_PREFIX = "sha256="
UNVERIFIED = frozenset({"setup_mode", "too_large", "disconnected", "bad_signature", "busy"})


SMALL_BODY_BYTES = 1024 * 1024  # nearly every real delivery; larger ones are read LARGE_BODY_SLOTS at a time
LARGE_BODY_SLOTS = 4
LARGE_BODY_WAIT_SECONDS = 5.0


class BodyTooLarge(Exception):
    """The request body exceeded MAX_BODY_BYTES."""


class BodyBusy(Exception):
    """Too many large bodies are being read at once; GitHub should redeliver later."""


def sign(secret: str | bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return SIGNATURE_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def signature_ok(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of an `X-Hub-Signature-256` header (`sha256=` only) against the raw body."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


async def read_capped(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read the body, refusing more than `limit` bytes whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_body(request: Request, context: AppContext) -> bytes:
    """Read the body; large ones (still unverified) a few at a time, so strangers cannot exhaust memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= SMALL_BODY_BYTES:
        return await read_capped(request)
    if context.large_body_slots is None:
        context.large_body_slots = asyncio.Semaphore(LARGE_BODY_SLOTS)
    slots = context.large_body_slots
    try:
        await asyncio.wait_for(slots.acquire(), timeout=LARGE_BODY_WAIT_SECONDS)
    except TimeoutError:
        raise BodyBusy from None
    try:
        return await read_capped(request)
    finally:
        slots.release()


def _answer(status: int, **body: Any) -> Response:
    if status == 204:
        return Response(status_code=204)
    return JSONResponse(body, status_code=status)


async def handle_webhook(request: Request, context: AppContext) -> Response:
    """POST /webhook: the one broad catch of the web edge lives here; no input ever yields a 500."""
    event = request.headers.get("x-github-event", "")
    delivery = request.headers.get("x-github-delivery", "")
    with log_context(delivery=delivery or None, event=event or None):
        try:
            status, outcome, body = await _intake(request, context, event, delivery)
        except SQLAlchemyError as exc:
            log.error("database unavailable, answering 503 (redeliver later): %s", exc.__class__.__name__)
            status, outcome, body = 503, "unavailable", {"error": "database unavailable; redeliver later"}
        except Exception:
            log.exception("unexpected error in webhook intake; answering 503 (redeliver later)")
            status, outcome, body = 503, "error", {"error": "internal error; redeliver later"}
        # Label by event only once the signature proved GitHub sent it: no unbounded labels from strangers.
        context.metrics.delivery(event[:64] if outcome not in UNVERIFIED else "unverified", outcome)
        if status >= 400:
            log.info("webhook answered %d (%s)", status, outcome)
        return _answer(status, **body)


async def _intake(
    request: Request, context: AppContext, event: str, delivery: str
) -> tuple[int, str, dict[str, Any]]:
    secret = context.settings.github_webhook_secret
    missing = context.settings.missing_app_settings
    if missing or secret is None:
        return 503, "setup_mode", {"error": "setup mode: missing " + ", ".join(missing)}
    try:
        body = await _read_body(request, context)
    except BodyTooLarge:
        return 413, "too_large", {"error": f"payload over {MAX_BODY_BYTES} bytes"}
    except BodyBusy:
        return 503, "busy", {"error": "too many large deliveries at once; redeliver later"}
    except ClientDisconnect:
        return 400, "disconnected", {"error": "client disconnected"}
    if not signature_ok(secret.get_secret_value(), body, request.headers.get("x-hub-signature-256")):
        return 401, "bad_signature", {"error": "missing or invalid X-Hub-Signature-256"}
    try:
        payload = json.loads(body)
    except ValueError:
        return 400, "malformed", {"error": "body is not JSON"}
    if not isinstance(payload, dict):
        return 400, "malformed", {"error": "body is not a JSON object"}
    if event == "ping":
        return 200, "ping", {"ok": True, "zen": payload.get("zen")}
    if not event or not delivery or len(delivery) > 64:
        return 400, "malformed", {"error": "missing X-GitHub-Event or X-GitHub-Delivery"}
    return await _route_and_record(context, event, delivery, payload, hashlib.sha256(body).hexdigest())


async def _route_and_record(
    context: AppContext, event: str, delivery: str, payload: dict[str, Any], body_sha256: str | None = None
) -> tuple[int, str, dict[str, Any]]:
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    try:
        routed = route(event, payload)
    except PayloadError as exc:
        return 400, "malformed", {"error": f"unexpected payload: {exc}"}
    if not routed.known:
        log.info("event %s.%s not handled; ignored", event, action)
        return 204, "unknown", {}
    if not routed.specs:
        log.info("event %s.%s creates no job (bot sender, non-PR comment, or not acted on)", event, action)
        return 200, "ignored", {"ok": True, "jobs": []}
    first = routed.specs[0]
    with log_context(repo=f"{first.owner}/{first.repo}", pr=first.pr):
        accepted = await context.store.accept_delivery(delivery, event, action, routed.specs, body_sha256)
        if accepted.duplicate:
            log.info("duplicate delivery ignored")
            return 200, "duplicate", {"ok": True, "duplicate": True}
        context.wake.set()
        log.info("delivery recorded: jobs %s%s", list(accepted.job_ids), " (redelivery)" if accepted.redelivery else "")
        return 202, "accepted", {"ok": True, "jobs": list(accepted.job_ids)}


async def record_event(context: AppContext, event: str, delivery: str, payload: dict[str, Any]) -> str:
    """Route and record an event that did not arrive over HTTP (the reconciler's catch-up) exactly as a verified
    webhook is: same routing, same rules, same dedupe by delivery id. Returns the intake outcome."""
    _, outcome, _ = await _route_and_record(context, event, delivery, payload)
    return outcome
