"""The store's reconciliation and operator queries on SQLite and PostgreSQL: leases held by one instance at a
time, scan progress that survives a restart, bounded redelivery requests, and what `status` / `retry` read."""

from __future__ import annotations

import asyncio
import time

from bot.settings import to_async_database_url
from bot.store.base import Store
from bot.store.types import JobSpec, JobState, ReviewRecord


def review(pr: int = 1, sha: str = "a" * 40, owner: str = "octo") -> JobSpec:
    return JobSpec(kind="review", installation_id=7, owner=owner, repo="hello", pr=pr,
                   trigger="pull_request.opened", head_sha=sha)


async def test_one_owner_holds_a_task_until_it_finishes_or_its_lease_lapses(store: Store) -> None:
    assert await store.acquire_task("redeliver", "a", 30)
    assert not await store.acquire_task("redeliver", "b", 30)
    assert await store.acquire_task("redeliver", "a", 30)  # the holder may take it again
    assert await store.acquire_task("catch_up", "b", 30)  # tasks are independent
    assert await store.finish_task("redeliver", "a", "done")
    assert not await store.finish_task("redeliver", "a", "again")  # no longer held
    assert await store.acquire_task("redeliver", "b", 0.01)
    await asyncio.sleep(0.05)
    assert await store.acquire_task("redeliver", "a", 30)  # b's lease lapsed
    assert not await store.save_progress("redeliver", "b", 30, cursor="x")  # b lost it: no write


async def test_concurrent_instances_one_lease(db_url: str) -> None:
    stores = [Store.from_url(to_async_database_url(db_url)) for _ in range(4)]
    try:
        taken = await asyncio.gather(*(s.acquire_task("redeliver", f"owner-{i}", 30) for i, s in enumerate(stores)))
        assert sum(taken) == 1
        state = await stores[0].task_state("redeliver")
        assert state.lease_owner == f"owner-{taken.index(True)}"
    finally:
        for s in stores:
            await s.close()


async def test_a_task_is_due_only_after_its_interval(store: Store) -> None:
    now = time.time()
    assert await store.acquire_task("catch_up", "a", 30, finished_before=now)  # never ran: due
    assert await store.finish_task("catch_up", "a", "ok")
    assert not await store.acquire_task("catch_up", "b", 30, finished_before=now - 60)  # finished just now
    assert await store.acquire_task("catch_up", "b", 30, finished_before=time.time() + 1)
    assert await store.acquire_task("catch_up", "b", 30)  # forced (no due check)


async def test_progress_survives_until_the_scan_completes(store: Store) -> None:
    assert await store.acquire_task("redeliver", "a", 30)
    assert await store.save_progress("redeliver", "a", 30, cursor="v1_90", top="120")
    assert await store.finish_task("redeliver", "a", "stopped", completed=False)
    state = await store.task_state("redeliver")
    assert (state.scan_cursor, state.scan_top, state.checkpoint, state.lease_owner) == ("v1_90", "120", None, None)
    assert state.last_summary == "stopped" and state.last_finished_at is not None
    assert await store.acquire_task("redeliver", "b", 30)
    assert await store.finish_task("redeliver", "b", "complete", checkpoint="120")
    state = await store.task_state("redeliver")
    assert (state.scan_cursor, state.scan_top, state.checkpoint) == (None, None, "120")
    assert (await store.task_state("never")).last_finished_at is None


async def test_redelivery_requests_are_spaced_and_bounded_per_guid(store: Store) -> None:
    def note(guid: str, at: float, gap: float = 100, cap: int = 3) -> object:
        return store.note_redelivery(guid, 10, cap, now=at, asked_before=at - gap)

    assert await note("g-1", 1000) == "asked"
    assert await note("g-1", 1050) == "waiting"  # asked 50 s ago
    assert await note("g-1", 1100) == "asked"
    assert await note("g-1", 1300) == "asked"
    assert await note("g-1", 2000) == "exhausted"
    assert await store.redelivery_attempts("g-1") == 3
    assert await note("g-2", 0, cap=1) == "asked"
    assert await note("g-2", 500, cap=1) == "exhausted"
    assert await store.redelivery_attempts("unknown") == 0


