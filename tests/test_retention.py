"""Retention: old rows pruned in small batches by the workers, on SQLite and PostgreSQL; the schema the migrations
build (indexes included) is exactly the tables' metadata."""

from __future__ import annotations

import time
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from bot.jobs import WorkerPool
from bot.metrics import Metrics
from bot.registry import AppContext, Registry
from bot.settings import load_settings
from bot.store.base import Store
from bot.store.spend import SpendRecord
from bot.store.tables import command_log, deliveries, findings, jobs, metadata, pr_state
from bot.store.types import FindingRecord, JobSpec, JobState

DAY = 86_400.0


async def test_migrations_build_exactly_the_tables_metadata(store: Store) -> None:
    def ours(name: str | None, type_: str, parent: Any) -> bool:
        return type_ != "table" or name in metadata.tables  # other tests add tables of their own (test_jobs)

    def diff(conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"include_name": ours}), metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def _seed(store: Store, now: float) -> dict[str, int]:
    old, new = now - 40 * DAY, now - 1 * DAY
    ids: dict[str, int] = {}
    for name, at in (("old", old), ("new", new)):
        await store.record_spend(SpendRecord("octo", "octo/repo", 1, "alice", "m", 0.1, at=at))
        await store.log_command("octo/repo", 1, "maint", "review", at=at)
        for i in range(3):
            await store.accept_delivery(f"d-{name}-{i}", "ping", None, [])
        job = await store.enqueue(JobSpec("review", 1, "octo", "repo", 7 if name == "old" else 8, "x", "a" * 40))
        ids[name] = job
        async with store.engine.begin() as conn:
            await conn.execute(deliveries.update().where(deliveries.c.id.like(f"d-{name}-%")).values(received_at=at))
            await conn.execute(jobs.update().where(jobs.c.id == job).values(state=JobState.DONE, finished_at=at))
    queued = await store.enqueue(JobSpec("review", 1, "octo", "repo", 9, "x", "b" * 40))
    async with store.engine.begin() as conn:  # a queued job is never pruned, however old
        await conn.execute(jobs.update().where(jobs.c.id == queued).values(created_at=old))
    ids["queued"] = queued
    for pr, closed_at in ((1, now - 100 * DAY), (2, now - 10 * DAY), (3, None)):
        await store.upsert_findings([FindingRecord(repo="octo/repo", pr=pr, fingerprint=f"f{pr}-{i}", path="a.py",
                                                   line=i, state="open", first_seen_sha="a" * 40,
                                                   last_seen_sha="a" * 40) for i in range(5)])
        await store.set_closed("octo/repo", pr, closed_at)
    return ids


async def test_prune_deletes_only_what_is_old_in_small_batches(store: Store) -> None:
    now = time.time()
    ids = await _seed(store, now)
    rounds = []
    while True:
        pruned = await store.prune_batch(now - 30 * DAY, now - 90 * DAY, batch=2)
        if pruned.total == 0:
            break
        assert max(pruned.deliveries, pruned.jobs, pruned.commands, pruned.spend, pruned.findings) <= 2
        rounds.append(pruned)
    assert len(rounds) >= 3  # 5 findings of the long-closed PR took three batches
    assert sum(r.deliveries for r in rounds) == 3 and sum(r.findings for r in rounds) == 5
    async with store.engine.connect() as conn:
        left = {row.id for row in await conn.execute(select(deliveries.c.id))}
        job_ids = {row.id for row in await conn.execute(select(jobs.c.id))}
        commands = (await conn.execute(select(command_log.c.at))).all()
        prs = {row.pr for row in await conn.execute(select(findings.c.pr))}
        states = {row.pr for row in await conn.execute(select(pr_state.c.pr))}
    assert left == {f"d-new-{i}" for i in range(3)}
    assert job_ids == {ids["new"], ids["queued"]}
    assert len(commands) == 1 and commands[0].at > now - 30 * DAY
    assert [r.at > now - 30 * DAY for r in await store.spend_rows()] == [True]
    assert prs == {2, 3} and states == {2, 3}  # the PR closed 100 days ago is forgotten


async def test_idle_workers_prune_when_due(db_url: str) -> None:
    settings = load_settings(database_url=db_url, retention_days=30)
    store = Store.from_settings(settings)
    try:
        now = time.time()
        await _seed(store, now)
        pool = WorkerPool(AppContext(settings, store, Metrics(), Registry()), 1)
        assert await pool.prune_if_due(now) > 0
        await store.record_spend(SpendRecord("octo", "octo/repo", 1, "alice", "m", 0.1, at=now - 50 * DAY))
        assert await pool.prune_if_due(now + 60) == 0  # not due yet: at most once per interval
        assert await pool.prune_if_due(now + 601) == 1
    finally:
        await store.close()


