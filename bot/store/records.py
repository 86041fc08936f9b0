"""The store's review memory: posted reviews, findings, per-PR state and the command log (mixed into Store)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from sqlalchemy import Table, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.tables import command_log, findings, pr_state, reviews
from bot.store.types import FindingRecord, PrState, ReviewRecord

_FINDING_FIELDS = tuple(FindingRecord.__dataclass_fields__)
_REVIEW_FIELDS = tuple(ReviewRecord.__dataclass_fields__)
T = TypeVar("T")
REFUSED_PREFIX = "refused:"  # command_log entries of refused commands start with this (see bot.command_jobs)


class RecordsMixin:
    """Reviews (exactly-once), findings (fingerprints), PR state and command rate-limit log."""

    engine: AsyncEngine
    dialect: str

    async def _run(self, work: Callable[[Connection], T], retries: int = 1) -> T:
        raise NotImplementedError  # provided by Store

    def _insert(self, table: Table) -> Any:
        """An INSERT supporting ON CONFLICT for this dialect."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # -- reviews ----------------------------------------------------------------------------------------

    async def record_review(self, record: ReviewRecord) -> bool:
        """Store a posted review; False when one already exists for (repo, pr, head_sha, trigger)."""
        values = asdict(record)
        values["created_at"] = record.created_at or time.time()
        stmt = self._insert(reviews).values(**values).on_conflict_do_nothing(
            index_elements=["repo", "pr", "head_sha", "trigger"]
        )
        return await self._run(lambda conn: bool(conn.execute(stmt).rowcount == 1))

    async def review_exists(self, repo: str, pr: int, head_sha: str, trigger: str) -> bool:
        """True when a review was recorded for this (repo, pr, head sha, trigger)."""
        query = select(reviews.c.id).where(
            reviews.c.repo == repo, reviews.c.pr == pr, reviews.c.head_sha == head_sha, reviews.c.trigger == trigger
        )
        return await self._run(lambda conn: conn.execute(query).first() is not None)

    async def has_command_review(self, repo: str, pr: int) -> bool:
        """True when a review of the pull request was started by a command (a maintainer's approval)."""
        query = select(reviews.c.id).where(reviews.c.repo == repo, reviews.c.pr == pr,
                                           reviews.c.trigger.like("command:%")).limit(1)
        return await self._run(lambda conn: conn.execute(query).first() is not None)

    async def last_review(self, repo: str, pr: int) -> ReviewRecord | None:
        """The most recently recorded review of a pull request."""
        query = select(reviews).where(reviews.c.repo == repo, reviews.c.pr == pr).order_by(reviews.c.id.desc())
        row = await self._run(lambda conn: conn.execute(query.limit(1)).first())
        return ReviewRecord(**{name: row._mapping[name] for name in _REVIEW_FIELDS}) if row is not None else None

    # -- findings -------------------------------------------------------------------------------------

    async def upsert_findings(self, records: Sequence[FindingRecord]) -> None:
        """Insert findings or update path/line/state/comment id/last seen sha of existing fingerprints."""
        if not records:
            return
        await self._run(lambda conn: self._upsert_findings(conn, records))

    def _upsert_findings(self, conn: Connection, records: Sequence[FindingRecord]) -> None:
        now = time.time()
        for record in records:
            values = {**asdict(record), "created_at": now, "updated_at": now}
            values["first_seen_sha"] = record.first_seen_sha or record.last_seen_sha
            stmt = self._insert(findings).values(**values)
            changed = {
                "path": stmt.excluded.path,
                "line": stmt.excluded.line,
                "start_line": func.coalesce(stmt.excluded.start_line, findings.c.start_line),
                "body": func.coalesce(stmt.excluded.body, findings.c.body),
                "state": stmt.excluded.state,
                "last_seen_sha": stmt.excluded.last_seen_sha,
                "updated_at": now,
                "github_comment_id": func.coalesce(stmt.excluded.github_comment_id, findings.c.github_comment_id),
            }
            stmt = stmt.on_conflict_do_update(index_elements=["repo", "pr", "fingerprint"], set_=changed)
            conn.execute(stmt)

    async def list_findings(self, repo: str, pr: int, states: Sequence[str] | None = None) -> list[FindingRecord]:
        """A pull request's remembered findings, optionally only some states."""
        query = select(findings).where(findings.c.repo == repo, findings.c.pr == pr).order_by(findings.c.id)
        if states is not None:
            query = query.where(findings.c.state.in_(list(states)))
        rows = await self._run(lambda conn: conn.execute(query).all())
        return [FindingRecord(**{name: row._mapping[name] for name in _FINDING_FIELDS}) for row in rows]

    async def set_finding_state(
        self, repo: str, pr: int, fingerprint: str, state: str, github_comment_id: int | None = None,
        *, only_from: Sequence[str] | None = None,
    ) -> bool:
        """Change one finding's state (and comment id when given); False when unknown, or when its state is not
        one of `only_from` (a compare-and-set: of two jobs settling one finding, one wins)."""
        values: dict[str, Any] = {"state": state, "updated_at": time.time()}
        if github_comment_id is not None:
            values["github_comment_id"] = github_comment_id
        stmt = (
            update(findings)
            .where(findings.c.repo == repo, findings.c.pr == pr, findings.c.fingerprint == fingerprint)
            .values(**values)
        )
        if only_from is not None:
            stmt = stmt.where(findings.c.state.in_(list(only_from)))
        return await self._run(lambda conn: bool(conn.execute(stmt).rowcount == 1))

    async def set_finding_lines(self, repo: str, pr: int, fingerprint: str, start_line: int, line: int,
                                sha: str, *, path: str | None = None) -> None:
        """Move a finding to the lines (and path, for a renamed file) its code has at `sha`."""
        values: dict[str, Any] = {"start_line": start_line, "line": line, "last_seen_sha": sha,
                                  "updated_at": time.time()}
        if path is not None:
            values["path"] = path
        stmt = (
            update(findings)
            .where(findings.c.repo == repo, findings.c.pr == pr, findings.c.fingerprint == fingerprint)
            .values(**values)
        )
        await self._run(lambda conn: conn.execute(stmt))

    # -- pull request state -----------------------------------------------------------------------------

    async def get_pr_state(self, repo: str, pr: int) -> PrState:
        """The pull request's switches (defaults when never set)."""
        query = select(pr_state).where(pr_state.c.repo == repo, pr_state.c.pr == pr)
        row = await self._run(lambda conn: conn.execute(query).first())
        if row is None:
            return PrState(repo=repo, pr=pr)
        return PrState(repo=repo, pr=pr, paused=bool(row.paused), last_reviewed_sha=row.last_reviewed_sha)

    async def set_paused(self, repo: str, pr: int, paused: bool) -> None:
        """Pause or resume automatic reviews of a pull request."""
        await self._upsert_pr_state(repo, pr, {"paused": paused})

    async def set_closed(self, repo: str, pr: int, closed_at: float | None) -> None:
        """Mark the pull request closed at `closed_at` (None: open again); closed ones' findings are pruned later."""
        await self._upsert_pr_state(repo, pr, {"closed_at": closed_at})

    async def set_last_reviewed_sha(self, repo: str, pr: int, head_sha: str) -> None:
        """Remember the head sha the last review covered (the base of the next incremental review)."""
        await self._upsert_pr_state(repo, pr, {"last_reviewed_sha": head_sha})

    async def _upsert_pr_state(self, repo: str, pr: int, changes: dict[str, Any]) -> None:
        now = time.time()
        stmt = self._insert(pr_state).values(repo=repo, pr=pr, updated_at=now, **changes)
        stmt = stmt.on_conflict_do_update(index_elements=["repo", "pr"], set_={**changes, "updated_at": now})
        await self._run(lambda conn: conn.execute(stmt))

    # -- command log ------------------------------------------------------------------------------------

    async def log_command(self, repo: str, pr: int, user: str, command: str, at: float | None = None,
                          comment_id: int | None = None, thread_id: int | None = None) -> bool:
        """Record that `user` ran `command` on a pull request (for rate limiting), in review thread `thread_id` if
        any; False when `comment_id` was recorded before (a command is carried out at most once per comment)."""
        values = {"repo": repo, "pr": pr, "user": user, "command": command, "at": at or time.time(),
                  "comment_id": comment_id, "thread_id": thread_id}
        stmt = self._insert(command_log).values(**values).on_conflict_do_nothing(
            index_elements=["comment_id"], index_where=command_log.c.comment_id.is_not(None))
        return await self._run(lambda conn: bool(conn.execute(stmt).rowcount == 1))

    async def command_seen(self, comment_id: int) -> bool:
        """True when a command of this comment was recorded already (a replay or a second job for it)."""
        query = select(command_log.c.id).where(command_log.c.comment_id == comment_id)
        return await self._run(lambda conn: conn.execute(query).first() is not None)

    async def count_commands(
        self, repo: str, since: float, *, user: str | None = None, pr: int | None = None, accepted_only: bool = False
    ) -> int:
        """Commands on `repo` since `since`, optionally by one user / on one PR / only accepted (not `refused:`)."""
        query = select(func.count()).where(command_log.c.repo == repo, command_log.c.at >= since)
        if user is not None:
            query = query.where(command_log.c.user == user)
        if pr is not None:
            query = query.where(command_log.c.pr == pr)
        if accepted_only:
            query = query.where(~command_log.c.command.startswith(REFUSED_PREFIX, autoescape=True))
        return await self._run(lambda conn: int(conn.execute(query).scalar_one()))

    async def thread_has_command(self, thread_id: int, command: str, *, before_comment: int | None = None) -> bool:
        """True when `command` (e.g. `refused:question`) was logged in review thread `thread_id` (by another comment
        than `before_comment`, so a retried job still sees its own record as new)."""
        query = select(command_log.c.id).where(command_log.c.thread_id == thread_id, command_log.c.command == command)
        if before_comment is not None:
            query = query.where(command_log.c.comment_id != before_comment)
        return await self._run(lambda conn: conn.execute(query.limit(1)).first() is not None)
