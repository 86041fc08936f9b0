"""Replays are inert: the exact signed body re-sent under a new delivery id within 7 days is acknowledged and
ignored like a duplicate id (in process, both databases); a closed PR is remembered for retention."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.registry import AppContext
from bot.store.tables import deliveries, pr_state
from tests.helpers_server import bot_settings, dumps, headers, pr_payload, running_app

App = tuple[httpx.AsyncClient, AppContext]


@pytest.fixture
async def app(db_url: str, rsa_private_key_pem: str) -> AsyncIterator[App]:
    async with running_app(bot_settings(db_url, rsa_private_key_pem)) as running:
        yield running


async def post(client: httpx.AsyncClient, event: str, body: bytes, delivery: str) -> httpx.Response:
    return await client.post("/webhook", content=body, headers=headers(body, event, delivery))


def comment_payload(comment_id: int = 501, body: str = "@senior-review full review") -> dict[str, Any]:
    user = {"login": "maint", "type": "User"}
    return {
        "action": "created",
        "comment": {"id": comment_id, "body": body, "user": user, "author_association": "MEMBER"},
        "issue": {"number": 1, "pull_request": {"url": "https://api.github.com/repos/octo/hello/pulls/1"}},
        "repository": {"name": "hello", "full_name": "octo/hello", "owner": {"login": "octo"}},
        "installation": {"id": 42}, "sender": user,
    }


async def test_a_captured_command_re_sent_under_new_ids_is_ignored_before_and_after_a_push(app: App) -> None:
    client, context = app
    command = dumps(comment_payload())
    assert (await post(client, "issue_comment", command, "d-1")).status_code == 202
    replay = await post(client, "issue_comment", command, "d-2")
    assert replay.status_code == 200 and replay.json() == {"ok": True, "duplicate": True}
    push = await post(client, "pull_request", dumps(pr_payload("synchronize", sha="c" * 40)), "d-push")
    assert push.status_code == 202
    assert (await post(client, "issue_comment", command, "d-3")).json()["duplicate"] is True
    jobs = await context.store.list_jobs()
    assert [(j.kind, j.delivery_id) for j in jobs] == [("command", "d-1"), ("review", "d-push")]
    assert await context.store.delivery_status("d-2") is None  # nothing recorded for a replay


async def test_a_replayed_push_does_not_requeue_an_old_head(app: App) -> None:
    client, context = app
    old = dumps(pr_payload("synchronize", sha="a" * 40))
    assert (await post(client, "pull_request", old, "d-a")).status_code == 202
    assert (await post(client, "pull_request", dumps(pr_payload("synchronize", sha="b" * 40)), "d-b")).status_code \
        == 202
    assert (await post(client, "pull_request", old, "d-a-again")).json()["duplicate"] is True
    queued = await context.store.list_jobs(states=["queued"])
    assert [j.head_sha for j in queued] == ["b" * 40]


async def test_the_window_is_seven_days_and_githubs_own_redelivery_still_works(app: App) -> None:
    client, context = app
    body = dumps(pr_payload("opened", sha="d" * 40))
    assert (await post(client, "pull_request", body, "d-old")).status_code == 202
    assert (await post(client, "pull_request", body, "d-old")).json()["duplicate"] is True  # same id: duplicate
    async with context.store.engine.begin() as conn:
        await conn.execute(deliveries.update().values(received_at=time.time() - 8 * 86_400))
    assert (await post(client, "pull_request", body, "d-new")).status_code == 202  # past the window


async def test_a_closed_pull_request_is_remembered_for_retention(app: App) -> None:
    client, context = app
    before = time.time()
    closed = dumps(pr_payload("closed", number=4))
    assert (await post(client, "pull_request", closed, "d-closed")).status_code == 202
    async with context.store.engine.connect() as conn:
        row = (await conn.execute(select(pr_state.c.repo, pr_state.c.pr, pr_state.c.closed_at))).one()
    assert (row.repo, row.pr) == ("octo/hello", 4) and row.closed_at >= before
