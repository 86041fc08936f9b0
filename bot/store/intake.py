"""SQLite intake with group commit: concurrent deliveries share one thread hop and one transaction.

Each delivery runs inside its own SAVEPOINT, so one failing delivery never affects the others in its batch;
the SQL is the same as the generic path (`Store._accept`), issued on a plain sqlite3 connection for speed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.store.types import Accepted, JobKind, JobSpec

R = TypeVar("R")
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, event, action, received_at, status) VALUES (?, ?, ?, ?, 'processed') "
    "ON CONFLICT (id) DO NOTHING"
)
_REOPEN_DELIVERY = "UPDATE deliveries SET status = 'processed', received_at = ? WHERE id = ? AND status = 'failed'"
_QUEUED_REVIEW = "SELECT id, head_sha FROM jobs WHERE key = ? AND kind = 'review' AND state = 'queued'"
_SUPERSEDE = (
    "UPDATE jobs SET state = 'superseded', finished_at = ?, updated_at = ?, lease_owner = NULL, "
    "lease_expires_at = NULL WHERE id = ?"
)
_CANCEL = "UPDATE jobs SET state = 'cancelled', finished_at = ?, updated_at = ? WHERE key = ? AND state = 'queued'"
_INSERT_JOB = (
    "INSERT INTO jobs (kind, key, head_sha, trigger, delivery_id, payload, state, attempts, run_after, created_at, "
    "updated_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?) RETURNING id"
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery to record."""

    delivery_id: str
    event: str
    action: str | None
    specs: tuple[JobSpec, ...]


def _enqueue(cur: sqlite3.Cursor, spec: JobSpec, delivery_id: str | None, now: float) -> int:
    if spec.kind == JobKind.REVIEW:
        queued = cur.execute(_QUEUED_REVIEW, (spec.key,)).fetchone()
        if queued is not None and queued[1] == spec.head_sha:
            return int(queued[0])
        if queued is not None:
            cur.execute(_SUPERSEDE, (now, now, queued[0]))
    payload = json.dumps(spec.payload(delivery_id))
    row = cur.execute(
        _INSERT_JOB, (str(spec.kind), spec.key, spec.head_sha, spec.trigger, delivery_id, payload, now, now, now)
    ).fetchone()
    return int(row[0])


def _accept_one(cur: sqlite3.Cursor, item: Delivery, now: float) -> Accepted:
    redelivery = False
    if cur.execute(_INSERT_DELIVERY, (item.delivery_id, item.event, item.action, now)).rowcount == 0:
        if cur.execute(_REOPEN_DELIVERY, (now, item.delivery_id)).rowcount == 0:
            return Accepted(duplicate=True)
        redelivery = True
    job_ids = []
    for spec in item.specs:
        if spec.kind == JobKind.CANCEL:
            cur.execute(_CANCEL, (now, now, spec.key))
        else:
            job_ids.append(_enqueue(cur, spec, item.delivery_id, now))
    return Accepted(duplicate=False, job_ids=tuple(job_ids), redelivery=redelivery)


def write_batch(conn: sqlite3.Connection, items: Sequence[Delivery]) -> list[Accepted | Exception]:
    """Record every delivery of the batch in the caller's transaction, each in its own savepoint."""
    cur = conn.cursor()
    now = time.time()
    results: list[Accepted | Exception] = []
    try:
        for item in items:
            cur.execute("SAVEPOINT delivery")
            try:
                results.append(_accept_one(cur, item, now))
            except sqlite3.Error as exc:
                cur.execute("ROLLBACK TO SAVEPOINT delivery")
                results.append(exc)
            cur.execute("RELEASE SAVEPOINT delivery")
    finally:
        cur.close()
    return results


class RawWriter:
    """A plain sqlite3 connection used from the store's one thread: sqlite3 releases the GIL while it works,
    so the event loop keeps serving requests during a commit."""

    def __init__(self, path: str, pragmas: Sequence[str]) -> None:
        self.path = path
        self.pragmas = tuple(pragmas)
        self.conn: sqlite3.Connection | None = None

    def run(self, work: Callable[[sqlite3.Connection], R]) -> R:
        """`work(conn)` inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""
        if self.conn is None:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in self.pragmas:
                self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(self.conn)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return result

    def close(self) -> None:
        """Close the connection (from the store's thread)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class IntakeBatcher:
    """Queues `accept` calls and flushes them together through `run(write_batch)` (one hop, one commit)."""

    def __init__(self, run: Callable[[Callable[[sqlite3.Connection], list[Accepted | Exception]]], Any]) -> None:
        self._run = run
        self._pending: list[tuple[Delivery, asyncio.Future[Accepted]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def accept(self, item: Delivery) -> Accepted:
        """Record one delivery (batched with whatever else is waiting)."""
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._run(functools.partial(write_batch, items=[item for item, _ in batch]))
            except Exception as exc:  # noqa: BLE001 - handed to every waiter, which raises it at the web edge
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
