"""The review pipeline of one job: re-read the PR, scope, analyse, remember, post once, report on the check run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bot import pipeline
from bot.analysis import estimated_cost
from bot.budget import daily_caps
from bot.command_jobs import reply_after_review
from bot.config.load import EffectiveConfig, load_effective_config, problems_comment
from bot.context import RepoView, wanted_dirs
from bot.contract import PullContext
from bot.diff.sources import diff_from
from bot.diff.types import Diff
from bot.domain import FindingState, NotReviewed, PullRequest, Side
from bot.errors import GitHubError, NotFound, StaleHead, Unprocessable
from bot.github.context import read_context
from bot.github.repo import RepoClient
from bot.logs import log_context
from bot.memory import CHECK_NAME, known_findings, move_open_findings, posted_before, recover, remember_run
from bot.registry import AppContext
from bot.services import Outcome, ReviewRequest, Services
from bot.spending import spend_gate, todays_caps
from bot.store.base import Store
from bot.store.types import Job
from bot.threads import acknowledge_fixed, dismiss_by_reactions
from bot.trust import automatic_review_allowed, awaiting_maintainer_text

log = logging.getLogger(__name__)

CONFIG_PROBLEM_MARKER = "<!-- senior-review:config-problem {} -->"
# Automatic triggers and the repository switch that allows each.
_AUTO_SWITCH = {
    "pull_request.opened": "on_open",
    "pull_request.reopened": "on_open",
    "pull_request.ready_for_review": "on_open",
    "pull_request.synchronize": "on_push",
    "pull_request.edited": "on_push",
}


async def handle_review_job(job: Job, context: AppContext) -> None:
    """Job handler for `review` jobs."""
    request = ReviewRequest.from_job(job)
    services = Services.of(context)
    with log_context(job=job.id, repo=f"{request.owner}/{request.repo}", pr=request.number):
        outcome = await run_review(request, services)
        log.info("review job finished: %s %s", outcome.status, outcome.detail)
        if not request.automatic:  # a command's review: say so when nothing was posted
            await reply_after_review(request, outcome, services)


async def run_review(request: ReviewRequest, services: Services) -> Outcome:
    """The whole flow of one review job (see issue "Automatic reviews end to end")."""
    gh = services.github.for_repo(request.installation_id, request.owner, request.repo)
    pr = await gh.get_pull(request.number)
    if pr.state != "open":
        await services.store.set_closed(pr.full_name, pr.number, time.time())
        return Outcome("skipped", "pull request is not open")
    if request.trigger == "pull_request.reopened":
        await services.store.set_closed(pr.full_name, pr.number, None)
    effective = await load_effective_config(
        services.config_reader(request.installation_id, gh), pr.owner, pr.repo, pr.default_branch or None,
        services.settings,
    )
    if effective.problems:
        await _report_config_problems(gh, pr.number, effective)
    skip = await _skip_reason(request, pr, effective, services.store)
    if skip:
        return Outcome("skipped", skip)
    if request.automatic:
        trust = await automatic_review_allowed(pr, effective.config, gh, services.store)
        if not trust.allowed:
            await _await_maintainer(services, gh, pr)
            return Outcome("skipped", trust.reason)
    repo_name = pr.full_name
    if await services.store.review_exists(repo_name, pr.number, pr.head_sha, request.dedupe_trigger(pr.base_sha)):
        return Outcome("duplicate", f"already reviewed {pr.head_sha[:12]}")
    posted = await posted_before(gh, pr, request.job_id) if request.attempts > 1 else None
    if posted is not None:
        await recover(services.store, gh, pr, request, posted)
        return Outcome("duplicate", "found this job's review on GitHub", posted.id)
    state = await services.store.get_pr_state(repo_name, pr.number)
    if not request.full and state.last_reviewed_sha == pr.head_sha:
        # Nothing changed since the last review; the check run of that review stands (gate included).
        return Outcome("silent", f"no new findings since {pr.head_sha[:12]}")
    check = await gh.create_check_run(pr.head_sha, CHECK_NAME, status="in_progress", title="Reviewing")
    try:
        return await _review_and_post(request, services, gh, pr, effective, check.id, state.last_reviewed_sha)
    except StaleHead:
        await gh.update_check_run(check.id, conclusion="neutral", title="Superseded",
                                  summary="The pull request's head moved during the review; the new head is reviewed.")
        return Outcome("stale", "head moved during the review")
    except BaseException:
        await _close_check_quietly(gh, check.id)
        raise


async def _skip_reason(request: ReviewRequest, pr: PullRequest, effective: EffectiveConfig, store: Store) -> str:
    """Why an automatic review does not run ('' when it does); commands are only stopped by `enabled: false`."""
    config = effective.config
    if not config.enabled:
        return "reviews are disabled by configuration"
    if not request.automatic:
        return ""
    if pr.draft and not config.review_drafts:
        return "draft pull request"
    switch = _AUTO_SWITCH.get(request.trigger)
    if switch is not None and not getattr(config.auto_review, switch):
        return f"automatic review ({switch}) is off"
    state = await store.get_pr_state(pr.full_name, pr.number)
    if state.paused:
        return "automatic reviews are paused on this pull request"
    return ""


async def _await_maintainer(services: Services, gh: RepoClient, pr: PullRequest) -> None:
    """One completed neutral check run at the head: no model call; a maintainer can ask for a review."""
    title, summary = awaiting_maintainer_text((await services.github.identity()).slug)
    await gh.create_check_run(pr.head_sha, CHECK_NAME, status="completed", conclusion="neutral", title=title,
                              summary=summary)


@dataclass(frozen=True, slots=True)
class _Scope:
    review_diff: Diff
    anchor_diff: Diff
    incremental_from: str | None
    not_reviewed: tuple[NotReviewed, ...]
    changed_lines: Mapping[str, frozenset[int] | None]


def changed_lines_of(diff: Diff) -> dict[str, frozenset[int] | None]:
    """Lines of the previous head that a push removed or rewrote (None: the file was deleted)."""
    changed: dict[str, frozenset[int] | None] = {}
    for f in diff.files:
        if f.status == "deleted":
            changed[f.old_path or f.path] = None
        else:
            changed[f.old_path or f.path] = f.commentable(Side.LEFT)
    return changed


async def _decide_scope(request: ReviewRequest, gh: RepoClient, pr: PullRequest, last: str | None) -> _Scope:
    """Whole PR on the first run, a force-push, or `full review`; else only what changed since the last head."""
    raw = await gh.get_diff(pr.number)
    pr_diff = await asyncio.to_thread(diff_from, raw.text, raw.file_entries)  # CPU work: off the event loop
    if request.full or last is None or last == pr.head_sha:
        return _Scope(pr_diff, pr_diff, None, raw.not_reviewed, {})
    try:
        comparison = await gh.compare(last, pr.head_sha)
    except (NotFound, Unprocessable):  # the old head is gone (force-push, fork): review everything
        return _Scope(pr_diff, pr_diff, None, raw.not_reviewed, {})
    if comparison.status != "ahead":  # force-push or rebase: the old head is not an ancestor
        return _Scope(pr_diff, pr_diff, None, raw.not_reviewed, {})
    incremental = await asyncio.to_thread(diff_from, comparison.diff_text, comparison.file_entries)
    # Merging the base into the head brings the base's own changes into `last...head`: they are not this PR's.
    in_pr = {f.path for f in pr_diff.files}
    own = Diff(tuple(f for f in incremental.files if f.path in in_pr))
    return _Scope(own, pr_diff, last, (*raw.not_reviewed, *comparison.not_reviewed), changed_lines_of(incremental))


async def _read_context(gh: RepoClient, pr: PullRequest, scope: _Scope) -> RepoView | None:
    """The head commit's text of each reviewed file and the listings where tests live, in one GraphQL query
    (None when GitHub cannot answer it: the review goes on without context)."""
    paths = [f.path for f in scope.review_diff.files if f.status not in ("deleted", "binary", "submodule")]
    if not paths:
        return None
    try:
        return await read_context(gh, pr.head_sha, paths, wanted_dirs(f.path for f in scope.anchor_diff.files))
    except GitHubError as exc:
        log.warning("context not read, reviewing the diff alone: %s", exc)
        return None


async def _review_and_post(
    request: ReviewRequest, services: Services, gh: RepoClient, pr: PullRequest, effective: EffectiveConfig,
    check_id: int, last_reviewed: str | None,
) -> Outcome:
    """The shared review path (`bot.pipeline`) with the App's budgets, memory and check run around it."""
    store, settings = services.store, services.settings
    scope = await _decide_scope(request, gh, pr, last_reviewed)
    await _read_reactions(services, gh, pr, effective)
    repo_url = f"{settings.web_url}/{pr.full_name}"
    prepared = await pipeline.prepare(
        settings, effective, PullContext(repo=pr.full_name, title=pr.title, body=pr.body), scope.review_diff,
        scope.anchor_diff, repo_url=repo_url, head_sha=pr.head_sha, incremental_from=scope.incremental_from,
        not_reviewed=scope.not_reviewed, known=await known_findings(store, pr), changed_lines=scope.changed_lines,
        repo_view=await _read_context(gh, pr, scope), dismissed_in=await _dismissed_elsewhere(store, pr, effective),
    )
    caps = await todays_caps(store, pr, effective.config.budgets)
    refusal = daily_caps(caps, estimated_cost(prepared.planned.estimated_tokens, effective.model))
    if not refusal.allowed:
        await gh.update_check_run(check_id, conclusion="neutral", title="Daily budget reached",
                                  summary=refusal.message)
        return Outcome("skipped", f"{refusal.scope} over its daily budget")
    reviewer = pipeline.make_reviewer(services.model_client, settings, effective,
                                      spend_gate(store, pr, request.job_id, effective, caps))
    reviewed = await pipeline.run(prepared, reviewer)
    analysis = reviewed.analysis
    if analysis.outcome is not None and services.metrics is not None:
        services.metrics.model_usage(analysis.outcome.model, analysis.outcome.usage, analysis.outcome.cost_usd)
    gate = effective.config.gate
    if reviewed.nothing_to_post:
        # A clean change gets no review at all: the coverage line and the cost go to the check run only.
        await remember_run(store, gh, pr, request, analysis, gate, reviewed.coverage, check_id, review_id=None)
        await _after_run(services, gh, pr, scope, reviewed)
        since = f" since {scope.incremental_from[:12]}" if scope.incremental_from else ""
        return Outcome("silent", f"no new findings{since}")
    posted, body = await pipeline.post(gh, pr, prepared, reviewed, effective, job_id=request.job_id,
                                       repo_url=repo_url)
    await remember_run(store, gh, pr, request, analysis, gate, reviewed.coverage, check_id, review_id=posted.id,
                       omitted=frozenset(body.omitted))
    await _after_run(services, gh, pr, scope, reviewed)
    return Outcome("posted", f"{len(posted.inline)} inline, {len(posted.moved_to_body)} moved to body", posted.id)


