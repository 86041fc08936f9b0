"""The Starlette application: routes as a plain list, and a lifespan owning the store, metrics and workers.

Start-up is fast on purpose: the server listens (and /healthz answers) at once, while the database layer is
imported in a thread and migrations run in the background; /readyz and /webhook wait for that to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.jobs import WorkerPool
    from bot.registry import AppContext, Registry

    # The workers' handlers, or a function building them (run in a thread: it imports the pipeline).
    Handlers = Registry | Callable[[], Registry]

log = logging.getLogger(__name__)

READY_WAIT_SECONDS = 5.0  # a delivery arriving during start-up waits this long for the database
BACKGROUND_STOP_SECONDS = 5.0  # background tasks get this long to finish their step at shutdown
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A long-running task started with the workers (the reconciler): runs until the event is set at shutdown.
BackgroundTask = Callable[["AppContext", asyncio.Event], Awaitable[None]]


class Runtime:
    """What the lifespan builds in the background; `context` is set once `ready` is."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.context: AppContext | None = None
        self.error: str | None = None
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def wait(self, seconds: float) -> AppContext | None:
        """The context once ready (None after `seconds` or when start-up failed)."""
        if not self.ready.is_set() and self.error is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), timeout=seconds)
        return self.context if self.ready.is_set() else None


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


class Webhook:
    """POST /webhook as a plain ASGI app (no Request/Response objects on the hot path: `bot.webhook`); setup mode
    answers 503 naming the missing settings."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the delivery to the intake once the runtime is ready."""
        state = scope["app"].state
        missing = state.settings.missing_app_settings
        runtime: Runtime = state.runtime
        context = None if missing else await runtime.wait(READY_WAIT_SECONDS)
        if context is None:
            error = "setup mode: missing " + ", ".join(missing) if missing else (
                _public(runtime.error) or "starting; redeliver later")
            await JSONResponse({"error": error}, status_code=503)(scope, receive, send)
            return
        from bot.webhook import handle_webhook

        await handle_webhook(scope, receive, send, context)


async def healthz(request: Request) -> Response:
    """GET /healthz: the process is alive."""
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """GET /readyz: the database answers and is at the latest migration; says only ready or not (why: the log)."""
    from sqlalchemy.exc import SQLAlchemyError

    not_ready = JSONResponse({"ready": False}, status_code=503)
    runtime = _runtime(request)
    if runtime.context is None or not runtime.ready.is_set():
        log.info("readyz: not ready: %s", runtime.error or "starting")
        return not_ready
    try:
        current = await runtime.context.store.migrations_current()
    except (SQLAlchemyError, OSError) as exc:
        log.warning("readyz: database unreachable: %s", exc.__class__.__name__)
        return not_ready
    if not current:
        log.warning("readyz: migrations pending")
        return not_ready
    return JSONResponse({"ready": True})


