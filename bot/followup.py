"""Earlier findings re-checked on a push: which the model is shown, in which request, and what its answer may change.

Pure. An open finding whose cited lines a push rewrote is shown to the model again, with an id (`E1`, `E2`, ...),
in the batch that already reviews its file (no extra call); a file with nothing else to review gets one small
recheck-only request. The answer's `earlier` entries are kept only for ids that request showed: nothing the model
names is trusted beyond what was sent. A finding judged fixed gets a reply and its thread resolved; one still
present stays open and is not posted again, in any wording with the same title. After each incremental review the
open findings' lines move with the push (`moved_range`), so the next push is compared with where their code is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from bot.contract import BatchInput, EarlierFinding, ReviewOutcome
from bot.diff.types import Hunk
from bot.findings import Fingerprinted, Suppressed, SuppressReason, Touch, Touched, normalise_title

#: At most this many earlier findings are re-checked per review (the most recently touched files' first).
MAX_RECHECKS = 50


def earlier_for(touched: Iterable[Touched], limit: int = MAX_RECHECKS) -> tuple[EarlierFinding, ...]:
    """The touched findings whose lines changed (a deleted file has no code left to check), with ids E1, E2, ..."""
    changed = sorted((t.known for t in touched if t.how is Touch.CHANGED), key=lambda k: (k.path, k.start_line))
    return tuple(
        EarlierFinding(f"E{n}", k.fingerprint, k.path, min(k.start_line, k.end_line) or k.end_line,
                       max(k.start_line, k.end_line), k.category or "unknown", k.title or "(untitled finding)", k.body)
        for n, k in enumerate(changed[:limit], start=1)
    )


def attach_earlier(
    batches: Sequence[BatchInput], earlier: Sequence[EarlierFinding], recheck_texts: Mapping[str, str]
) -> list[BatchInput]:
    """Each earlier finding added to the first batch showing its file; for a file no batch shows, one recheck-only
    batch of `recheck_texts[path]` (its rendered diff), or none when that file has no text either."""
    out = list(batches)
    placed: set[str] = set()
    for i, batch in enumerate(out):
        mine = tuple(e for e in earlier if e.path in batch.files and e.id not in placed)
        if mine:
            out[i] = replace(batch, earlier=batch.earlier + mine)
            placed.update(e.id for e in mine)
    leftover: dict[str, list[EarlierFinding]] = {}
    for item in earlier:
        if item.id not in placed and recheck_texts.get(item.path):
            leftover.setdefault(item.path, []).append(item)
    index = max((b.index for b in out), default=-1) + 1
    for path, items in leftover.items():
        out.append(BatchInput(index, recheck_texts[path], (path,), tuple(items), recheck_only=True))
        index += 1
    return out


@dataclass(frozen=True, slots=True)
class Rechecked:
    """What the answers said of the earlier findings: gone, still there, or never judged (the batch failed)."""

    fixed: tuple[EarlierFinding, ...] = ()
    present: tuple[EarlierFinding, ...] = ()
    unchecked: tuple[EarlierFinding, ...] = ()


def judge(earlier: Sequence[EarlierFinding], outcome: ReviewOutcome | None) -> Rechecked:
    """Read the rechecks of every answered request, keeping only ids that request showed.

    A finding two requests judged differently (a batch split in halves showing one file twice) counts as present:
    a thread is resolved only on an unopposed `fixed`.
    """
    verdicts: dict[str, bool] = {}
    for batch in outcome.batches if outcome is not None else ():
        if batch.error is not None:
            continue
        shown = set(batch.sent)
        for recheck in batch.rechecks:
            if recheck.id in shown:
                verdicts[recheck.id] = verdicts.get(recheck.id, True) and recheck.fixed
    fixed = tuple(e for e in earlier if verdicts.get(e.id) is True)
    present = tuple(e for e in earlier if verdicts.get(e.id) is False)
    unchecked = tuple(e for e in earlier if e.id not in verdicts)
    return Rechecked(fixed, present, unchecked)


def _key(path: str, category: str, title: str) -> tuple[str, str, str]:
    return path, category, normalise_title(title)


def drop_repeats(
    items: Sequence[Fingerprinted], still_open: Iterable[EarlierFinding]
) -> tuple[list[Fingerprinted], list[Suppressed]]:
    """New findings that repeat an earlier finding which is still open (same file, category and title): not
    posted, counted as already open; the earlier thread carries the problem."""
    open_keys = {_key(e.path, e.category, e.title) for e in still_open}
    kept: list[Fingerprinted] = []
    dropped: list[Suppressed] = []
    for item in items:
        f = item.finding
        if _key(f.path, f.category.value, f.title) in open_keys:
            dropped.append(Suppressed(item, SuppressReason.ALREADY_OPEN))
        else:
            kept.append(item)
    return kept, dropped


def moved_line(line: int, hunks: Sequence[Hunk], *, first: bool) -> int:
    """Where old line `line` is after a push with these hunks: an unchanged line keeps its text's new number; a
    removed or rewritten one maps to the new line that took its place (`first`: the first of a rewritten run,
    else the last)."""
    delta = 0
    for hunk in sorted(hunks, key=lambda h: h.old_start):
        # A pure insertion (no old lines) goes after old line `old_start`; any other hunk spans its old lines.
        last_old = hunk.old_start + hunk.old_count - 1 if hunk.old_count else hunk.old_start
        if line > last_old:
            delta += hunk.new_count - hunk.old_count  # a hunk wholly above the line shifts it
            continue
        if hunk.old_count == 0 or line < hunk.old_start:
            break
        news = [d.new_no for d in hunk.lines if d.new_no is not None]
        for i, d in enumerate(hunk.lines):
            if d.old_no == line:
                if d.new_no is not None:
                    return d.new_no
                after = [x.new_no for x in hunk.lines[i:] if x.new_no is not None]
                before = [x.new_no for x in hunk.lines[:i] if x.new_no is not None]
                pick = (after[:1] or before[-1:]) if first else (before[-1:] or after[:1])
                return pick[0] if pick else max(1, hunk.new_start)
        return news[-1] if news else max(1, hunk.new_start)
    return line + delta


def moved_range(start: int, end: int, hunks: Sequence[Hunk]) -> tuple[int, int]:
    """Where old lines `start`..`end` are after a push (never an inverted range)."""
    lo, hi = moved_line(start, hunks, first=True), moved_line(end, hunks, first=False)
    return lo, max(lo, hi)
