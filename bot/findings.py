"""What happens to findings between the model and GitHub: fingerprints, memory/dedupe decisions, placement.

All pure: the diff is reached only through callables the pipeline passes in (`line_text`, `anchor_fn`).

Fingerprint = sha256 over (version, path, category, normalised cited code, normalised title), first 20 hex chars.
* Code: each cited line stripped, inner whitespace runs collapsed to one space, blank lines dropped. Comments are
  kept (stripping them needs a parser per language and `#`/`//` occur inside strings and URLs).
* Title: Unicode NFKC, case-folded, every run of non-alphanumerics (punctuation, markdown, whitespace) collapsed to
  one space. Numbers are kept ("N+1 query", "timeout of 30s" are different problems).
* Not included: line numbers (code that moves keeps its fingerprint), body wording, severity, side.
Fingerprints are computed from the model's raw finding (before sanitising), so changes to the sanitiser never
change them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot.domain import Finding, FindingState, InlineComment, Severity, Side
from bot.render import Unplaced, render_comment

FINGERPRINT_LENGTH = 20
MAX_INLINE = 25
NARROWED_NOTE = "_A suggested change was withheld: only part of the cited lines can carry a comment._"

LineText = Callable[[str, Side, int], str | None]
AnchorFn = Callable[[str, int, int, Side], object]


# --- fingerprints -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fingerprinted:
    """A finding with its fingerprint."""

    finding: Finding
    fingerprint: str


def normalise_code(lines: Iterable[str]) -> str:
    """Cited code with whitespace collapsed per line and blank lines dropped."""
    kept = (" ".join(line.split()) for line in lines)
    return "\n".join(line for line in kept if line)


def normalise_title(title: str) -> str:
    """Title case-folded with punctuation, markdown and whitespace collapsed to single spaces (numbers kept)."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", folded).split())


def fingerprint(finding: Finding, code_lines: Sequence[str]) -> str:
    """Stable id of a problem: path, category, normalised code on the cited lines, normalised title."""
    material = "\x00".join(
        ["v1", finding.path, finding.category.value, normalise_code(code_lines), normalise_title(finding.title)]
    )
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:FINGERPRINT_LENGTH]


def cited_code(finding: Finding, line_text: LineText) -> list[str]:
    """The text of the finding's cited lines, via `line_text(path, side, line)` (lines it does not know skipped)."""
    lo, hi = sorted((finding.start_line, finding.end_line))
    texts = (line_text(finding.path, finding.side, n) for n in range(lo, min(hi, lo + 200) + 1))
    return [t for t in texts if t is not None]


def fingerprint_all(findings: Iterable[Finding], line_text: LineText) -> list[Fingerprinted]:
    """Fingerprint each finding with the code it cites."""
    return [Fingerprinted(f, fingerprint(f, cited_code(f, line_text))) for f in findings]


# --- memory and dedupe --------------------------------------------------------------------------------------------


class SuppressReason(StrEnum):
    """Why a new finding is not posted (shown as counts in the review body)."""

    ALREADY_OPEN = "already open"
    RESOLVED = "resolved earlier"
    DISMISSED = "dismissed earlier"
    OUTDATED = "raised before (comment outdated)"
    DUPLICATE = "duplicate in this review"
    DISMISSED_IN_REPO = "dismissed in an earlier pull request"


