"""The operator's view, read from the database: `python -m bot status` (queue, dead jobs, spend, reconciliation)
and `python -m bot retry JOB` (requeue a dead job)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from bot.errors import BotError
from bot.settings import Settings
from bot.store.base import Store
from bot.store.operator import DeadJob, Requeued
from bot.store.reconcile import TaskState
from bot.store.types import JobState

T = TypeVar("T")
DEAD_SHOWN = 20
# A dead job's error starts with "[incident <id>]" (bot.jobs), the id its pull request and the logs show.
INCIDENT = re.compile(r"\[incident ([0-9A-Za-z_-]{4,32})\]")


@dataclass(frozen=True, slots=True)
class Status:
    """Everything `status` prints, read at `now`."""

    now: float
    jobs_by_state: dict[str, int]
    oldest_queued_at: float | None
    dead: list[DeadJob]
    spend_today: dict[str, float]
    tasks: list[TaskState]


def day_start(now: float) -> float:
    """00:00 UTC of `now`'s day (the daily budgets' day)."""
    return now // 86_400 * 86_400


def ago(seconds: float) -> str:
    """A short age: `42s`, `4m 12s`, `3h 05m`, `2d 04h`."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def incident_of(error: str | None) -> str:
    """The incident id a dead job's error names, or `-`."""
    match = INCIDENT.search(error or "")
    return match.group(1) if match else "-"


def _first_line(text: str | None, width: int = 120) -> str:
    line = (text or "").strip().splitlines()[-1:] or [""]  # a traceback's last line says what failed
    return line[0][:width]


async def read_status(store: Store, now: float | None = None) -> Status:
    """Gather the operator's view from the store."""
    at = time.time() if now is None else now
    return Status(
        now=at,
        jobs_by_state=await store.count_jobs_by_state(),
        oldest_queued_at=await store.oldest_queued_at(),
        dead=await store.dead_jobs(DEAD_SHOWN),
        spend_today=await store.spend_by_owner(day_start(at)),
        tasks=await store.task_states(),
    )


def render(status: Status) -> str:
    """The text `status` prints."""
    counts = status.jobs_by_state
    lines = ["queue: " + " · ".join(f"{state.value} {counts.get(state.value, 0)}" for state in JobState)]
    oldest = status.oldest_queued_at
    lines.append(f"oldest queued job: {ago(status.now - oldest)} old" if oldest is not None
                 else "oldest queued job: none queued")
    total_dead = counts.get(JobState.DEAD.value, 0)
    lines.append(f"dead jobs: {total_dead}" + (f" (newest {len(status.dead)} shown)" if total_dead > len(status.dead)
                                                else ""))
    for job in status.dead:
        when = ago(status.now - job.finished_at) + " ago" if job.finished_at else "?"
        head = f" @{job.head_sha[:12]}" if job.head_sha else ""
        lines.append(f"  job {job.id} {job.kind} {job.key}{head}: incident {incident_of(job.last_error)}, "
                     f"{job.attempts} attempts, {when}: {_first_line(job.last_error)}")
    spend = status.spend_today
    lines.append("spend today (UTC): " + (" · ".join(f"{owner} ${cost:.4f}" for owner, cost in sorted(spend.items()))
                                           if spend else "none"))
    lines.append("last reconciliation:" + ("" if status.tasks else " never"))
    for task in status.tasks:
        if task.last_finished_at is None:
            lines.append(f"  {task.name}: never finished")
            continue
        running = f" (running on {task.lease_owner})" if task.lease_owner else ""
        lines.append(f"  {task.name}: {ago(status.now - task.last_finished_at)} ago{running}: {task.last_summary}")
    return "\n".join(lines)


def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = Store.from_settings(settings)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise BotError(f"cannot read the database (is it migrated? `python -m bot migrate`): {detail}") from None


def status_command(settings: Settings) -> str:
    """`python -m bot status`: the operator's view as text (BotError when the database cannot be read)."""
    return render(_with_store(settings, read_status))


def retry_command(settings: Settings, job_id: int) -> Requeued:
    """`python -m bot retry JOB`: queue a dead job again with fresh attempts."""
    return _with_store(settings, lambda store: store.requeue_dead(job_id))
