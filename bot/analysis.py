"""The review's core, shared by the App and the terminal: diff -> filter -> budget -> batches -> model -> findings.

No GitHub I/O here: the App pipeline (`bot.review`) adds reading, memory and posting around it, and the local
`review` command prints what it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from bot.budget import apply_budget, token_budget
from bot.config.globs import instructions_for
from bot.config.load import EffectiveConfig
from bot.context import RepoView
from bot.context_render import ContextStats, add_context, related_order
from bot.contract import BatchInput, BatchReviewer, EarlierFinding, PullContext, ReviewOutcome
from bot.diff.anchor import Anchor, Unanchorable, anchor
from bot.diff.batches import make_batches
from bot.diff.filter import filter_files
from bot.diff.render import estimate_tokens, render_file
from bot.diff.types import Diff, FileDiff
from bot.domain import Category, Finding, NotReviewed, Severity, Side, unique_paths
from bot.evidence import check_evidence
from bot.findings import (
    Decision,
    Fingerprinted,
    KnownFinding,
    Placement,
    decide,
    fingerprint_all,
    place,
    touched_by_push,
)
from bot.followup import Rechecked, attach_earlier, drop_repeats, earlier_for, judge
from bot.merge import merge
from bot.prices import DEFAULT_PRICES
from bot.prompts import batch_prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scope:
    """What to review and how: the diff the model sees, the diff comments may land on, and the knobs."""

    review_diff: Diff
    anchor_diff: Diff
    context: PullContext
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    default_excludes: bool = True
    max_review_tokens: int = 400_000
    batch_tokens: int = 60_000
    min_severity: Severity = Severity.LOW
    max_inline: int = 25
    categories: frozenset[Category] = frozenset(Category)
    known: tuple[KnownFinding, ...] = ()
    changed_lines: Mapping[str, frozenset[int] | None] = field(default_factory=dict)
    repo_url: str = ""
    repo_view: RepoView | None = None  # the head commit's files and listings: context for the model
    # Fingerprints a writer dismissed with a reason in another pull request of the repository -> its number.
    dismissed_in: Mapping[str, int] = field(default_factory=dict)
    recheck: bool = True  # re-check open findings whose lines this push changed (`threads.resolve_fixed`)


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything one review run produced, before anything is posted."""

    reviewed: tuple[str, ...]
    not_reviewed: tuple[NotReviewed, ...]
    outcome: ReviewOutcome | None
    decision: Decision
    placement: Placement
    disabled_category: tuple[Finding, ...] = ()
    no_code: tuple[Finding, ...] = ()  # evidence not in this change: dropped (counted in the body)
    merged: int = 0  # findings folded into another comment (same place, repeats past the cap, tests per module)
    rechecked: Rechecked = field(default_factory=Rechecked)  # earlier findings whose lines this push changed

    @property
    def posted_findings(self) -> tuple[Fingerprinted, ...]:
        """Findings that go to GitHub, inline or in the body."""
        return tuple(item for item, _ in self.placement.inline) + tuple(
            Fingerprinted(u.finding, u.fingerprint) for u in self.placement.unplaced
        )


def make_scope(
    effective: EffectiveConfig,
    review_diff: Diff,
    anchor_diff: Diff,
    context: PullContext,
    *,
    batch_tokens: int,
    known: Sequence[KnownFinding] = (),
    changed_lines: Mapping[str, frozenset[int] | None] | None = None,
    repo_url: str = "",
    repo_view: RepoView | None = None,
    dismissed_in: Mapping[str, int] | None = None,
) -> Scope:
    """A Scope from the effective repository configuration (budgets, filters, thresholds, instructions)."""
    config = effective.config
    price = DEFAULT_PRICES.get(effective.model)
    # Output tokens are few next to input; blend in a 10% share at the output price to stay conservative.
    blended = (price.input_per_mtok * 0.9 + price.output_per_mtok * 0.1) if price else 0.0
    max_tokens = token_budget(config.budgets.max_tokens_per_review, config.budgets.max_cost_usd_per_review, blended)
    paths = [f.path for f in review_diff.files]
    instructions = instructions_for(config.instructions, paths)
    if instructions and not context.instructions:
        context = PullContext(context.repo, context.title, context.body, instructions, config.language)
    elif context.language != config.language:
        context = PullContext(context.repo, context.title, context.body, context.instructions, config.language)
    return Scope(
        review_diff=review_diff,
        anchor_diff=anchor_diff,
        context=context,
        include=tuple(config.paths.include),
        exclude=tuple(config.paths.exclude),
        default_excludes=config.paths.default_excludes,
        max_review_tokens=max_tokens,
        batch_tokens=batch_tokens,
        min_severity=config.min_inline_severity,
        max_inline=config.max_inline_comments,
        categories=config.categories.enabled,
        known=tuple(known),
        changed_lines=dict(changed_lines or {}),
        repo_url=repo_url,
        repo_view=repo_view,
        dismissed_in=dict(dismissed_in or {}),
        recheck=config.threads.resolve_fixed,
    )


