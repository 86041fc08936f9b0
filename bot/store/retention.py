"""Retention (mixed into Store): old deliveries, finished jobs, command records and spend rows, and the findings
memory of long-closed pull requests, deleted in small batches so no transaction holds locks for long."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, and_, delete, select, tuple_
from sqlalchemy.engine import Connection

from bot.store.tables import command_log, deliveries, findings, jobs, pr_state, spend
from bot.store.types import JobState

T = TypeVar("T")
FINISHED_STATES = (JobState.DONE, JobState.DEAD, JobState.CANCELLED, JobState.SUPERSEDED, JobState.FAILED)


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows deleted by one pruning batch, per table."""

    deliveries: int = 0
    jobs: int = 0
    commands: int = 0
    spend: int = 0
    findings: int = 0
    pull_requests: int = 0

    @property
    def total(self) -> int:
        """All rows deleted."""
        return self.deliveries + self.jobs + self.commands + self.spend + self.findings + self.pull_requests


class RetentionMixin:
    """One pruning batch at a time: at most `batch` rows per table (each an indexed range scan)."""

    async def _run(self, work: Callable[[Connection], T], retries: int = 1) -> T:
        raise NotImplementedError  # provided by Store

    async def prune_batch(self, records_before: float, closed_before: float, batch: int = 500) -> Pruned:
        """Delete up to `batch` rows per table older than `records_before` (findings: PRs closed before
        `closed_before`); returns how many went. Call again while `total` is non-zero."""
        return await self._run(lambda conn: self._prune(conn, records_before, closed_before, batch))

    def _prune(self, conn: Connection, before: float, closed_before: float, batch: int) -> Pruned:
        def by_id(table: Table, id_column: ColumnElement[Any], *where: ColumnElement[bool]) -> int:
            ids = select(id_column).where(*where).limit(batch).scalar_subquery()
            return int(conn.execute(delete(table).where(id_column.in_(ids))).rowcount)

        done = by_id(deliveries, deliveries.c.id, deliveries.c.received_at < before)
        finished = by_id(jobs, jobs.c.id, jobs.c.state.in_(FINISHED_STATES), jobs.c.finished_at < before)
        commands = by_id(command_log, command_log.c.id, command_log.c.at < before)
        spent = by_id(spend, spend.c.id, spend.c.at < before)
        closed = select(pr_state.c.repo, pr_state.c.pr).where(pr_state.c.closed_at < closed_before)
        old = by_id(findings, findings.c.id, tuple_(findings.c.repo, findings.c.pr).in_(closed))
        prs = 0
        if old < batch:  # their findings are gone: forget the pull requests too
            gone = select(pr_state.c.repo, pr_state.c.pr).where(pr_state.c.closed_at < closed_before).limit(batch)
            keys = [tuple(row) for row in conn.execute(gone)]
            for repo, pr in keys:
                prs += int(conn.execute(delete(pr_state).where(and_(pr_state.c.repo == repo, pr_state.c.pr == pr)))
                           .rowcount)
        return Pruned(done, finished, commands, spent, old, prs)
