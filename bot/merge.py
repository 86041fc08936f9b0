"""One comment per place that needs an edit: merge what the model said twice, shorten what it repeats.

Pure, applied to one review's findings (after the evidence check, before fingerprints and placement):

1. **One place, one comment.** Findings on overlapping lines of the same file and side become one: the most severe
   stays; a finding with the same root cause (same category, similar title, or the same evidence) is absorbed,
   one with another root cause is added to its body as a short "Also here" paragraph.
2. **A repeated mistake gets a short comment at each place** (same category and title at different places, as the
   prompt asks the model to write them): the first carries the explanation, each other one says where that is and
   keeps its own suggestion. Past `REPEAT_CAP` places the rest are listed in the first comment instead.
3. **One tests finding per module**: tests findings about the same module (a test file counts for the module it is
   named for) become one, naming every untested behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.context import module_name, module_of_test
from bot.domain import Category, Finding
from bot.evidence import evidence_lines
from bot.findings import normalise_title

REPEAT_CAP = 5
TITLE_SIMILARITY = 0.5


@dataclass(frozen=True, slots=True)
class Merged:
    """The findings to post and how many were folded into others."""

    findings: tuple[Finding, ...]
    merged: int


def _words(title: str) -> set[str]:
    return set(normalise_title(title).split())


def same_root_cause(a: Finding, b: Finding) -> bool:
    """Same category, a similar title (word overlap) or the same evidence."""
    if a.category == b.category:
        return True
    wa, wb = _words(a.title), _words(b.title)
    if wa and wb and len(wa & wb) / len(wa | wb) >= TITLE_SIMILARITY:
        return True
    ea, eb = evidence_lines(a.evidence), evidence_lines(b.evidence)
    return bool(ea) and ea == eb


def _overlap(a: Finding, b: Finding) -> bool:
    if (a.path, a.side) != (b.path, b.side):
        return False
    a_lo, a_hi = sorted((a.start_line, a.end_line))
    b_lo, b_hi = sorted((b.start_line, b.end_line))
    return a_lo <= b_hi and b_lo <= a_hi


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    end = flat.find(". ")
    return flat if end < 0 else flat[: end + 1]


def one_per_place(findings: Sequence[Finding]) -> tuple[list[Finding], int]:
    """Fold findings on overlapping lines into the most severe of them (stable otherwise)."""
    order = sorted(range(len(findings)), key=lambda i: -findings[i].severity.rank)
    kept: dict[int, Finding] = {}
    folded = 0
    for i in order:
        f = findings[i]
        host = next((k for k, h in kept.items() if _overlap(h, f)), None)
        if host is None:
            kept[i] = f
            continue
        folded += 1
        h = kept[host]
        if not same_root_cause(h, f):
            kept[host] = replace(h, body=f"{h.body.rstrip()}\n\n**Also here:** {f.title.strip()}. "
                                         f"{_first_sentence(f.body)}")
    return [kept[i] for i in sorted(kept)], folded


def _where(f: Finding) -> str:
    return f"`{f.path}` line {f.start_line}"


def repeats(findings: Sequence[Finding], cap: int = REPEAT_CAP) -> tuple[list[Finding], int]:
    """Shorten the second and later places of one mistake; past `cap` places, list them in the first instead."""
    groups: dict[tuple[Category, str], list[int]] = {}
    for i, f in enumerate(findings):
        groups.setdefault((f.category, normalise_title(f.title)), []).append(i)
    out: dict[int, Finding] = dict(enumerate(findings))
    dropped = 0
    for members in groups.values():
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda i: (findings[i].path, findings[i].start_line))
        first = findings[members[0]]
        for i in members[1:cap]:
            f = findings[i]
            out[i] = replace(f, body=f"Same problem as in {_where(first)}; see the comment there.")
        rest = members[cap:]
        if rest:
            places = ", ".join(_where(findings[i]) for i in rest)
            out[members[0]] = replace(first, body=f"{first.body.rstrip()}\n\nThe same problem is also at {places}.")
            for i in rest:
                del out[i]
            dropped += len(rest)
    return [out[i] for i in sorted(out)], dropped


def one_tests_finding_per_module(findings: Sequence[Finding]) -> tuple[list[Finding], int]:
    """Keep the most severe tests finding of each module and name the others' behaviours in it."""
    by_module: dict[str, list[int]] = {}
    for i, f in enumerate(findings):
        if f.category is Category.TESTS:
            by_module.setdefault(module_name(module_of_test(f.path) or f.path), []).append(i)
    out: dict[int, Finding] = dict(enumerate(findings))
    folded = 0
    for members in by_module.values():
        if len(members) < 2:
            continue
        best = min(members, key=lambda i: (-findings[i].severity.rank, i))
        others = [findings[i] for i in members if i != best]
        listed = "\n".join(f"- {o.title.strip()} (`{o.path}` line {o.start_line})" for o in others)
        host = findings[best]
        out[best] = replace(host, body=f"{host.body.rstrip()}\n\nAlso untested:\n{listed}")
        for i in members:
            if i != best:
                del out[i]
        folded += len(others)
    return [out[i] for i in sorted(out)], folded


def merge(findings: Sequence[Finding], cap: int = REPEAT_CAP) -> Merged:
    """All three steps, in order (see the module docstring)."""
    placed, folded = one_per_place(findings)
    tests, folded_tests = one_tests_finding_per_module(placed)
    final, capped = repeats(tests, cap)
    return Merged(tuple(final), folded + folded_tests + capped)
