"""Where SQLite group commits run: statements on the event loop, COMMIT and WAL checkpoints each in a thread.

A batch's statements are short and run inline on a plain sqlite3 connection (prepared once by sqlite3's cache,
no SQLAlchemy per statement; thread hops would cost more in GIL hand-offs), waiting at most INLINE_BUSY_MS for the
write lock; a busy database sends the whole batch to the store's thread, which waits as long as the other
connections do. The COMMIT (the WAL writes) runs in a thread of its own, the GIL released, while the loop reads
the next requests. That connection never checkpoints as it commits (SQLite's default would, every 1000 pages,
syncing the WAL and the database inside the COMMIT that crossed the mark, and the whole batch would wait for
it): a third thread checkpoints at most every CHECKPOINT_SECONDS instead, alongside the commits (PASSIVE). When
steady writes keep the WAL from ever being wholly copied (so it cannot start over), past WAL_RESTART_FRAMES that
thread waits for a gap between commits and has it start over (RESTART: intake waits that long).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
INLINE_BUSY_MS = 20
CHECKPOINT_SECONDS = 0.25
WAL_RESTART_FRAMES = 16_384  # 64 MiB of 4 KiB pages


class RawWriter:
    """A plain sqlite3 connection (opened on first use) that sqlite3 lets any one thread use at a time."""

    def __init__(self, path: str, pragmas: Sequence[str]) -> None:
        self.path = path
        self.pragmas = tuple(pragmas)
        self.conn: sqlite3.Connection | None = None

    def connection(self) -> sqlite3.Connection:
        """The connection, opened with the pragmas on first use."""
        if self.conn is None:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in self.pragmas:
                self.conn.execute(f"PRAGMA {pragma}")
        return self.conn

    def start(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """BEGIN IMMEDIATE, then `work(conn)`; the transaction stays open for `commit` (ROLLBACK on error)."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            return work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def commit(self) -> None:
        """COMMIT what `start` began (ROLLBACK if that fails)."""
        conn = self.connection()
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(conn)` inside BEGIN IMMEDIATE ... COMMIT."""
        result = self.start(work)
        self.commit()
        return result

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the database as far as readers allow, without blocking writers; when the
        WAL has grown past WAL_RESTART_FRAMES, wait for the writers and make it start over."""
        _, frames, _ = self.connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames > WAL_RESTART_FRAMES:
            self.connection().execute("PRAGMA wal_checkpoint(RESTART)")

    def close(self) -> None:
        """Close the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class SqliteIntake:
    """Runs group commits on one SQLite file (see the module's docstring); `busy` is the store's own thread."""

    def __init__(self, path: str, pragmas: Sequence[str], busy: ThreadPoolExecutor) -> None:
        self._inline = RawWriter(path, (*pragmas, f"busy_timeout={INLINE_BUSY_MS}", "wal_autocheckpoint=0"))
        self._fallback = RawWriter(path, pragmas)
        self._checkpoints = RawWriter(path, pragmas)
        self._busy = busy
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        self._checkpoint_due = 0.0
        self._checkpointing: Future[None] | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(conn)` in one transaction, committed when this returns."""
        loop = asyncio.get_running_loop()
        try:
            result = self._inline.start(work)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return await loop.run_in_executor(self._busy, self._fallback.run, work)
        # Not the store's thread: a job claim waiting there for the write lock must not hold this commit up.
        await loop.run_in_executor(self._committer, self._inline.commit)
        self._checkpoint_soon()
        return result

    def _checkpoint_soon(self) -> None:
        now = time.monotonic()
        if now < self._checkpoint_due or (self._checkpointing is not None and not self._checkpointing.done()):
            return
        self._checkpoint_due = now + CHECKPOINT_SECONDS
        self._checkpointing = self._checkpointer.submit(self._checkpoints.checkpoint)
        self._checkpointing.add_done_callback(_log_failure)

    def close(self) -> None:
        """Finish the commit and checkpoint under way, close the connections (the fallback's in the store's
        thread, which must still be running)."""
        self._committer.shutdown(wait=True)
        self._checkpointer.shutdown(wait=True)
        self._inline.close()
        self._checkpoints.close()
        self._busy.submit(self._fallback.close).result()


def _log_failure(done: Future[None]) -> None:
    """A failed checkpoint loses nothing (the WAL keeps every commit); say so once per failure."""
    if not done.cancelled() and done.exception() is not None:
        log.warning("WAL checkpoint failed (retried later): %s", done.exception())
