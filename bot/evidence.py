"""Every finding must show the code it is about: `evidence`, copied from the diff, decides where it goes.

Pure. The evidence is looked up in the pull request's diff, in the finding's file: on the cited lines the finding
stays; elsewhere in that file's diff it moves there (a model that misreads a gutter number still lands on the right
line); nowhere in the diff (code from the context, or invented) it is dropped and only counted. An empty evidence
cannot be checked: the finding stays where it is (the schema requires the field; the prompt requires code in it).
Lines match after
whitespace is collapsed; a one-line evidence may be part of a line, longer evidence must cover consecutive lines of
one hunk (first and last possibly partial).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.diff.types import Diff, FileDiff
from bot.domain import Finding, Side

# A model that copies the rendered gutter (`R 12 + `, `L 7 - `) still quotes the code after it.
_GUTTER = re.compile(r"^[RL] [0-9]{1,9} [-+ ] ")
MAX_EVIDENCE_LINES = 60


@dataclass(frozen=True, slots=True)
class EvidenceResult:
    """Findings kept (some moved to where their code is), and those whose code is not in this change."""

    kept: tuple[Finding, ...]
    moved: int
    dropped: tuple[Finding, ...]


def _norm(line: str) -> str:
    return " ".join(_GUTTER.sub("", line).split())


def evidence_lines(evidence: str) -> list[str]:
    """The evidence as normalised, non-blank lines (at most MAX_EVIDENCE_LINES)."""
    lines = [_norm(line) for line in evidence.splitlines()]
    return [line for line in lines if line][:MAX_EVIDENCE_LINES]


def _runs(f: FileDiff, side: Side) -> list[list[tuple[int, str]]]:
    """Per hunk, the (line number, normalised text) of the lines a comment on `side` may cite."""
    runs: list[list[tuple[int, str]]] = []
    for hunk in f.hunks:
        run: list[tuple[int, str]] = []
        for line in hunk.lines:
            if side is Side.RIGHT and line.kind != "-" and line.new_no is not None:
                run.append((line.new_no, _norm(line.text)))
            elif side is Side.LEFT and line.kind == "-" and line.old_no is not None:
                run.append((line.old_no, _norm(line.text)))
        runs.append(run)
    return runs


def _matches_at(run: Sequence[tuple[int, str]], i: int, wanted: Sequence[str]) -> bool:
    if i + len(wanted) > len(run):
        return False
    if len(wanted) == 1:
        return wanted[0] in run[i][1]
    texts = [text for _, text in run[i : i + len(wanted)]]
    return (texts[0].endswith(wanted[0]) and texts[-1].startswith(wanted[-1])
            and texts[1:-1] == list(wanted[1:-1]))


def locate(f: FileDiff, evidence: str) -> list[tuple[Side, int, int]]:
    """Every place (side, first line, last line) of `f`'s diff where `evidence` is, RIGHT side first."""
    wanted = evidence_lines(evidence)
    if not wanted:
        return []
    found: list[tuple[Side, int, int]] = []
    for side in (Side.RIGHT, Side.LEFT):
        for run in _runs(f, side):
            for i in range(len(run)):
                if _matches_at(run, i, wanted):
                    found.append((side, run[i][0], run[i + len(wanted) - 1][0]))
    return found


def _suggestion_fits(finding: Finding, start: int, end: int) -> bool:
    if finding.suggestion is None:
        return True
    return len(finding.suggestion.rstrip("\n").split("\n")) == end - start + 1


def check_evidence(findings: Sequence[Finding], diff: Diff) -> EvidenceResult:
    """Keep findings whose evidence is on their lines, move those whose evidence is elsewhere in their file's
    diff (the nearest place; a suggestion that no longer fits the lines is withheld), drop the rest."""
    files = {f.path: f for f in diff.files}
    kept: list[Finding] = []
    dropped: list[Finding] = []
    moved = 0
    for finding in findings:
        f = files.get(finding.path)
        if f is not None and not evidence_lines(finding.evidence):
            kept.append(finding)
            continue
        places = locate(f, finding.evidence) if f is not None else []
        lo, hi = sorted((finding.start_line, finding.end_line))
        if not places:
            dropped.append(finding)
            continue
        if any(side is finding.side and start <= hi and lo <= end for side, start, end in places):
            kept.append(finding)
            continue
        side, start, end = min(places, key=lambda p: (p[0] is not finding.side, abs(p[1] - lo)))
        suggestion = finding.suggestion if side is Side.RIGHT and _suggestion_fits(finding, start, end) else None
        kept.append(replace(finding, start_line=start, end_line=end, side=side, suggestion=suggestion))
        moved += 1
    return EvidenceResult(tuple(kept), moved, tuple(dropped))


def dropped_note(count: int) -> str:
    """The review body's sentence about findings dropped for want of their code in the change ('' for none)."""
    if not count:
        return ""
    noun = "finding" if count == 1 else "findings"
    return f"{count} {noun} dropped: their code is not in this change."
