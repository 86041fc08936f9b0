"""The spend ledger (mixed into Store): every paid model call as it is paid, and what was spent per cap's scope."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, insert, select
from sqlalchemy.engine import Connection

from bot.store.tables import spend

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One paid model call: who it was for (the caps' scopes) and what it cost."""

    owner: str
    repo: str
    pr: int
    author: str
    model: str
    cost_usd: float
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    job_id: int | None = None
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class DailySpend:
    """What was spent since a moment in each cap's scope: the installation, the pull request, its author."""

    installation: float = 0.0
    pull_request: float = 0.0
    author: float = 0.0


class SpendMixin:
    """Append-only ledger reads and writes."""

    async def _run(self, work: Callable[[Connection], T], retries: int = 1) -> T:
        raise NotImplementedError  # provided by Store

    async def record_spend(self, record: SpendRecord) -> None:
        """Append one paid call (its own transaction, so nothing that fails later can lose it)."""
        values = asdict(record)
        values["at"] = record.at or time.time()
        await self._run(lambda conn: conn.execute(insert(spend).values(**values)))

    async def daily_spend(self, owner: str, repo: str, pr: int, author: str, since: float) -> DailySpend:
        """USD spent at or after `since` by the installation, by this pull request, and by this author."""

        def total(*where: ColumnElement[bool]) -> Select[Any]:
            return select(func.coalesce(func.sum(spend.c.cost_usd), 0.0)).where(spend.c.at >= since, *where)

        queries = (
            total(spend.c.owner == owner),
            total(spend.c.repo == repo, spend.c.pr == pr),
            total(spend.c.owner == owner, spend.c.author == author),
        )

        def read(conn: Connection) -> DailySpend:
            values = [float(conn.execute(query).scalar_one()) for query in queries]
            return DailySpend(*values)

        return await self._run(read)

    async def spend_rows(self, repo: str | None = None) -> list[SpendRecord]:
        """The ledger's rows in order (for tests and the status CLI)."""
        query = select(spend).order_by(spend.c.id)
        if repo is not None:
            query = query.where(spend.c.repo == repo)
        rows = await self._run(lambda conn: conn.execute(query).all())
        fields = SpendRecord.__dataclass_fields__
        return [SpendRecord(**{name: row._mapping[name] for name in fields}) for row in rows]
