"""Job workers: claim with a lease, renew while working, retry with backoff, dead-letter, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import signal
import socket
import time
import traceback

from bot.errors import RetryLater, StaleHead
from bot.incidents import FailureKind, classify, new_incident_id, public_reason
from bot.instance import Instance, claim_instance
from bot.logs import log_context
from bot.metrics import Metrics
from bot.registry import AppContext, Handler, Registry
from bot.settings import Settings
from bot.store.base import Store
from bot.store.types import Job, JobState

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 600.0  # an idle worker prunes old rows at most this often
PRUNE_BATCHES_PER_ROUND = 20  # small batches (`PRUNE_BATCH` rows per table), so no transaction holds locks long
PRUNE_BATCH = 500
DAY = 86_400.0
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 900.0


def backoff_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped, scaled by a random 0.5..1.0."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return float(delay * (rng or random).uniform(0.5, 1.0))


def retry_time(attempts: int, error: BaseException, now: float | None = None) -> float:
    """When to retry: after the backoff, and never before a RetryLater's `retry_at`."""
    at = (now if now is not None else time.time()) + backoff_delay(attempts)
    if isinstance(error, RetryLater) and error.retry_at is not None:
        at = max(at, error.retry_at)
    return at


async def start_pool(context: AppContext, count: int, poll_seconds: float = 1.0) -> WorkerPool:
    """Start `count` workers as this host's instance, first releasing the leases its previous incarnation held."""
    instance = claim_instance(context.settings.data_dir, context.settings.instance_id or None) if count else None
    pool = WorkerPool(context, count, poll_seconds, instance)
    try:
        await pool.recover()
    except BaseException:
        pool.instance.close()
        raise
    pool.start()
    return pool


