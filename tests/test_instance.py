"""Instance ids: a restarted worker process releases its previous incarnation's leases, and only those."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.instance import claim_instance
from bot.jobs import start_pool
from bot.metrics import Metrics
from bot.registry import AppContext, Registry
from bot.settings import load_settings
from bot.store.base import Store
from bot.store.types import Job, JobSpec
from tests.helpers_server import HANDLED_DDL, child_env, start_process, stop_process
from tests.waiting import HANG_GUARD_S, eventually

HOUR = 3600.0  # leases far longer than any test: a reclaim can only come from the instance id


def review(pr: int = 1) -> JobSpec:
    return JobSpec("review", 42, "octo", "hello", pr, "pull_request.opened", "a" * 40)


def test_each_live_process_slot_has_its_own_id_and_a_freed_slot_is_reused(tmp_path: Path) -> None:
    first, second = claim_instance(tmp_path, "host"), claim_instance(tmp_path, "host")
    assert first.reusable and second.reusable and first.id != second.id
    assert first.id.startswith("host-") and first.id.endswith("-0") and second.id.endswith("-1")
    first.close()  # what the kernel does when the process dies
    again = claim_instance(tmp_path, "host")
    assert again.id == first.id
    other_dir = claim_instance(tmp_path / "elsewhere", "host")
    assert other_dir.id != first.id  # another deployment on the same host
    for instance in (second, again, other_dir):
        instance.close()


def test_without_a_lockable_directory_the_id_is_one_off(tmp_path: Path) -> None:
    (tmp_path / "instances").write_text("not a directory")
    one, two = claim_instance(tmp_path, "host"), claim_instance(tmp_path, "host")
    assert not one.reusable and not two.reusable and one.id != two.id


async def test_expire_leases_ends_only_that_instances_leases(store: Store) -> None:
    ids = [await store.enqueue(review(pr)) for pr in (1, 2, 3)]
    for owner in ("h_1-0/0", "h_1-0x/0", "hx1-0/0"):  # `_` and a longer id must not match the prefix `h_1-0/`
        assert await store.claim(owner, HOUR) is not None
    assert await store.expire_leases("h_1-0/") == 1
    reclaimed = await store.claim("new/0", HOUR)
    assert reclaimed is not None and reclaimed.id == ids[0] and reclaimed.attempts == 2
    assert await store.claim("new/1", HOUR) is None  # the other instances' leases still hold


async def test_start_pool_reclaims_what_its_previous_incarnation_held(store: Store, db_url: str,
                                                                      tmp_path: Path) -> None:
    settings = load_settings(database_url=db_url, data_dir=tmp_path, job_lease_seconds=HOUR)
    done = asyncio.Event()

    async def handle(job: Job, context: AppContext) -> None:
        done.set()

    registry = Registry()
    registry.register("review", handle)
    context = AppContext(settings, store, Metrics(), registry)
    job_id = await store.enqueue(review())
    crashed = claim_instance(tmp_path)
    assert await store.claim(crashed.id + "/0", HOUR) is not None
    foreign = await store.enqueue(review(pr=2))
    assert await store.claim("another-host-0/0", HOUR) is not None
    crashed.close()
    pool = await start_pool(context, 1, poll_seconds=0.05)
    try:
        assert pool.instance.id == crashed.id
        await asyncio.wait_for(done.wait(), HANG_GUARD_S)  # without the release the lease would hold an hour
    finally:
        await pool.stop()  # the grace lets the worker record the finished job
    assert {j.id: (j.state, j.attempts) for j in await store.list_jobs()} == {job_id: ("done", 2),
                                                                                 foreign: ("running", 1)}


async def _job(store: Store, job_id: int) -> Job:
    job = await store.get_job(job_id)
    assert job is not None
    return job


async def _handled(store: Store) -> list[tuple[int, int]]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT job_id, pid FROM handled ORDER BY job_id"))).all()
    return [(int(job_id), int(pid)) for job_id, pid in rows]


@pytest.mark.slow
async def test_sigkilled_worker_restarts_and_releases_only_its_own_leases(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS handled"))
        await conn.execute(text(HANDLED_DDL))
    stuck = await store.enqueue(review(1))
    env = child_env(DATABASE_URL=db_url, JOB_LEASE_SECONDS=str(HOUR), DATA_DIR=str(tmp_path))
    slow = ["-m", "tests.helpers_server", "worker", "--count", "1", "--sleep", "600"]
    fast = ["-m", "tests.helpers_server", "worker", "--count", "1", "--sleep", "0"]
    first = start_process(slow, env, tmp_path / "first.log")
    neighbour = None
    try:
        await eventually(lambda: _is_running(store, stuck))
        # A second process on the same host and data directory is another instance: it leaves the lease alone.
        neighbour = start_process(fast, env, tmp_path / "neighbour.log")
        probe = await store.enqueue(review(2))
        await eventually(lambda: _is_done(store, probe))
        held = await _job(store, stuck)
        assert held.state == "running" and held.attempts == 1
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        restarted = start_process(fast, env, tmp_path / "restarted.log")
        try:
            await eventually(lambda: _is_done(store, stuck))
        finally:
            assert stop_process(restarted) == 0, (tmp_path / "restarted.log").read_text()[-2000:]
    finally:
        stop_process(first)
        if neighbour is not None:
            assert stop_process(neighbour) == 0, (tmp_path / "neighbour.log").read_text()[-2000:]
    handled = dict(await _handled(store))
    assert set(handled) == {stuck, probe} and handled[stuck] != first.pid
    assert (await _job(store, stuck)).attempts == 2
    assert "released 1 job leases" in (tmp_path / "restarted.log").read_text()


async def _is_running(store: Store, job_id: int) -> bool:
    return (await _job(store, job_id)).state == "running"


async def _is_done(store: Store, job_id: int) -> bool:
    return (await _job(store, job_id)).state == "done"
