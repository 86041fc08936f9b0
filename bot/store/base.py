"""The durable store: engine set-up (SQLite WAL or PostgreSQL), migrations, the transaction runner, deliveries.

The job queue lives in `bot.store.jobs`, review memory in `bot.store.records`; `Store` combines them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.errors import BotError
from bot.settings import Settings
from bot.store.dismissals import DismissalsMixin
from bot.store.group_commit import GroupCommit, write_batch
from bot.store.intake import Delivery, SqlCursor
from bot.store.jobs import INTEGRITY_RETRIES, JobsMixin
from bot.store.operator import OperatorMixin
from bot.store.reconcile import ReconcileMixin
from bot.store.records import RecordsMixin
from bot.store.retention import RetentionMixin
from bot.store.spend import SpendMixin
from bot.store.sqlite_intake import SqliteIntake
from bot.store.tables import deliveries
from bot.store.types import Accepted, JobSpec

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x5E_1102_0001
SQLITE_PRAGMAS = ("journal_mode=WAL", "busy_timeout=15000", "synchronous=NORMAL")
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin at every start
T = TypeVar("T")


def make_engine(url: str) -> AsyncEngine:
    """An async engine for an async URL; SQLite gets WAL, a busy timeout, one connection and BEGIN IMMEDIATE."""
    if not url.startswith("sqlite"):
        return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # One connection per engine: SQLite has one writer anyway, and the pool queues without busy-waiting.
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
    _sqlite_setup(engine.sync_engine)
    return engine


def make_sqlite_sync_engine(async_url: str) -> Engine:
    """A plain pysqlite engine on the same file, used from one dedicated thread (one hop per transaction)."""
    url = make_url(async_url).set(drivername="sqlite")
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
    _sqlite_setup(engine)
    return engine


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Take the write lock up front: a deferred transaction that upgrades later can fail with SQLITE_BUSY.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection) -> None:
    from alembic import command

    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _script_heads() -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(_alembic_config()).get_heads())


def _current_heads(connection: Connection) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    return set(MigrationContext.configure(connection).get_current_heads())


class Store(JobsMixin, RecordsMixin, DismissalsMixin, ReconcileMixin, OperatorMixin, SpendMixin, RetentionMixin):
    """Typed async access to deliveries, jobs, reviews, findings, PR state and the command log."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._heads: set[str] | None = None
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._intake = GroupCommit(self._write_deliveries)  # the one intake path, both databases
        if self.dialect == "sqlite":
            self._sync = make_sqlite_sync_engine(str(engine.url.render_as_string(hide_password=False)))
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
            path = self._sync.url.database or ""
            self._sqlite_intake = SqliteIntake(path, SQLITE_PRAGMAS, self._thread)

    async def _run(self, work: Callable[[Connection], T], retries: int = 1) -> T:
        """Run `work(conn)` in one transaction: on SQLite in the store's thread, on PostgreSQL via asyncpg.

        IntegrityError (a concurrent enqueue won the coalescing index) re-runs the transaction up to `retries`.
        """
        for attempt in range(retries):
            try:
                if self._sync is not None and self._thread is not None:
                    return await asyncio.get_running_loop().run_in_executor(self._thread, self._in_sqlite, work)
                async with self.engine.begin() as conn:
                    return await conn.run_sync(work)
            except IntegrityError:
                if attempt == retries - 1:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _in_sqlite(self, work: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.begin() as conn:
            return work(conn)

    @classmethod
    def from_url(cls, async_url: str) -> Store:
        """A store on an async SQLAlchemy URL (`sqlite+aiosqlite:///...` or `postgresql+asyncpg://...`)."""
        return cls(make_engine(async_url))

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """A store on settings.async_database_url."""
        return cls.from_url(settings.async_database_url)

    async def close(self) -> None:
        """Dispose of the connection pools (and the SQLite thread)."""
        if self._sync is not None and self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._sync.dispose)
            await asyncio.get_running_loop().run_in_executor(None, self._sqlite_intake.close)
            self._thread.shutdown(wait=True)
        await self.engine.dispose()

    async def migrate(self) -> None:
        """Apply every pending migration (serialised across processes on PostgreSQL)."""
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade)

    async def migrations_current(self) -> bool:
        """True when the database is at the latest migration."""
        if self._heads is None:
            self._heads = _script_heads()
        async with self.engine.connect() as conn:
            current = await conn.run_sync(_current_heads)
        return current == self._heads

    # -- deliveries ---------------------------------------------------------------------------------------

    async def accept_delivery(
        self, delivery_id: str, event_name: str, action: str | None, specs: Sequence[JobSpec],
        body_sha256: str | None = None,
    ) -> Accepted:
        """Record a delivery and its jobs in one transaction; a duplicate of a processed delivery, or a replay of
        a body accepted under another id in the last 7 days, does nothing."""
        return await self._intake.accept(Delivery(delivery_id, event_name, action, tuple(specs), body_sha256))

    async def _write_deliveries(self, items: Sequence[Delivery]) -> list[Accepted]:
        """One group commit: the batch in one transaction, on a plain sqlite3 connection or through SQLAlchemy."""
        if self._sync is not None:
            return await self._sqlite_intake.run(lambda conn: write_batch(conn.cursor(), items))
        return await self._run(lambda conn: write_batch(SqlCursor(conn), items), retries=INTEGRITY_RETRIES)

    async def delivery_status(self, delivery_id: str) -> str | None:
        """`processed`, `failed`, or None when never recorded."""
        query = select(deliveries.c.status).where(deliveries.c.id == delivery_id)
        return await self._run(lambda conn: conn.execute(query).scalar_one_or_none())



def migrate_sync(settings: Settings) -> None:
    """Apply migrations to settings' database and return (for `python -m bot migrate`); BotError if unreachable."""

    async def run() -> None:
        store = Store.from_settings(settings)
        try:
            await store.migrate()
        finally:
            await store.close()

    try:
        asyncio.run(run())
    except (SQLAlchemyError, OSError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise BotError(f"cannot migrate the database: {detail}") from None
