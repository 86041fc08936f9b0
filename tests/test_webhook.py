"""Webhook intake: size, signature, JSON, dedupe, routing, recording, and never a 500 (in process, both DBs)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from bot.logs import ContextFilter
from bot.registry import AppContext
from bot.webhook import MAX_BODY_BYTES, BodyTooLarge, ClientGone, read_capped, sign, signature_ok
from tests.helpers_server import SECRET, bot_settings, dumps, headers, pr_payload, running_app

App = tuple[httpx.AsyncClient, AppContext]


def test_github_documented_signature_vector() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign("It's a Secret to Everybody", b"Hello, World!") == expected
    assert signature_ok("It's a Secret to Everybody", b"Hello, World!", expected)
    assert not signature_ok("It's a Secret to Everybody", b"Hello, World!!", expected)
    assert not signature_ok("It's a Secret to Everybody", b"Hello, World!", expected.replace("sha256=", "sha1="))
    assert not signature_ok("It's a Secret to Everybody", b"Hello, World!", None)


async def test_stream_cap_ignores_content_length() -> None:
    chunks = [b"x" * 10, b"y" * 10, b""]

    async def receive() -> dict[str, object]:
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    with pytest.raises(BodyTooLarge):  # whatever Content-Length said (5), what arrives is counted
        await read_capped(receive, limit=15)


async def test_a_client_gone_mid_body_is_noticed() -> None:
    messages = [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict[str, object]:
        return messages.pop(0)

    with pytest.raises(ClientGone):
        await read_capped(receive)


@pytest.fixture
async def app(db_url: str, rsa_private_key_pem: str) -> AsyncIterator[App]:
    async with running_app(bot_settings(db_url, rsa_private_key_pem)) as running:
        yield running


async def post(client: httpx.AsyncClient, event: str, body: bytes, delivery: str | None = None,
               **override: str) -> httpx.Response:
    return await client.post("/webhook", content=body, headers={**headers(body, event, delivery), **override})


async def test_signed_pull_request_is_recorded(app: App) -> None:
    client, context = app
    response = await post(client, "pull_request", dumps(pr_payload(number=9)), "d-ok")
    assert response.status_code == 202
    (job,) = await context.store.list_jobs()
    assert response.json()["jobs"] == [job.id]
    assert (job.kind, job.key, job.delivery_id, job.installation_id) == ("review", "octo/hello#9", "d-ok", 42)


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "sha1=0123", sign("wrong-secret", b"{}"), "sha256=zz"],
)
async def test_bad_signatures_are_401_and_record_nothing(app: App, signature: str | None) -> None:
    client, context = app
    body = dumps(pr_payload())
    hdrs = headers(body, "pull_request", "d-bad")
    if signature is None:
        del hdrs["X-Hub-Signature-256"]
    else:
        hdrs["X-Hub-Signature-256"] = signature
    response = await client.post("/webhook", content=body, headers=hdrs)
    assert response.status_code == 401
    assert await context.store.list_jobs() == [] and await context.store.delivery_status("d-bad") is None
    metrics = (await client.get("/metrics")).text
    assert 'bot_webhook_deliveries_total{event="unverified",outcome="bad_signature"} 1.0' in metrics


async def test_sha1_only_is_rejected(app: App) -> None:
    import hashlib
    import hmac

    client, _ = app
    body = dumps(pr_payload())
    hdrs = headers(body, "pull_request")
    del hdrs["X-Hub-Signature-256"]
    hdrs["X-Hub-Signature"] = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert (await client.post("/webhook", content=body, headers=hdrs)).status_code == 401


async def test_oversize_is_413(app: App) -> None:
    client, context = app
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    response = await post(client, "pull_request", body)
    assert response.status_code == 413 and await context.store.list_jobs() == []


async def test_large_unverified_bodies_are_read_a_few_at_a_time(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import bot.webhook as webhook

    client, context = app
    monkeypatch.setattr(webhook, "LARGE_BODY_WAIT_SECONDS", 0.2)
    slots = context.large_body_slots = asyncio.Semaphore(webhook.LARGE_BODY_SLOTS)
    for _ in range(webhook.LARGE_BODY_SLOTS):  # every slot taken by slow uploads
        await slots.acquire()
    large = dumps(pr_payload(padding=webhook.SMALL_BODY_BYTES + 1))
    busy = await post(client, "pull_request", large)
    assert busy.status_code == 503 and await context.store.list_jobs() == []
    small = dumps(pr_payload(number=2))
    assert (await post(client, "pull_request", small)).status_code == 202  # small deliveries never wait
    slots.release()
    assert (await post(client, "pull_request", large)).status_code == 202


@pytest.mark.parametrize(("body", "error"), [
    (b"{not json", "body is not JSON"),
    (b"", "body is not JSON"),
    (b"[1, 2]", "Expected `object`, got `array`"),
    (b"\xff\xfe", "body is not JSON"),
    (b'{"action": "opened"} trailing', "body is not JSON"),
    (b'{"action": "opened", "pull_request": [1]}', "unexpected payload: Expected `object | null`, got `array` - at "
                                                   "`$.pull_request`"),
    (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "JSON nested too deeply"),
    (b"[" * 100_000 + b"]" * 100_000, "Expected `object`, got `array`"),
    (b'{"a": ' + b'{"b": ' * 50_000 + b"1" + b"}" * 50_001, "JSON nested too deeply"),
])
async def test_malformed_json_is_a_precise_400_and_records_nothing(app: App, body: bytes, error: str) -> None:
    client, context = app
    response = await post(client, "pull_request", body, "d-malformed")
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert await context.store.delivery_status("d-malformed") is None


async def test_the_signature_is_checked_before_the_body_is_read_as_json(app: App) -> None:
    client, _ = app
    body = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await client.post("/webhook", content=body, headers={
        **headers(body, "pull_request"), "X-Hub-Signature-256": sign("wrong-secret", body)})
    assert response.status_code == 401


@pytest.mark.parametrize(("missing", "value"), [("X-GitHub-Event", None), ("X-GitHub-Delivery", None),
                                                ("X-GitHub-Delivery", "d" * 65), ("X-GitHub-Delivery", "")])
async def test_missing_or_oversized_headers_are_400(app: App, missing: str, value: str | None) -> None:
    client, context = app
    body = dumps(pr_payload())
    hdrs = headers(body, "pull_request")
    if value is None:
        del hdrs[missing]
    else:
        hdrs[missing] = value
    response = await client.post("/webhook", content=body, headers=hdrs)
    assert response.status_code == 400 and "X-GitHub-Delivery" in response.json()["error"]
    assert await context.store.list_jobs() == []


async def test_a_lone_surrogate_escape_the_fast_decoder_refuses_is_still_accepted(app: App) -> None:
    client, context = app
    payload = pr_payload(number=4)
    payload["pull_request"]["title"] = "broken SURROGATE emoji"
    body = dumps(payload).replace(b"SURROGATE", b"\\ud83d")  # half an emoji, as JSON escapes it
    assert json.loads(body)["pull_request"]["title"] == "broken \ud83d emoji"
    response = await post(client, "pull_request", body, "d-surrogate")
    assert response.status_code == 202
    assert [job.key for job in await context.store.list_jobs()] == ["octo/hello#4"]


async def test_one_log_line_per_delivery(app: App, caplog: pytest.LogCaptureFixture) -> None:
    client, _ = app
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(ContextFilter())
    body = dumps(pr_payload(number=5))
    for delivery in ("d-log", "d-log"):
        await post(client, "pull_request", body, delivery)
    await post(client, "pull_request", b"{", "d-log-bad")
    lines = [r for r in caplog.records if r.name == "bot.webhook"]
    assert [(r.getMessage(), r.context["delivery"]) for r in lines] == [  # type: ignore[attr-defined]
        ("webhook accepted: 202", "d-log"), ("webhook duplicate: 200", "d-log"),
        ("webhook malformed: 400", "d-log-bad")]
    assert lines[0].context["repo"] == "octo/hello" and lines[0].context["pr"] == 5  # type: ignore[attr-defined]


async def test_answers_carry_their_length_and_204_has_no_body(app: App) -> None:
    client, _ = app
    body = dumps(pr_payload(number=6))
    response = await post(client, "pull_request", body)
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["content-type"] == "application/json"
    unknown = await post(client, "deployment", dumps({"action": "created"}))
    assert unknown.status_code == 204 and unknown.content == b""


async def test_unknown_events_and_actions_are_counted_and_ignored(app: App) -> None:
    client, context = app
    assert (await post(client, "deployment", dumps({"action": "created"}))).status_code == 204
    assert (await post(client, "pull_request", dumps(pr_payload("labeled")))).status_code == 204
    assert (await post(client, "ping", dumps({"zen": "Keep it logically awesome."}))).status_code == 200
    bot = pr_payload(sender_type="Bot", sender_login="ci[bot]")
    assert (await post(client, "pull_request", dumps(bot))).json() == {"ok": True, "jobs": []}
    assert await context.store.list_jobs() == []
    text = (await client.get("/metrics")).text
    assert 'bot_webhook_deliveries_total{event="deployment",outcome="unknown"} 1.0' in text
    assert 'bot_webhook_deliveries_total{event="ping",outcome="ping"} 1.0' in text
    assert 'bot_webhook_deliveries_total{event="pull_request",outcome="ignored"} 1.0' in text


async def test_duplicates_do_nothing_and_concurrent_duplicates_make_one_job(app: App) -> None:
    client, context = app
    body = dumps(pr_payload())
    responses = await asyncio.gather(*(post(client, "pull_request", body, "d-same") for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [202]
    assert len(await context.store.list_jobs()) == 1
    assert (await post(client, "pull_request", body, "d-same")).json()["duplicate"] is True


async def test_database_errors_answer_503_without_traceback(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    client, context = app

    async def down(*args: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    async def bug(*args: object) -> None:
        raise RuntimeError("secret internals")

    async def sqlite_down(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    for failure in (down, sqlite_down, bug):
        monkeypatch.setattr(context.store, "accept_delivery", failure)
        response = await post(client, "pull_request", dumps(pr_payload()))
        assert response.status_code == 503
        assert "Traceback" not in response.text and "secret internals" not in response.text


async def test_setup_mode_names_missing_settings(db_url: str) -> None:
    from bot.settings import load_settings

    async with running_app(load_settings(database_url=db_url, github_webhook_secret=SECRET)) as (client, _):
        response = await post(client, "pull_request", dumps(pr_payload()))
        assert response.status_code == 503
        assert "GITHUB_APP_ID" in response.text and "GITHUB_APP_PRIVATE_KEY" in response.text
        assert (await client.get("/healthz")).status_code == 200


async def test_health_ready_metrics(app: App) -> None:
    client, _ = app
    assert (await client.get("/healthz")).text == "ok"
    assert (await client.get("/readyz")).json() == {"ready": True}
    await post(client, "pull_request", dumps(pr_payload()))
    text = (await client.get("/metrics")).text
    for name in ("bot_jobs{state=\"queued\"} 1.0", "bot_job_run_seconds", "bot_model_tokens",
                 "bot_model_cost_usd", "bot_github_api_calls", "bot_github_rate_limit_remaining"):
        assert name in text


async def test_readyz_fails_when_migrations_are_missing(tmp_path: Path, rsa_private_key_pem: str) -> None:
    settings = bot_settings(f"sqlite:///{tmp_path / 'empty.sqlite3'}", rsa_private_key_pem)
    async with running_app(settings, migrate=False) as (client, _):
        response = await client.get("/readyz")
        assert response.status_code == 503 and response.json() == {"ready": False}  # why: only in the log


def _json_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


async def test_every_payload_is_accepted(app: App, webhook_dir: Path) -> None:
    client, context = app
    files = _json_files(webhook_dir)
    assert files
    for index, path in enumerate(files):
        event = path.name.split(".", 1)[0]
        response = await post(client, event, path.read_bytes(), f"corpus-{index}")
        assert response.status_code in (200, 202, 204), (path.name, response.status_code, response.text)
        if path.name.startswith("pull_request.opened"):
            assert response.status_code == 202, path.name
    jobs = await context.store.list_jobs()
    assert {"review", "command"} <= {job.kind for job in jobs} <= {"review", "command", "thread"}
    assert all(json.dumps(job.payload) for job in jobs)
