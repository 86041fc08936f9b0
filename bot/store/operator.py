"""The store's operator queries (mixed into Store): what `python -m bot status` shows and `retry` changes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from bot.store.tables import deliveries, jobs, reviews
from bot.store.types import JobKind, JobState

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DeadJob:
    """A job that ran out of attempts, as the operator sees it."""

    id: int
    kind: str
    key: str
    head_sha: str | None
    attempts: int
    finished_at: float | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Requeued:
    """What `retry` did: `ok`, or why not (`unknown`, `not dead`, or a newer review already queued)."""

    ok: bool
    reason: str = ""


class OperatorMixin:
    """Queue and spend summaries, and requeueing a dead job; `Store` provides `_run`."""

    async def _run(self, work: Callable[[Connection], T], retries: int = 1) -> T:
        raise NotImplementedError  # provided by Store

    async def oldest_queued_at(self) -> float | None:
        """When the oldest queued job was created (None when nothing is queued)."""
        query = select(func.min(jobs.c.created_at)).where(jobs.c.state == JobState.QUEUED)
        value = await self._run(lambda conn: conn.execute(query).scalar_one_or_none())
        return float(value) if value is not None else None

    async def dead_jobs(self, limit: int = 50) -> list[DeadJob]:
        """The most recent dead jobs, newest first."""
        query = (
            select(jobs.c.id, jobs.c.kind, jobs.c.key, jobs.c.head_sha, jobs.c.attempts, jobs.c.finished_at,
                   jobs.c.last_error)
            .where(jobs.c.state == JobState.DEAD)
            .order_by(jobs.c.id.desc())
            .limit(limit)
        )
        rows = await self._run(lambda conn: conn.execute(query).all())
        return [DeadJob(*row) for row in rows]

    async def spend_by_owner(self, since: float) -> dict[str, float]:
        """USD recorded per repository owner (one installation) at or after `since`."""
        query = (
            select(reviews.c.repo, func.sum(reviews.c.cost_usd))
            .where(reviews.c.created_at >= since)
            .group_by(reviews.c.repo)
        )
        rows = await self._run(lambda conn: conn.execute(query).all())
        spend: dict[str, float] = {}
        for repo, cost in rows:
            owner = str(repo).split("/", 1)[0]
            spend[owner] = spend.get(owner, 0.0) + float(cost or 0.0)
        return spend

    async def requeue_dead(self, job_id: int) -> Requeued:
        """Queue a dead job again with fresh attempts (its delivery marked processed, so a redelivery of it
        stays a duplicate); refused when a review of the same pull request is already queued."""
        return await self._run(lambda conn: self._requeue_dead(conn, job_id, time.time()))

    def _requeue_dead(self, conn: Connection, job_id: int, now: float) -> Requeued:
        row = conn.execute(select(jobs.c.state, jobs.c.kind, jobs.c.key, jobs.c.delivery_id)
                           .where(jobs.c.id == job_id)).first()
        if row is None:
            return Requeued(False, f"no job {job_id}")
        if row.state != JobState.DEAD:
            return Requeued(False, f"job {job_id} is {row.state}, not dead")
        if row.kind == JobKind.REVIEW:
            queued = conn.execute(select(jobs.c.id).where(
                jobs.c.key == row.key, jobs.c.kind == JobKind.REVIEW, jobs.c.state == JobState.QUEUED)).first()
            if queued is not None:
                return Requeued(False, f"review job {queued.id} of {row.key} is already queued")
        conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == JobState.DEAD).values(
            state=JobState.QUEUED, attempts=0, run_after=now, finished_at=None, lease_owner=None,
            lease_expires_at=None, updated_at=now,
        ))
        if row.delivery_id is not None:
            conn.execute(update(deliveries).where(deliveries.c.id == row.delivery_id).values(status="processed"))
        return Requeued(True)
