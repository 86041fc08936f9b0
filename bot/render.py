"""What the bot posts: inline comments, the review body, the check-run summary, and the hidden markers in them.

Everything the model wrote goes through `bot.sanitize` here, so a caller cannot forget to. Markers are read back
with `markers_in` / `review_markers_in`; trusting only comments authored by the App itself is the caller's job
(anyone can type a marker into a comment of their own).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.domain import Category, Finding, NotReviewed, Severity, Usage
from bot.sanitize import COMMENT_MAX, cap, code_span, fence_for, sanitize_finding, sanitize_inline

LIST_LIMIT = 50
PATH_MAX = 150
REASON_MAX = 150
BODY_FINDING_MAX = 3_000
BODY_LIMIT = COMMENT_MAX - 1_536
SEVERITY_ORDER = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)

_FINDING_MARKER = re.compile(r"^<!-- senior-review:finding:([0-9a-f]{16,64}) -->[ \t]*$", re.M)
_REVIEW_MARKER = re.compile(
    r"^<!-- senior-review:review job=([A-Za-z0-9_.:-]{1,64}) sha=([0-9a-f]{7,64}) -->[ \t]*$", re.M
)


# --- markers ------------------------------------------------------------------------------------------------------


def finding_marker(fingerprint: str) -> str:
    """The hidden marker carrying a finding's fingerprint: `<!-- senior-review:finding:<fp> -->`."""
    if not re.fullmatch(r"[0-9a-f]{16,64}", fingerprint):
        raise ValueError(f"not a fingerprint: {fingerprint!r}")
    return f"<!-- senior-review:finding:{fingerprint} -->"


def markers_in(text: str) -> set[str]:
    """Fingerprints in the finding markers of a comment body (markers must stand on their own line)."""
    return set(_FINDING_MARKER.findall(text.replace("\r\n", "\n")))


@dataclass(frozen=True, slots=True)
class ReviewMarker:
    """What the review-level marker records: the job that posted the review and the head sha it reviewed."""

    job_id: str
    sha: str


def review_marker(job_id: str | int, sha: str) -> str:
    """The hidden review-level marker: `<!-- senior-review:review job=<id> sha=<sha> -->`."""
    marker = f"<!-- senior-review:review job={job_id} sha={sha} -->"
    if not _REVIEW_MARKER.fullmatch(marker):
        raise ValueError(f"cannot build a review marker from job={job_id!r} sha={sha!r}")
    return marker


def review_markers_in(text: str) -> list[ReviewMarker]:
    """Review-level markers in a review body, in order."""
    return [ReviewMarker(job, sha) for job, sha in _REVIEW_MARKER.findall(text.replace("\r\n", "\n"))]


# --- one finding --------------------------------------------------------------------------------------------------


def _lines(finding: Finding) -> str:
    """`line 12` or `lines 12–14`."""
    if finding.end_line > finding.start_line:
        return f"lines {finding.start_line}–{finding.end_line}"
    return f"line {finding.start_line}"


def _heading(finding: Finding) -> str:
    """`**Title** (severity, category)` for an already sanitised finding."""
    title = finding.title.rstrip("\\").strip() or "(untitled finding)"
    return f"**{title}** ({finding.severity.value}, {finding.category.value})"


def render_comment(finding: Finding, fingerprint: str, *, repo_url: str = "") -> str:
    """An inline review comment: heading, body, a ```suggestion block if any, and the hidden finding marker."""
    safe, note = sanitize_finding(finding, repo_url)
    parts = [_heading(safe)]
    if safe.body.strip():
        parts.append(safe.body.strip("\n"))
    if note:
        parts.append(f"_{note}_")
    if safe.suggestion is not None:
        code = safe.suggestion.removesuffix("\n")
        fence = fence_for(code)
        parts.append(f"{fence}suggestion\n{code}\n{fence}" if code else f"{fence}suggestion\n{fence}")
    parts.append(finding_marker(fingerprint))
    return "\n\n".join(parts)


# --- the review body ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Coverage:
    """What a review covered: files reviewed and not, and whether it was incremental (from which sha)."""

    reviewed: tuple[str, ...]
    not_reviewed: tuple[NotReviewed, ...]
    head_sha: str
    incremental_from: str | None = None


@dataclass(frozen=True, slots=True)
class RunStats:
    """Tokens and cost of one review run."""

    usage: Usage
    cost_usd: float | None = None
    model: str = ""


@dataclass(frozen=True, slots=True)
class Unplaced:
    """A finding that goes into the review body instead of inline, and why."""

    finding: Finding
    fingerprint: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReviewBody:
    """The rendered review body and the fingerprints of unplaced findings left out for size (not marked posted)."""

    text: str
    omitted: tuple[str, ...] = ()


def plural(n: int, word: str) -> str:
    """`1 finding`, `2 findings`, `3 batches`, with thousands separators."""
    if n == 1:
        return f"{n:,} {word}"
    return f"{n:,} {word}es" if word.endswith(("ch", "sh", "s", "x")) else f"{n:,} {word}s"


