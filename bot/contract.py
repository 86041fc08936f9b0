"""What the review core asks of a model reviewer and what it gets back (no I/O, no SDK: `bot.model` implements it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.domain import Finding, NotReviewed, Usage


@dataclass(frozen=True, slots=True)
class PullContext:
    """What the prompt says about the pull request; `instructions` is the owner's trusted configuration text."""

    repo: str
    title: str
    body: str
    instructions: str = ""
    language: str = "English"


@dataclass(frozen=True, slots=True)
class EarlierFinding:
    """A finding posted on an earlier push whose lines this push changed, shown to the model to re-check.

    `id` (`E1`, `E2`, ...) is what the model answers with; lines are as of the previously reviewed head. `title`
    and `body` are the earlier model text: data in the prompt, never instructions.
    """

    id: str
    fingerprint: str
    path: str
    start_line: int
    end_line: int
    category: str
    title: str
    body: str = ""


@dataclass(frozen=True, slots=True)
class Recheck:
    """The model's judgement of one earlier finding: gone (`fixed`) or still there, with its one-line reason."""

    id: str
    fixed: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BatchInput:
    """One batch: rendered diff text (with line-number gutters) and the files it covers.

    `earlier`: findings of earlier pushes on these files to re-check; `recheck_only`: the batch exists only for
    them (a file with nothing else to review), so findings in its answer are not used.
    """

    index: int
    text: str
    files: tuple[str, ...]
    earlier: tuple[EarlierFinding, ...] = ()
    recheck_only: bool = False


@dataclass(frozen=True, slots=True)
class Dropped:
    """A finding the verification pass dropped, and the model's one-line reason (logged, never posted)."""

    finding: Finding
    reason: str


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """The result for (part of) one batch; `error` set means its files were not reviewed, and why."""

    index: int
    files: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    summary: str = ""
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    checked: int = 0  # findings the verification pass looked at
    dropped: tuple[Dropped, ...] = ()  # findings it dropped
    sent: tuple[str, ...] = ()  # ids of the earlier findings the request showed (only those may be answered)
    rechecks: tuple[Recheck, ...] = ()  # the answer's judgements of them, unvalidated
    recheck_only: bool = False


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    """Every batch's outcome plus the review's totals."""

    batches: tuple[BatchOutcome, ...]
    usage: Usage
    cost_usd: float
    model: str
    calls: int
    verify_usage: Usage = field(default_factory=Usage)  # the verification turns' share of `usage`
    verify_cost_usd: float = 0.0  # ... and of `cost_usd`

    @property
    def dropped(self) -> tuple[Dropped, ...]:
        """Findings the verification pass dropped, in batch order."""
        return tuple(d for b in self.batches if b.error is None for d in b.dropped)

    @property
    def checked(self) -> int:
        """Findings the verification pass looked at."""
        return sum(b.checked for b in self.batches if b.error is None)

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Findings of every batch that was reviewed, in batch order."""
        return tuple(f for b in self.batches if b.error is None for f in b.findings)

    @property
    def failed(self) -> tuple[BatchOutcome, ...]:
        """Outcomes whose files were not reviewed (a failed re-check of earlier findings is not a review)."""
        return tuple(b for b in self.batches if b.error is not None and not b.recheck_only)

    @property
    def not_reviewed(self) -> tuple[NotReviewed, ...]:
        """The files of failed outcomes, each with the reason."""
        return tuple(NotReviewed(path, b.error or "") for b in self.failed for path in b.files)


class BatchReviewer(Protocol):
    """Reviews the batches of one pull request (`bot.model.Reviewer` is the real one)."""

    async def review(self, context: PullContext, batches: Sequence[BatchInput]) -> ReviewOutcome:
        """Review every batch; failures of single batches are outcomes, failures of the review raise."""
        ...


Splitter = Callable[[BatchInput], Sequence[BatchInput]]


def split_batch(batch: BatchInput) -> list[BatchInput]:
    """Split a batch into two halves at the file boundary nearest the middle (else the line nearest it).

    A file boundary is a line that starts with a file's path, or with a `FILE `/`diff --git`/`+++ `/`--- ` header
    mentioning one. Each half keeps the batch's index and the files whose path its text mentions. Returns a
    single element when the text cannot be split.
    """
    lines = batch.text.splitlines(keepends=True)
    if len(lines) < 2:
        return [batch]
    boundaries = [i for i, line in enumerate(lines) if i > 0 and _starts_file(line, batch.files)]
    candidates = boundaries or list(range(1, len(lines)))
    middle = len(lines) / 2
    cut = min(candidates, key=lambda i: abs(i - middle))
    halves = ("".join(lines[:cut]), "".join(lines[cut:]))
    out: list[BatchInput] = []
    for text in halves:
        files = tuple(f for f in batch.files if f in text) or batch.files
        earlier = tuple(e for e in batch.earlier if e.path in files)  # each half re-checks what it shows
        out.append(BatchInput(batch.index, text, files, earlier, batch.recheck_only))
    return out


def _starts_file(line: str, files: Sequence[str]) -> bool:
    stripped = line.lstrip("#= ").removeprefix("FILE ").removeprefix("diff --git ")
    stripped = stripped.removeprefix("+++ ").removeprefix("--- ")
    stripped = stripped.removeprefix("a/").removeprefix("b/")
    return any(stripped.startswith(path) for path in files)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a call gate admitted: the call's `max_tokens` (0: refused, over budget) and the USD it reserved."""

    max_tokens: int
    reserved_usd: float = 0.0


class CallGate(Protocol):
    """Checks each model call against the budgets before it is made, and records what it paid right after."""

    async def admit(self, input_tokens: int, max_tokens: int) -> Grant:
        """The call's allowance for this input estimate (max_tokens lowered to fit; 0 when nothing fits)."""
        ...

    async def settle(self, grant: Grant, usage: Usage) -> None:
        """Release the reservation and record what the call cost (`Usage()` when it was not paid)."""
        ...
