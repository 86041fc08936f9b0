"""Repository-wide dismissals (mixed into Store): a finding dismissed with a reason is not posted inline again in
the repository's later pull requests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from bot.store.tables import dismissals
from bot.store.types import Dismissal

T = TypeVar("T")
#: A reason is stored as plain text, cut to this many characters.
MAX_REASON_CHARS = 500
#: Fingerprints looked up per query (keeps the IN list and its parameters small on both databases).
LOOKUP_CHUNK = 500
#: At most this many of a repository's dismissals are applied to a review (the newest).
MAX_REMEMBERED = 5_000


class DismissalsMixin:
    """Record and look up dismissals by (repository, fingerprint)."""

    async def _run(self, work: Callable[[Connection], T], retries: int = 1) -> T:
        raise NotImplementedError  # provided by Store

    def _insert(self, table: Table) -> Any:
        raise NotImplementedError  # provided by RecordsMixin

    async def record_dismissal(self, dismissal: Dismissal) -> bool:
        """Remember a dismissal; False when the fingerprint was dismissed in this repository before (the first
        dismissal, its pull request and reason, stand)."""
        values = {
            "repo": dismissal.repo, "fingerprint": dismissal.fingerprint, "pr": dismissal.pr,
            "reason": dismissal.reason[:MAX_REASON_CHARS], "by_user": dismissal.by_user[:100],
            "at": dismissal.at or time.time(),
        }
        stmt = self._insert(dismissals).values(**values).on_conflict_do_nothing(index_elements=["repo", "fingerprint"])
        return await self._run(lambda conn: bool(conn.execute(stmt).rowcount == 1))

    async def dismissed_in_repo(self, repo: str, fingerprints: Iterable[str]) -> dict[str, Dismissal]:
        """The dismissals of `repo` among `fingerprints`, by fingerprint."""
        wanted = sorted(set(fingerprints))

        def read(conn: Connection) -> dict[str, Dismissal]:
            found: dict[str, Dismissal] = {}
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                chunk = wanted[start:start + LOOKUP_CHUNK]
                query = select(dismissals).where(dismissals.c.repo == repo, dismissals.c.fingerprint.in_(chunk))
                for row in conn.execute(query):
                    m = row._mapping
                    found[m["fingerprint"]] = Dismissal(m["repo"], m["fingerprint"], m["pr"], m["reason"],
                                                        m["by_user"], m["at"])
            return found

        return await self._run(read) if wanted else {}

    async def dismissed_fingerprints(self, repo: str, limit: int = MAX_REMEMBERED) -> dict[str, int]:
        """Every fingerprint dismissed with a reason in `repo` -> the pull request it was dismissed in (the newest
        `limit`, read once per review before the model runs)."""
        query = (select(dismissals.c.fingerprint, dismissals.c.pr).where(dismissals.c.repo == repo)
                 .order_by(dismissals.c.id.desc()).limit(limit))
        rows = await self._run(lambda conn: conn.execute(query).all())
        return {str(fp): int(pr) for fp, pr in rows}