def _short(sha: str) -> str:
    """A sha shortened for display, in a code span."""
    return code_span(sha[:12])


def _path(path: str) -> str:
    """A file path shown inertly (code span), shortened from the left if very long."""
    shown = path if len(path) <= PATH_MAX else "…" + path[-(PATH_MAX - 1) :]
    return code_span(shown)


def _reason(reason: str, repo_url: str) -> str:
    """A reason shown as one sanitised line."""
    return cap(reason, REASON_MAX, lambda r: sanitize_inline(r, repo_url))


def _counts(items: Iterable[str] | Mapping[str, int], order: Sequence[str]) -> str:
    """`2 high · 1 low` in `order`, non-zero only (from items or from a mapping of counts)."""
    counter = Counter(items) if not isinstance(items, Mapping) else Counter(dict(items))
    return " · ".join(f"{counter[key]:,} {key}" for key in order if counter[key])


def _verdict(findings: Sequence[Finding], coverage: Coverage) -> str:
    """The one verdict line."""
    missing = len(coverage.not_reviewed)
    gap = f"; {plural(missing, 'file')} not reviewed (see coverage)" if missing else ""
    if not findings:
        return f"**Senior backend review:** no problems found in the reviewed changes{gap}."
    severe = [f for f in findings if f.severity.rank >= Severity.HIGH.rank]
    counts = _counts((f.severity.value for f in severe), [s.value for s in SEVERITY_ORDER])
    if severe:
        return f"**Senior backend review:** {plural(len(findings), 'finding')}, {counts}: fix before merging{gap}."
    return f"**Senior backend review:** {plural(len(findings), 'finding')}, none critical or high{gap}."


def _file_list(paths: Sequence[str]) -> list[str]:
    """Up to LIST_LIMIT paths as list items, then one line with the exact count of the rest."""
    lines = [f"- {_path(p)}" for p in paths[:LIST_LIMIT]]
    if len(paths) > LIST_LIMIT:
        lines.append(f"- … and {len(paths) - LIST_LIMIT:,} more")
    return lines


def _coverage(coverage: Coverage, repo_url: str) -> list[str]:
    """The coverage report: scope, counts, files reviewed (collapsed) and files not reviewed with reasons."""
    if coverage.incremental_from:
        scope = f"incremental review of the changes from {_short(coverage.incremental_from)} to "
        scope += _short(coverage.head_sha)
    else:
        scope = f"full review of {_short(coverage.head_sha)}"
    n_ok, n_not = len(coverage.reviewed), len(coverage.not_reviewed)
    out = [f"**Coverage:** {scope}: {plural(n_ok, 'file')} reviewed, {n_not:,} not reviewed."]
    if coverage.reviewed:
        out += ["", f"<details><summary>Files reviewed ({n_ok:,})</summary>", ""]
        out += [*_file_list(coverage.reviewed), "", "</details>"]
    if coverage.not_reviewed:
        out += ["", f"Not reviewed ({n_not:,}):", ""]
        out += [f"- {_path(nr.path)}: {_reason(nr.reason, repo_url)}" for nr in coverage.not_reviewed[:LIST_LIMIT]]
        rest = coverage.not_reviewed[LIST_LIMIT:]
        if rest:
            by_reason = Counter(nr.reason for nr in rest).most_common()
            shown = ", ".join(f"{n:,} {_reason(r, repo_url)}" for r, n in by_reason[:20])
            others = sum(n for _, n in by_reason[20:])
            if others:
                shown += f", {others:,} for other reasons"
            out.append(f"- … and {len(rest):,} more: {shown}")
    return out


def _stats(stats: RunStats) -> str:
    """Tokens and cost of the run, one line."""
    u = stats.usage
    cached = u.cache_read_input_tokens + u.cache_creation_input_tokens
    line = f"Run: {u.input_tokens + cached:,} input tokens ({u.cache_read_input_tokens:,} read from cache)"
    line += f" · {u.output_tokens:,} output tokens"
    if stats.cost_usd is not None:
        line += f" · ${stats.cost_usd:,.4f}"
    if stats.model:
        line += f" · {code_span(stats.model)}"
    return line


def _unplaced_block(item: Unplaced, repo_url: str) -> str:
    """One unplaced finding as body markdown, ending with its finding marker."""
    safe, note = sanitize_finding(item.finding, repo_url, body_max=BODY_FINDING_MAX)
    body = safe.body
    head = f"{_heading(safe)}, {_lines(safe)}: _{_reason(item.reason, repo_url)}_"
    parts = [head]
    if body.strip():
        parts.append(body.strip("\n"))
    if note:
        parts.append(f"_{note}_")
    if safe.suggestion is not None and len(safe.suggestion) <= BODY_FINDING_MAX:
        code = safe.suggestion.removesuffix("\n")
        fence = fence_for(code)
        parts.append(f"Suggested change:\n\n{fence}\n{code}\n{fence}")
    parts.append(finding_marker(item.fingerprint))
    return "\n\n".join(parts)


