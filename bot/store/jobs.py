"""The store's job queue: coalescing enqueue, leased claims, renew/complete/retry/release/bury (mixed into Store)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.engine import Connection

from bot.store.intake import SqlCursor, cancel, enqueue, supersede
from bot.store.tables import deliveries, jobs
from bot.store.types import Job, JobKind, JobSpec, JobState

T = TypeVar("T")
_JOB_FIELDS = tuple(Job.__dataclass_fields__)
INTEGRITY_RETRIES = 5  # re-runs of a transaction that lost the coalescing index race


def _row_to_job(row: Any) -> Job:
    mapping = row._mapping
    return Job(**{name: mapping[name] for name in _JOB_FIELDS})


class JobsMixin:
    """Job queue operations; `Store` provides `_run` (one transaction per call)."""

    async def _run(self, work: Callable[[Connection], T], retries: int = 1) -> T:
        raise NotImplementedError  # provided by Store

    async def enqueue(self, spec: JobSpec, delivery_id: str | None = None) -> int:
        """Queue a job (coalescing reviews: a newer head supersedes the queued one); returns the job id."""
        return await self._run(lambda conn: enqueue(SqlCursor(conn), spec, delivery_id, time.time()),
                               retries=INTEGRITY_RETRIES)

    async def claim(self, owner: str, lease_seconds: float, kinds: Sequence[str] | None = None) -> Job | None:
        """Lease the next runnable job (or one whose lease expired) to `owner`; None when there is none."""
        now = time.time()
        cand, running = jobs.alias("cand"), jobs.alias("running")
        review_busy = exists().where(
            running.c.key == cand.c.key,
            running.c.kind == JobKind.REVIEW,
            running.c.state == JobState.RUNNING,
            running.c.lease_expires_at >= now,
            running.c.id != cand.c.id,
        )
        runnable = or_(
            and_(cand.c.state == JobState.QUEUED, cand.c.run_after <= now),
            and_(cand.c.state == JobState.RUNNING, cand.c.lease_expires_at < now),
        )
        condition = and_(runnable, or_(cand.c.kind != JobKind.REVIEW, ~review_busy))
        if kinds is not None:
            condition = and_(condition, cand.c.kind.in_(list(kinds)))
        pick = (
            select(cand.c.id)
            .where(condition)
            .order_by(cand.c.run_after, cand.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = (
            update(jobs)
            .where(jobs.c.id == pick)
            .values(
                state=JobState.RUNNING,
                lease_owner=owner,
                lease_expires_at=now + lease_seconds,
                attempts=jobs.c.attempts + 1,
                started_at=now,
                updated_at=now,
            )
            .returning(*jobs.c)
        )
        row = await self._run(lambda conn: conn.execute(stmt).first())
        return _row_to_job(row) if row is not None else None

    async def expire_leases(self, owner_prefix: str) -> int:
        """End the leases of every running job whose owner starts with `owner_prefix` (a dead incarnation's
        workers): those jobs are claimable at once, this attempt counted. Returns how many."""
        now = time.time()
        stmt = (
            update(jobs)
            .where(jobs.c.state == JobState.RUNNING, jobs.c.lease_owner.startswith(owner_prefix, autoescape=True))
            .values(lease_expires_at=0.0, updated_at=now)
        )
        return await self._run(lambda conn: int(conn.execute(stmt).rowcount))

    def _owned(self, job_id: int, owner: str) -> Any:
        return and_(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.state == JobState.RUNNING)

    async def _update_owned(self, job_id: int, owner: str, values: dict[str, Any]) -> bool:
        stmt = update(jobs).where(self._owned(job_id, owner)).values(**values)
        return await self._run(lambda conn: conn.execute(stmt).rowcount == 1)

    async def renew(self, job_id: int, owner: str, lease_seconds: float) -> bool:
        """Extend the lease; False when the job is no longer this owner's (lease expired and re-claimed)."""
        return await self._update_owned(job_id, owner, {"lease_expires_at": time.time() + lease_seconds})

    async def complete(self, job_id: int, owner: str, state: JobState = JobState.DONE) -> bool:
        """Finish a running job (done, superseded or cancelled); False when the lease was lost."""
        now = time.time()
        values = {"state": state, "finished_at": now, "updated_at": now, "lease_owner": None, "lease_expires_at": None}
        return await self._update_owned(job_id, owner, values)

    async def retry(self, job_id: int, owner: str, error: str, run_after: float) -> bool:
        """Put a failed attempt back in the queue for `run_after`; superseded instead if a newer review is queued."""
        values = {"last_error": error[:4000], "run_after": run_after}
        return await self._run(lambda conn: self._requeue(conn, job_id, owner, values))

    async def release(self, job_id: int, owner: str) -> bool:
        """Give a job back untouched (shutdown): queued again, this attempt not counted."""
        values = {"attempts": jobs.c.attempts - 1}
        return await self._run(lambda conn: self._requeue(conn, job_id, owner, values))

    def _requeue(self, conn: Connection, job_id: int, owner: str, values: dict[str, Any]) -> bool:
        now = time.time()
        row = conn.execute(select(jobs.c.kind, jobs.c.key).where(self._owned(job_id, owner))).first()
        if row is None:
            return False
        if row.kind == JobKind.REVIEW:
            newer = select(jobs.c.id).where(
                jobs.c.key == row.key, jobs.c.kind == JobKind.REVIEW, jobs.c.state == JobState.QUEUED
            )
            if conn.execute(newer).first() is not None:
                supersede(SqlCursor(conn), job_id, now)
                return True
        stmt = update(jobs).where(self._owned(job_id, owner))
        stmt = stmt.values(state=JobState.QUEUED, lease_owner=None, lease_expires_at=None, updated_at=now, **values)
        return bool(conn.execute(stmt).rowcount == 1)

    async def bury(self, job_id: int, owner: str, error: str) -> bool:
        """Move a job to the dead state (out of attempts); its delivery is marked failed so a redelivery re-runs."""
        return await self._run(lambda conn: self._bury(conn, job_id, owner, error))

    def _bury(self, conn: Connection, job_id: int, owner: str, error: str) -> bool:
        now = time.time()
        row = conn.execute(select(jobs.c.delivery_id).where(self._owned(job_id, owner))).first()
        if row is None:
            return False
        values = {"state": JobState.DEAD, "last_error": error[:4000], "finished_at": now, "updated_at": now}
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(lease_owner=None, lease_expires_at=None, **values))
        if row.delivery_id is not None:
            conn.execute(update(deliveries).where(deliveries.c.id == row.delivery_id).values(status="failed"))
        return True

    async def cancel_for_pr(self, key: str) -> int:
        """Cancel every queued job of a pull request (`owner/repo#n`); returns how many."""
        return await self._run(lambda conn: cancel(SqlCursor(conn), key, time.time()))

    async def get_job(self, job_id: int) -> Job | None:
        """One job by id."""
        row = await self._run(lambda conn: conn.execute(select(jobs).where(jobs.c.id == job_id)).first())
        return _row_to_job(row) if row is not None else None

    async def list_jobs(self, key: str | None = None, states: Sequence[str] | None = None) -> list[Job]:
        """Jobs in id order, optionally for one PR key and/or some states."""
        query = select(jobs).order_by(jobs.c.id)
        if key is not None:
            query = query.where(jobs.c.key == key)
        if states is not None:
            query = query.where(jobs.c.state.in_(list(states)))
        rows = await self._run(lambda conn: conn.execute(query).all())
        return [_row_to_job(row) for row in rows]

    async def count_jobs_by_state(self) -> dict[str, int]:
        """How many jobs are in each state (for /metrics)."""
        query = select(jobs.c.state, func.count()).group_by(jobs.c.state)
        rows = await self._run(lambda conn: conn.execute(query).all())
        return {str(state): int(count) for state, count in rows}
