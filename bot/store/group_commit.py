"""Group commit: deliveries arriving together share one transaction and one commit, on SQLite and PostgreSQL alike.

A batch is written optimistically, without savepoints (each would cost statements, and round trips on
PostgreSQL): when its transaction fails it rolls back whole, and each of its deliveries is then written again
alone, so one failing delivery fails only itself. What each delivery does is `bot.store.intake.accept`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from bot.store.intake import Cursor, Delivery, accept
from bot.store.types import Accepted

# Bounds one transaction (SQLite writes it on the event loop): larger bursts are written in several.
MAX_BATCH = 64

WriteBatch = Callable[[Sequence[Delivery]], Awaitable[list[Accepted]]]


def write_batch(cur: Cursor, items: Sequence[Delivery]) -> list[Accepted]:
    """Record every delivery of the batch, in order, in the caller's transaction."""
    now = time.time()
    return [accept(cur, item, now) for item in items]


class GroupCommit:
    """Queues deliveries and writes whatever is waiting through `write` (one transaction per batch); a waiter is
    answered once its batch committed."""

    def __init__(self, write: WriteBatch, max_batch: int = MAX_BATCH) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[Delivery, asyncio.Future[Accepted]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def accept(self, item: Delivery) -> Accepted:
        """Record one delivery (with whatever else is waiting); raises what writing it alone raised."""
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:self._max_batch], self._pending[self._max_batch:]
            try:
                await self._write_and_answer(batch)
            finally:  # cancelled (shutdown): no waiter is left hanging
                for _, future in batch:
                    if not future.done():
                        future.set_exception(ConnectionError("intake writer stopped before committing"))

    async def _write_and_answer(self, batch: list[tuple[Delivery, asyncio.Future[Accepted]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - rolled back whole: retried alone below, or raised by its waiter
            if len(batch) == 1:
                _answer(batch[0][1], exc)
                return
            for item, future in batch:
                try:
                    (result,) = await self._write([item])
                except Exception as alone:  # noqa: BLE001 - raised by its waiter, at the web edge
                    _answer(future, alone)
                else:
                    _answer(future, result)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _answer(future, result)


def _answer(future: asyncio.Future[Accepted], result: Accepted | BaseException) -> None:
    if future.done():  # its request went away; the delivery is recorded all the same
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