async def test_reviewed_at_and_review_pending(store: Store) -> None:
    assert not await store.reviewed_at("octo/hello", 1, "a" * 40)
    await store.record_review(ReviewRecord(repo="octo/hello", pr=1, head_sha="a" * 40, trigger="auto:b"))
    assert await store.reviewed_at("octo/hello", 1, "a" * 40)
    assert not await store.reviewed_at("octo/hello", 1, "c" * 40)
    await store.set_last_reviewed_sha("octo/hello", 2, "d" * 40)
    assert await store.reviewed_at("octo/hello", 2, "d" * 40)
    assert not await store.review_pending("octo/hello#3")
    accepted = await store.accept_delivery("d-3", "pull_request", "opened", [review(pr=3)])
    assert await store.review_pending("octo/hello#3")
    job = await store.claim("w", 30)
    assert job is not None and job.id == accepted.job_ids[0]
    assert await store.review_pending("octo/hello#3")  # running counts too
    assert await store.complete(job.id, "w")
    assert not await store.review_pending("octo/hello#3")


async def test_operator_summaries(store: Store) -> None:
    assert await store.oldest_queued_at() is None and await store.dead_jobs() == []
    before = time.time()
    await store.accept_delivery("d-1", "pull_request", "opened", [review(pr=1)])
    await store.accept_delivery("d-2", "pull_request", "opened", [review(pr=2)])
    oldest = await store.oldest_queued_at()
    assert oldest is not None and before - 1 <= oldest <= time.time()
    job = await store.claim("w", 30)
    assert job is not None
    assert await store.bury(job.id, "w", "GitHubUnavailable: incident 7f3a9c: GitHub unavailable")
    [dead] = await store.dead_jobs()
    assert (dead.id, dead.key, dead.attempts, dead.head_sha) == (job.id, job.key, 1, "a" * 40)
    assert dead.last_error is not None and "7f3a9c" in dead.last_error
    await store.record_review(ReviewRecord(repo="octo/hello", pr=1, head_sha="a", trigger="t", cost_usd=0.25))
    await store.record_review(ReviewRecord(repo="octo/world", pr=1, head_sha="a", trigger="t", cost_usd=0.5))
    await store.record_review(ReviewRecord(repo="acme/x", pr=1, head_sha="a", trigger="t", cost_usd=1.0,
                                           created_at=before - 86_400 * 2))
    spend = await store.spend_by_owner(before - 1)
    assert spend == {"octo": 0.75}


async def test_requeue_dead_job(store: Store) -> None:
    await store.accept_delivery("d-1", "pull_request", "opened", [review(pr=1)])
    job = await store.claim("w", 30)
    assert job is not None
    assert not (await store.requeue_dead(job.id)).ok  # running, not dead
    assert await store.bury(job.id, "w", "boom")
    assert await store.delivery_status("d-1") == "failed"
    assert (await store.requeue_dead(999_999)).reason == "no job 999999"
    result = await store.requeue_dead(job.id)
    assert result.ok, result.reason
    again = await store.get_job(job.id)
    assert again is not None and (again.state, again.attempts) == (JobState.QUEUED, 0)
    assert await store.delivery_status("d-1") == "processed"  # a redelivery of it stays a duplicate
    assert (await store.accept_delivery("d-1", "pull_request", "opened", [review(pr=1)])).duplicate
    assert "not dead" in (await store.requeue_dead(job.id)).reason
    claimed = await store.claim("w2", 30)
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 1


async def test_requeue_refused_when_a_newer_review_is_queued(store: Store) -> None:
    await store.accept_delivery("d-1", "pull_request", "opened", [review(pr=1)])
    job = await store.claim("w", 30)
    assert job is not None and await store.bury(job.id, "w", "boom")
    newer = await store.accept_delivery("d-2", "pull_request", "synchronize", [review(pr=1, sha="b" * 40)])
    result = await store.requeue_dead(job.id)
    assert not result.ok and f"review job {newer.job_ids[0]}" in result.reason
    assert (await store.get_job(job.id)).state == JobState.DEAD  # type: ignore[union-attr]
