"""Evidence and merging: what each asks of the model and what each removes from the posted review.

Unit tests on `bot.evidence` and `bot.merge`, then the whole core (`bot.analysis.analyse` with the real reviewer)
against the fake Claude: the request's schema demands `evidence`, and the posted findings show the moves, drops and
merges.
"""

from __future__ import annotations

from typing import Any

from bot.analysis import Scope, analyse
from bot.contract import PullContext
from bot.diff.parse import parse_diff
from bot.domain import Category, Finding, Severity, Side
from bot.evidence import check_evidence, dropped_note, locate
from bot.merge import REPEAT_CAP, merge
from bot.model.reviewer import Reviewer
from tests.fakes.claude import FakeClaude, finding

DIFF = """\
diff --git a/app/users.py b/app/users.py
--- a/app/users.py
+++ b/app/users.py
@@ -1,4 +1,9 @@
 import sqlite3
-
-def old(): pass
+
+def find(conn, name):
+    sql = f"SELECT id FROM users WHERE name = '{name}'"
+    return conn.execute(sql).fetchone()
+
+def count(conn):
+    return conn.execute("SELECT count(*) FROM users").fetchone()
 # end
"""
D = parse_diff(DIFF)


def _f(line: int, evidence: str, *, end: int | None = None, title: str = "SQL injection in find",
       category: Category = Category.SECURITY, severity: Severity = Severity.HIGH, path: str = "app/users.py",
       suggestion: str | None = None, side: Side = Side.RIGHT) -> Finding:
    return Finding(path, line, end or line, side, severity, category, title, "Body. More.", suggestion, evidence)


def test_locate_finds_partial_lines_multi_line_runs_and_removed_lines() -> None:
    f = D.files[0]
    assert locate(f, "WHERE name = '{name}'") == [(Side.RIGHT, 4, 4)]
    assert locate(f, "sql = f\"SELECT id FROM users WHERE name = '{name}'\"\n  return conn.execute(sql)") == [
        (Side.RIGHT, 4, 5)]
    assert locate(f, "R 5 + return conn.execute(sql).fetchone()") == [(Side.RIGHT, 5, 5)]  # gutter copied too
    assert locate(f, "def old(): pass") == [(Side.LEFT, 3, 3)]
    assert locate(f, "def somewhere_else():") == []


def test_evidence_keeps_findings_on_their_code_moves_misplaced_ones_and_drops_the_rest() -> None:
    on = _f(4, "WHERE name = '{name}'")
    off_by_two = _f(6, "WHERE name = '{name}'", suggestion="    sql = 'SELECT id FROM users WHERE name = ?'")
    invented = _f(4, "cursor.executemany(query)")
    other_file = _f(4, "WHERE name", path="app/other.py")
    unchecked = _f(7, "")
    result = check_evidence([on, off_by_two, invented, other_file, unchecked], D)
    assert result.kept[0] == on and result.kept[2] == unchecked
    moved = result.kept[1]
    assert (moved.start_line, moved.end_line) == (4, 4) and moved.suggestion == off_by_two.suggestion  # one line fits
    assert result.moved == 1 and result.dropped == (invented, other_file)
    assert dropped_note(2) == "2 findings dropped: their code is not in this change." and dropped_note(0) == ""


def test_a_moved_suggestion_that_no_longer_fits_the_lines_is_withheld() -> None:
    two_lines = _f(8, "WHERE name = '{name}'", suggestion="a\nb")
    [moved] = check_evidence([two_lines], D).kept
    assert (moved.start_line, moved.suggestion) == (4, None)


def test_merge_one_comment_per_place() -> None:
    same = [_f(4, "x", severity=Severity.MEDIUM), _f(4, "x", end=5, title="Injectable query")]
    [kept] = merge(same).findings
    assert kept.severity is Severity.HIGH and "Also here" not in kept.body  # same root cause: absorbed
    different = [_f(4, "x"), _f(4, "y", title="Connection never closed", category=Category.RELIABILITY,
                                severity=Severity.LOW)]
    result = merge(different)
    [kept] = result.findings
    assert kept.title == "SQL injection in find" and "**Also here:** Connection never closed." in kept.body
    assert result.merged == 1


