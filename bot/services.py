"""What the App's job handlers share: typed services, a review job's request and outcome, the configuration reader.

`bot.review` (the review job), `bot.command_jobs` (commands, dead-letter replies) and `bot.thread_jobs` import
this module; `bot.command_jobs` never imports `bot.review`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.config.reader import ConfigCache, ConfigReader, RepoFiles
from bot.github.auth import GitHubApp
from bot.github.repo import RepoClient
from bot.metrics import Metrics
from bot.model.client import ModelClient
from bot.registry import AppContext
from bot.settings import Settings
from bot.store.base import Store
from bot.store.types import Job

AUTOMATIC = "auto"


@dataclass
class Services:
    """The long-lived clients a handler needs, owned by the app's lifespan (or a test)."""

    settings: Settings
    store: Store
    github: GitHubApp
    model_client: ModelClient
    org_config_cache: ConfigCache = field(default_factory=dict)
    metrics: Metrics | None = None  # the app's metrics, when running inside it

    @classmethod
    def of(cls, context: AppContext) -> Services:
        """The context's services (its clients are created on first use and kept on the context)."""
        return cls(context.settings, context.store, context.github_app(), context.model_client(),
                   context.org_config_cache, context.metrics)

    def config_reader(self, installation_id: int, gh: RepoClient) -> ConfigReader:
        """The configuration layers of `gh`'s repository, the organisation's read with the same installation."""

        @asynccontextmanager
        async def open_repo(owner: str, repo: str) -> AsyncIterator[RepoFiles]:
            yield self.github.for_repo(installation_id, owner, repo)  # shares the App's connection pool

        return ConfigReader(gh, open_repo, self.org_config_cache, scope=installation_id)


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """What a review job asks for, read from its stored payload."""

    job_id: int
    installation_id: int
    owner: str
    repo: str
    number: int
    trigger: str
    full: bool = False
    comment_id: int | None = None
    comment_source: str | None = None
    attempts: int = 1

    @property
    def automatic(self) -> bool:
        """A webhook-triggered review (not a command)."""
        return not self.trigger.startswith("command")

    def dedupe_trigger(self, base_sha: str) -> str:
        """The exactly-once key's trigger: automatic runs share one per (head, base); each command has its own."""
        return f"{AUTOMATIC}:{base_sha}" if self.automatic else f"command:{self.comment_id}"

    @classmethod
    def from_job(cls, job: Job) -> ReviewRequest:
        """Read a review job's payload (written by routing or by a command)."""
        p = job.payload
        return cls(
            job_id=job.id,
            installation_id=int(p["installation_id"]),
            owner=str(p["owner"]),
            repo=str(p["repo"]),
            number=int(p["pr"]),
            trigger=str(p.get("trigger") or job.trigger),
            # A changed base branch changes the whole diff: review all of it.
            full=bool(p.get("full")) or str(p.get("trigger") or job.trigger) == "pull_request.edited",
            comment_id=int(p["comment_id"]) if p.get("comment_id") is not None else None,
            comment_source=p.get("source"),
            attempts=job.attempts,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a review run did, for the caller (commands reply from it) and for tests."""

    status: str  # posted, silent, skipped, stale, duplicate
    detail: str = ""
    review_id: int | None = None
