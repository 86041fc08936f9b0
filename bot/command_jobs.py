"""Carrying out `@app` commands from PR comments, and telling a PR when its review job died.

Kept apart from `bot.commands` (the pure grammar and permission rules) because this module does the I/O:
GitHub reads and replies, the store's command log, and queueing review jobs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.commands import (
    ACTION_KINDS,
    REVIEW_KINDS,
    THREAD_KINDS,
    Command,
    CommandCounts,
    CommandKind,
    decide,
    is_writer,
    lookup_permission,
    not_in_thread_text,
    parse_command,
    thread_command,
)
from bot.config.load import load_effective_config
from bot.domain import is_bot
from bot.github.payloads import ReviewComment
from bot.github.repo import RepoClient
from bot.logs import log_context
from bot.memory import CHECK_NAME
from bot.registry import AppContext
from bot.render import markers_in
from bot.services import Outcome, ReviewRequest, Services
from bot.store.intake import REPLAY_WINDOW_SECONDS
from bot.store.types import Job, JobKind, JobSpec
from bot.thread_answers import Question, answer_in_thread
from bot.threads import dismiss
from bot.trust import automatic_review_allowed

log = logging.getLogger(__name__)

HOUR = 3600.0
REFUSED_PREFIX = "refused:"
# A writer's command refused by the per-PR limit is logged without the `refused:` prefix, so that the PR's count
# passes the limit and only the first one over it is answered (refusals of other kinds must not count: readers
# would otherwise use up a PR's budget).
PR_LIMITED_PREFIX = "limited:"


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A comment that may hold a command, as routing stored it."""

    installation_id: int
    owner: str
    repo: str
    number: int
    comment_id: int
    source: str  # "issue_comment" or "review_comment"
    body: str
    author: str
    author_type: str
    in_reply_to_id: int | None = None  # a reply in a review thread: the comment it answers

    @property
    def in_thread(self) -> bool:
        """A reply in a review thread (where dismissals and questions are made)."""
        return self.source == "review_comment" and self.in_reply_to_id is not None

    @classmethod
    def from_job(cls, job: Job) -> CommandRequest:
        """Read a command job's payload."""
        p = job.payload
        return cls(
            installation_id=int(p["installation_id"]),
            owner=str(p["owner"]),
            repo=str(p["repo"]),
            number=int(p["pr"]),
            comment_id=int(p["comment_id"]),
            source=str(p.get("source") or "issue_comment"),
            body=str(p.get("body") or ""),
            author=str(p.get("author") or ""),
            author_type=str(p.get("author_type") or "User"),
            in_reply_to_id=int(p["in_reply_to_id"]) if p.get("in_reply_to_id") is not None else None,
        )


