"""Thread jobs: a finding's review thread was resolved (never raise it again) or unresolved (open again)."""

from __future__ import annotations

import logging

from bot.commands import ALLOWED_PERMISSIONS, lookup_permission
from bot.domain import FindingState
from bot.registry import AppContext
from bot.render import markers_in
from bot.services import Services
from bot.store.types import Job

log = logging.getLogger(__name__)


async def handle_thread_job(job: Job, context: AppContext) -> None:
    """A finding's thread was resolved (never raise it again) or unresolved (open again)."""
    services = Services.of(context)
    own = (await services.github.identity()).bot_login
    installation, sender = job.installation_id, str(job.payload.get("sender") or "")
    if installation is None or not sender:
        return
    # Only people who may merge decide that a finding is settled: otherwise a PR's author could resolve the
    # bot's threads and turn the check-run gate green.
    gh = services.github.for_repo(installation, job.owner, job.repo)
    if await lookup_permission(gh, sender) not in ALLOWED_PERMISSIONS:
        log.info("thread %s by %s ignored: no write access", job.payload.get("state"), sender)
        return
    state = FindingState.RESOLVED if job.payload.get("state") == "resolved" else FindingState.OPEN
    for comment in job.payload.get("comments") or []:
        if comment.get("author") != own:  # markers in other people's comments are not ours to trust
            continue
        for fingerprint in markers_in(str(comment.get("body") or "")):
            await services.store.set_finding_state(job.full_name, job.pr, fingerprint, state.value)
