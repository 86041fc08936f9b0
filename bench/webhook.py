"""Webhook intake benchmark: a bare Starlette endpoint vs this app's /webhook, same load, alternating rounds.

    .venv/bin/python bench/webhook.py [--clients 32] [--rounds 4] [--seconds 3] [--profile FILE]

Both servers run side by side as uvicorn processes for the whole run: the bot as `python -m bot serve` builds it,
with no workers (so no job handlers), SQLite in a temp DATA_DIR, JSON logs to a file (intake is measured);
the bare one is a Starlette route that reads the body and answers 202. The rounds alternate (bare, bot, bare,
bot, ...) so that the load of this shared machine falls on both alike. Both receive exactly the same requests,
built by the same minimal keep-alive HTTP/1.1 client: a signed, compact `pull_request.synchronize` shaped like
tests/fixtures/payloads (padded to ~30 KB with its description, as real ones are) for a distinct PR each (no
coalescing), with a unique X-GitHub-Delivery. Afterwards the jobs table is counted against the bot's 202 answers.
`--profile FILE` runs the bot under py-spy (when installed) and writes its raw stacks there. Figures are the last
lines.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "payloads" / "pull_request.synchronize.json"
SECRET = b"bench-secret"
PLACEHOLDER = 7777777

# This app exactly as `python -m bot serve` builds it, but with no job handlers and no
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


def payload_template(size: int = 30_000) -> tuple[bytes, bytes, bytes]:
    """The fixture as GitHub sends it (compact), about `size` bytes, split where the PR number goes (twice)."""
    payload = json.loads(FIXTURE.read_text())
    payload["number"] = payload["pull_request"]["number"] = PLACEHOLDER
    base = len(json.dumps(payload, separators=(",", ":")))
    payload["pull_request"]["body"] += "\r\n" + "lorem ipsum " * max(0, (size - base) // 12)
    body = json.dumps(payload, separators=(",", ":")).encode()
    head, middle, tail = body.split(str(PLACEHOLDER).encode())  # "number" and "pull_request.number"
    return head, middle, tail


def request_factory(port: int) -> Callable[[], bytes]:
    """Signed requests for distinct pull requests, each with its own delivery id (the same for both servers)."""
    first, middle, tail = payload_template()
    counter = itertools.count(1_000_000)
    host = b"Host: 127.0.0.1:%d" % port

    def make() -> bytes:
        number = str(next(counter)).encode()
        body = first + number + middle + number + tail
        signature = hmac.new(SECRET, body, hashlib.sha256).hexdigest().encode()
        head = b"\r\n".join((
            b"POST /webhook HTTP/1.1", host, b"Content-Type: application/json",
            b"Content-Length: %d" % len(body), b"X-GitHub-Event: pull_request",
            b"X-GitHub-Delivery: " + str(uuid.uuid4()).encode(), b"X-Hub-Signature-256: sha256=" + signature,
        ))
        return head + b"\r\n\r\n" + body

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


@dataclass
class Figures:
    """What one server did over all its measured rounds."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    codes: Counter[int] = field(default_factory=Counter)
    every: Counter[int] = field(default_factory=Counter)  # warm-up included
    round_rps: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0  # the server process's CPU time (all its threads) over the rounds, warm-up included

    @property
    def cpu_per_request(self) -> float:
        """Server CPU microseconds per answered request: what the machine's noise cannot change much."""
        return self.cpu_seconds / max(1, sum(self.every.values())) * 1e6

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000


