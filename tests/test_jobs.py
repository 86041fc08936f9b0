"""Workers: handlers, retries with backoff, dead letters, leases, supersede, shutdown, and worker processes."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.errors import ConfigError, RateLimited, StaleHead
from bot.jobs import WorkerPool, backoff_delay, retry_time
from bot.metrics import Metrics
from bot.registry import AppContext, Registry
from bot.settings import load_settings, to_async_database_url
from bot.store.base import Store
from bot.store.types import Job, JobKind, JobSpec
from tests.helpers_server import (
    HANDLED_DDL,
    bot_settings,
    child_env,
    dumps,
    headers,
    pr_payload,
    running_app,
    start_process,
    stop_process,
)
from tests.waiting import eventually


def review(pr: int = 1, sha: str = "a" * 40) -> JobSpec:
    return JobSpec("review", 42, "octo", "hello", pr, "pull_request.opened", sha)


@pytest.fixture
async def context(store: Store, db_url: str) -> AsyncIterator[AppContext]:
    settings = load_settings(database_url=db_url, job_max_attempts=3, job_lease_seconds=5, shutdown_grace_seconds=1)
    yield AppContext(settings, store, Metrics(), Registry())


def test_backoff_grows_with_jitter_and_honours_retry_at() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, rng) for n in (1, 2, 3, 20)]
    assert 2.5 <= delays[0] <= 5 and 5 <= delays[1] <= 10 and 10 <= delays[2] <= 20 and delays[3] <= 900
    assert retry_time(1, RateLimited("slow down", retry_at=10_000.0), now=0.0) == 10_000.0
    assert retry_time(1, RuntimeError("x"), now=0.0) <= 5


def test_every_stored_job_kind_has_a_handler_and_the_dead_are_reported() -> None:
    from bot.command_jobs import report_dead_job
    from bot.wiring import job_handlers

    registry = job_handlers()
    assert set(registry.handlers) == set(JobKind) - {JobKind.CANCEL}  # `cancel` is applied at intake, never stored
    assert registry.dead_letter_hooks == [report_dead_job]


def test_workers_without_handlers_are_refused(db_url: str) -> None:
    from bot.app import create_app

    settings = load_settings(database_url=db_url)
    with pytest.raises(ValueError, match="workers need handlers"):
        create_app(settings, workers=1)
    create_app(settings, workers=0)  # intake only: nothing is ever claimed


async def test_handler_runs_once_and_completes(context: AppContext) -> None:
    seen: list[Job] = []

    async def handle(job: Job, ctx: AppContext) -> None:
        seen.append(job)

    context.registry.register("review", handle)
    job_id = await context.store.enqueue(review())
    pool = WorkerPool(context, 2, poll_seconds=0.02)
    pool.start()
    await eventually(lambda: _state_is(context.store, job_id, "done"))
    await pool.stop()
    assert [job.id for job in seen] == [job_id] and seen[0].payload["installation_id"] == 42


async def _state_is(store: Store, job_id: int, state: str) -> bool:
    job = await store.get_job(job_id)
    return job is not None and job.state == state


async def test_failures_retry_with_backoff_then_dead_letter(context: AppContext) -> None:
    dead: list[tuple[int, str]] = []

    async def crash(job: Job, ctx: AppContext) -> None:
        raise ValueError(f"boom {job.attempts}")

    async def on_dead(job: Job, reason: str, ctx: AppContext) -> None:
        dead.append((job.id, reason))

    context.registry.register("review", crash)
    context.registry.on_dead_letter(on_dead)
    accepted = await context.store.accept_delivery("d-dead", "pull_request", "opened", [review()])
    job_id = accepted.job_ids[0]
    pool = WorkerPool(context, 1, poll_seconds=0.02)
    for attempt in (1, 2):
        job = await context.store.claim("t", 5)
        assert job is not None
        assert await pool._attempt(job, "t", crash) == "retry"
        saved = await context.store.get_job(job_id)
        assert saved is not None and saved.state == "queued" and saved.run_after > time.time() + 2
        assert f"boom {attempt}" in (saved.last_error or "")
        async with context.store.engine.begin() as conn:  # skip the wait
            await conn.execute(text("UPDATE jobs SET run_after = 0"))
    job = await context.store.claim("t", 5)
    assert job is not None and job.attempts == 3
    await pool.run_job(job, "t")
    assert await _state_is(context.store, job_id, "dead")
    # The hook (which posts to the PR) gets the fixed sentence; the exception text is kept with the job and logged.
    [(dead_id, public)] = dead
    incident = re.fullmatch(r"An internal error occurred\. \(incident `([0-9a-f]{8})`\)", public)
    assert dead_id == job_id and incident is not None
    saved = await context.store.get_job(job_id)
    assert saved is not None and f"[incident {incident.group(1)}] ValueError: boom 3" in (saved.last_error or "")
    assert await context.store.delivery_status("d-dead") == "failed"


async def test_retry_later_is_honoured(context: AppContext) -> None:
    at = time.time() + 3600

    async def limited(job: Job, ctx: AppContext) -> None:
        raise RateLimited("secondary rate limit", retry_at=at)

    context.registry.register("review", limited)
    job_id = await context.store.enqueue(review())
    job = await context.store.claim("t", 5)
    assert job is not None
    await WorkerPool(context, 1).run_job(job, "t")
    saved = await context.store.get_job(job_id)
    assert saved is not None and saved.state == "queued" and saved.run_after >= at


async def test_unknown_kind_and_lost_workers_go_dead(context: AppContext) -> None:
    reasons: list[str] = []

    async def on_dead(job: Job, reason: str, ctx: AppContext) -> None:
        reasons.append(reason)

    context.registry.on_dead_letter(on_dead)
    await context.store.enqueue(JobSpec("mystery", 1, "o", "r", 1, "x"))
    job = await context.store.claim("t", 5)
    assert job is not None
    await WorkerPool(context, 1).run_job(job, "t")
    await context.store.enqueue(review())
    for _ in range(4):  # a worker lost mid-job four times: the claim count exceeds the attempts
        job = await context.store.claim("t", 0.001)
        assert job is not None
        await asyncio.sleep(0.01)
    context.registry.register("review", _never_called)
    await WorkerPool(context, 1).run_job(job, "t")
    assert all(r.startswith("An internal error occurred. (incident `") for r in reasons) and len(reasons) == 2
    kept = [(await context.store.get_job(j.id)) for j in await context.store.list_jobs()]
    errors = " ".join(j.last_error or "" for j in kept if j is not None)
    assert "no handler registered for job kind 'mystery'" in errors and "gave up after 3 attempts" in errors


async def _never_called(job: Job, ctx: AppContext) -> None:
    raise AssertionError("must not run")


async def test_stale_head_is_superseded(context: AppContext) -> None:
    async def stale(job: Job, ctx: AppContext) -> None:
        raise StaleHead("head moved")

    job_id = await context.store.enqueue(review())
    job = await context.store.claim("t", 5)
    assert job is not None
    assert await WorkerPool(context, 1)._attempt(job, "t", stale) == "superseded"
    assert await _state_is(context.store, job_id, "superseded")


async def test_lease_is_renewed_while_working(context: AppContext, db_url: str) -> None:
    lease = 1.5
    settings = load_settings(database_url=db_url, job_lease_seconds=lease)
    runs: list[int] = []
    finish = asyncio.Event()

    async def slow(job: Job, ctx: AppContext) -> None:
        runs.append(job.id)
        await finish.wait()  # runs until the test has seen its first lease run out

    pool = WorkerPool(AppContext(settings, context.store, Metrics(), Registry({"review": slow})), 1, poll_seconds=0.02)
    job_id = await context.store.enqueue(review())
    pool.start()
    await eventually(lambda: _state_is(context.store, job_id, "running"))
    claimed = await context.store.get_job(job_id)
    assert claimed is not None and claimed.lease_expires_at is not None
    await eventually(lambda: _after(claimed.lease_expires_at))
    other_store = Store.from_url(to_async_database_url(db_url))
    thief = await other_store.claim("other", lease)  # past the first lease: only renewal keeps the job ours
    await other_store.close()
    finish.set()
    await eventually(lambda: _state_is(context.store, job_id, "done"))
    await pool.stop()
    assert thief is None and runs == [job_id]


async def _after(moment: float) -> bool:
    return time.time() > moment


async def test_shutdown_finishes_or_releases_within_grace(context: AppContext) -> None:
    cancelled: list[int] = []

    async def slow(job: Job, ctx: AppContext) -> None:
        try:
            if job.pr == 1:
                await pool.stopping.wait()  # the quick one finishes once stop() has begun: inside the grace
            else:
                await asyncio.Event().wait()  # the stuck one only ends if stop() cancels it
        except asyncio.CancelledError:
            cancelled.append(job.pr)
            raise

    context.registry.register("review", slow)
    quick, stuck = await context.store.enqueue(review(1)), await context.store.enqueue(review(2))
    pool = WorkerPool(context, 2, poll_seconds=0.02)
    pool.start()
    await eventually(lambda: _state_is(context.store, quick, "running"))
    await eventually(lambda: _state_is(context.store, stuck, "running"))
    await pool.stop(grace_seconds=2.0)
    assert cancelled == [2]  # cancelled at the end of the grace, not waited for
    assert await _state_is(context.store, quick, "done")
    released = await context.store.get_job(stuck)
    assert released is not None and released.state == "queued" and released.attempts == 0


async def test_three_quick_pushes_end_in_one_run_of_the_last_head(db_url: str, rsa_private_key_pem: str) -> None:
    github_head = {"sha": ""}
    posted: list[str] = []
    pushed = asyncio.Event()

    async def pipeline(job: Job, ctx: AppContext) -> None:
        await pushed.wait()  # the review takes until all three pushes are in ...
        if job.head_sha != github_head["sha"]:  # ... and re-checks the head before posting
            raise StaleHead(f"{job.head_sha} is not the head")
        posted.append(job.head_sha or "")

    settings = bot_settings(db_url, rsa_private_key_pem)
    async with running_app(settings, Registry({"review": pipeline}), workers=2) as (client, context):
        for sha in ("1" * 40, "2" * 40, "3" * 40):
            github_head["sha"] = sha
            body = dumps(pr_payload("synchronize", number=7, sha=sha))
            response = await client.post("/webhook", content=body, headers=headers(body, "pull_request"))
            assert response.status_code == 202
            await asyncio.sleep(0.05)
        pushed.set()

        async def settled() -> bool:
            return all(j.state not in ("queued", "running") for j in await context.store.list_jobs())

        await eventually(settled)
        assert posted == ["3" * 40]
        states = [j.state for j in await context.store.list_jobs()]
        assert states.count("done") == 1 and len(states) == 3


# -- worker processes ---------------------------------------------------------------------------------------------


async def _handled(store: Store) -> list[tuple[int, int]]:
    async with store.engine.begin() as conn:
        return [(int(r[0]), int(r[1])) for r in (await conn.execute(text("SELECT job_id, pid FROM handled")))]


@pytest.fixture
async def handled_table(store: Store) -> Store:
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS handled"))
        await conn.execute(text(HANDLED_DDL))
    return store


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_worker_processes_handle_fifty_prs_exactly_once(
    db_url: str, handled_table: Store, tmp_path: Path
) -> None:
    store = handled_table
    ids = [await store.enqueue(review(pr)) for pr in range(1, 51)]
    env = child_env(DATABASE_URL=db_url, JOB_LEASE_SECONDS="5", DATA_DIR=str(tmp_path))
    procs = [start_process(["-m", "tests.helpers_server", "worker", "--count", "2", "--sleep", "0.2"], env,
                           tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        await eventually(lambda: _count_is(store, 50))
        await asyncio.sleep(0.3)
    finally:
        codes = [stop_process(p) for p in procs]
    handled = await _handled(store)
    assert sorted(job_id for job_id, _ in handled) == ids
    assert len({pid for _, pid in handled}) == 2, "both processes took work"
    assert codes == [0, 0], (tmp_path / "worker0.log").read_text()[-2000:]
    assert await store.count_jobs_by_state() == {"done": 50}


async def _count_is(store: Store, count: int) -> bool:
    return len(await _handled(store)) >= count


@pytest.mark.slow
async def test_worker_killed_mid_job_is_recovered_exactly_once(
    db_url: str, handled_table: Store, tmp_path: Path
) -> None:
    store = handled_table
    job_id = await store.enqueue(review())
    env = child_env(DATABASE_URL=db_url, JOB_LEASE_SECONDS="1", DATA_DIR=str(tmp_path))
    args = ["-m", "tests.helpers_server", "worker", "--count", "1", "--sleep"]
    first = start_process([*args, "inf"], env, tmp_path / "first.log")  # its job never ends: killed mid-job
    try:
        await eventually(lambda: _state_is(store, job_id, "running"))
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        stop_process(first)
    assert await _handled(store) == []
    second = start_process([*args, "0"], env, tmp_path / "second.log")
    try:
        await eventually(lambda: _state_is(store, job_id, "done"))
    finally:
        assert stop_process(second) == 0
    handled = await _handled(store)
    assert [job for job, _ in handled] == [job_id] and handled[0][1] == second.pid
    job = await store.get_job(job_id)
    assert job is not None and job.attempts == 2


async def test_clients_on_the_context_are_closed(context: AppContext) -> None:
    closed: list[str] = []

    class Async:
        async def aclose(self) -> None:
            closed.append("github")
            raise OSError("already gone")  # logged; the model client is still closed

    class Sync:
        async def close(self) -> None:
            closed.append("model")

    context.github, context.model = Async(), Sync()  # type: ignore[assignment]
    await context.aclose()
    assert closed == ["github", "model"]


async def test_a_failed_warm_up_is_logged_and_leaves_the_clients_to_the_first_job(
    store: Store, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(database_url=db_url, github_app_id=1, github_webhook_secret="s",
                             github_app_private_key="-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----")
    context = AppContext(settings, store, Metrics(), Registry())
    with caplog.at_level(logging.WARNING, logger="bot.registry"):
        await context.warm_up()
    assert "warming up the GitHub and Claude clients failed" in caplog.text
    assert "not a PEM private key" in caplog.text and context.github is None
    with pytest.raises(ConfigError):  # the first job meets the same precise error
        context.github_app()