async def handle_command_job(job: Job, context: AppContext) -> None:
    """Job handler for `command` jobs: parse, authorise, rate-limit, acknowledge, act, reply."""
    request = CommandRequest.from_job(job)
    services = Services.of(context)
    with log_context(job=job.id, repo=f"{request.owner}/{request.repo}", pr=request.number):
        identity = await services.github.identity()
        if request.in_thread:  # a reply in a thread: a visible mention is a question when the thread is ours
            command = thread_command(request.body, identity.slug)
        else:
            command = parse_command(request.body, identity.slug)
        if command is None or is_bot(request.author, request.author_type, identity.slug):
            return
        # At most once per comment: a replayed delivery's job finds it recorded (a retry of this job goes on);
        # a comment older than the replay window is a replay too (its record may have been pruned since).
        if _too_old(str(job.payload.get("created_at") or ""), time.time()):
            log.info("comment %s is older than the replay window: ignored", request.comment_id)
            return
        if job.attempts == 1 and await services.store.command_seen(request.comment_id):
            log.info("comment %s was handled before (a replayed delivery): ignored", request.comment_id)
            return
        gh = services.github.for_repo(request.installation_id, request.owner, request.repo)
        root = await _own_root(gh, request) if command.kind in THREAD_KINDS else None
        if command.kind is CommandKind.QUESTION and root is None:
            return  # a mention in someone else's thread: not ours to answer
        pr = await gh.get_pull(request.number)
        effective = await load_effective_config(
            services.config_reader(request.installation_id, gh), pr.owner, pr.repo, pr.default_branch or None,
            services.settings,
        )
        store = services.store
        since = time.time() - HOUR
        counts = CommandCounts(
            by_user=await store.count_commands(pr.full_name, since, user=request.author),
            accepted_on_pr=await store.count_commands(pr.full_name, since, pr=pr.number, accepted_only=True),
        )
        permission = await lookup_permission(gh, request.author)
        author_may_review = True
        if (command.kind in REVIEW_KINDS or command.kind is CommandKind.QUESTION) and not is_writer(permission):
            # The PR author's own review or question: the same rule as automatic reviews.
            author_may_review = (await automatic_review_allowed(pr, effective.config, gh, store)).allowed
        decision = decide(
            command, commenter_login=request.author, commenter_type=request.author_type, permission=permission,
            pr_author=pr.author, app_slug=identity.slug, config=effective, counts=counts,
            author_may_review=author_may_review,
        )
        if decision.allowed:
            logged = command.kind.value
        elif decision.reason.startswith("rate limited (pull request"):
            logged = PR_LIMITED_PREFIX + command.kind.value
        else:
            logged = REFUSED_PREFIX + command.kind.value
        thread_id = root.id if root is not None else None
        if not await store.log_command(pr.full_name, pr.number, request.author, logged,
                                       comment_id=request.comment_id, thread_id=thread_id) and job.attempts == 1:
            return  # a concurrent job for the same comment recorded it first
        log.info("command %s from %s: %s", command.kind.value, request.author, decision.reason)
        if decision.allowed and command.kind in ACTION_KINDS:
            await gh.add_reaction(request.comment_id, "eyes", review_comment=request.source == "review_comment")
            await _act(command.kind, request, services, pr.head_sha, context)
        if decision.allowed and command.kind in THREAD_KINDS:
            await _in_thread(command, request, services, gh, effective, pr, root, job.id)
            return
        if (decision.reply and thread_id is not None and not decision.allowed
                and await store.thread_has_command(thread_id, logged, before_comment=request.comment_id)):
            return  # refused once in this thread already: silence
        if decision.reply:
            await reply(gh, request, decision.reply)


async def _own_root(gh: RepoClient, request: CommandRequest) -> ReviewComment | None:
    """The first comment of the thread the command was made in, when the App wrote it and it carries a finding
    marker (markers in anyone else's comment are not trusted); None otherwise."""
    if not request.in_thread:
        return None
    comments = {c.id: c for c in await gh.list_review_comments(request.number)}
    root = comments.get(request.in_reply_to_id or 0)
    if root is not None and root.in_reply_to_id is not None:
        root = comments.get(root.in_reply_to_id)
    if root is None or not root.is_own or not markers_in(root.body):
        return None
    return root


async def _in_thread(command: Command, request: CommandRequest, services: Services, gh: RepoClient,
                     effective: Any, pr: Any, root: ReviewComment | None, job_id: int) -> None:
    """Carry out a dismissal or answer a question in the finding's thread (`root`, the App's comment)."""
    if root is None:  # `dismiss` outside one of the App's finding threads
        await reply(gh, request, not_in_thread_text((await services.github.identity()).slug))
        return
    if command.kind is CommandKind.DISMISS:
        for fingerprint in sorted(markers_in(root.body)):
            await dismiss(gh, services.store, pr.number, fingerprint, root.id, by=request.author,
                          reason=command.argument, remember=effective.config.threads.remember_dismissals,
                          path=root.path)
        return
    await answer_in_thread(
        store=services.store, settings=services.settings, model_client=services.model_client, gh=gh, pr=pr,
        effective=effective, root=root, question=Question(request.comment_id, request.author, command.argument),
        job_id=job_id,
    )


def _too_old(created_at: str, now: float) -> bool:
    """True when a comment's ISO 8601 `created_at` (as GitHub sends it) is older than REPLAY_WINDOW_SECONDS."""
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False  # absent or unreadable: the comment-id record and the body hash still apply
    return created < now - REPLAY_WINDOW_SECONDS