def line_text_of(diff: Diff) -> Callable[[str, Side, int], str | None]:
    """A lookup (path, side, line) -> the line's text, for fingerprinting findings by the code they cite. A file's
    table is built when a finding first cites it: a review cites few of its files, and 100,000 kept entries would
    lengthen every garbage collection."""
    tables: dict[tuple[str, Side], dict[int, str]] = {}

    def text(path: str, side: Side, line: int) -> str | None:
        table = tables.get((path, side))
        if table is None:
            f = diff.file(path)
            table = tables[(path, side)] = _line_table(f, side) if f is not None else {}
        return table.get(line)

    return text


def _line_table(f: FileDiff, side: Side) -> dict[int, str]:
    """Line number -> text of the lines of `f` a comment on `side` may cite."""
    table: dict[int, str] = {}
    for hunk in f.hunks:
        for line in hunk.lines:
            if side is Side.RIGHT and line.kind != "-" and line.new_no is not None:
                table[line.new_no] = line.text
            elif side is Side.LEFT and line.kind == "-" and line.old_no is not None:
                table[line.old_no] = line.text
    return table


def select_files(scope: Scope) -> tuple[list[FileDiff], list[NotReviewed]]:
    """Apply path filters and the per-review token budget (riskiest files first); every file left out has a reason."""
    files, skipped = filter_files(scope.review_diff, scope.include, scope.exclude, defaults=scope.default_excludes)
    sizes = [(f.path, estimate_tokens(render_file(f))) for f in files]
    cut = apply_budget(sizes, scope.max_review_tokens)
    kept = set(cut.kept)
    return [f for f in files if f.path in kept], [*skipped, *cut.not_reviewed]


def batch_inputs(files: Iterable[FileDiff], batch_tokens: int) -> list[BatchInput]:
    """Render and pack files into the model's batches."""
    return [BatchInput(b.index, b.text, b.files) for b in make_batches(list(files), batch_tokens)]


@dataclass(frozen=True, slots=True)
class Plan:
    """What a review will send, known before any model call (for budgets).

    `estimated_tokens` is the input-token estimate of every batch's message (the cached system prompt not
    counted).
    """

    files: tuple[FileDiff, ...]
    not_reviewed: tuple[NotReviewed, ...]
    batches: tuple[BatchInput, ...]
    estimated_tokens: int = 0
    context: ContextStats = field(default_factory=ContextStats)
    earlier: tuple[EarlierFinding, ...] = ()  # open findings whose lines this push changed, to re-check


def plan(scope: Scope) -> Plan:
    """Select and batch the files of `scope` (related files together), each batch with its files' context, and
    the earlier findings whose lines this push changed added to the batches that show their files."""
    files, not_reviewed = select_files(scope)
    files = related_order(files, scope.repo_view)
    batches = batch_inputs(files, scope.batch_tokens)
    stats = ContextStats()
    if scope.repo_view is not None:
        changed = [f.path for f in scope.anchor_diff.files]
        batches, stats = add_context(batches, files, scope.repo_view, changed, scope.batch_tokens)
    earlier = earlier_for(touched_by_push(scope.known, scope.changed_lines)) if scope.recheck else ()
    if earlier:
        batches = attach_earlier(batches, earlier, recheck_texts(scope, {e.path for e in earlier}))
    estimate = sum(estimate_batch(scope.context, b) for b in batches)
    return Plan(tuple(files), tuple(not_reviewed), tuple(batches), estimate, stats, earlier)


