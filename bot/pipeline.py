"""The one review path of the App and the terminal: a reviewer from settings + effective configuration + spend
gate, the diff through the core (`bot.analysis`), the review body rendered, and the review posted.

The callers differ only in where the result goes: the App (`bot.review`) posts it, completes the check run and
remembers the run (`bot.memory`); the terminal (`bot.local_review`) prints it, and posts it with `--post`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from bot.analysis import Analysis, Plan, Scope, analyse, make_scope, plan
from bot.budget import SpendGate
from bot.config.load import EffectiveConfig
from bot.context import RepoView
from bot.contract import BatchReviewer, PullContext
from bot.diff.anchor import is_placeable
from bot.diff.types import Diff
from bot.domain import NotReviewed, PullRequest, ReviewToPost, Usage, unique_paths
from bot.errors import StaleHead
from bot.evidence import dropped_note
from bot.findings import KnownFinding
from bot.github.payloads import PostedReview
from bot.github.repo import RepoClient
from bot.model.client import ModelClient
from bot.model.reviewer import Reviewer
from bot.render import Coverage, ReviewBody, RunStats, render_review_body
from bot.settings import Settings
from bot.verify import verified_note


def make_reviewer(client: ModelClient, settings: Settings, effective: EffectiveConfig,
                  gate: SpendGate | None = None) -> Reviewer:
    """The reviewer for one review: the configured model, effort and verification, the server's concurrency and
    deadline, and (in the App) the spend gate every model call passes."""
    return Reviewer(client, effective.model, effective.effort, verify=effective.config.review.verify,
                    concurrency=settings.model_concurrency, deadline_s=settings.review_deadline_seconds, gate=gate)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A review planned before any model call: what will be sent (for budgets and progress)."""

    scope: Scope
    planned: Plan
    not_reviewed: tuple[NotReviewed, ...] = ()  # left out by the source (GitHub gave no patch ...)
    head_sha: str = ""
    incremental_from: str | None = None


async def prepare(
    settings: Settings, effective: EffectiveConfig, context: PullContext, review_diff: Diff,
    anchor_diff: Diff | None = None, *, repo_url: str = "", head_sha: str = "", incremental_from: str | None = None,
    not_reviewed: Sequence[NotReviewed] = (), known: Sequence[KnownFinding] = (),
    changed_lines: Mapping[str, frozenset[int] | None] | None = None, repo_view: RepoView | None = None,
    dismissed_in: Mapping[str, int] | None = None,
) -> Prepared:
    """Scope and plan a review of `review_diff` (comments land on `anchor_diff`, by default the same diff);
    `dismissed_in`: fingerprints dismissed with a reason in the repository's other pull requests -> where."""
    scope = make_scope(
        effective, review_diff, anchor_diff or review_diff, context, batch_tokens=settings.batch_token_budget,
        known=known, changed_lines=changed_lines or {}, repo_url=repo_url, repo_view=repo_view,
        dismissed_in=dismissed_in,
    )
    planned = await asyncio.to_thread(plan, scope)  # filtering and rendering are CPU work: off the event loop
    return Prepared(scope, planned, tuple(not_reviewed), head_sha, incremental_from)


@dataclass(frozen=True, slots=True)
class Reviewed:
    """What one review found and covered, before anything is posted."""

    analysis: Analysis
    coverage: Coverage
    notes: tuple[str, ...] = field(default=())  # sentences for the review body

    @property
    def nothing_to_post(self) -> bool:
        """Nothing placed inline or in the body, and every batch answered: a clean change gets no review."""
        placement, outcome = self.analysis.placement, self.analysis.outcome
        return not placement.inline and not placement.unplaced and not (outcome and outcome.failed)


async def run(prepared: Prepared, reviewer: BatchReviewer) -> Reviewed:
    """Send the planned batches to the model and decide where every finding goes."""
    analysis = await analyse(prepared.scope, reviewer, prepared.planned)
    coverage = Coverage(analysis.reviewed, unique_paths((*prepared.not_reviewed, *analysis.not_reviewed)),
                        prepared.head_sha, prepared.incremental_from)
    return Reviewed(analysis, coverage, tuple(_notes(analysis)))


def _notes(analysis: Analysis) -> list[str]:
    """The body's sentences about findings not posted: touched by this push, without code, dropped on review."""
    notes = []
    touched = analysis.decision.touched
    if touched:  # re-checked with this push: fixed ones get a reply and their thread resolved (`bot.threads`)
        fixed, present = len(analysis.rechecked.fixed), len(analysis.rechecked.present)
        rest = len(touched) - fixed - present
        parts = [f"{fixed} fixed (thread resolved)" if fixed else "",
                 f"{present} still present (thread left open)" if present else "",
                 f"{rest} marked outdated" if rest else ""]
        notes.append(f"Earlier findings whose lines this push touched: {', '.join(p for p in parts if p)}.")
    outcome = analysis.outcome
    verified = verified_note(outcome.checked, len(outcome.dropped)) if outcome else ""
    return [*notes, *filter(None, [dropped_note(len(analysis.no_code)), verified])]


def render(reviewed: Reviewed, effective: EffectiveConfig, *, job_id: str | int, repo_url: str) -> ReviewBody:
    """The review body, as the App and the terminal post it (CPU work: callers run it in a thread)."""
    analysis = reviewed.analysis
    outcome = analysis.outcome
    return render_review_body(
        inline=[item.finding for item, _ in analysis.placement.inline],
        unplaced=analysis.placement.unplaced,
        coverage=reviewed.coverage,
        stats=RunStats(outcome.usage, outcome.cost_usd, outcome.model) if outcome else RunStats(Usage()),
        job_id=job_id,
        below_threshold=[i.finding for i in analysis.placement.below_threshold],
        min_severity=effective.config.min_inline_severity,
        suppressed=analysis.decision.suppressed_counts(),
        repo_url=repo_url,
        notes=reviewed.notes,
    )


async def post(
    gh: RepoClient, pr: PullRequest, prepared: Prepared, reviewed: Reviewed, effective: EffectiveConfig, *,
    job_id: str | int, repo_url: str,
) -> tuple[PostedReview, ReviewBody]:
    """Post one review at the reviewed head (StaleHead, nothing posted, when the head moved meanwhile)."""
    current = await gh.get_pull(pr.number)
    if current.head_sha != pr.head_sha:
        raise StaleHead(f"the head moved from {pr.head_sha[:12]} to {current.head_sha[:12]} during the review; "
                        "nothing was posted")
    # Sanitising model text is CPU work: off the event loop.
    body = await asyncio.to_thread(partial(render, reviewed, effective, job_id=job_id, repo_url=repo_url))
    comments = tuple(comment for _, comment in reviewed.analysis.placement.inline)
    posted = await gh.post_review(
        pr.number, ReviewToPost(pr.head_sha, body.text, comments),
        is_placeable=partial(is_placeable, prepared.scope.anchor_diff),
        max_inline=effective.config.max_inline_comments,
    )
    return posted, body
