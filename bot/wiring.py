"""The one place the App is assembled: each job kind's handler, the dead-letter hook, the setup routes and the
reconciler, passed explicitly to the web app (`bot.app.create_app`) and the worker processes (`bot.jobs`).

Nothing is loaded by name. The pipeline's modules import githubkit and anthropic, so `job_handlers` is handed to
the app as a function it runs in a thread: /healthz answers while they load.
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette

from bot.app import BackgroundTask, create_app
from bot.errors import ConfigError
from bot.github.setup import setup_routes
from bot.registry import AppContext, Registry
from bot.settings import Settings
from bot.store.types import JobKind


def job_handlers() -> Registry:
    """A handler for every job kind that is stored, and the hook telling a PR its job died (heavy imports: run it
    off the event loop)."""
    from bot.command_jobs import handle_command_job, report_dead_job
    from bot.review import handle_review_job
    from bot.thread_jobs import handle_thread_job

    registry = Registry()
    registry.register(JobKind.REVIEW, handle_review_job)
    registry.register(JobKind.COMMAND, handle_command_job)
    registry.register(JobKind.THREAD, handle_thread_job)
    registry.on_dead_letter(report_dead_job)
    return registry


async def reconcile(context: AppContext, stopping: asyncio.Event) -> None:
    """`serve`'s background task: the reconciler (`bot.reconcile`), its imports off the event loop."""

    def load() -> BackgroundTask:
        from bot.reconcile import run_reconciler

        return run_reconciler

    await (await asyncio.to_thread(load))(context, stopping)


def build_app(settings: Settings, *, workers: int | None = None, migrate: bool = False) -> Starlette:
    """The App as `serve` runs it: webhook intake, `workers` in-process workers, the setup pages, the reconciler."""
    return create_app(settings, workers=workers, migrate=migrate, handlers=job_handlers,
                      routes=setup_routes(settings), background=(reconcile,))


def serve(settings: Settings, host: str | None, port: int | None, workers: int | None, migrate: bool) -> int:
    """`python -m bot serve`: uvicorn with the App, migrating on start unless told not to."""
    import uvicorn

    uvicorn.run(
        build_app(settings, workers=workers, migrate=migrate),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
    )
    return 0


def run_workers(settings: Settings, count: int | None = None) -> int:
    """`python -m bot worker`: workers only (scale-out on PostgreSQL); returns the exit code."""
    from bot.jobs import run_workers as run

    missing = [name for name in settings.missing_app_settings if name != "GITHUB_WEBHOOK_SECRET"]
    if missing:
        raise ConfigError("workers need the GitHub App settings: missing " + ", ".join(missing))
    return run(settings, count or settings.workers or 1, job_handlers())