def recheck_texts(scope: Scope, paths: set[str]) -> dict[str, str]:
    """This push's rendered diff of each file in `paths` that fits in one batch (for a recheck-only request)."""
    texts: dict[str, str] = {}
    for f in scope.review_diff.files:
        if f.path in paths and f.hunks:
            text = render_file(f)
            if estimate_tokens(text) <= scope.batch_tokens:
                texts[f.path] = text
    return texts


def estimate_batch(context: PullContext, batch: BatchInput) -> int:
    """Estimated input tokens of the message sent for `batch`: its diff plus the prompt around it."""
    frame = batch_prompt(repo=context.repo, title=context.title, body=context.body, files=batch.files, diff="",
                         instructions=context.instructions, language=context.language, earlier=batch.earlier,
                         recheck_only=batch.recheck_only)
    return estimate_tokens(frame.text) + estimate_tokens(batch.text)


def estimated_cost(tokens: int, model: str) -> float:
    """USD for `tokens` input tokens plus a 10% share of output, at the model's list price (0 when unknown)."""
    price = DEFAULT_PRICES.get(model)
    if price is None:
        return 0.0
    return tokens * (price.input_per_mtok + 0.1 * price.output_per_mtok) / 1_000_000


async def analyse(scope: Scope, reviewer: BatchReviewer, planned: Plan | None = None) -> Analysis:
    """Run one review over `scope` with `reviewer` and decide where every finding goes."""
    if planned is None:  # filtering and rendering are CPU work: off the event loop
        planned = await asyncio.to_thread(plan, scope)
    files, not_reviewed, batches = list(planned.files), list(planned.not_reviewed), list(planned.batches)
    outcome = await reviewer.review(scope.context, batches) if batches else None
    failed = outcome.not_reviewed if outcome else ()
    failed_paths = {n.path for n in failed}
    reviewed = tuple(f.path for f in files if f.path not in failed_paths)
    not_reviewed = [*not_reviewed, *unique_paths(failed)]
    checked = check_evidence(outcome.findings if outcome else (), scope.anchor_diff)
    merged = merge(checked.kept)
    findings = merged.findings
    disabled = tuple(f for f in findings if f.category not in scope.categories)
    rechecked = judge(planned.earlier, outcome)
    # Sanitising and rendering model text is CPU work: off the event loop that answers webhooks.
    decision, placement = await asyncio.to_thread(
        decide_and_place, scope, [f for f in findings if f.category in scope.categories],
        (*rechecked.present, *rechecked.unchecked),
    )
    if checked.dropped or checked.moved or merged.merged:
        log.info("findings checked", extra={"no_code": len(checked.dropped), "moved": checked.moved,
                                            "merged": merged.merged})
    return Analysis(reviewed, tuple(not_reviewed), outcome, decision, placement, disabled, checked.dropped,
                    merged.merged, rechecked)


def decide_and_place(
    scope: Scope, findings: Sequence[Finding], still_open: Sequence[EarlierFinding] = ()
) -> tuple[Decision, Placement]:
    """Fingerprint findings by the code they cite, drop what was said before (an earlier finding still open under
    the same title included), and place the rest."""
    items = fingerprint_all(findings, line_text_of(scope.anchor_diff))
    items, repeats = drop_repeats(items, still_open)
    decision = decide(items, scope.known, scope.changed_lines, scope.dismissed_in)
    decision = Decision(decision.post, (*decision.suppressed, *repeats), decision.touched)
    placement = place(
        decision.post,
        _anchor_fn(scope),
        min_severity=scope.min_severity,
        max_inline=scope.max_inline,
        repo_url=scope.repo_url,
    )
    return decision, placement


def _anchor_fn(scope: Scope) -> Callable[[str, int, int, Side], Anchor | Unanchorable]:
    """Anchor against the PR diff; on incremental runs LEFT lines cite the previous head, not the base: body."""
    full = partial(anchor, scope.anchor_diff)
    if scope.review_diff is scope.anchor_diff:
        return full

    def incremental(path: str, start: int, end: int, side: Side) -> Anchor | Unanchorable:
        if side is Side.LEFT:
            return Unanchorable(path, "cites a removed line of the previous push, which the pull request's diff "
                                      "does not show")
        return full(path, start, end, side)

    return incremental