def test_merge_repeats_short_comment_at_each_place_up_to_the_cap() -> None:
    places = [_f(n, "x", title="No timeout on the partner call", category=Category.RELIABILITY)
              for n in range(10, 10 + REPEAT_CAP + 2)]
    result = merge(places)
    assert len(result.findings) == REPEAT_CAP and result.merged == 2
    first, *others = result.findings
    assert first.body.startswith("Body. More.")
    assert "also at `app/users.py` line 15, `app/users.py` line 16" in first.body
    assert all(o.body == "Same problem as in `app/users.py` line 10; see the comment there." for o in others)


def test_merge_keeps_one_tests_finding_per_module_naming_each_behaviour() -> None:
    tests = [
        _f(4, "x", title="No test for the empty name", category=Category.TESTS, severity=Severity.MEDIUM),
        _f(9, "x", title="No test for count", category=Category.TESTS, severity=Severity.LOW),
        _f(2, "x", title="Rejection path untested", category=Category.TESTS, path="tests/test_users.py"),
        _f(2, "x", title="No test for orders", category=Category.TESTS, path="app/orders.py"),
    ]
    result = merge(tests)
    assert [f.path for f in result.findings] == ["tests/test_users.py", "app/orders.py"]  # the most severe hosts
    users = result.findings[0]
    assert users.title == "Rejection path untested" and result.merged == 2
    assert "Also untested:\n- No test for the empty name (`app/users.py` line 4)\n- No test for count" in users.body


def _scope() -> Scope:
    return Scope(review_diff=D, anchor_diff=D, context=PullContext(repo="octo/repo", title="t", body=""))


async def test_through_the_fake_claude_evidence_is_asked_for_and_findings_without_their_code_are_not_posted(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.queue([
        finding("app/users.py", 4, evidence="WHERE name = '{name}'", title="SQL injection in find"),
        finding("app/users.py", 9, evidence="return conn.execute(sql).fetchone()", title="Result not checked",
                category="reliability"),                                     # cited line 9, code on line 5: moved
        finding("app/users.py", 5, evidence="conn.close()", title="Connection leaks", category="reliability"),
    ])
    analysis = await analyse(_scope(), Reviewer(fake_claude_client, "claude-sonnet-5-5"))
    schema = fake_claude.requests[-1].json["output_config"]["format"]["schema"]
    assert "evidence" in schema["properties"]["findings"]["items"]["required"]
    posted = {(item.finding.title, item.finding.start_line) for item in analysis.posted_findings}
    assert ("SQL injection in find", 4) in posted
    assert [f.title for f in analysis.no_code] == ["Connection leaks"]  # its code is nowhere in the diff
    # The moved finding landed on line 5, which overlaps nothing else: posted there.
    assert ("Result not checked", 5) in posted


async def test_through_the_fake_claude_a_repeated_mistake_gets_a_comment_per_place(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.queue([
        finding("app/users.py", 5, evidence="conn.execute(sql)", title="Query result unchecked", category="design",
                severity="medium"),
        finding("app/users.py", 8, evidence='conn.execute("SELECT count(*) FROM users")',
                title="Query result unchecked", category="design", severity="medium"),
        finding("app/users.py", 5, evidence="conn.execute(sql)", title="Unchecked result of the query",
                category="design", severity="low"),  # a second comment on the same place and cause
    ])
    analysis = await analyse(_scope(), Reviewer(fake_claude_client, "claude-sonnet-5-5"))
    inline = sorted((c.line, c.body) for _, c in analysis.placement.inline)
    assert [line for line, _ in inline] == [5, 8] and analysis.merged == 1
    assert "Same problem as in `app/users.py` line 5" in inline[1][1]
