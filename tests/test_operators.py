"""Operators' endpoints: /metrics behind METRICS_TOKEN, /readyz says only ready or not, /healthz stays open."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from bot.app import create_app
from tests.helpers_server import bot_settings, running_app

TOKEN = "s3cret-scrape-token"


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
                                           f"bearer{TOKEN}"])
async def test_metrics_needs_the_bearer_token_when_one_is_set(
    tmp_path: Path, rsa_private_key_pem: str, sqlite_template: Path, authorization: str | None
) -> None:
    db = tmp_path / "bot.sqlite3"
    shutil.copy(sqlite_template, db)
    settings = bot_settings(f"sqlite:///{db}", rsa_private_key_pem, metrics_token=TOKEN)
    async with running_app(settings) as (client, _):
        headers = {} if authorization is None else {"Authorization": authorization}
        refused = await client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and "bot_" not in refused.text
        assert refused.headers["www-authenticate"] == "Bearer"
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200 and "bot_webhook_deliveries_total" in allowed.text
        assert (await client.get("/healthz")).text == "ok"
        assert (await client.get("/readyz")).json() == {"ready": True}


async def test_metrics_stays_open_without_a_token(tmp_path: Path, rsa_private_key_pem: str,
                                                  sqlite_template: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    shutil.copy(sqlite_template, db)
    async with running_app(bot_settings(f"sqlite:///{db}", rsa_private_key_pem, metrics_token="  ")) as (client, _):
        assert (await client.get("/metrics")).status_code == 200


async def test_readyz_reveals_nothing_about_a_failed_start(tmp_path: Path, rsa_private_key_pem: str) -> None:
    settings = bot_settings("postgresql://admin:pw@127.0.0.1:1/secretdb", rsa_private_key_pem)
    app = create_app(settings, workers=0, migrate=True)
    async with app.router.lifespan_context(app):
        await app.state.runtime.wait(10)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as client:
            response = await client.get("/readyz")
    assert response.status_code == 503 and response.json() == {"ready": False}
    assert app.state.runtime.error  # the reason exists, in the log and the runtime, not in the answer