def _metrics_allowed(request: Request) -> bool:
    """With METRICS_TOKEN set, only `Authorization: Bearer <token>` (constant-time compare) may scrape."""
    token = request.app.state.settings.metrics_token
    if token is None:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text format (job counts read from the store at scrape time)."""
    if not _metrics_allowed(request):
        return PlainTextResponse("unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"})
    context = _runtime(request).context
    if context is None:
        return Response(b"", media_type=METRICS_CONTENT_TYPE)
    from sqlalchemy.exc import SQLAlchemyError

    try:
        context.metrics.set_job_counts(await context.store.count_jobs_by_state())
    except (SQLAlchemyError, OSError) as exc:
        log.warning("metrics: job counts unavailable: %s", exc.__class__.__name__)
    return Response(context.metrics.render(), media_type=METRICS_CONTENT_TYPE)


def _public(error: str | None) -> str | None:
    """What callers may see of a start-up error: its kind, never its text (which can name hosts and users)."""
    if error is None:
        return None
    return error.split(":", 1)[0] + " (details in the server log)"


def build_routes(extra: Sequence[BaseRoute] = ()) -> list[BaseRoute]:
    """Every route of the app, as a plain list: the app's own, then `extra` (the setup pages, from `bot.wiring`)."""
    routes: list[BaseRoute] = [
        Route("/webhook", Webhook(), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return routes + list(extra)


def _load_runtime() -> None:
    """The database layer, intake, workers and migrations: imported in a worker thread so /healthz answers now."""
    import alembic.command
    import alembic.runtime.migration  # noqa: F401

    import bot.jobs
    import bot.store.base
    import bot.webhook  # noqa: F401


async def _registry(handlers: Handlers | None, workers: int) -> Registry:
    """The workers' handlers (none are needed without workers); a builder runs in a thread (heavy imports)."""
    from bot.registry import Registry

    if workers == 0 or handlers is None:
        return Registry()
    if isinstance(handlers, Registry):
        return handlers
    return await asyncio.to_thread(handlers)


async def _start(runtime: Runtime, settings: Settings, workers: int, migrate: bool,
                 handlers: Handlers | None, poll_seconds: float,
                 background: Sequence[BackgroundTask] = ()) -> WorkerPool | None:
    """Import the database layer off the event loop, open the store, migrate, warm the clients up (in a thread),
    start workers, mark ready."""
    if settings.missing_app_settings:
        workers = 0  # setup mode: no credentials, so no job could run; leave queued jobs alone
    await asyncio.to_thread(_load_runtime)
    from sqlalchemy.exc import SQLAlchemyError

    from bot.jobs import start_pool
    from bot.metrics import Metrics
    from bot.registry import AppContext
    from bot.store.base import Store

    registry = await _registry(handlers, workers)
    store = Store.from_settings(settings)
    context = AppContext(settings, store, Metrics(), registry)
    runtime.context = context
    try:
        if migrate:
            await store.migrate()
    except (SQLAlchemyError, OSError) as exc:
        runtime.error = f"migration failed: {exc.__class__.__name__}: {exc}"
        log.error("%s", runtime.error)
        return None
    if workers:
        await context.warm_up()
    pool = await start_pool(context, workers, poll_seconds)
    if not settings.missing_app_settings:
        runtime.tasks = [asyncio.create_task(_background(task, context, runtime.stopping)) for task in background]
    gc.freeze()  # start-up objects (modules, schemas, SQLAlchemy metadata) never need collecting: shorter GC pauses
    runtime.ready.set()
    return pool


def create_app(
    settings: Settings,
    *,
    workers: int | None = None,
    migrate: bool = False,
    handlers: Handlers | None = None,
    routes: Sequence[BaseRoute] = (),
    poll_seconds: float = 1.0,
    background: Sequence[BackgroundTask] = (),
) -> Starlette:
    """Build the ASGI app with `routes` after its own; the lifespan opens the store (migrating if asked), runs
    `workers` job workers with `handlers` and the `background` tasks (neither in setup mode). `bot.wiring` passes
    the real ones; workers without handlers are refused here, so no job is ever taken and left unhandled."""
    count = settings.workers if workers is None else workers
    if count and handlers is None:
        raise ValueError("workers need handlers: create_app(..., handlers=...) (see bot.wiring)")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = Runtime()
        app.state.runtime = runtime
        if settings.missing_app_settings:
            log.warning("setup mode: missing %s", ", ".join(settings.missing_app_settings))
        startup = asyncio.create_task(_start(runtime, settings, count, migrate, handlers, poll_seconds,
                                             background))
        startup.add_done_callback(lambda task: _startup_failed(runtime, task))
        try:
            yield
        finally:
            await _shutdown(runtime, startup)

    app = Starlette(routes=build_routes(routes), lifespan=lifespan)
    app.state.settings = settings
    return app


async def _background(task: BackgroundTask, context: AppContext, stopping: asyncio.Event) -> None:
    try:
        await task(context, stopping)
    except Exception:  # a background task is an edge: its failure is logged and never stops the server
        log.exception("background task %r failed", task)


def _startup_failed(runtime: Runtime, task: asyncio.Task[WorkerPool | None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        runtime.error = f"start-up failed: {task.exception()!r}"
        log.error("%s", runtime.error, exc_info=task.exception())


async def _shutdown(runtime: Runtime, startup: asyncio.Task[WorkerPool | None]) -> None:
    """Stop the workers (finishing or releasing jobs within the grace period) and close the store."""
    if not startup.done():
        startup.cancel()
    runtime.stopping.set()
    if runtime.tasks:
        _, pending = await asyncio.wait(runtime.tasks, timeout=BACKGROUND_STOP_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*runtime.tasks, return_exceptions=True)
    pool: WorkerPool | None = None
    with contextlib.suppress(asyncio.CancelledError, Exception):  # a start-up failure was logged already
        pool = await startup
    if pool is not None:
        await pool.stop()
    if runtime.context is not None:
        await runtime.context.aclose()
        await runtime.context.store.close()