async def _after_run(services: Services, gh: RepoClient, pr: PullRequest, scope: _Scope,
                     reviewed: pipeline.Reviewed) -> None:
    """The findings' threads after a run: fixed ones acknowledged and resolved; after a complete incremental
    review, the open ones moved to where their lines are now."""
    analysis = reviewed.analysis
    await acknowledge_fixed(gh, pr.number, analysis.rechecked.fixed, pr.head_sha)
    complete = not (analysis.outcome and analysis.outcome.failed)
    if scope.incremental_from and complete:
        await move_open_findings(services.store, pr, scope.review_diff, scope.incremental_from)


async def _read_reactions(services: Services, gh: RepoClient, pr: PullRequest, effective: EffectiveConfig) -> None:
    """Findings still open whose comment got a writer's 👎 since the last review are dismissed before this one
    (no webhook is needed; GitHub sends none for reactions). A GitHub failure here only delays them."""
    if not effective.config.threads.dismiss_by_reaction:
        return
    records = await services.store.list_findings(pr.full_name, pr.number, states=[FindingState.OPEN.value])
    if not records:
        return
    try:
        slug = (await services.github.identity()).slug
        await dismiss_by_reactions(gh, services.store, pr.number, slug, [r.fingerprint for r in records])
    except GitHubError as exc:
        log.warning("reactions not read; dismissals by 👎 wait for the next review: %s", exc)


