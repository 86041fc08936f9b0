"""What every job handler gets: the registry (job kind -> handler, dead-letter hooks) and the typed app context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.settings import Settings
from bot.store.types import Job

if TYPE_CHECKING:  # githubkit, anthropic and SQLAlchemy load with their users (clients on first use), not here
    from bot.config.reader import ConfigCache
    from bot.github.auth import GitHubApp
    from bot.metrics import Metrics
    from bot.model.client import ModelClient
    from bot.store.base import Store

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    """Long-lived objects shared by the web app, the workers and the reconciler (built in the app's lifespan).

    The GitHub and Claude clients are created on first use (`github_app()`, `model_client()`), so a process that
    only takes webhooks never imports githubkit or anthropic; tests set them to clients pointed at the fakes.
    """

    settings: Settings
    store: Store
    metrics: Metrics
    registry: Registry
    github: GitHubApp | None = None
    model: ModelClient | None = None
    org_config_cache: ConfigCache = field(default_factory=dict)  # the organisation's configuration layer
    large_body_slots: asyncio.Semaphore | None = None  # webhook intake: large unverified bodies read at a time
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set by intake: a job was queued

    def github_app(self) -> GitHubApp:
        """The GitHub App client, created on first use (each call it makes is counted in the metrics)."""
        if self.github is None:
            from bot.github.auth import GitHubApp

            self.github = GitHubApp(self.settings)
            self.github.on_response = self.metrics.github_call
        return self.github

    def model_client(self) -> ModelClient:
        """The Claude API client, created on first use."""
        if self.model is None:
            from bot.model.client import make_client

            self.model = make_client(self.settings)
        return self.model

    async def warm_up(self) -> None:
        """Create the GitHub and Claude clients and do their libraries' first-use work now, in a thread: TLS
        contexts, the App key, lazy imports and response validators, about half a second of CPU that the first
        job's event loop would otherwise wait on. Call it before any worker starts (it sets the clients)."""
        try:
            await asyncio.to_thread(self._warm_up)
        except Exception:  # start-up (an edge): only an optimisation; the first job does this work instead
            log.warning("warming up the GitHub and Claude clients failed; the first job will do it", exc_info=True)

    def _warm_up(self) -> None:
        from bot.model.client import warm_up

        self.github_app().warm_up()
        self.model_client()
        warm_up()

    async def aclose(self) -> None:
        """Close the clients created so far (a failure is logged, and the rest are still closed)."""
        if self.github is not None:
            try:
                await self.github.aclose()
            except Exception:  # shutting down (an edge): log and carry on closing the rest
                log.warning("closing the GitHub client failed", exc_info=True)
        if self.model is not None:
            try:
                await self.model.close()
            except Exception:  # shutting down (an edge): log and carry on
                log.warning("closing the Claude client failed", exc_info=True)


Handler = Callable[[Job, AppContext], Coroutine[Any, Any, None]]
# A dead-letter hook gets the public sentence (`bot.incidents`): never the exception's text.
DeadLetterHook = Callable[[Job, str, AppContext], Awaitable[None]]


@dataclass
class Registry:
    """Job kind -> handler, plus the hooks told about jobs that went dead. A kind without a handler is an error:
    its jobs go dead (`bot.jobs`), they are never marked done unhandled."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    dead_letter_hooks: list[DeadLetterHook] = field(default_factory=list)

    def register(self, kind: str, handler: Handler) -> None:
        """Handle jobs of `kind` with `handler` (replacing any earlier one)."""
        self.handlers[kind] = handler

    def on_dead_letter(self, hook: DeadLetterHook) -> None:
        """Call `hook(job, reason, context)` when a job goes dead (post a comment or a failed check run)."""
        self.dead_letter_hooks.append(hook)