def _unplaced(items: Sequence[Unplaced], budget: int, repo_url: str) -> tuple[list[str], list[str]]:
    """Unplaced findings grouped under their file, as many as fit in `budget` characters; and the omitted fps."""
    by_path: dict[str, list[Unplaced]] = {}
    for item in items:
        by_path.setdefault(item.finding.path, []).append(item)
    out = ["", f"### Findings not placed inline ({len(items):,})"]
    used = sum(len(x) + 1 for x in out)
    omitted: list[Unplaced] = []
    for path, group in by_path.items():
        header = ["", f"#### {_path(path)}"]
        shown_header = False
        for item in group:
            if omitted:
                omitted.append(item)
                continue
            block = _unplaced_block(item, repo_url)
            cost = len(block) + 2 + (0 if shown_header else sum(len(h) + 1 for h in header))
            if used + cost > budget:
                omitted.append(item)
                continue
            if not shown_header:
                out += header
                shown_header = True
            out += ["", block]
            used += cost
    if omitted:
        files = Counter(item.finding.path for item in omitted).most_common()
        listed = ", ".join(f"{_path(p)} ({n:,})" for p, n in files[:10])
        more = f" and {len(files) - 10:,} more files" if len(files) > 10 else ""
        out += ["", f"_{plural(len(omitted), 'more finding')} not shown (size limit): {listed}{more}._"]
    return out, [item.fingerprint for item in omitted]


def render_review_body(
    *,
    inline: Sequence[Finding],
    unplaced: Sequence[Unplaced],
    coverage: Coverage,
    stats: RunStats,
    job_id: str | int,
    below_threshold: Sequence[Finding] = (),
    min_severity: Severity = Severity.LOW,
    suppressed: Mapping[str, int] | None = None,
    repo_url: str = "",
    limit: int = BODY_LIMIT,
    notes: Sequence[str] = (),
) -> ReviewBody:
    """The review body: verdict, counts, coverage, unplaced findings, suppressed count, run stats, review marker."""
    shown = [*inline, *(u.finding for u in unplaced)]
    head = [_verdict(shown, coverage)]
    if shown:
        head += [
            "",
            "Findings: " + _counts((f.severity.value for f in shown), [s.value for s in SEVERITY_ORDER])
            + " — " + _counts((f.category.value for f in shown), [c.value for c in Category]) + ".",
        ]
    if below_threshold:
        counts = _counts((f.severity.value for f in below_threshold), [s.value for s in SEVERITY_ORDER])
        head += ["", f"{plural(len(below_threshold), 'finding')} below the {min_severity.value} threshold "
                 f"not shown ({counts})."]
    total_suppressed = sum((suppressed or {}).values())
    if total_suppressed:
        why = ", ".join(f"{n:,} {reason}" for reason, n in sorted((suppressed or {}).items(), key=lambda x: -x[1]))
        head += ["", f"{plural(total_suppressed, 'finding')} raised before not repeated ({why})."]
    head += ["", *_coverage(coverage, repo_url)]
    for note in notes:  # the bot's own sentences (e.g. findings this push touched), never model text
        head += ["", note]
    tail = ["", _stats(stats), "", review_marker(job_id, coverage.head_sha)]
    fixed = len("\n".join(head)) + len("\n".join(tail)) + 2
    body_lines, omitted = _unplaced(unplaced, max(0, limit - fixed - 2_500), repo_url) if unplaced else ([], [])
    text = "\n".join([*head, *body_lines, *tail])
    return ReviewBody(text=text, omitted=tuple(omitted))


def render_check_summary(
    *, open_by_severity: Mapping[Severity, int], coverage: Coverage, gate: Severity | None = None
) -> tuple[str, str]:
    """The check run's (title, summary): short, counts only; the review carries the details."""
    total = sum(open_by_severity.values())
    counts = _counts({s.value: n for s, n in open_by_severity.items()}, [s.value for s in SEVERITY_ORDER])
    title = f"{plural(total, 'open finding')}" + (f" ({counts})" if total else "")
    summary = [f"{plural(len(coverage.reviewed), 'file')} reviewed, {len(coverage.not_reviewed):,} not reviewed "
               f"at {_short(coverage.head_sha)}."]
    if gate is None:
        summary.append("No gate is configured: findings never fail this check.")
    else:
        blocking = sum(n for s, n in open_by_severity.items() if s.rank >= gate.rank)
        summary.append(f"Gate: {gate.value} or worse; {plural(blocking, 'open finding')} at or above it.")
    return title, " ".join(summary)


def check_conclusion(open_by_severity: Mapping[Severity, int], gate: Severity | None, *, complete: bool) -> str:
    """`failure` if an open finding is at or above the gate, else `neutral` if coverage was partial, else `success`."""
    if gate is not None and any(n for s, n in open_by_severity.items() if s.rank >= gate.rank):
        return "failure"
    return "success" if complete else "neutral"
