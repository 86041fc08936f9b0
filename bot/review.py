"""The review pipeline of one job: re-read the PR, scope, analyse, remember, post once, report on the check run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from bot.analysis import Analysis, analyse, estimated_cost, make_scope, plan
from bot.budget import daily_caps
from bot.command_jobs import reply_after_review
from bot.config.load import EffectiveConfig, load_effective_config, problems_comment
from bot.context import RepoView, wanted_dirs
from bot.contract import PullContext
from bot.diff import Diff, diff_from, is_placeable
from bot.domain import FindingState, NotReviewed, PullRequest, ReviewToPost, Side, Usage, unique_paths
from bot.errors import GitHubError, NotFound, StaleHead, Unprocessable
from bot.evidence import dropped_note
from bot.github.context import read_context
from bot.github.payloads import Review
from bot.github.repo import RepoClient
from bot.logs import log_context
from bot.memory import known_findings, remember_run
from bot.model import Reviewer
from bot.registry import AppContext
from bot.render import Coverage, RunStats, markers_in, render_review_body, review_markers_in
from bot.services import CHECK_NAME, Outcome, ReviewRequest, Services
from bot.spending import spend_gate, todays_caps
from bot.store.base import Store
from bot.store.types import FindingRecord, Job, ReviewRecord
from bot.trust import automatic_review_allowed, awaiting_maintainer_text
from bot.verify import verified_note

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
    posted = await _posted_before(gh, request, pr) if request.attempts > 1 else None
    if posted is not None:
        await _recover(services.store, gh, pr, request, posted)
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


async def _posted_before(gh: RepoClient, request: ReviewRequest, pr: PullRequest) -> Review | None:
    """After a crash between posting and recording: GitHub's copy of this job's review at this head, if any."""
    for review in await gh.list_reviews(pr.number):
        if not review.is_own:
            continue
        for marker in review_markers_in(review.body):
            if str(marker.job_id) == str(request.job_id) and marker.sha == pr.head_sha:
                return review
    return None


async def _recover(
    store: Store, gh: RepoClient, pr: PullRequest, request: ReviewRequest, review: Review
) -> None:
    """Rebuild what the crashed run did not record from what it posted: its findings (by their markers, in the
    bot's own comments and body), the review, the last head, and a completed check run."""
    found: dict[str, tuple[str, int]] = {fp: ("", 0) for fp in markers_in(review.body)}
    for comment in await gh.list_review_comments(pr.number):
        if comment.is_own and comment.review_id == review.id:
            for fp in markers_in(comment.body):
                found[fp] = (comment.path, comment.line or 0)
    await store.upsert_findings([
        FindingRecord(repo=pr.full_name, pr=pr.number, fingerprint=fp, path=path, line=line,
                      state=FindingState.OPEN.value, first_seen_sha=pr.head_sha, last_seen_sha=pr.head_sha)
        for fp, (path, line) in found.items()
    ])
    await store.record_review(ReviewRecord(
        repo=pr.full_name, pr=pr.number, head_sha=pr.head_sha, trigger=request.dedupe_trigger(pr.base_sha),
        github_review_id=review.id, job_id=request.job_id, findings_count=len(found), created_at=time.time(),
    ))
    await store.set_last_reviewed_sha(pr.full_name, pr.number, pr.head_sha)
    # Severities are not in the markers: the gate cannot be recomputed, so the check says where to look.
    await gh.create_check_run(pr.head_sha, CHECK_NAME, status="completed", conclusion="neutral",
                              title=f"{len(found)} findings posted",
                              summary="Recovered after an interruption; see the review for details.")


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
    store, settings = services.store, services.settings
    scope = await _decide_scope(request, gh, pr, last_reviewed)
    known = await known_findings(store, pr)
    repo_url = f"{settings.web_url}/{pr.full_name}"
    context = PullContext(repo=pr.full_name, title=pr.title, body=pr.body)
    analysis_scope = make_scope(
        effective, scope.review_diff, scope.anchor_diff, context, batch_tokens=settings.batch_token_budget,
        known=known, changed_lines=scope.changed_lines, repo_url=repo_url,
        repo_view=await _read_context(gh, pr, scope),
    )
    planned = await asyncio.to_thread(plan, analysis_scope)  # filtering and rendering: off the event loop
    caps = await todays_caps(store, pr, effective.config.budgets)
    refusal = daily_caps(caps, estimated_cost(planned.estimated_tokens, effective.model))
    if not refusal.allowed:
        await gh.update_check_run(check_id, conclusion="neutral", title="Daily budget reached",
                                  summary=refusal.message)
        return Outcome("skipped", f"{refusal.scope} over its daily budget")
    reviewer = Reviewer(services.model_client, effective.model, effective.effort, verify=effective.config.review.verify,
                        concurrency=settings.model_concurrency, deadline_s=settings.review_deadline_seconds,
                        gate=spend_gate(store, pr, request.job_id, effective, caps))
    analysis = await analyse(analysis_scope, reviewer, planned)
    if analysis.outcome is not None and services.metrics is not None:
        services.metrics.model_usage(analysis.outcome.model, analysis.outcome.usage, analysis.outcome.cost_usd)
    not_reviewed = (*scope.not_reviewed, *analysis.not_reviewed)
    coverage = Coverage(analysis.reviewed, unique_paths(not_reviewed), pr.head_sha, scope.incremental_from)
    nothing_new = not analysis.placement.inline and not analysis.placement.unplaced
    failed = bool(analysis.outcome and analysis.outcome.failed)
    if nothing_new and not failed:
        # A clean change gets no review at all: the coverage line and the cost go to the check run only.
        await remember_run(store, gh, pr, request, analysis, effective.config.gate, coverage, check_id, review_id=None)
        since = f" since {scope.incremental_from[:12]}" if scope.incremental_from else ""
        return Outcome("silent", f"no new findings{since}")
    current = await gh.get_pull(pr.number)
    if current.head_sha != pr.head_sha:
        raise StaleHead(f"head moved from {pr.head_sha[:12]} to {current.head_sha[:12]}")
    outcome = analysis.outcome
    body = await asyncio.to_thread(partial(  # sanitising model text is CPU work: off the event loop
        render_review_body,
        inline=[item.finding for item, _ in analysis.placement.inline],
        unplaced=analysis.placement.unplaced,
        coverage=coverage,
        stats=RunStats(outcome.usage, outcome.cost_usd, outcome.model) if outcome else RunStats(Usage()),
        job_id=request.job_id,
        below_threshold=[i.finding for i in analysis.placement.below_threshold],
        min_severity=effective.config.min_inline_severity,
        suppressed=analysis.decision.suppressed_counts(),
        repo_url=repo_url,
        notes=[*_touched_notes(analysis), *filter(None, [dropped_note(len(analysis.no_code)),
                                                             _verified_note(analysis)])],
    ))
    comments = tuple(comment for _, comment in analysis.placement.inline)
    posted = await gh.post_review(
        pr.number, ReviewToPost(pr.head_sha, body.text, comments),
        is_placeable=partial(is_placeable, scope.anchor_diff), max_inline=effective.config.max_inline_comments,
    )
    await remember_run(store, gh, pr, request, analysis, effective.config.gate, coverage, check_id, review_id=posted.id,
                  omitted=frozenset(body.omitted))
    return Outcome("posted", f"{len(posted.inline)} inline, {len(posted.moved_to_body)} moved to body", posted.id)


def _verified_note(analysis: Analysis) -> str:
    """The verification pass's sentence for the body ('' when it dropped nothing)."""
    outcome = analysis.outcome
    return verified_note(outcome.checked, len(outcome.dropped)) if outcome else ""


def _touched_notes(analysis: Analysis) -> list[str]:
    """One sentence about earlier findings whose lines this push changed or deleted."""
    touched = analysis.decision.touched
    if not touched:
        return []
    changed = sum(1 for t in touched if t.how.value == "changed")
    deleted = len(touched) - changed
    parts = [f"{changed} changed" if changed else "", f"{deleted} in deleted files" if deleted else ""]
    return [f"Earlier findings whose lines this push touched: {', '.join(p for p in parts if p)} "
            "(marked outdated; not raised again unless the problem is still there)."]


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