async def _dismissed_elsewhere(store: Store, pr: PullRequest, effective: EffectiveConfig) -> dict[str, int]:
    """Fingerprints dismissed with a reason in the repository's other pull requests -> where."""
    if not effective.config.threads.remember_dismissals:
        return {}
    return {fp: n for fp, n in (await store.dismissed_fingerprints(pr.full_name)).items() if n != pr.number}


async def _report_config_problems(gh: RepoClient, number: int, effective: EffectiveConfig) -> None:
    """One comment per distinct configuration problem set on this PR (never the same error twice)."""
    key = "-".join(sorted(p.fingerprint for p in effective.problems))[:200]
    marker = CONFIG_PROBLEM_MARKER.format(key)
    existing = await gh.list_issue_comments(number)
    if any(c.is_own and marker in c.body for c in existing):
        return
    await gh.create_issue_comment(number, problems_comment(effective.problems) + "\n\n" + marker)


async def _close_check_quietly(gh: RepoClient, check_id: int) -> None:
    """Leave no check run spinning when a review fails; the job system retries and reports."""
    try:
        await gh.update_check_run(check_id, conclusion="neutral", title="Review interrupted",
                                  summary="The review failed and will be retried.")
    except Exception:  # noqa: BLE001 - best effort: the original error is the one that matters
        log.warning("could not close check run %s", check_id)
