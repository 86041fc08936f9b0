"""SQLite group commit: concurrent deliveries share one transaction (and, when the database is busy, one thread hop).

Each delivery runs inside its own SAVEPOINT, so one failing delivery never affects the others in its batch; what
each delivery does is `bot.store.intake.accept`, the same path PostgreSQL runs, on a plain sqlite3 connection.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from bot.store.intake import Delivery, accept
from bot.store.types import Accepted

R = TypeVar("R")


def write_batch(conn: sqlite3.Connection, items: Sequence[Delivery]) -> list[Accepted | Exception]:
    """Record every delivery of the batch in the caller's transaction, each in its own savepoint."""
    cur = conn.cursor()
    now = time.time()
    results: list[Accepted | Exception] = []
    try:
        for item in items:
            cur.execute("SAVEPOINT delivery")
            try:
                results.append(accept(cur, item, now))
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