async def _act(kind: CommandKind, request: CommandRequest, services: Services, head_sha: str,
               context: AppContext) -> None:
    """Pause/resume now; queue a review job for `review` / `full review` (coalesced with automatic ones)."""
    repo = f"{request.owner}/{request.repo}"
    if kind in (CommandKind.PAUSE, CommandKind.RESUME):
        await services.store.set_paused(repo, request.number, kind is CommandKind.PAUSE)
        gh = services.github.for_repo(request.installation_id, request.owner, request.repo)
        text = ("Automatic reviews are paused on this pull request; commands still work."
                if kind is CommandKind.PAUSE else "Automatic reviews are back on for this pull request.")
        await reply(gh, request, text)
        return
    spec = JobSpec(
        kind=JobKind.REVIEW, installation_id=request.installation_id, owner=request.owner, repo=request.repo,
        pr=request.number, trigger=f"command.{kind.value.replace(' ', '_')}", head_sha=head_sha,
        data={"full": kind is CommandKind.FULL_REVIEW, "comment_id": request.comment_id, "source": request.source},
    )
    job_id = await services.store.enqueue(spec)
    queued = await services.store.get_job(job_id)
    if queued is not None and queued.payload.get("comment_id") != request.comment_id:
        # The store coalesced this command into a review already queued for the same head (an automatic one, which
        # a paused PR skips, or another command): replace that job so the command is carried out. Without a head
        # sha the store supersedes the queued job instead of merging; a full review stays full.
        full = spec.data["full"] or bool(queued.payload.get("full"))
        await services.store.enqueue(replace(spec, head_sha=None, data={**spec.data, "full": full}))
    context.wake.set()


async def reply(gh: RepoClient, request: CommandRequest, text: str) -> None:
    """Answer in the same place: a thread reply for review comments, a conversation comment otherwise."""
    await _reply_at(gh, request.number, request.comment_id, request.source, text)


async def _reply_at(gh: RepoClient, number: int, comment_id: int, source: str | None, text: str) -> None:
    if source == "review_comment":
        await gh.reply_to_review_comment(number, comment_id, text)
    else:
        await gh.create_issue_comment(number, text)


_NO_NEW = "no new findings since "


async def reply_after_review(request: ReviewRequest, outcome: Outcome, services: Services) -> None:
    """After a command-triggered review: a brief reply in the command's place when the run posted nothing.

    `silent` (nothing new since the last review) -> "No new findings since `<sha>`."; `skipped` -> why. A posted
    review is its own answer; `duplicate` means this command was already answered; `stale` leaves the new head
    to the job that reviews it. Automatic runs never reply.
    """
    if request.automatic or request.comment_id is None:
        return
    if outcome.status == "silent" and outcome.detail.startswith(_NO_NEW):
        text = f"No new findings since `{outcome.detail[len(_NO_NEW):]}`."
    elif outcome.status == "silent":
        text = "No new findings."
    elif outcome.status == "skipped":
        text = f"No review: {outcome.detail}."
    else:
        return
    gh = services.github.for_repo(request.installation_id, request.owner, request.repo)
    await _reply_at(gh, request.number, request.comment_id, request.comment_source, text)


async def report_dead_job(job: Job, public: str, context: AppContext) -> None:
    """Dead-letter hook: the PR learns that its review (or command) gave up, in a fixed sentence with an incident
    id (`public`, from `bot.incidents`); the exception text stays in the logs."""
    installation = job.installation_id
    if installation is None or job.kind not in (JobKind.REVIEW, JobKind.COMMAND):
        return
    services = Services.of(context)
    gh = services.github.for_repo(installation, job.owner, job.repo)
    slug = (await services.github.identity()).slug
    if job.kind == JobKind.COMMAND:
        text = f"Sorry, this command could not be carried out. {public}"
        await _reply_at(gh, job.pr, int(job.payload["comment_id"]), job.payload.get("source"), text)
        return
    summary = (f"The review failed {job.attempts} times and was given up. {public} "
               f"Comment `@{slug} review` to try again.")
    if job.head_sha:
        run = await gh.create_check_run(job.head_sha, CHECK_NAME, status="completed", conclusion="failure",
                                        title="Review failed", summary=summary)
        log.warning("review job %s is dead; reported on check run %s", job.id, run.id)
    else:
        await gh.create_issue_comment(job.pr, summary)
