"""Reconciliation with GitHub: redeliver the webhooks GitHub failed to deliver, and (bot.catch_up) review the
pull requests whose webhooks never came. Runs in `serve`, at start and then periodically, one instance at a time.

GitHub does not retry a failed delivery. Every `RECONCILE_INTERVAL_SECONDS` the App's delivery log is read
newest first, down to the newest delivery the previous scan covered (or `RECONCILE_WINDOW_HOURS` back), and
each failed delivery of an event the bot acts on whose guid the server never recorded is redelivered: GitHub
sends it again, same guid, as a normal signed webhook, which goes through intake and its dedupe like any
other. A guid is asked for at most `MAX_REQUESTS_PER_GUID` times, at least half an interval apart. The scan's
cursor is stored after every page, so a restart (or a rate limit) resumes where it stopped instead of
rescanning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.catch_up import CatchUpSummary, catch_up_once
from bot.errors import BotError
from bot.github.hooks import AppHooks, HookDelivery
from bot.registry import AppContext
from bot.routing import ROUTES, ignore

log = logging.getLogger(__name__)

REDELIVER, CATCH_UP = "redeliver", "catch_up"
LEASE_SECONDS = 300.0  # renewed after every page or repository; a crashed instance's lease lapses after this
MAX_REQUESTS_PER_GUID = 3
# Answers the same body gets again whatever the server's state: redelivering them cannot help.
REFUSED_FOR_GOOD = frozenset({400, 413})
DUE_FRACTION = 0.9  # a task is due once this fraction of its interval passed since any instance last ran it


class LeaseLost(BotError):
    """Another instance took over the task (this one stalled past its lease)."""


def is_failed(delivery: HookDelivery) -> bool:
    """GitHub counts a delivery as failed unless the server answered 2xx (a timeout or refused connection is 0)."""
    return not 200 <= delivery.status_code < 300


def acts_on(event: str, action: str | None) -> bool:
    """True when routing has a handler that may create jobs for this (event, action)."""
    handler = ROUTES.get((event, action)) or ROUTES.get((event, None))
    return handler is not None and handler is not ignore


def worth_redelivering(delivery: HookDelivery) -> bool:
    """A failed delivery of an event the bot acts on that a new attempt could change."""
    return (is_failed(delivery) and delivery.status_code not in REFUSED_FOR_GOOD
            and acts_on(delivery.event, delivery.action))


@dataclass
class RedeliverySummary:
    """What one redelivery scan saw and did."""

    scanned: int = 0
    failed: int = 0
    recorded: int = 0
    redelivered: int = 0
    waiting: int = 0  # asked for less than half an interval ago: GitHub's new attempt may still be coming
    given_up: int = 0
    complete: bool = True
    first_waiting: int | None = None  # the oldest delivery left waiting (the next scan reads down to it)

    def text(self) -> str:
        """One line for the task's row and the log."""
        state = "complete" if self.complete else "paused (resumes from its cursor)"
        return (f"redeliver: {self.scanned} deliveries scanned, {self.failed} failed, {self.recorded} of them "
                f"recorded, {self.redelivered} redelivered, {self.waiting} awaiting an earlier request, "
                f"{self.given_up} given up; {state}")


