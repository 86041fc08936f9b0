"""The real server process: `python -m bot serve` starts fast, answers signed webhooks, works the job, stops."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from bot.app import build_routes
from tests.helpers_server import (
    SECRET,
    child_env,
    dumps,
    free_port,
    headers,
    pr_payload,
    start_process,
    stop_process,
    wait_http,
)
from tests.waiting import wait_until

# The heavy client libraries: neither is needed to answer /healthz in setup mode, so a start that loads one
# early has become slow for nothing (speed itself is measured in bench/, never asserted in a test).
SLOW_IMPORTS = ("githubkit", "anthropic")


def test_routes_are_a_plain_list() -> None:
    paths = [getattr(route, "path", None) for route in build_routes()]
    assert paths[:4] == ["/webhook", "/healthz", "/readyz", "/metrics"]


@pytest.mark.slow
def test_serve_with_only_defaults_starts_fast_in_setup_mode(tmp_path: Path) -> None:
    port = free_port()
    env = child_env(DATA_DIR=str(tmp_path / "data"), PORT=str(port))
    log = tmp_path / "serve.log"
    process = start_process(["-X", "importtime", "-m", "bot", "serve"], env, log)  # imports logged as they happen
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process=process)
        imported = _imported_modules(log.read_text(errors="replace"))
        assert "bot.app" in imported and not imported & set(SLOW_IMPORTS), sorted(imported & set(SLOW_IMPORTS))
        wait_http(f"http://127.0.0.1:{port}/readyz", process=process)
        response = httpx.post(f"http://127.0.0.1:{port}/webhook", content=b"{}")
        assert response.status_code == 503 and "GITHUB_WEBHOOK_SECRET" in response.text
    finally:
        assert stop_process(process) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert (tmp_path / "data" / "bot.sqlite3").is_file()


def _imported_modules(importtime_log: str) -> set[str]:
    """Module names from `python -X importtime` lines (`import time: self | cumulative | name`)."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_log.splitlines() if line.startswith("import time:")}


@pytest.mark.slow
def test_serve_answers_signed_webhooks_and_records_the_job(tmp_path: Path, rsa_private_key_pem: str) -> None:
    key = tmp_path / "app.pem"
    key.write_text(rsa_private_key_pem)
    port = free_port()
    env = child_env(
        DATA_DIR=str(tmp_path / "data"),
        PORT=str(port),
        GITHUB_APP_ID="1",
        GITHUB_APP_PRIVATE_KEY_FILE=str(key),
        GITHUB_WEBHOOK_SECRET=SECRET,
        LOG_FORMAT="json",
        RECONCILE_INTERVAL_SECONDS="0",  # no GitHub here (its default URL is the real one): no reconciler
        CATCH_UP="false",
    )
    # No in-process workers: the job must stay queued for whatever pipeline is installed (in-process workers are
    # covered in test_jobs with test handlers).
    process = start_process(["-m", "bot", "serve", "--workers", "0"], env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/readyz", process=process)
        body = dumps(pr_payload(number=5))
        answers = asyncio.run(_post_twice(base, body))
        assert answers == [202, 200]
        bad = httpx.post(f"{base}/webhook", content=body, headers={**headers(body, "pull_request"),
                                                                    "X-Hub-Signature-256": "sha256=00"})
        assert bad.status_code == 401
        wait_until(lambda: _job_states(tmp_path / "data" / "bot.sqlite3") == [("queued",)])
        metrics = httpx.get(f"{base}/metrics").text
        assert 'bot_webhook_deliveries_total{event="pull_request",outcome="accepted"} 1.0' in metrics
        assert 'bot_webhook_deliveries_total{event="pull_request",outcome="duplicate"} 1.0' in metrics
        assert 'bot_jobs{state="queued"} 1.0' in metrics
    finally:
        assert stop_process(process) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines() if line.startswith("{")]
    recorded = [line for line in lines if line.get("delivery") == "d-serve" and line["msg"] == "webhook accepted: 202"]
    assert [(line["repo"], line["pr"], line["event"]) for line in recorded] == [("octo/hello", 5, "pull_request")]


async def _post_twice(base: str, body: bytes) -> list[int]:
    async with httpx.AsyncClient(base_url=base) as client:
        codes = []
        for _ in range(2):
            response = await client.post("/webhook", content=body, headers=headers(body, "pull_request", "d-serve"))
            codes.append(response.status_code)
        return codes


def _job_states(path: Path) -> list[tuple[str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT state FROM jobs").fetchall()


def test_migrate_command_creates_the_database_and_reports_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    assert main(["migrate"]) == 0
    assert (tmp_path / "data" / "bot.sqlite3").is_file()
    assert main(["migrate"]) == 0  # idempotent
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    assert main(["migrate"]) == 1
    error = capsys.readouterr().err
    assert "cannot migrate the database" in error and "Traceback" not in error
