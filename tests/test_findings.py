"""Fingerprints, memory/dedupe decisions and placement of findings (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import Category, Finding, FindingState, Severity, Side
from bot.findings import (
    FINGERPRINT_LENGTH,
    MAX_INLINE,
    Fingerprinted,
    KnownFinding,
    SuppressReason,
    Touch,
    cited_code,
    collapse_duplicates,
    decide,
    fingerprint,
    fingerprint_all,
    normalise_code,
    normalise_title,
    place,
    touched_by_push,
)
from bot.render import markers_in

CODE = ['    cur.execute(f"SELECT * FROM users WHERE name = \'{name}\'")', "    return cur.fetchone()"]


def make(
    title: str = "SQL injection in `find_user`",
    *,
    path: str = "app/db.py",
    start: int = 10,
    end: int = 11,
    severity: Severity = Severity.HIGH,
    category: Category = Category.SECURITY,
    body: str = "Name is formatted into SQL.",
    side: Side = Side.RIGHT,
) -> Finding:
    return Finding(path, start, end, side, severity, category, title, body)


def fp(finding: Finding, code: list[str] | None = None) -> Fingerprinted:
    return Fingerprinted(finding, fingerprint(finding, CODE if code is None else code))


# --- fingerprints -------------------------------------------------------------------------------------------------


def test_fingerprint_is_short_hex_and_deterministic() -> None:
    value = fingerprint(make(), CODE)
    assert len(value) == FINGERPRINT_LENGTH and int(value, 16) >= 0
    assert fingerprint(make(), CODE) == value


def test_fingerprint_is_pinned_so_a_format_change_is_deliberate() -> None:
    # If this changes, every stored fingerprint changes: bump the "v1" prefix and plan a migration.
    assert fingerprint(make("X"), ["a"]) == fingerprint(make("x!"), [" a "])
    assert fingerprint(make("X"), ["a"]) == "3ab122431e61538f3586"


def test_same_problem_other_wording_and_lines_same_fingerprint() -> None:
    a = make(body="one wording", start=10, end=11, severity=Severity.HIGH)
    b = make("SQL injection in find_user.", body="other wording", start=40, end=41, severity=Severity.CRITICAL)
    reindented = ["\t" + line.strip() + "   " for line in CODE] + ["", "   "]
    assert fingerprint(a, CODE) == fingerprint(b, reindented)


@pytest.mark.parametrize(
    "change",
    [
        {"path": "app/other.py"},
        {"category": Category.VALIDATION},
        {"title": "SQL injection in find_account"},
        {"title": "Timeout of 30s"},
    ],
)
def test_different_problem_different_fingerprint(change: dict[str, object]) -> None:
    base = make("Timeout of 10s") if change.get("title") == "Timeout of 30s" else make()
    assert fingerprint(base, CODE) != fingerprint(replace(base, **change), CODE)  # type: ignore[arg-type]


def test_different_code_different_fingerprint() -> None:
    assert fingerprint(make(), CODE) != fingerprint(make(), [*CODE[:1], "    return None"])


def test_normalisers() -> None:
    assert normalise_title("  **N+1 Query** in `list_orders()`!! ") == "n 1 query in list orders"
    assert normalise_title("Ｆｕｌｌ width") == "full width"
    assert normalise_code(["  a   =  1  ", "", "b"]) == "a = 1\nb"


@given(st.text(), st.text(), st.lists(st.text(max_size=20), max_size=5))
def test_fingerprint_ignores_whitespace_and_punctuation_noise(title: str, body: str, code: list[str]) -> None:
    a = make(title, body="x")
    b = make(f"  {title.upper()}  ...", body=body, start=99, end=120)
    noisy = [f"  {line}\t" for line in code] + [" "]
    if title.upper().casefold() == title.casefold():
        assert fingerprint(a, code) == fingerprint(b, noisy)


def test_cited_code_reads_lines_through_the_callable() -> None:
    lines = {("app/db.py", Side.RIGHT, 10): "a", ("app/db.py", Side.RIGHT, 11): "b"}
    seen: list[tuple[str, Side, int]] = []

    def line_text(path: str, side: Side, line: int) -> str | None:
        seen.append((path, side, line))
        return lines.get((path, side, line))

    assert cited_code(make(start=10, end=12), line_text) == ["a", "b"]
    assert seen[-1] == ("app/db.py", Side.RIGHT, 12)
    [item] = fingerprint_all([make(start=10, end=11)], line_text)
    assert item.fingerprint == fingerprint(make(), ["a", "b"])


# --- dedupe and memory --------------------------------------------------------------------------------------------


def test_same_fingerprint_twice_keeps_the_more_severe() -> None:
    low = fp(make(severity=Severity.LOW, start=50, end=50))
    high = fp(make(severity=Severity.HIGH, start=10, end=11))
    kept, dropped = collapse_duplicates([low, high])
    assert kept == [high] and dropped == [low]


def test_overlapping_lines_same_category_collapse_other_category_does_not() -> None:
    a = fp(make("A", start=10, end=12, severity=Severity.MEDIUM))
    b = fp(make("B", start=12, end=14, severity=Severity.CRITICAL))
    c = fp(make("C", start=11, end=11, category=Category.TESTS))
    d = fp(make("D", start=13, end=13, side=Side.LEFT))
    kept, dropped = collapse_duplicates([a, b, c, d])
    assert kept == [b, c, d] and dropped == [a]


def test_decide_suppresses_known_fingerprints_with_reasons() -> None:
    new = [fp(make(t)) for t in ("open one", "resolved one", "dismissed one", "outdated one", "fresh")]
    fps = [n.fingerprint for n in new]
    known = [
        KnownFinding(fps[0], FindingState.OPEN),
        KnownFinding(fps[1], FindingState.RESOLVED),
        KnownFinding(fps[2], FindingState.OPEN),
        KnownFinding(fps[2], FindingState.DISMISSED),  # a human's dismissal outranks our own open state
        KnownFinding(fps[3], FindingState.OUTDATED),
    ]
    # distinct titles but the same lines and category would collapse: give each its own lines
    new = [Fingerprinted(replace(n.finding, start_line=i * 10, end_line=i * 10), n.fingerprint) for i, n in
           enumerate(new)]
    decision = decide(new, known)
    assert [p.finding.title for p in decision.post] == ["fresh"]
    reasons = {s.item.finding.title: s.reason for s in decision.suppressed}
    assert reasons == {
        "open one": SuppressReason.ALREADY_OPEN,
        "resolved one": SuppressReason.RESOLVED,
        "dismissed one": SuppressReason.DISMISSED,
        "outdated one": SuppressReason.OUTDATED,
    }
    assert decision.suppressed_counts() == {
        "already open": 1, "resolved earlier": 1, "dismissed earlier": 1, "raised before (comment outdated)": 1
    }


def test_decide_reports_duplicates_within_the_run() -> None:
    a, b = fp(make(severity=Severity.LOW)), fp(make(severity=Severity.HIGH, start=30, end=31))
    decision = decide([a, b])
    assert decision.post == (b,)
    assert [(s.item, s.reason) for s in decision.suppressed] == [(a, SuppressReason.DUPLICATE)]


def test_push_that_changes_or_deletes_lines_of_open_findings_is_reported() -> None:
    known = [
        KnownFinding("a" * 20, FindingState.OPEN, "x.py", 10, 12),
        KnownFinding("b" * 20, FindingState.OPEN, "x.py", 30, 30),
        KnownFinding("c" * 20, FindingState.OPEN, "gone.py", 1, 1),
        KnownFinding("d" * 20, FindingState.RESOLVED, "x.py", 10, 10),
        KnownFinding("e" * 20, FindingState.OPEN, "x.py", 11, 11, Side.LEFT),
        KnownFinding("f" * 20, FindingState.OPEN, "untouched.py", 1, 1),
    ]
    touched = touched_by_push(known, {"x.py": frozenset({12, 13}), "gone.py": None})
    assert [(t.known.fingerprint[0], t.how) for t in touched] == [("a", Touch.CHANGED), ("c", Touch.DELETED)]
    assert decide([], known, {"x.py": frozenset({12})}).touched[0].known.fingerprint == "a" * 20


# --- placement ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeAnchor:
    path: str
    line: int
    side: Side
    start_line: int | None
    start_side: Side | None


@dataclass(frozen=True)
class FakeUnanchorable:
    path: str
    reason: str


def fake_anchor(path: str, start: int, end: int, side: Side) -> object:
    """Lines 1-100 of files other than missing.py are in the diff."""
    if path == "missing.py":
        return FakeUnanchorable(path, "the file is not part of this pull request")
    if end > 100:
        return FakeUnanchorable(path, f"line {end} is not part of the diff")
    return FakeAnchor(path, end, side, start if start != end else None, side if start != end else None)


def test_place_anchors_inline_and_sends_the_rest_to_the_body_with_reasons() -> None:
    items = [
        fp(make("in diff", start=5, end=7)),
        fp(make("outside", start=150, end=150)),
        fp(make("no file", path="missing.py", start=1, end=1)),
    ]
    placement = place(items, fake_anchor, repo_url="https://github.com/o/r")
    [(item, comment)] = placement.inline
    assert item is items[0]
    assert (comment.path, comment.line, comment.start_line, comment.side) == ("app/db.py", 7, 5, Side.RIGHT)
    assert markers_in(comment.body) == {items[0].fingerprint}
    assert comment.body.startswith("**in diff** (high, security)")
    assert [(u.finding.title, u.reason) for u in placement.unplaced] == [
        ("outside", "not placed inline: line 150 is not part of the diff"),
        ("no file", "not placed inline: the file is not part of this pull request"),
    ]


def test_place_caps_inline_comments_most_severe_first() -> None:
    sev = [Severity.LOW, Severity.CRITICAL, Severity.MEDIUM, Severity.HIGH]
    items = [fp(make(f"f{i}", start=i + 1, end=i + 1, severity=sev[i % 4])) for i in range(30)]
    placement = place(items, fake_anchor)
    assert len(placement.inline) == MAX_INLINE
    ranks = [i.finding.severity.rank for i, _ in placement.inline]
    assert ranks == sorted(ranks, reverse=True)
    assert len(placement.unplaced) == 5
    assert all(u.finding.severity is Severity.LOW for u in placement.unplaced)
    assert all("limit of 25 inline comments" in u.reason for u in placement.unplaced)


def test_place_counts_findings_below_the_threshold_instead_of_dropping_them() -> None:
    items = [fp(make("low", severity=Severity.LOW)), fp(make("high", start=1, end=1))]
    placement = place(items, fake_anchor, min_severity=Severity.MEDIUM, max_inline=5)
    assert [i.finding.title for i, _ in placement.inline] == ["high"]
    assert [i.finding.title for i in placement.below_threshold] == ["low"]
    assert placement.unplaced == ()


def test_place_rejects_a_result_it_does_not_understand() -> None:
    with pytest.raises(TypeError):
        place([fp(make())], lambda *_: 42)


def test_place_uses_a_custom_renderer() -> None:
    placement = place([fp(make())], fake_anchor, render=lambda f, p: f"{f.title}:{p}")
    assert placement.inline[0][1].body == f"SQL injection in `find_user`:{fingerprint(make(), CODE)}"


def test_a_suggestion_is_withheld_when_the_anchor_covers_fewer_lines() -> None:
    def narrowing(path: str, start: int, end: int, side: Side) -> object:
        return FakeAnchor(path, end, side, end - 1, side)

    with_suggestion = replace(make(start=3, end=7), suggestion="fixed()")
    [(_, comment)] = place([fp(with_suggestion)], narrowing).inline
    assert "```suggestion" not in comment.body and "withheld" in comment.body
    [(_, comment)] = place([fp(replace(make(start=6, end=7), suggestion="fixed()"))], narrowing).inline
    assert "```suggestion\nfixed()\n```" in comment.body


findings_st = st.builds(
    make,
    st.sampled_from(["A", "B", "C"]),
    path=st.sampled_from(["a.py", "b.py", "missing.py"]),
    start=st.integers(1, 120),
    end=st.integers(1, 120),
    severity=st.sampled_from(list(Severity)),
    category=st.sampled_from([Category.SECURITY, Category.TESTS]),
    side=st.sampled_from(list(Side)),
)


@given(st.lists(findings_st, max_size=40))
def test_property_collapse_keeps_no_clashing_pair_and_drops_only_for_a_worse_or_equal_kept(
    findings: list[Finding],
) -> None:
    items = [Fingerprinted(f, f"{hash((f.title, f.path)) & 0xFFFF:020x}") for f in findings]
    kept, dropped = collapse_duplicates(items)
    assert len(kept) + len(dropped) == len(items)
    for i, a in enumerate(kept):
        for b in kept[i + 1 :]:
            assert a.fingerprint != b.fingerprint
            fa, fb = a.finding, b.finding
            same_place = (fa.path, fa.side, fa.category) == (fb.path, fb.side, fb.category)
            a_lo, a_hi = sorted((fa.start_line, fa.end_line))
            b_lo, b_hi = sorted((fb.start_line, fb.end_line))
            assert not (same_place and a_lo <= b_hi and b_lo <= a_hi)
    for d in dropped:
        assert any(k.finding.severity.rank >= d.finding.severity.rank for k in kept)


@given(st.lists(findings_st, max_size=40), st.integers(0, 10), st.sampled_from(list(Severity)))
def test_property_place_accounts_for_every_finding_once(
    findings: list[Finding], max_inline: int, min_severity: Severity
) -> None:
    items = [Fingerprinted(f, f"{i:020x}") for i, f in enumerate(findings)]
    placement = place(items, fake_anchor, min_severity=min_severity, max_inline=max_inline,
                      render=lambda f, p: p)
    assert len(placement.inline) <= max_inline
    seen = [i.fingerprint for i, _ in placement.inline] + [u.fingerprint for u in placement.unplaced] + [
        i.fingerprint for i in placement.below_threshold
    ]
    assert sorted(seen) == sorted(i.fingerprint for i in items)
    if placement.inline and placement.unplaced:
        worst_unplaced_over_cap = [u for u in placement.unplaced if "limit" in u.reason]
        least_inline = min(i.finding.severity.rank for i, _ in placement.inline)
        assert all(u.finding.severity.rank <= least_inline for u in worst_unplaced_over_cap)
