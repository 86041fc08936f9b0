"""Webhook intake benchmark: a bare Starlette endpoint vs this app's /webhook, same closed-loop load, on loopback.

    .venv/bin/python bench/webhook.py [--clients 32] [--seconds 8]

Both servers run as separate uvicorn processes: the bot as `python -m bot serve` builds it, with no workers and
the log-only registry, SQLite in a temp DATA_DIR (intake is measured). The load generator is a minimal keep-alive
HTTP/1.1 client. Every bot request is a signed ~30 KB `pull_request.synchronize` for a distinct PR (so no
coalescing) with a unique X-GitHub-Delivery; afterwards the jobs table is counted against the 202 answers.
Figures are the last lines.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"bench-secret"
PLACEHOLDER = b"7777777"

# This app exactly as `python -m bot serve` builds it, but with the default (log-only) job registry and no
# in-process workers, so the figures measure intake and do not depend on the review pipeline's state.
BOT_SERVER = """
import sys, uvicorn
from bot.app import create_app
from bot.logs import configure_logging
from bot.settings import load_settings

settings = load_settings()
configure_logging(settings.log_level, settings.log_format)
app = create_app(settings, workers=0, migrate=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False, lifespan="on")
"""

BARE_SERVER = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def hook(request):
    await request.body()
    return Response(status_code=202)

uvicorn.run(Starlette(routes=[Route("/webhook", hook, methods=["POST"])]), host="127.0.0.1",
            port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def payload_template(size: int = 30_000) -> bytes:
    """A pull_request payload of about `size` bytes with PLACEHOLDER where the PR number goes."""
    payload = {
        "action": "synchronize",
        "number": 7777777,
        "pull_request": {
            "number": 7777777, "draft": False, "state": "open", "title": "Bench",
            "body": "", "head": {"sha": "c" * 40, "ref": "feature"}, "base": {"sha": "b" * 40, "ref": "main"},
            "user": {"login": "alice", "type": "User"},
        },
        "repository": {"name": "hello", "full_name": "octo/hello", "owner": {"login": "octo"}},
        "installation": {"id": 42},
        "sender": {"login": "alice", "type": "User"},
    }
    base = len(json.dumps(payload))
    payload["pull_request"]["body"] = "lorem ipsum " * ((size - base) // 12)  # type: ignore[index]
    return json.dumps(payload).encode()


def request_factory(port: int, signed: bool) -> Callable[[], bytes]:
    template = payload_template()
    counter = itertools.count(1_000_000)

    def make() -> bytes:
        body = template.replace(PLACEHOLDER, str(next(counter)).encode())
        lines = [
            b"POST /webhook HTTP/1.1",
            b"Host: 127.0.0.1:%d" % port,
            b"Content-Type: application/json",
            b"Content-Length: %d" % len(body),
            b"X-GitHub-Event: pull_request",
            b"X-GitHub-Delivery: " + str(uuid.uuid4()).encode(),
        ]
        if signed:
            lines.append(b"X-Hub-Signature-256: sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest().encode())
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    return make


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def client(port: int, make: Callable[[], bytes], until: float, latencies: list[float], codes: Counter[int],
                 record_from: float, every: Counter[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (now := time.perf_counter()) < until:
            request = make()
            writer.write(request)
            status = await read_response(reader)
            every[status] += 1
            if now >= record_from:
                latencies.append(time.perf_counter() - now)
                codes[status] += 1
    finally:
        writer.close()


async def load(port: int, make: Callable[[], bytes], clients: int, seconds: float, warmup: float) -> dict[str, float]:
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    every: Counter[int] = Counter()
    start = time.perf_counter()
    record_from, until = start + warmup, start + warmup + seconds
    await asyncio.gather(*(client(port, make, until, latencies, codes, record_from, every) for _ in range(clients)))
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "count": len(latencies),
        "accepted": codes.get(202, 0),
        "other": sum(v for k, v in codes.items() if k != 202),
        "accepted_total": every.get(202, 0),
    }


def wait_ready(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
                if b" 200 " in sock.recv(1024) or path == "/":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("server did not become ready")


def generate_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        key = Path(tmp) / "app.pem"
        key.write_text(generate_key())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DATABASE_URL"))}
        env.update(DATA_DIR=str(data), GITHUB_APP_ID="1", GITHUB_APP_PRIVATE_KEY_FILE=str(key),
                   GITHUB_WEBHOOK_SECRET=SECRET.decode(), LOG_FORMAT="json", PYTHONPATH=str(ROOT))
        results = {}
        for name, argv, path, signed in (
            ("bare", [sys.executable, "-c", BARE_SERVER], "/", False),
            ("webhook", [sys.executable, "-c", BOT_SERVER], "/readyz", True),
        ):
            port = free_port()
            log = (Path(tmp) / f"{name}.log").open("wb")
            process = subprocess.Popen([*argv, str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_ready(port, path, process)
                results[name] = asyncio.run(load(port, request_factory(port, signed), args.clients, args.seconds,
                                                 args.warmup))
            finally:
                process.terminate()
                process.wait(30)
        with sqlite3.connect(data / "bot.sqlite3") as conn:
            jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
            deliveries = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    bot, bare = results["webhook"], results["bare"]
    # Every 202 the bot gave (warm-up included, counted separately) must be a job: compare with the table.
    print(f"load: {args.clients} closed-loop clients, {args.seconds:.0f}s measured after {args.warmup:.0f}s warm-up, "
          f"~{len(payload_template()) // 1000} KB signed pull_request payloads, bot on SQLite (intake only)")
    for name, figures in (("bare starlette", bare), ("bot /webhook", bot)):
        print(f"{name:15} {figures['rps']:8.0f} req/s  p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:6.2f} ms  "
              f"(202: {figures['accepted']:.0f}, other: {figures['other']:.0f})")
    accepted = int(bot["accepted_total"])
    print(f"202 answers {accepted} (warm-up included), jobs recorded {jobs}, deliveries recorded {deliveries}, "
          f"lost {accepted - jobs}")
    print(f"ratio bot/bare throughput {bot['rps'] / bare['rps']:.2f} (goal >= 0.5); bot p99 {bot['p99']:.1f} ms "
          f"(goal < 50)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