class Touch(StrEnum):
    """How a push affected the lines of an open finding."""

    CHANGED = "changed"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class KnownFinding:
    """A finding posted earlier on this pull request, as stored (lines as of the previously reviewed head)."""

    fingerprint: str
    state: FindingState
    path: str = ""
    start_line: int = 0
    end_line: int = 0
    side: Side = Side.RIGHT
    title: str = ""
    body: str = ""  # the start of the finding's text as posted (model text: shown to the model as data only)
    category: str = ""


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A new finding that is not posted, and why (`note`: the body's wording when it says more than the reason)."""

    item: Fingerprinted
    reason: SuppressReason
    note: str = ""


@dataclass(frozen=True, slots=True)
class Touched:
    """An open finding whose lines this push changed or deleted."""

    known: KnownFinding
    how: Touch


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one run's findings."""

    post: tuple[Fingerprinted, ...]
    suppressed: tuple[Suppressed, ...]
    touched: tuple[Touched, ...]

    def suppressed_counts(self) -> dict[str, int]:
        """Suppressed findings counted by reason (for the review body)."""
        counts: dict[str, int] = {}
        for s in self.suppressed:
            key = s.note or s.reason.value
            counts[key] = counts.get(key, 0) + 1
        return counts


# A human's decision outranks our own state: dismissed/resolved win over open, open over outdated and fixed.
_STATE_PRECEDENCE = {
    FindingState.DISMISSED: 5,
    FindingState.RESOLVED: 4,
    FindingState.OPEN: 3,
    FindingState.OUTDATED: 2,
    FindingState.FIXED: 1,
}
_STATE_REASON = {
    FindingState.OPEN: SuppressReason.ALREADY_OPEN,
    FindingState.RESOLVED: SuppressReason.RESOLVED,
    FindingState.DISMISSED: SuppressReason.DISMISSED,
    FindingState.OUTDATED: SuppressReason.OUTDATED,
}


def _overlaps(a: Finding, b: Finding) -> bool:
    """Whether two findings cite intersecting lines of the same file and side with the same category."""
    if (a.path, a.side, a.category) != (b.path, b.side, b.category):
        return False
    a_lo, a_hi = sorted((a.start_line, a.end_line))
    b_lo, b_hi = sorted((b.start_line, b.end_line))
    return a_lo <= b_hi and b_lo <= a_hi


def collapse_duplicates(items: Sequence[Fingerprinted]) -> tuple[list[Fingerprinted], list[Fingerprinted]]:
    """(kept, dropped): same fingerprint, or overlapping lines with the same category, keep the most severe."""
    order = sorted(range(len(items)), key=lambda i: -items[i].finding.severity.rank)  # stable: first wins ties
    kept_idx: list[int] = []
    dropped_idx: list[int] = []
    for i in order:
        item = items[i]
        clash = any(
            items[k].fingerprint == item.fingerprint or _overlaps(items[k].finding, item.finding) for k in kept_idx
        )
        (dropped_idx if clash else kept_idx).append(i)
    return [items[i] for i in sorted(kept_idx)], [items[i] for i in sorted(dropped_idx)]


def known_states(known: Iterable[KnownFinding]) -> dict[str, FindingState]:
    """Fingerprint -> state, the human decision winning when a fingerprint was stored more than once."""
    states: dict[str, FindingState] = {}
    for k in known:
        current = states.get(k.fingerprint)
        if current is None or _STATE_PRECEDENCE[k.state] > _STATE_PRECEDENCE[current]:
            states[k.fingerprint] = k.state
    return states


def touched_by_push(
    known: Iterable[KnownFinding], changed_lines: Mapping[str, frozenset[int] | None]
) -> list[Touched]:
    """Open RIGHT-side findings whose lines this push changed or deleted.

    `changed_lines` maps a path to the line numbers (in the previously reviewed head) that the push removed or
    modified, or to None when the push deleted the file. LEFT-side findings cite the base, which a push does not
    change.
    """
    out: list[Touched] = []
    for k in known:
        if k.state is not FindingState.OPEN or k.side is not Side.RIGHT or k.path not in changed_lines:
            continue
        lines = changed_lines[k.path]
        lo, hi = sorted((k.start_line, k.end_line))
        if lines is None:
            out.append(Touched(k, Touch.DELETED))
        elif any(lo <= n <= hi for n in lines):
            out.append(Touched(k, Touch.CHANGED))
    return out


def decide(
    new: Sequence[Fingerprinted],
    known: Iterable[KnownFinding] = (),
    changed_lines: Mapping[str, frozenset[int] | None] | None = None,
    dismissed_in: Mapping[str, int] | None = None,
) -> Decision:
    """Which new findings to post, which to suppress (and why), and which open findings this push touched.

    A fingerprint already open is not posted again; resolved or dismissed ones are never re-raised; outdated ones
    (their comment no longer on the diff, not resolved by anyone) are not repeated either. A fixed one is posted
    again: its code changed and the same code is back. `dismissed_in` maps fingerprints a writer dismissed with a
    reason in another pull request of the repository to that pull request's number: not posted, counted.
    """
    known = list(known)
    states = known_states(known)
    kept, dupes = collapse_duplicates(new)
    post: list[Fingerprinted] = []
    suppressed = [Suppressed(d, SuppressReason.DUPLICATE) for d in dupes]
    elsewhere = dismissed_in or {}
    for item in kept:
        state = states.get(item.fingerprint)
        if state is not None and state is not FindingState.FIXED:
            suppressed.append(Suppressed(item, _STATE_REASON[state]))
        elif item.fingerprint in elsewhere:
            note = f"dismissed earlier in #{elsewhere[item.fingerprint]}"
            suppressed.append(Suppressed(item, SuppressReason.DISMISSED_IN_REPO, note))
        else:
            post.append(item)
    touched = touched_by_push(known, changed_lines or {})
    return Decision(tuple(post), tuple(suppressed), tuple(touched))


# --- placement ----------------------------------------------------------------------------------------------------


@runtime_checkable
class AnchorLike(Protocol):
    """What `bot.diff.anchor.anchor` returns for a placeable range."""

    path: str
    line: int
    side: Side
    start_line: int | None
    start_side: Side | None


@runtime_checkable
class UnanchorableLike(Protocol):
    """What `bot.diff.anchor.anchor` returns when a range cannot carry a comment."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Placement:
    """Where each finding goes: inline, the review body (with a reason), or only counted (below the threshold)."""

    inline: tuple[tuple[Fingerprinted, InlineComment], ...]
    unplaced: tuple[Unplaced, ...]
    below_threshold: tuple[Fingerprinted, ...]


def place(
    items: Sequence[Fingerprinted],
    anchor_fn: AnchorFn,
    *,
    min_severity: Severity = Severity.LOW,
    max_inline: int = MAX_INLINE,
    repo_url: str = "",
    render: Callable[[Finding, str], str] | None = None,
) -> Placement:
    """Anchor findings, most severe first: inline up to `max_inline`, the rest and unanchorable ones to the body.

    `anchor_fn(path, start_line, end_line, side)` is `functools.partial(bot.diff.anchor.anchor, diff)`. Findings below
    `min_severity` are not posted but returned for counting in the body (nothing accepted is dropped silently).
    When the anchor covers other lines than the finding cites (narrowed to one hunk), its suggestion is withheld:
    applied to fewer lines it would corrupt the code.
    """
    def default_render(finding: Finding, fp: str) -> str:
        return render_comment(finding, fp, repo_url=repo_url)

    render_fn = render or default_render
    below = tuple(i for i in items if i.finding.severity.rank < min_severity.rank)
    ranked = sorted((i for i in items if i.finding.severity.rank >= min_severity.rank),
                    key=lambda i: -i.finding.severity.rank)
    inline: list[tuple[Fingerprinted, InlineComment]] = []
    unplaced: list[Unplaced] = []
    for item in ranked:
        f = item.finding
        lo, hi = sorted((f.start_line, f.end_line))
        result = anchor_fn(f.path, lo, hi, f.side)
        if isinstance(result, UnanchorableLike) and not isinstance(result, AnchorLike):
            unplaced.append(Unplaced(f, item.fingerprint, f"not placed inline: {result.reason}"))
        elif not isinstance(result, AnchorLike):
            raise TypeError(f"anchor_fn returned {type(result).__name__}, neither an anchor nor unanchorable")
        elif len(inline) >= max_inline:
            unplaced.append(Unplaced(f, item.fingerprint, f"over the limit of {max_inline} inline comments"))
        else:
            anchored = (result.start_line if result.start_line is not None else result.line, result.line)
            if f.suggestion is not None and anchored != (lo, hi):
                f = replace(f, suggestion=None, body=f.body.rstrip() + "\n\n" + NARROWED_NOTE)
            comment = InlineComment(
                path=result.path,
                line=result.line,
                side=result.side,
                body=render_fn(f, item.fingerprint),
                start_line=result.start_line,
                start_side=result.start_side,
            )
            inline.append((item, comment))
    return Placement(tuple(inline), tuple(unplaced), below)

