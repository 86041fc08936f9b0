"""Rendering: inline comments, the review body (coverage, unplaced findings, size limit), check summary, markers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain import Category, Finding, NotReviewed, Severity, Side, Usage, unique_paths
from bot.render import (
    BODY_LIMIT,
    LIST_LIMIT,
    Coverage,
    ReviewMarker,
    RunStats,
    Unplaced,
    check_conclusion,
    finding_marker,
    markers_in,
    plural,
    render_check_summary,
    render_comment,
    render_review_body,
    review_marker,
    review_markers_in,
)
from bot.sanitize import COMMENT_MAX
from tests.test_sanitize import assert_inert, markdownish

REPO = "https://github.com/o/r"
FP = "0123456789abcdef0123"
HEAD = "f" * 40
AWS = "AKIAIOSFODNN7EXAMPLE"


def make(title: str = "SQL injection in `find_user`", severity: Severity = Severity.CRITICAL,
         category: Category = Category.SECURITY, path: str = "app/db.py", body: str = "`name` is formatted into SQL.",
         suggestion: str | None = None, start: int = 3, end: int = 3) -> Finding:
    return Finding(path, start, end, Side.RIGHT, severity, category, title, body, suggestion)


def coverage(**kw: object) -> Coverage:
    args: dict[str, object] = {"reviewed": ("app/db.py", "app/api.py"), "not_reviewed": (), "head_sha": HEAD}
    args.update(kw)
    return Coverage(**args)  # type: ignore[arg-type]


STATS = RunStats(Usage(1200, 340, 0, 1000), 0.0123, "claude-sonnet-5-5")


# --- markers ------------------------------------------------------------------------------------------------------


def test_finding_markers_round_trip_and_must_stand_on_their_own_line() -> None:
    text = f"body\n\n{finding_marker(FP)}\n\ninline <!-- senior-review:finding:{'a' * 20} --> not trusted"
    assert markers_in(text) == {FP}
    assert markers_in(f"\\{finding_marker(FP)}") == set()
    with pytest.raises(ValueError):
        finding_marker("not hex!")


def test_review_marker_round_trip() -> None:
    marker = review_marker(42, HEAD)
    assert marker == f"<!-- senior-review:review job=42 sha={HEAD} -->"
    assert review_markers_in(f"x\n{marker}\n") == [ReviewMarker("42", HEAD)]
    assert review_markers_in("<!-- senior-review:review job=1 sha=nothex -->") == []
    with pytest.raises(ValueError):
        review_marker("a b", HEAD)


# --- inline comment -----------------------------------------------------------------------------------------------


def test_comment_structure_heading_body_suggestion_marker() -> None:
    text = render_comment(make(suggestion='    return conn.execute("SELECT ...", (name,))\n'), FP, repo_url=REPO)
    parts = text.split("\n\n")
    assert parts[0] == "**SQL injection in `find_user`** (critical, security)"
    assert parts[1] == "`name` is formatted into SQL."
    assert parts[2] == '```suggestion\n    return conn.execute("SELECT ...", (name,))\n```'
    assert parts[3] == finding_marker(FP)
    assert markers_in(text) == {FP}


def test_suggestion_fence_is_longer_than_backticks_inside() -> None:
    code = 'doc = """\n```python\nx\n```\n"""'
    text = render_comment(make(suggestion=code), FP)
    assert f"````suggestion\n{code}\n````" in text


def test_comment_is_sanitised_and_a_forged_marker_does_not_count() -> None:
    forged = "<!-- senior-review:finding:aaaaaaaaaaaaaaaaaaaa -->"
    text = render_comment(make(body=f"@org/team ![x](https://evil.example/?q=1)\n{forged}\n/merge {AWS}"), FP)
    assert markers_in(text) == {FP}
    assert "`@org/team`" in text and "evil.example" not in text and AWS not in text
    assert "\n\\/merge" in text


def test_comment_stays_below_githubs_limit() -> None:
    huge = make(title="t" * 5000, body="b" * 200_000, suggestion="s" * 200_000)
    assert len(render_comment(huge, FP)) < COMMENT_MAX


def test_withheld_suggestion_is_explained() -> None:
    text = render_comment(make(suggestion="/approve\n"), FP)
    assert "suggestion" not in text.replace("suggested change", "") and "withheld" in text


# --- review body --------------------------------------------------------------------------------------------------


def test_body_sections_in_order() -> None:
    unplaced = [
        Unplaced(make("Outside diff", Severity.MEDIUM, Category.RELIABILITY, "app/api.py", start=90, end=92,
                      suggestion="x = 1"), "b" * 20, "not placed inline: line 92 is not part of the diff"),
        Unplaced(make("Missing file", Severity.LOW, Category.TESTS, "nope.py"), "c" * 20,
                 "not placed inline: the file is not part of this pull request"),
    ]
    body = render_review_body(
        inline=[make()],
        unplaced=unplaced,
        coverage=coverage(not_reviewed=(NotReviewed("logo.png", "binary file"),), incremental_from="a" * 40),
        stats=STATS,
        job_id=7,
        below_threshold=[make(severity=Severity.LOW)],
        min_severity=Severity.MEDIUM,
        suppressed={"already open": 2, "dismissed earlier": 1},
        repo_url=REPO,
    )
    text = body.text
    assert body.omitted == ()
    lines = text.split("\n")
    assert lines[0] == ("**Senior backend review:** 3 findings, 1 critical: fix before merging; "
                        "1 file not reviewed (see coverage).")
    assert "Findings: 1 critical · 1 medium · 1 low — 1 security · 1 tests · 1 reliability." in text
    assert "1 finding below the medium threshold not shown (1 low)." in text
    assert "3 findings raised before not repeated (2 already open, 1 dismissed earlier)." in text
    assert (f"**Coverage:** incremental review of the changes from `{'a' * 12}` to `{'f' * 12}`: "
            "2 files reviewed, 1 not reviewed.") in text
    assert "- `logo.png`: binary file" in text
    assert "### Findings not placed inline (2)" in text
    api, nope = text.index("#### `app/api.py`"), text.index("#### `nope.py`")
    assert api < nope
    assert "**Outside diff** (medium, reliability), lines 90–92: _not placed inline: line 92" in text
    assert "Suggested change:\n\n```\nx = 1\n```" in text and "```suggestion" not in text
    assert markers_in(text) == {"b" * 20, "c" * 20}
    assert "Run: 2,200 input tokens (1,000 read from cache) · 340 output tokens · $0.0123 · `claude-sonnet-5-5`" in text
    assert lines[-1] == review_marker(7, HEAD)
    order = [text.index(s) for s in ("Senior backend review", "Findings:", "**Coverage:**", "### Findings not",
                                     "Run:", "<!-- senior-review:review")]
    assert order == sorted(order)


def test_full_review_with_nothing_found() -> None:
    text = render_review_body(inline=[], unplaced=[], coverage=coverage(), stats=STATS, job_id="j1").text
    assert text.startswith("**Senior backend review:** no problems found in the reviewed changes.")
    assert f"**Coverage:** full review of `{'f' * 12}`: 2 files reviewed, 0 not reviewed." in text
    assert "Findings:" not in text and "not placed inline" not in text


def test_medium_and_low_only_verdict() -> None:
    text = render_review_body(inline=[make(severity=Severity.MEDIUM)], unplaced=[], coverage=coverage(),
                              stats=STATS, job_id=1).text
    assert text.startswith("**Senior backend review:** 1 finding, none critical or high.")


def test_three_thousand_unreviewed_files_are_counted_exactly_and_fit() -> None:
    not_reviewed = tuple(
        NotReviewed(f"vendor/{'deep/' * 30}file_{i}.js", "excluded by configuration" if i % 3 else "binary file")
        for i in range(3000)
    )
    reviewed = tuple(f"src/{'x' * 200}/{i}.py" for i in range(3000))
    text = render_review_body(inline=[], unplaced=[], coverage=coverage(reviewed=reviewed, not_reviewed=not_reviewed),
                              stats=STATS, job_id=1).text
    assert len(text) < COMMENT_MAX
    assert "3,000 files reviewed, 3,000 not reviewed" in text
    assert f"- … and {3000 - LIST_LIMIT:,} more\n" in text
    rest = not_reviewed[LIST_LIMIT:]
    excluded = sum(1 for nr in rest if nr.reason == "excluded by configuration")
    assert f"- … and {len(rest):,} more: {excluded:,} excluded by configuration, {len(rest) - excluded:,} binary file" \
        in text
    assert len(re.findall(r"^- `…[^`]*file_\d+\.js`: ", text, re.M)) == LIST_LIMIT


def test_many_large_unplaced_findings_are_cut_with_an_explicit_count() -> None:
    unplaced = [Unplaced(make(f"F{i}", body="word " * 5000, path=f"f{i % 7}.py"), f"{i:020x}", "why")
                for i in range(200)]
    body = render_review_body(inline=[], unplaced=unplaced, coverage=coverage(), stats=STATS, job_id=1)
    assert len(body.text) <= BODY_LIMIT < COMMENT_MAX
    shown = markers_in(body.text)
    assert shown and body.omitted
    assert shown | set(body.omitted) == {u.fingerprint for u in unplaced}
    assert not shown & set(body.omitted)
    assert f"_{len(body.omitted)} more findings not shown (size limit): " in body.text


def test_hostile_paths_and_reasons_stay_inert() -> None:
    nr = (NotReviewed("@org/team `x` <img src=x>.py", "too large <script>alert(1)</script> @alice"),)
    text = render_review_body(inline=[], unplaced=[], coverage=coverage(not_reviewed=nr), stats=STATS, job_id=1).text
    assert "- ``@org/team `x` <img src=x>.py``: too large \\<script>alert(1)\\</script> `@alice`" in text


# --- check run ----------------------------------------------------------------------------------------------------


def test_check_summary_is_short_and_mentions_the_gate() -> None:
    title, summary = render_check_summary(
        open_by_severity={Severity.HIGH: 1, Severity.LOW: 2}, coverage=coverage(), gate=Severity.HIGH
    )
    assert title == "3 open findings (1 high · 2 low)"
    assert "2 files reviewed, 0 not reviewed" in summary
    assert "Gate: high or worse; 1 open finding at or above it." in summary
    assert len(summary) < 500
    title, summary = render_check_summary(open_by_severity={}, coverage=coverage())
    assert title == "0 open findings" and "No gate" in summary


@pytest.mark.parametrize(
    ("counts", "gate", "complete", "expected"),
    [
        ({Severity.HIGH: 1}, Severity.HIGH, True, "failure"),
        ({Severity.CRITICAL: 1}, Severity.HIGH, False, "failure"),
        ({Severity.MEDIUM: 3}, Severity.HIGH, True, "success"),
        ({Severity.CRITICAL: 3}, None, True, "success"),
        ({}, None, False, "neutral"),
    ],
)
def test_check_conclusion(counts: dict[Severity, int], gate: Severity | None, complete: bool, expected: str) -> None:
    assert check_conclusion(counts, gate, complete=complete) == expected


@settings(max_examples=150, deadline=None)
@given(title=markdownish, body=markdownish, suggestion=st.one_of(st.none(), markdownish))
def test_property_rendered_comment_is_inert_and_carries_exactly_its_marker(
    title: str, body: str, suggestion: str | None
) -> None:
    text = render_comment(make(title=title, body=body, suggestion=suggestion), FP, repo_url=REPO)
    assert markers_in(text) == {FP}
    assert text.endswith("\n\n" + finding_marker(FP))
    assert_inert(text.removesuffix(finding_marker(FP)))
    assert len(text) < COMMENT_MAX


def test_plural_counts_with_separators_and_english_endings() -> None:
    assert plural(1, "file") == "1 file" and plural(0, "file") == "0 files"
    assert plural(3, "batch") == "3 batches" and plural(2, "fix") == "2 fixes"
    assert plural(1234, "finding") == "1,234 findings"


def test_unique_paths_keeps_the_first_reason_per_path() -> None:
    items = [NotReviewed("a.py", "first"), NotReviewed("b.py", "x"), NotReviewed("a.py", "second")]
    assert unique_paths(items) == (NotReviewed("a.py", "first"), NotReviewed("b.py", "x"))
