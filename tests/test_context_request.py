"""Context in the request: what it adds to what the fake Claude receives, within the budget, and where it comes from.

The App reads the head commit's files and directories in one GraphQL query (fake GitHub), the batch carries a
`CONTEXT` block and a `TESTS` line per file, the prompt tells the model to state what that code proves, and
findings still anchor only on the diff.
"""

from __future__ import annotations

import re
from typing import Any

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.analysis import Scope, analyse, plan
from bot.context import RepoView, is_test_path, module_name, module_of_test
from bot.context_render import _IMPORT, _imports, add_context, context_block, module_tests_line, related_order
from bot.contract import BatchInput, PullContext
from bot.diff.parse import parse_diff
from bot.diff.types import FileDiff
from bot.eval.cases import load_cases
from bot.model.reviewer import Reviewer
from bot.prompts import system_prompt
from tests.fakes.claude import FakeClaude, finding


def _is_re2(pattern: object) -> bool:
    return type(pattern).__module__ == re2.__name__  # RE2 objects: linear time


ADMIN = next(c for c in load_cases(only=["authz-admin-role"]))
DIFF = parse_diff(ADMIN.diff)
VIEW = RepoView(texts=dict(ADMIN.after), listings={"tests": ("test_admin.py", "conftest.py"), "app": ("admin.py",)})


def _user_text(request: Any) -> str:
    return str(request.json["messages"][0]["content"][0]["text"])


def test_the_context_that_makes_a_hedge_unnecessary_reaches_the_request_as_context() -> None:
    block = context_block(DIFF.files[0], VIEW, ["app/admin.py"], room=10_000)
    # The role check every other route makes is 14 lines above the hunk: shown, as context, with its numbers.
    assert "CONTEXT app/admin.py: the whole file (39 lines), at the head commit" in block
    assert "C 13 |     if g.user is None or g.user.role != \"admin\":" in block
    assert "C 19 |     require_admin()" in block
    assert "TESTS app/admin.py: tests/test_admin.py (not changed)" in block
    prompt = system_prompt().lower()
    assert "hedge only when the deciding code really is absent" in prompt and "never cite a `c` line" in prompt


def test_tests_line_says_which_test_files_this_change_touches() -> None:
    assert module_tests_line("app/admin.py", VIEW, ["app/admin.py", "tests/test_admin.py"]) == (
        "TESTS app/admin.py: tests/test_admin.py (changed in this pull request)\n")
    assert module_tests_line("app/other.py", VIEW, []) == "TESTS app/other.py: none found\n"
    assert module_tests_line("tests/test_admin.py", VIEW, []) == ""


def test_context_never_takes_a_batch_past_its_budget() -> None:
    batch = BatchInput(0, "FILE app/admin.py (modified)\nR 1 + x\n", ("app/admin.py",))
    full, stats = add_context([batch], DIFF.files, VIEW, [], budget=100_000)
    assert "CONTEXT app/admin.py" in full[0].text and stats.files == 1 and stats.tokens > 0
    tight, stats = add_context([batch], DIFF.files, VIEW, [], budget=60)
    assert tight[0].text == batch.text + "TESTS app/admin.py: tests/test_admin.py (not changed)\n"
    assert stats.files == 0 and stats.tests_lines == 1


def test_related_files_are_batched_together() -> None:
    diff = parse_diff("".join(
        f"diff --git a/{p} b/{p}\n--- a/{p}\n+++ b/{p}\n@@ -1 +1 @@\n-a\n+{body}\n"
        for p, body in [("app/orders.py", "from app.money import cents"), ("app/users.py", "x = 1"),
                        ("tests/test_orders.py", "y = 2"), ("app/money.py", "z = 3")]
    ))
    assert [f.path for f in related_order(diff.files)] == [
        "app/orders.py", "tests/test_orders.py", "app/money.py", "app/users.py"]


def _pairwise_order(files: list[FileDiff]) -> list[str]:
    """The definition `related_order` implements, pair by pair (quadratic: for checking it only)."""
    parent = list(range(len(files)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    names = [module_name(f.path) for f in files]
    imports = [_imports("\n".join(t for h in f.hunks for k, t in zip(h.kinds, h.texts, strict=True) if k == "+"))
               for f in files]
    for i, f in enumerate(files):
        target = module_of_test(f.path)
        for j in range(len(files)):
            linked = (target is not None and target == names[j] and not is_test_path(files[j].path)) or (
                len(names[j]) > 2 and re.search(rf"\b{re.escape(names[j])}\b", imports[i]) is not None)
            if i != j and linked:
                parent[root(i)] = root(j)
    groups: dict[int, list[str]] = {}
    for i, f in enumerate(files):
        groups.setdefault(root(i), []).append(f.path)
    return [path for group in groups.values() for path in group]


_NAMES = st.sampled_from(["users", "user", "user-service", "user-s", "api", "café", "caf", "x-users", "_db", "é-x"])


_WORDS = st.lists(st.sampled_from(["users", "user-service", "x-usersé", "cafés", "é-x", "_dbx", "-", "é", "api", " "]),
                  max_size=6)
_LINES = st.sampled_from(["import {}", "from {} import y", "const a = require('{}')", "x = {}"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["app", "tests", "src/x"]), _NAMES,
                          st.sampled_from([".py", ".ts", ".test.ts"]), _WORDS, _LINES), min_size=1, max_size=7))
def test_related_order_matches_its_pairwise_definition(
    specs: list[tuple[str, str, str, list[str], str]]
) -> None:
    seen: set[str] = set()
    parts = []
    for folder, name, ext, words, line in specs:
        path = f"{folder}/{name}{ext}"
        if path in seen:
            continue
        seen.add(path)
        parts.append(f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-a\n"
                     f"+{line.format(' '.join(words))}\n")
    files = list(parse_diff("".join(parts)).files)
    assert [f.path for f in related_order(files)] == _pairwise_order(files)


def test_import_lines_are_found_in_one_linear_pass() -> None:
    assert _is_re2(_IMPORT)
    text = "import os\n  from app.money import cents\nconst a = require('b')\nx = 1\nimport { y } from 'z'\n"
    assert _imports(text).splitlines() == ["import os", "  from app.money import cents", "const a = require('b')",
                                           "import { y } from 'z'"]
    # 400 lines of 299 spaces and a letter: a backtracking engine retried every split of the indentation.
    assert _imports("\n".join([" " * 299 + "x"] * 100_000)) == ""


async def test_through_the_fake_claude_context_is_sent_and_findings_still_anchor_only_on_the_diff(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    scope = Scope(review_diff=DIFF, anchor_diff=DIFF, context=PullContext("octo/repo", ADMIN.title, ADMIN.body),
                  repo_view=VIEW)
    without = plan(Scope(review_diff=DIFF, anchor_diff=DIFF, context=scope.context))
    planned = plan(scope)
    assert planned.estimated_tokens > without.estimated_tokens  # the budget counts the context
    fake_claude.queue([
        finding("app/admin.py", 33, evidence="def export_users():", title="Export skips require_admin()"),
        finding("app/admin.py", 13, evidence='if g.user is None or g.user.role != "admin":',
                title="Comment on context", category="design"),
    ])
    analysis = await analyse(scope, Reviewer(fake_claude_client, "claude-sonnet-5-5"), planned)
    sent = _user_text(fake_claude.requests[-1])
    assert "C 19 |     require_admin()" in sent and "TESTS app/admin.py" in sent
    assert [i.finding.title for i in analysis.posted_findings] == ["Export skips require_admin()"]
    assert [f.title for f in analysis.no_code] == ["Comment on context"]  # cites the context: not posted
