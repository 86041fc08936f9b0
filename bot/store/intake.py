"""The one intake path: record a delivery and enqueue its jobs, the same SQL and rules on SQLite and PostgreSQL.

The functions take a minimal cursor (`execute(sql, params)` returning rows with `rowcount` and `fetchone()`):
a plain sqlite3 connection (SQLite group commit, `bot.store.group_commit`) or a SQLAlchemy connection wrapped
in `SqlCursor` (PostgreSQL intake, and `Store.enqueue` / `cancel_for_pr` on both). The SQL is prepared text with
named parameters, which both drivers accept: building Core statements per call cost more than SQLite itself.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import TextClause

from bot.store.types import Accepted, JobKind, JobSpec

# A replay: the exact signed body accepted before under another delivery id, within REPLAY_WINDOW_SECONDS.
SEEN_BODY = (
    "SELECT 1 FROM deliveries WHERE body_sha256 = :body_sha256 AND received_at >= :since AND id <> :id LIMIT 1"
)
# A new delivery id whose body is no replay: one statement for the common case (nothing inserted: look closer).
INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, event, action, received_at, status, body_sha256) "
    # Typed, so PostgreSQL deduces each parameter's one type (SQLite takes the same casts).
    "SELECT CAST(:id AS VARCHAR(64)), CAST(:event AS VARCHAR(64)), CAST(:action AS VARCHAR(64)), "
    "CAST(:now AS FLOAT), 'processed', CAST(:body_sha256 AS VARCHAR(64)) "
    f"WHERE NOT EXISTS ({SEEN_BODY}) ON CONFLICT (id) DO NOTHING"
)
REPLAY_WINDOW_SECONDS = 7 * 86_400.0
_encode = msgspec.json.Encoder().encode
_SURROGATE = re.compile("[\ud800-\udfff]")
# A closed pull request: remember when (its findings memory is pruned long after; a reopen clears it).
MARK_CLOSED = (
    "INSERT INTO pr_state (repo, pr, paused, updated_at, closed_at) VALUES (:repo, :pr, false, :now, :now) "
    "ON CONFLICT (repo, pr) DO UPDATE SET closed_at = :now, updated_at = :now"
)
REOPEN_DELIVERY = "UPDATE deliveries SET status = 'processed', received_at = :now WHERE id = :id AND status = 'failed'"
QUEUED_REVIEW = "SELECT id, head_sha FROM jobs WHERE key = :key AND kind = 'review' AND state = 'queued'"
SUPERSEDE = (
    "UPDATE jobs SET state = 'superseded', finished_at = :now, updated_at = :now, lease_owner = NULL, "
    "lease_expires_at = NULL WHERE id = :id"
)
CANCEL = (
    "UPDATE jobs SET state = 'cancelled', finished_at = :now, updated_at = :now WHERE key = :key AND state = 'queued'"
)
# The payload travels as JSON text: SQLite stores text, PostgreSQL casts it to the `json` column's type.
INSERT_JOB = (
    "INSERT INTO jobs (kind, key, head_sha, trigger, delivery_id, payload, state, attempts, run_after, created_at, "
    "updated_at) VALUES (:kind, :key, :head_sha, :trigger, :delivery_id, :payload, 'queued', 0, :now, :now, :now) "
    "RETURNING id"
)


class Rows(Protocol):
    """What `execute` returns: the affected row count and the first row."""

    @property
    def rowcount(self) -> int:
        """Rows changed by an INSERT/UPDATE."""

    def fetchone(self) -> Any:
        """The next row (a tuple), or None."""


class Cursor(Protocol):
    """Anything that runs SQL with named parameters inside the caller's transaction."""

    def execute(self, sql: str, parameters: Mapping[str, Any], /) -> Rows:
        """Run one statement."""


@functools.cache
def _compiled(sql: str) -> TextClause:
    return text(sql)


