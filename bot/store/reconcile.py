"""The store's side of reconciliation with GitHub (mixed into Store): task leases, scan progress, redelivery
requests, and what the catch-up asks before enqueueing (reviewed at this head? a review job pending?).

A task ("redeliver", "catch_up") runs on one instance at a time: its row's lease is taken with one conditional
UPDATE (atomic on SQLite and on PostgreSQL, where the losing UPDATE re-reads the row and finds it taken).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection

from bot.store.tables import jobs, pr_state, reconcile_state, redelivery_requests, reviews
from bot.store.types import ACTIVE_STATES, JobKind

T = TypeVar("T")
_STATE_FIELDS = ("name", "lease_owner", "lease_expires_at", "checkpoint", "scan_cursor", "scan_top",
                 "last_started_at", "last_finished_at", "last_summary")


@dataclass(frozen=True, slots=True)
class TaskState:
    """One reconciliation task's row: who holds it, where its scan is, how its last run went."""

    name: str
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    checkpoint: str | None = None
    scan_cursor: str | None = None
    scan_top: str | None = None
    last_started_at: float | None = None
    last_finished_at: float | None = None
    last_summary: str | None = None


class ReconcileMixin:
    """Leases and progress of reconciliation tasks; `Store` provides `_run` and `dialect`."""

    dialect: str

    async def _run(self, work: Callable[[Connection], T], retries: int = 1) -> T:
        raise NotImplementedError  # provided by Store

    def _dialect_insert(self, table: Any) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # -- leases -----------------------------------------------------------------------------------------

    async def acquire_task(self, name: str, owner: str, ttl: float, *, finished_before: float | None = None) -> bool:
        """Take the task's lease for `ttl` seconds unless another owner holds a live one; with `finished_before`,
        only when the last run finished before that time (the task is due). True when taken."""
        now = time.time()
        ensure = self._dialect_insert(reconcile_state).values(name=name, updated_at=now)
        ensure = ensure.on_conflict_do_nothing(index_elements=["name"])
        free = or_(reconcile_state.c.lease_owner.is_(None), reconcile_state.c.lease_expires_at < now,
                   reconcile_state.c.lease_owner == owner)
        condition = and_(reconcile_state.c.name == name, free)
        if finished_before is not None:
            condition = and_(condition, or_(reconcile_state.c.last_finished_at.is_(None),
                                            reconcile_state.c.last_finished_at < finished_before))
        take = update(reconcile_state).where(condition).values(
            lease_owner=owner, lease_expires_at=now + ttl, last_started_at=now, updated_at=now
        )

        def work(conn: Connection) -> bool:
            conn.execute(ensure)
            return bool(conn.execute(take).rowcount == 1)

        return await self._run(work)

    def _held(self, name: str, owner: str) -> Any:
        return and_(reconcile_state.c.name == name, reconcile_state.c.lease_owner == owner)

    async def save_progress(self, name: str, owner: str, ttl: float, *, cursor: str | None = None,
                            top: str | None = None) -> bool:
        """Record a scan's next page and newest id, extending the lease; False when the lease was lost."""
        now = time.time()
        stmt = update(reconcile_state).where(self._held(name, owner)).values(
            scan_cursor=cursor, scan_top=top, lease_expires_at=now + ttl, updated_at=now
        )
        return await self._run(lambda conn: bool(conn.execute(stmt).rowcount == 1))

    async def finish_task(self, name: str, owner: str, summary: str, *, checkpoint: str | None = None,
                          completed: bool = True) -> bool:
        """Release the lease and record the run; a completed scan clears its cursor (and moves the checkpoint)."""
        now = time.time()
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "last_finished_at": now,
                                  "last_summary": summary[:4000], "updated_at": now}
        if completed:
            values.update(scan_cursor=None, scan_top=None)
        if checkpoint is not None:
            values["checkpoint"] = checkpoint
        stmt = update(reconcile_state).where(self._held(name, owner)).values(**values)
        return await self._run(lambda conn: bool(conn.execute(stmt).rowcount == 1))

    async def release_task(self, name: str, owner: str) -> None:
        """Give the lease back without recording a run (a failure: the next run resumes from the cursor)."""
        stmt = update(reconcile_state).where(self._held(name, owner)).values(
            lease_owner=None, lease_expires_at=None, updated_at=time.time()
        )
        await self._run(lambda conn: conn.execute(stmt))

    async def task_states(self) -> list[TaskState]:
        """Every task's row, by name."""
        query = select(reconcile_state).order_by(reconcile_state.c.name)
        rows = await self._run(lambda conn: conn.execute(query).all())
        return [TaskState(**{f: row._mapping[f] for f in _STATE_FIELDS}) for row in rows]

    async def task_state(self, name: str) -> TaskState:
        """One task's row (an empty state when it never ran)."""
        return next((s for s in await self.task_states() if s.name == name), TaskState(name))

    # -- redeliveries -----------------------------------------------------------------------------------

    async def note_redelivery(self, guid: str, github_delivery_id: int, max_attempts: int, *, now: float,
                              asked_before: float) -> str:
        """Count one more redelivery request for `guid`: `asked`; `waiting` when the last request was made after
        `asked_before` (GitHub may not have attempted it yet); `exhausted` once it reached `max_attempts`."""
        stmt = self._dialect_insert(redelivery_requests).values(
            guid=guid, github_delivery_id=github_delivery_id, attempts=1, requested_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["guid"],
            set_={"attempts": redelivery_requests.c.attempts + 1, "requested_at": now,
                  "github_delivery_id": github_delivery_id},
            where=and_(redelivery_requests.c.attempts < max_attempts,
                       redelivery_requests.c.requested_at <= asked_before),
        )
        query = select(redelivery_requests.c.attempts).where(redelivery_requests.c.guid == guid)

        def work(conn: Connection) -> str:
            if conn.execute(stmt).rowcount == 1:
                return "asked"
            return "exhausted" if int(conn.execute(query).scalar_one()) >= max_attempts else "waiting"

        return await self._run(work)

    async def redelivery_attempts(self, guid: str) -> int:
        """How many redeliveries of `guid` were asked of GitHub."""
        query = select(redelivery_requests.c.attempts).where(redelivery_requests.c.guid == guid)
        return int(await self._run(lambda conn: conn.execute(query).scalar_one_or_none()) or 0)

    # -- catch-up ---------------------------------------------------------------------------------------

    async def reviewed_at(self, repo: str, pr: int, head_sha: str) -> bool:
        """True when a review of this head was recorded (any trigger) or it is the PR's last reviewed head."""
        recorded = select(reviews.c.id).where(reviews.c.repo == repo, reviews.c.pr == pr,
                                              reviews.c.head_sha == head_sha).limit(1)
        last = select(pr_state.c.repo).where(pr_state.c.repo == repo, pr_state.c.pr == pr,
                                             pr_state.c.last_reviewed_sha == head_sha)

        def work(conn: Connection) -> bool:
            return conn.execute(recorded).first() is not None or conn.execute(last).first() is not None

        return await self._run(work)

    async def review_pending(self, key: str) -> bool:
        """True when a review job of this pull request (`owner/repo#n`) is queued or running."""
        query = select(jobs.c.id).where(jobs.c.key == key, jobs.c.kind == JobKind.REVIEW,
                                        jobs.c.state.in_([str(s) for s in ACTIVE_STATES])).limit(1)
        return await self._run(lambda conn: conn.execute(query).first() is not None)
