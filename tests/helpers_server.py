"""Test helpers: signed webhook builders, an in-process app client, real server/worker processes.

`python -m tests.helpers_server worker --count N --sleep S` runs `bot.jobs.run_workers` with a handler that
records each run into the `handled` table (created here), so multi-process tests can count executions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from bot.app import create_app
from bot.jobs import run_workers
from bot.registry import AppContext, Registry
from bot.settings import Settings, load_settings
from bot.store.types import Job
from bot.webhook import sign
from tests.waiting import HANG_GUARD_S

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-webhook-secret"
HANDLED_DDL = (
    "CREATE TABLE IF NOT EXISTS handled (job_id INTEGER NOT NULL, key VARCHAR(300) NOT NULL, "
    "head_sha VARCHAR(64), pid INTEGER NOT NULL, finished_at FLOAT NOT NULL)"
)


def headers(body: bytes, event: str, delivery: str | None = None, secret: str = SECRET) -> dict[str, str]:
    """The headers GitHub sends with a signed delivery."""
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
    }


def pr_payload(
    action: str = "opened",
    number: int = 1,
    sha: str = "a" * 40,
    *,
    draft: bool = False,
    sender_type: str = "User",
    sender_login: str = "alice",
    padding: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """A minimal but realistic `pull_request` payload (`padding` adds body text to reach a size)."""
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "draft": draft,
            "state": "open",
            "title": "Add a thing",
            "body": "x" * padding,
            "head": {"sha": sha, "ref": "feature"},
            "base": {"sha": "b" * 40, "ref": "main"},
            "user": {"login": sender_login, "type": sender_type},
        },
        "repository": {"name": "hello", "full_name": "octo/hello", "owner": {"login": "octo"}},
        "installation": {"id": 42},
        "sender": {"login": sender_login, "type": sender_type},
        **extra,
    }


def bot_settings(database_url: str, pem: str, **overrides: Any) -> Settings:
    """Settings of a configured App (not in setup mode) on `database_url`."""
    values: dict[str, Any] = {
        "github_app_id": 1,
        "github_app_private_key": pem,
        "github_webhook_secret": SECRET,
        "database_url": database_url,
        **overrides,
    }
    return load_settings(**values)


@asynccontextmanager
async def running_app(
    settings: Settings, registry: Registry | None = None, workers: int = 0, migrate: bool = False
) -> AsyncIterator[tuple[httpx.AsyncClient, AppContext]]:
    """The app with its lifespan running, and an httpx client talking to it in process."""
    app = create_app(settings, workers=workers, migrate=migrate, handlers=registry, poll_seconds=0.05)
    async with app.router.lifespan_context(app):
        context = await app.state.runtime.wait(10)
        assert context is not None, app.state.runtime.error
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as client:
            yield client, context


def dumps(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON bytes of a payload."""
    return json.dumps(payload).encode()


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**values: str) -> dict[str, str]:
    """The environment for a child bot process: this one's, minus bot settings, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DATABASE_URL", "LOG_"))}
    env.update(values)
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_process(args: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `python <args>` in the repository root with output to `log_path`."""
    log = log_path.open("ab")
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT)


def wait_http(url: str, timeout: float = HANG_GUARD_S, process: subprocess.Popen[bytes] | None = None) -> float:
    """Poll `url` until it answers 200; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise TimeoutError(url)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM and wait (SIGKILL after `timeout`); returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def recording_registry(sleep: float) -> Registry:
    """Handlers for review and command jobs that sleep (`inf`: until the process is killed), then record the run in
    `handled`."""

    async def record(job: Job, context: AppContext) -> None:
        if sleep == float("inf"):
            await asyncio.Event().wait()
        await asyncio.sleep(sleep)
        async with context.store.engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO handled (job_id, key, head_sha, pid, finished_at) VALUES "
                f"({int(job.id)}, '{job.key}', '{job.head_sha}', {os.getpid()}, {time.time()})"
            )

    registry = Registry()
    registry.register("review", record)
    registry.register("command", record)
    return registry


def main() -> int:
    """Entry point of the worker child process used by multi-process tests."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["worker"])
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    from bot.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, "console")
    return run_workers(settings, args.count, registry=recording_registry(args.sleep))


if __name__ == "__main__":
    sys.exit(main())