class SqlCursor:
    """A SQLAlchemy connection as a `Cursor` (each SQL string compiled once)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Mapping[str, Any], /) -> Rows:
        """Run `sql` with `parameters` in the connection's transaction."""
        return self.conn.execute(_compiled(sql), dict(parameters))


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery to record: GitHub's delivery guid, event, action and the job specs routing produced."""

    delivery_id: str
    event: str
    action: str | None
    specs: tuple[JobSpec, ...]
    body_sha256: str | None = None  # of the signed body (None: not from HTTP, e.g. the reconciler's catch-up)


def _json_text(value: Any) -> str:
    """JSON text of a job's payload; a lone UTF-16 surrogate (half an emoji, which a comment in a payload can
    carry) becomes U+FFFD: neither UTF-8 nor PostgreSQL's json type can hold it, and the delivery must not fail."""
    try:
        return _encode(value).decode()
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", json.dumps(value, ensure_ascii=False))


def enqueue(cur: Cursor, spec: JobSpec, delivery_id: str | None, now: float) -> int:
    """Queue a job, coalescing reviews (a newer head supersedes the queued one); returns the job id."""
    if spec.kind == JobKind.REVIEW:
        queued = cur.execute(QUEUED_REVIEW, {"key": spec.key}).fetchone()
        # Same head already queued: one job, unless this one is a person's command, which carries what the
        # automatic job lacks (full scope, the comment to answer) and so replaces it.
        if queued is not None and queued[1] == spec.head_sha and not spec.trigger.startswith("command"):
            return int(queued[0])
        if queued is not None:
            supersede(cur, int(queued[0]), now)
    params = {
        "kind": str(spec.kind),
        "key": spec.key,
        "head_sha": spec.head_sha,
        "trigger": spec.trigger,
        "delivery_id": delivery_id,
        "payload": _json_text(spec.payload(delivery_id)),
        "now": now,
    }
    return int(cur.execute(INSERT_JOB, params).fetchone()[0])


def supersede(cur: Cursor, job_id: int, now: float) -> None:
    """Mark a job superseded by a newer one (its lease, if any, is dropped)."""
    cur.execute(SUPERSEDE, {"id": job_id, "now": now})


def cancel(cur: Cursor, key: str, now: float) -> int:
    """Cancel every queued job of a pull request; returns how many."""
    return cur.execute(CANCEL, {"key": key, "now": now}).rowcount


def accept(cur: Cursor, item: Delivery, now: float) -> Accepted:
    """Record a delivery and apply its specs; a duplicate of a processed delivery does nothing.

    A delivery whose job went dead is marked failed, so GitHub's redelivery of it is processed again.
    """
    redelivery = False
    since = now - REPLAY_WINDOW_SECONDS
    if cur.execute(INSERT_DELIVERY, {"id": item.delivery_id, "event": item.event, "action": item.action,
                                     "now": now, "body_sha256": item.body_sha256, "since": since}).rowcount == 0:
        if item.body_sha256 is not None and cur.execute(SEEN_BODY, {
            "body_sha256": item.body_sha256, "since": since, "id": item.delivery_id,
        }).fetchone() is not None:
            return Accepted(duplicate=True)  # a replay (new delivery id, same signed body): inert
        if cur.execute(REOPEN_DELIVERY, {"id": item.delivery_id, "now": now}).rowcount == 0:
            return Accepted(duplicate=True)  # this delivery id, processed already
        redelivery = True
    job_ids = []
    for spec in item.specs:
        if spec.kind == JobKind.CANCEL:
            cancel(cur, spec.key, now)
            cur.execute(MARK_CLOSED, {"repo": f"{spec.owner}/{spec.repo}", "pr": spec.pr, "now": now})
        else:
            job_ids.append(enqueue(cur, spec, item.delivery_id, now))
    return Accepted(duplicate=False, job_ids=tuple(job_ids), redelivery=redelivery)
