"""What the bot remembers between runs of a pull request: reviews, findings, spend; the check run's verdict; and
rebuilding that memory from GitHub after a crash between posting a review and recording it."""

from __future__ import annotations

import time
from typing import Protocol

from bot.analysis import Analysis
from bot.diff.types import Diff
from bot.domain import FindingState, PullRequest, Severity, Side, Usage
from bot.findings import KnownFinding
from bot.followup import moved_range
from bot.github.payloads import Review, ReviewComment
from bot.render import Coverage, check_conclusion, markers_in, render_check_summary, review_markers_in
from bot.store.base import Store
from bot.store.types import FindingRecord, ReviewRecord

CHECK_NAME = "Senior backend review"


class RunRequest(Protocol):
    """The parts of a review request the memory needs."""

    @property
    def job_id(self) -> int:
        """The job running the review."""
        ...

    @property
    def attempts(self) -> int:
        """How many times the job has been claimed."""
        ...

    def dedupe_trigger(self, base_sha: str) -> str:
        """The exactly-once key's trigger."""
        ...


class CheckRuns(Protocol):
    """What completing the check run needs from the GitHub client."""

    async def update_check_run(self, run_id: int, *, status: str | None = None, conclusion: str | None = None,
                               title: str = "", summary: str = "") -> object:
        """Update (and with a conclusion, complete) a check run."""
        ...


class ReviewHistory(CheckRuns, Protocol):
    """What recovering a crashed run needs from the GitHub client."""

    async def list_reviews(self, number: int) -> tuple[Review, ...]:
        """Every review of the pull request (the bot's own flagged)."""
        ...

    async def list_review_comments(self, number: int) -> tuple[ReviewComment, ...]:
        """Every review comment of the pull request (the bot's own flagged)."""
        ...

    async def create_check_run(self, head_sha: str, name: str, *, status: str = "in_progress",
                               conclusion: str | None = None, title: str = "", summary: str = "",
                               details_url: str | None = None) -> object:
        """Create a check run at `head_sha`."""
        ...


#: Characters of a finding's text kept for re-checking it on a later push.
KEPT_BODY_CHARS = 1_000


async def known_findings(store: Store, pr: PullRequest) -> list[KnownFinding]:
    """Every finding stored for this pull request, as the dedupe logic sees them."""
    return [
        KnownFinding(r.fingerprint, FindingState(r.state), r.path, r.start_line or r.line or 0, r.line or 0,
                     Side.RIGHT, r.title or "", r.body or "", r.category or "")
        for r in await store.list_findings(pr.full_name, pr.number)
    ]


async def remember_run(
    store: Store, gh: CheckRuns, pr: PullRequest, request: RunRequest, analysis: Analysis,
    gate: Severity | None, coverage: Coverage, check_id: int, *, review_id: int | None,
    omitted: frozenset[str] = frozenset(),
) -> None:
    """Record the run (findings, touched ones, the review, the last head) and complete the check run.

    When a batch failed, the last reviewed head does not move, so the next run covers those changes again (its
    findings memory keeps it from repeating what this run posted).
    """
    outcome = analysis.outcome
    usage = outcome.usage if outcome else Usage()
    failed = bool(outcome and outcome.failed)
    posted = [item for item in analysis.posted_findings if item.fingerprint not in omitted]
    await store.upsert_findings([
        FindingRecord(
            repo=pr.full_name, pr=pr.number, fingerprint=item.fingerprint, path=item.finding.path,
            line=item.finding.end_line, state=FindingState.OPEN.value, first_seen_sha=pr.head_sha,
            last_seen_sha=pr.head_sha, severity=item.finding.severity.value,
            category=item.finding.category.value, title=item.finding.title[:200],
            start_line=min(item.finding.start_line, item.finding.end_line), body=item.finding.body[:KEPT_BODY_CHARS],
        )
        for item in posted
    ])
    # Earlier findings this push touched: fixed ones are settled (see `bot.threads` for the reply), ones still
    # present stay open, and the rest (unchecked, or in a deleted file) are outdated as before.
    fixed = {e.fingerprint for e in analysis.rechecked.fixed}
    present = {e.fingerprint for e in analysis.rechecked.present}
    for touched in analysis.decision.touched:
        fp = touched.known.fingerprint
        if fp in present:
            continue
        state = FindingState.FIXED if fp in fixed else FindingState.OUTDATED
        await store.set_finding_state(pr.full_name, pr.number, fp, state.value, only_from=[FindingState.OPEN.value])
    await store.record_review(ReviewRecord(
        repo=pr.full_name, pr=pr.number, head_sha=pr.head_sha, trigger=request.dedupe_trigger(pr.base_sha),
        github_review_id=review_id, job_id=request.job_id, findings_count=len(posted),
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_input_tokens, cache_write_tokens=usage.cache_creation_input_tokens,
        cost_usd=outcome.cost_usd if outcome else 0.0, created_at=time.time(),
    ))
    if not failed:
        await store.set_last_reviewed_sha(pr.full_name, pr.number, pr.head_sha)
    by_severity: dict[Severity, int] = {}
    for record in await store.list_findings(pr.full_name, pr.number, states=[FindingState.OPEN.value]):
        if record.severity:
            severity = Severity(record.severity)
            by_severity[severity] = by_severity.get(severity, 0) + 1
    title, summary = render_check_summary(open_by_severity=by_severity, coverage=coverage, gate=gate)
    outcome = analysis.outcome
    if outcome is not None:  # the run's cost reaches the check run even when no review is posted
        u = outcome.usage
        tokens = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens + u.output_tokens
        summary += f" Run: {tokens:,} tokens, ${outcome.cost_usd:,.4f}."
    conclusion = check_conclusion(by_severity, gate, complete=not failed)
    await gh.update_check_run(check_id, conclusion=conclusion, title=title, summary=summary)


async def posted_before(gh: ReviewHistory, pr: PullRequest, job_id: int) -> Review | None:
    """After a crash between posting and recording: GitHub's copy of this job's review at this head, if any."""
    for review in await gh.list_reviews(pr.number):
        if not review.is_own:
            continue
        for marker in review_markers_in(review.body):
            if str(marker.job_id) == str(job_id) and marker.sha == pr.head_sha:
                return review
    return None


async def recover(store: Store, gh: ReviewHistory, pr: PullRequest, request: RunRequest, review: Review) -> None:
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


async def move_open_findings(store: Store, pr: PullRequest, push: Diff, from_sha: str) -> int:
    """After a complete incremental review of `from_sha`..head: every open finding recorded at `from_sha` moves to
    where its lines are at the head (renamed files followed), so the next push is compared with the right lines.
    Findings recorded at another head (a full review since, a failed run) are left alone. Returns those moved."""
    by_old_path = {f.old_path or f.path: f for f in push.files}
    moved = 0
    for record in await store.list_findings(pr.full_name, pr.number, states=[FindingState.OPEN.value]):
        if record.last_seen_sha != from_sha or record.line is None:
            continue
        start = record.start_line or record.line
        changed = by_old_path.get(record.path)
        lo, hi = moved_range(start, record.line, changed.hunks) if changed is not None else (start, record.line)
        path = changed.path if changed is not None else record.path
        await store.set_finding_lines(pr.full_name, pr.number, record.fingerprint, lo, hi, pr.head_sha, path=path)
        moved += (lo, hi, path) != (start, record.line, record.path)
    return moved