class WorkerPool:
    """N worker loops in this event loop sharing one store; `stop()` drains within the grace period."""

    def __init__(
        self, context: AppContext, count: int, poll_seconds: float = 1.0, instance: Instance | None = None
    ) -> None:
        self.context = context
        self.count = count
        self.poll_seconds = poll_seconds
        self.stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._next_prune = 0.0
        self.instance = instance or Instance(f"{socket.gethostname()}-{os.getpid()}-{id(self):x}", reusable=False)
        self._prefix = self.instance.id + "/"  # lease owners are `<instance id>/<worker index>`

    async def recover(self) -> int:
        """Release the leases this instance's previous incarnation held (it is dead: see bot/instance.py)."""
        if not self.instance.reusable:
            return 0
        released = await self.context.store.expire_leases(self._prefix)
        if released:
            log.warning("released %d job leases held by this instance (%s) before its restart", released,
                        self.instance.id)
        return released

    def start(self) -> None:
        """Start the worker loops."""
        for index in range(self.count):
            self._loops.append(asyncio.create_task(self._loop(f"{self._prefix}{index}"), name=f"worker-{index}"))

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop claiming; give running jobs `grace_seconds` to finish, then cancel and release them."""
        grace = self.context.settings.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        self.stopping.set()
        self.context.wake.set()
        if self._loops:
            _, pending = await asyncio.wait(self._loops, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._loops, return_exceptions=True)
            self._loops.clear()
        self.instance.close()

    async def _loop(self, owner: str) -> None:
        store, settings = self.context.store, self.context.settings
        while not self.stopping.is_set():
            try:
                job = await store.claim(owner, settings.job_lease_seconds)
            except Exception:
                log.exception("worker %s: claiming failed; retrying", owner)
                job = None
            if job is None:
                await self.prune_if_due()
                await self._idle()
                continue
            await self.run_job(job, owner)

    async def prune_if_due(self, now: float | None = None) -> int:
        """Retention: when due, delete old deliveries, finished jobs, command and spend records, and the findings of
        long-closed PRs, in small batches; returns the rows deleted (errors are logged, never raised)."""
        now = time.time() if now is None else now
        if now < self._next_prune:
            return 0
        self._next_prune = now + PRUNE_INTERVAL_SECONDS
        settings, total = self.context.settings, 0
        try:
            for _ in range(PRUNE_BATCHES_PER_ROUND):
                pruned = await self.context.store.prune_batch(
                    now - settings.retention_days * DAY, now - settings.findings_retention_days * DAY, PRUNE_BATCH)
                total += pruned.total
                if pruned.total == 0:
                    break
        except Exception:
            log.exception("pruning old rows failed; trying again later")
        if total:
            log.info("retention: %d old rows deleted", total)
        return total

    async def _idle(self) -> None:
        wake = self.context.wake
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=self.poll_seconds)
        wake.clear()

    async def run_job(self, job: Job, owner: str) -> None:
        """Run one claimed job to a terminal state, a retry, or (on shutdown) a release."""
        ctx = self.context
        with log_context(job=job.id, kind=job.kind, repo=job.payload.get("owner", "") + "/" + job.payload.get(
                "repo", ""), pr=job.payload.get("pr"), delivery=job.delivery_id):
            ctx.metrics.job_wait.labels(kind=job.kind).observe(max(0.0, time.time() - job.run_after))
            if job.attempts > ctx.settings.job_max_attempts:
                await self._dead_internal(job, owner, f"gave up after {job.attempts - 1} attempts (worker lost)")
                return
            handler = ctx.registry.handlers.get(job.kind)
            if handler is None:
                await self._dead_internal(job, owner, f"no handler registered for job kind {job.kind!r}")
                return
            started = time.monotonic()
            outcome = await self._attempt(job, owner, handler)
            ctx.metrics.job_run.labels(kind=job.kind).observe(time.monotonic() - started)
            ctx.metrics.jobs_finished.labels(kind=job.kind, outcome=outcome).inc()

    async def _attempt(self, job: Job, owner: str, handler: Handler) -> str:
        store = self.context.store
        task = asyncio.create_task(handler(job, self.context))
        renewer = asyncio.create_task(self._renew(job, owner, task))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            if self.stopping.is_set():  # shutdown grace over: give the job back
                await store.release(job.id, owner)
                log.warning("job released at shutdown")
                return "released"
            raise
        except StaleHead as exc:
            log.info("head moved while working (%s); the newer job reviews it", exc)
            await store.complete(job.id, owner, JobState.SUPERSEDED)
            return "superseded"
        except Exception as exc:  # noqa: BLE001 - the worker loop is the one place that catches broadly
            return await self._failed(job, owner, exc)
        finally:
            renewer.cancel()
        if not await store.complete(job.id, owner):
            log.warning("job finished after its lease was lost")
            return "lease_lost"
        return "done"

    async def _renew(self, job: Job, owner: str, task: asyncio.Task[None]) -> None:
        lease = self.context.settings.job_lease_seconds
        while not task.done():
            await asyncio.sleep(lease / 3)
            try:
                still_ours = await self.context.store.renew(job.id, owner, lease)
            except Exception:
                log.exception("renewing the lease failed; will retry")
                continue
            if not still_ours:
                log.error("lease lost (another worker took the job); cancelling this attempt")
                task.cancel()
                return

    async def _failed(self, job: Job, owner: str, exc: Exception) -> str:
        reason = f"{type(exc).__name__}: {exc}"
        if job.attempts >= self.context.settings.job_max_attempts:
            incident = new_incident_id()
            with log_context(incident=incident):
                log.error("job failed on its last attempt [incident %s]: %s", incident, reason, exc_info=exc)
            await self._dead(job, owner, f"[incident {incident}] {reason}", public_reason(classify(exc), incident))
            return "dead"
        at = retry_time(job.attempts, exc)
        level = logging.WARNING if isinstance(exc, RetryLater) else logging.ERROR
        log.log(level, "job attempt %d failed, retrying in %.0fs: %s", job.attempts, at - time.time(), reason,
                exc_info=None if isinstance(exc, RetryLater) else exc)
        detail = reason if isinstance(exc, RetryLater) else "".join(traceback.format_exception(exc))[-4000:]
        await self.context.store.retry(job.id, owner, detail, at)
        return "retry"

    async def _dead_internal(self, job: Job, owner: str, reason: str) -> None:
        incident = new_incident_id()
        log.error("job is dead [incident %s]: %s", incident, reason)
        await self._dead(job, owner, f"[incident {incident}] {reason}", public_reason(FailureKind.INTERNAL, incident))

    async def _dead(self, job: Job, owner: str, reason: str, public: str) -> None:
        """Bury the job with its full `reason`; the hooks (which post to the PR) get only the `public` sentence."""
        await self.context.store.bury(job.id, owner, reason)
        for hook in self.context.registry.dead_letter_hooks:
            try:
                await hook(job, public, self.context)
            except Exception:
                log.exception("dead-letter hook %r failed", hook)


async def run_worker_process(
    settings: Settings, count: int, registry: Registry, stop: asyncio.Event | None = None
) -> None:
    """Run `count` workers with `registry`'s handlers until SIGTERM/SIGINT (or `stop`), then drain within the
    shutdown grace."""
    store = Store.from_settings(settings)
    try:
        if not await store.migrations_current():
            log.warning("database is not at the latest migration; run `python -m bot migrate`")
        context = AppContext(settings, store, Metrics(), registry)
        await context.warm_up()
        gc.freeze()  # start-up objects (modules, schemas) never need collecting: shorter GC pauses in reviews
        pool = await start_pool(context, count)
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        log.info("%d workers running", count)
        await stop.wait()
        log.info("stopping: finishing or releasing running jobs")
        await pool.stop()
        await context.aclose()
    finally:
        await store.close()


def run_workers(settings: Settings, count: int, registry: Registry) -> int:
    """A process of `count` workers running `registry`'s handlers (see `bot.wiring.run_workers`); exit code 0."""
    asyncio.run(run_worker_process(settings, count, registry))
    return 0