def instance_id() -> str:
    """This process's lease owner name."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Reconciler:
    """Runs the redelivery scan and the catch-up under their leases; `run` schedules both."""

    def __init__(self, context: AppContext, hooks: AppHooks | None = None, owner: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.context = context
        self.settings = context.settings
        self.store = context.store
        self.hooks = hooks or AppHooks(context.github_app())
        self.owner = owner or instance_id()
        self.clock = clock

    async def _acquire(self, name: str, interval: float, force: bool) -> bool:
        due = None if force else self.clock() - interval * DUE_FRACTION
        return await self.store.acquire_task(name, self.owner, LEASE_SECONDS, finished_before=due)

    async def redeliver(self, *, force: bool = False) -> RedeliverySummary | None:
        """One redelivery scan if due (or `force`) and no other instance runs one; None when skipped."""
        if not await self._acquire(REDELIVER, self.settings.reconcile_interval_seconds, force):
            return None
        summary = RedeliverySummary()
        try:
            checkpoint = await self._scan(summary)
        except BotError as exc:  # GitHub unavailable or rate limited, lease lost: resume from the cursor later
            summary.complete = False
            log.warning("redelivery scan stopped: %s", exc)
            await self.store.finish_task(REDELIVER, self.owner, f"{summary.text()}; stopped: {exc}"[:4000],
                                         completed=False)
            return summary
        except BaseException:
            await self.store.release_task(REDELIVER, self.owner)
            raise
        await self.store.finish_task(REDELIVER, self.owner, summary.text(), checkpoint=checkpoint,
                                     completed=summary.complete)
        log.info("%s", summary.text())
        return summary

    async def _scan(self, summary: RedeliverySummary) -> str | None:
        """Walk the delivery log from the stored cursor; returns the new checkpoint once the scan is complete."""
        state = await self.store.task_state(REDELIVER)
        checkpoint, cursor = int(state.checkpoint or 0), state.scan_cursor
        top = int(state.scan_top or 0)
        oldest = self.clock() - self.settings.reconcile_window_hours * 3600
        handled: set[str] = set()  # guids delivered fine or already asked for in this scan
        while True:
            page = await self.hooks.deliveries(cursor)
            if cursor is None and page.items:
                top = max(top, page.items[0].id)
            reached_end = False
            for delivery in page.items:
                if delivery.id <= checkpoint or delivery.delivered_at < oldest:
                    reached_end = True
                    break
                if not await self._consider(delivery, summary, handled):
                    summary.complete = False  # the per-run cap: this page is read again next time
                    await self._save(cursor, top)
                    return None
            if reached_end or page.next_cursor is None:
                # A delivery left waiting is looked at again next time: the checkpoint stays below it.
                end = top if summary.first_waiting is None else min(top, summary.first_waiting - 1)
                return str(max(end, checkpoint))
            cursor = page.next_cursor
            await self._save(cursor, top)

    async def _save(self, cursor: str | None, top: int) -> None:
        if not await self.store.save_progress(REDELIVER, self.owner, LEASE_SECONDS, cursor=cursor, top=str(top)):
            raise LeaseLost("the redelivery lease was taken over")

    async def _consider(self, delivery: HookDelivery, summary: RedeliverySummary, handled: set[str]) -> bool:
        """Redeliver one listed attempt if it needs it; False when the per-run cap stops the scan."""
        summary.scanned += 1
        if not is_failed(delivery):
            handled.add(delivery.guid)
            return True
        if delivery.guid in handled or not worth_redelivering(delivery):
            return True
        summary.failed += 1
        if await self.store.delivery_status(delivery.guid) is not None:
            summary.recorded += 1
            return True
        if summary.redelivered >= self.settings.reconcile_max_redeliveries:
            return False
        handled.add(delivery.guid)
        now = self.clock()
        noted = await self.store.note_redelivery(delivery.guid, delivery.id, MAX_REQUESTS_PER_GUID, now=now,
                                                 asked_before=now - self.settings.reconcile_interval_seconds / 2)
        if noted == "waiting":
            summary.waiting += 1
            summary.first_waiting = min(summary.first_waiting or delivery.id, delivery.id)
        if noted != "asked":
            summary.given_up += noted == "exhausted"
            return True
        await self.hooks.redeliver(delivery.id)
        summary.redelivered += 1
        log.info("asked GitHub to redeliver %s (%s.%s, answered %d)", delivery.guid, delivery.event,
                 delivery.action, delivery.status_code)
        return True

    async def catch_up(self, *, force: bool = False) -> CatchUpSummary | None:
        """One catch-up pass if due (or `force`) and no other instance runs one; None when skipped."""
        if not await self._acquire(CATCH_UP, self.settings.catch_up_interval_seconds, force):
            return None
        try:
            summary = await catch_up_once(self.context, self.hooks, lambda: self.renew(CATCH_UP))
        except BotError as exc:
            log.warning("catch-up stopped: %s", exc)
            await self.store.finish_task(CATCH_UP, self.owner, f"catch-up stopped: {exc}"[:4000])
            return None
        except BaseException:
            await self.store.release_task(CATCH_UP, self.owner)
            raise
        await self.store.finish_task(CATCH_UP, self.owner, summary.text())
        log.info("%s", summary.text())
        return summary

    async def renew(self, name: str) -> None:
        """Extend a task's lease mid-run (LeaseLost when another instance took it)."""
        if not await self.store.save_progress(name, self.owner, LEASE_SECONDS):
            raise LeaseLost(f"the {name} lease was taken over")

    async def run(self, stopping: asyncio.Event) -> None:
        """Until `stopping`: both tasks at start, then whenever due (checked every `tick` seconds)."""
        settings = self.settings
        intervals = [settings.reconcile_interval_seconds] if settings.reconcile_interval_seconds > 0 else []
        intervals += [settings.catch_up_interval_seconds] if settings.catch_up else []
        if not intervals:
            return
        tick, first = min(intervals), True
        while not stopping.is_set():
            if settings.reconcile_interval_seconds > 0:
                await self._guarded(self.redeliver(force=first))
            if settings.catch_up:
                await self._guarded(self.catch_up(force=first))
            first = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=tick)

    async def _guarded(self, task: Awaitable[object]) -> None:
        try:
            await task
        except Exception:  # the reconciler's loop is an edge: log, and try again at the next tick
            log.exception("reconciliation failed; retrying at the next tick")


async def run_reconciler(context: AppContext, stopping: asyncio.Event) -> None:
    """The background task `serve` starts: a Reconciler on the app's context, until `stopping`."""
    await Reconciler(context).run(stopping)