async def client(port: int, make: Callable[[], bytes], record_from: float, until: float, figures: Figures,
                 latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (now := time.perf_counter()) < until:
            writer.write(make())
            status = await read_response(reader)
            figures.every[status] += 1
            if now >= record_from:
                latencies.append(time.perf_counter() - now)
                figures.codes[status] += 1
    finally:
        writer.close()


async def one_round(port: int, make: Callable[[], bytes], clients: int, seconds: float, warmup: float,
                    figures: Figures) -> None:
    """Closed-loop load: `clients` connections each sending its next request as soon as the last is answered."""
    latencies: list[float] = []
    start = time.perf_counter()
    record_from, until = start + warmup, start + warmup + seconds
    await asyncio.gather(*(client(port, make, record_from, until, figures, latencies) for _ in range(clients)))
    figures.latencies += latencies
    figures.seconds += seconds
    figures.round_rps.append(len(latencies) / seconds)


def wait_ready(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (py-spy's child is the server), from /proc."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += cpu_seconds(int(child))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return total + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def py_spy(output: str) -> list[str]:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        sys.exit("--profile needs py-spy (pip install py-spy)")
    return [found, "record", "--rate", "250", "--format", "raw", "--output", output, "--"]


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        key = Path(tmp) / "app.pem"
        key.write_text(generate_key())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DATABASE_URL"))}
        env.update(DATA_DIR=str(data), GITHUB_APP_ID="1", GITHUB_APP_PRIVATE_KEY_FILE=str(key),
                   GITHUB_WEBHOOK_SECRET=SECRET.decode(), LOG_FORMAT="json", PYTHONPATH=str(ROOT))
        servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
        try:
            for name, source, path in (("bare", BARE_SERVER, "/"), ("bot", BOT_SERVER, "/readyz")):
                port = free_port()
                prefix = py_spy(args.profile) if args.profile and name == "bot" else []
                log = (Path(tmp) / f"{name}.log").open("wb")
                process = subprocess.Popen([*prefix, sys.executable, "-c", source, str(port)], cwd=ROOT, env=env,
                                           stdout=log, stderr=subprocess.STDOUT)
                servers[name] = port, process
                wait_ready(port, path, process)
            results = {name: Figures() for name in servers}
            makers = {name: request_factory(port) for name, (port, _) in servers.items()}
            for index in range(args.rounds):
                for name in ("bare", "bot") if index % 2 == 0 else ("bot", "bare"):
                    port, process = servers[name]
                    before = cpu_seconds(process.pid)
                    asyncio.run(one_round(port, makers[name], args.clients, args.seconds, args.warmup, results[name]))
                    results[name].cpu_seconds += cpu_seconds(process.pid) - before
        finally:
            for _, process in servers.values():
                process.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT; uvicorn stops cleanly
                process.wait(60)
            if args.keep_log:
                shutil.copy(Path(tmp) / "bot.log", args.keep_log)
        with sqlite3.connect(data / "bot.sqlite3") as conn:
            jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
            deliveries = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    bot, bare = results["bot"], results["bare"]
    print(f"load: {args.clients} closed-loop clients, {args.rounds} alternating rounds of {args.seconds:.0f}s each "
          f"(after {args.warmup:.1f}s warm-up), ~{len(b''.join(payload_template())) // 1000} KB signed compact "
          f"pull_request payloads, bot on SQLite (intake only)")
    ratios = [b / a for a, b in zip(bare.round_rps, bot.round_rps, strict=True)]
    print("per round ratio bot/bare: " + " ".join(f"{r:.2f}" for r in ratios))
    accepted = bot.every.get(202, 0)
    # Every 202 the bot gave (warm-up included) must be a job: compare with the table.
    print(f"202 answers {accepted} (warm-up included), jobs recorded {jobs}, deliveries recorded {deliveries}, "
          f"lost {accepted - jobs}")
    for name, figures in (("bare starlette", bare), ("bot /webhook", bot)):
        print(f"{name:15} {figures.rps:8.0f} req/s  p50 {figures.percentile(0.5):6.2f} ms  "
              f"p99 {figures.percentile(0.99):6.2f} ms  (202: {figures.codes.get(202, 0)}, "
              f"other: {sum(v for k, v in figures.codes.items() if k != 202)})")
    print(f"server CPU per request: bare {bare.cpu_per_request:.0f} us, bot {bot.cpu_per_request:.0f} us "
          f"(ratio {bare.cpu_per_request / bot.cpu_per_request:.2f}: the throughput ratio when the server is the "
          f"bottleneck)")
    print(f"ratio bot/bare throughput {bot.rps / bare.rps:.2f} (median of rounds {statistics.median(ratios):.2f}; "
          f"goal >= 0.5); bot p50 {bot.percentile(0.5):.1f} ms, p99 {bot.percentile(0.99):.1f} ms (goal < 50)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4, help="rounds per server, alternating")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per round")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds at the start of each round")
    parser.add_argument("--profile", metavar="FILE", help="run the bot under py-spy, raw stacks to FILE")
    parser.add_argument("--keep-log", metavar="FILE", help="copy the bot's log there")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
