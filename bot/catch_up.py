"""Catch up after downtime: open pull requests whose head the App neither reviewed nor has a review job for are
recorded as `pull_request` events through the webhook's own intake (`bot.webhook.record_event`), so drafts,
configuration, trust rules and budgets apply exactly as to a delivered webhook.

Each installation's repositories (at most `CATCH_UP_MAX_REPOSITORIES` per pass) are listed, then their open pull
requests. A pull request is enqueued when its head has no recorded review, no queued or running review job,
and no review by the App on GitHub; at most `CATCH_UP_MAX_REVIEWS` per pass. The event gets a delivery id made
from the pull request, its head and its draft flag, so one head is enqueued once however many passes see it
(the same intake dedupe a redelivered webhook meets); a draft marked ready is a new event.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.github.hooks import AppHooks
from bot.registry import AppContext
from bot.store.types import pr_key
from bot.webhook import record_event

log = logging.getLogger(__name__)

MAX_INSTALLATIONS = 1_000
MAX_PULLS_PER_REPOSITORY = 300
DELIVERY_PREFIX = "catchup-"


@dataclass
class CatchUpSummary:
    """What one catch-up pass saw and did."""

    repositories: int = 0
    open_pulls: int = 0
    reviewed: int = 0
    pending: int = 0
    seen_before: int = 0
    enqueued: int = 0
    not_enqueued: int = 0
    capped: bool = False

    def text(self) -> str:
        """One line for the task's row and the log."""
        cap = "; stopped at the per-pass cap" if self.capped else ""
        return (f"catch-up: {self.repositories} repositories, {self.open_pulls} open pull requests: "
                f"{self.reviewed} reviewed, {self.pending} pending, {self.seen_before} caught up before, "
                f"{self.enqueued} enqueued, {self.not_enqueued} not enqueued by intake rules{cap}")


def delivery_id(full_name: str, number: int, head_sha: str, draft: bool) -> str:
    """The catch-up's delivery id of one pull request head (stable, at most 64 characters)."""
    digest = hashlib.sha256(f"{full_name}#{number}@{head_sha}:{int(draft)}".encode()).hexdigest()
    return DELIVERY_PREFIX + digest[:40]


def event_payload(pull: Mapping[str, Any], repository: Mapping[str, Any], installation_id: int,
                  action: str) -> dict[str, Any]:
    """A `pull_request` event as GitHub would send it for this pull request (the author as sender)."""
    return {"action": action, "number": pull.get("number"), "pull_request": dict(pull),
            "repository": dict(repository), "installation": {"id": installation_id},
            "sender": pull.get("user") or {}}


async def catch_up_once(context: AppContext, hooks: AppHooks, renew: Callable[[], Awaitable[None]]) -> CatchUpSummary:
    """One pass over every installation; `renew` keeps the task's lease between repositories."""
    settings = context.settings
    summary = CatchUpSummary()
    for installation in await hooks.installations(MAX_INSTALLATIONS):
        if installation.get("suspended_at") or not isinstance(installation.get("id"), int):
            continue
        left = settings.catch_up_max_repositories - summary.repositories
        if left <= 0:
            break
        for repository in await hooks.repositories(int(installation["id"]), left):
            if repository.get("archived"):
                continue
            summary.repositories += 1
            await _repository(context, hooks, int(installation["id"]), repository, summary)
            if summary.capped:
                return summary
            await renew()
    return summary


async def _repository(context: AppContext, hooks: AppHooks, installation_id: int, repository: Mapping[str, Any],
                      summary: CatchUpSummary) -> None:
    owner, name = str((repository.get("owner") or {}).get("login") or ""), str(repository.get("name") or "")
    if not owner or not name:
        return
    for pull in await hooks.open_pulls(installation_id, owner, name, MAX_PULLS_PER_REPOSITORY):
        summary.open_pulls += 1
        if summary.enqueued >= context.settings.catch_up_max_reviews:
            summary.capped = True
            return
        await _pull(context, hooks, installation_id, repository, pull, summary)


async def _pull(context: AppContext, hooks: AppHooks, installation_id: int, repository: Mapping[str, Any],
                pull: Mapping[str, Any], summary: CatchUpSummary) -> None:
    store = context.store
    owner, name = str(repository["owner"]["login"]), str(repository["name"])
    full_name, number = f"{owner}/{name}", pull.get("number")
    head = (pull.get("head") or {}).get("sha")
    if not isinstance(number, int) or not isinstance(head, str) or not head:
        return
    if await store.reviewed_at(full_name, number, head):
        summary.reviewed += 1
        return
    if await store.review_pending(pr_key(owner, name, number)):
        summary.pending += 1
        return
    delivery = delivery_id(full_name, number, head, bool(pull.get("draft")))
    if await store.delivery_status(delivery) is not None:
        summary.seen_before += 1
        return
    if await hooks.reviewed_by_app(installation_id, owner, name, number, head):
        summary.reviewed += 1
        return
    # Never reviewed: what GitHub says when a PR opens; reviewed at an older head: what it says on a push.
    action = "synchronize" if (await store.get_pr_state(full_name, number)).last_reviewed_sha else "opened"
    outcome = await record_event(context, "pull_request", delivery, event_payload(pull, repository,
                                                                                   installation_id, action))
    if outcome == "accepted":
        summary.enqueued += 1
        log.info("caught up on %s#%d at %s (%s)", full_name, number, head[:12], action)
    else:
        summary.not_enqueued += 1
