"""Database fixtures: a migrated SQLite file per test, and a private PostgreSQL database per test session."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.settings import to_async_database_url
from bot.store.base import Store
from bot.store.tables import metadata

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(to_async_database_url(url).replace("postgresql+asyncpg", "postgresql"), timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _migrate(async_url: str) -> None:
    store = Store.from_url(async_url)
    try:
        await store.migrate()
    finally:
        await store.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A plain `postgresql://` URL of a fresh, migrated database private to this session (dropped after)."""
    base = os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    name = f"bot_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to reach the server (refused, auth, timeout)
        reason = f"PostgreSQL not reachable at {base}: {exc.__class__.__name__}: {exc}"
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(reason + " (REQUIRE_POSTGRES is set)")
        pytest.skip(reason)
    url = _with_database(base, name)
    asyncio.run(_migrate(to_async_database_url(url)))
    yield url
    asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once per session keeps tests fast)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


async def _truncate(async_url: str) -> None:
    store = Store.from_url(async_url)
    try:
        async with store.engine.begin() as conn:
            names = ", ".join(table.name for table in metadata.sorted_tables)
            await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A plain DATABASE_URL of an empty, migrated database: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "bot.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_truncate(to_async_database_url(url)))
    return url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """An open Store on `db_url` (both backends)."""
    opened = Store.from_url(to_async_database_url(db_url))
    yield opened
    await opened.close()
