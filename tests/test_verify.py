"""The verification pass against the fake Claude: what the second turn adds to the conversation, what it costs,
and what it removes from the posted review."""

from __future__ import annotations

from typing import Any

import pytest

from bot.contract import BatchInput, PullContext
from bot.domain import Category, Finding, Severity, Side
from bot.model.reviewer import Reviewer
from bot.registry import AppContext
from bot.review import run_review
from bot.services import ReviewRequest, Services
from bot.verify import apply_verdicts, verified_note, verify_turn
from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub

CONTEXT = PullContext(repo="octo/repo", title="Search", body="")
BATCH = BatchInput(0, "FILE app/users.py (modified)\n" + "".join(f"R {n} + line {n}\n" for n in range(1, 40)),
                   ("app/users.py",))
TWO = [finding("app/users.py", 2, title="SQL injection", evidence="line 2"),
       finding("app/users.py", 9, title="Consider a docstring", category="design", severity="low",
               evidence="line 9")]


def test_verdicts_only_ever_remove_and_the_note_counts_them() -> None:
    a, b = (Finding("p", n, n, Side.RIGHT, Severity.HIGH, Category.SECURITY, f"t{n}", "b") for n in (1, 2))
    kept, dropped = apply_verdicts([a, b], {1: (False, "  style,\n not a problem ")})
    assert kept == (a,) and [(d.finding, d.reason) for d in dropped] == [(b, "style, not a problem")]
    assert apply_verdicts([a, b], {})[0] == (a, b)  # no verdict: kept
    assert verified_note(2, 1) == "1 finding dropped by the verification pass (each finding re-checked: 2 checked)."
    assert verified_note(2, 0) == ""


async def test_the_second_turn_continues_the_cached_conversation_and_drops_what_it_rejects(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.queue(Answer(findings=TWO, summary="Injection."))
    fake_claude.queue_follow_up(Answer(summary="", verdicts=[
        {"index": 0, "keep": True, "reason": "name reaches the SQL text"},
        {"index": 1, "keep": False, "reason": "a style remark, not a problem"},
    ]))
    outcome = await Reviewer(fake_claude_client, "claude-sonnet-5-5", verify=True).review(CONTEXT, [BATCH])
    first, second = (r.json for r in fake_claude.requests)
    # What it adds to the request: the batch is a cache breakpoint, then the same conversation goes on.
    assert first["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][0] == first["messages"][0] and second["system"] == first["system"]
    assert second["output_config"] == first["output_config"]  # one schema: the cached prefix stays valid
    assert '"SQL injection"' in second["messages"][1]["content"][0]["text"]
    assert second["messages"][2]["content"][0]["text"] == verify_turn()
    # The system prompt and the batch are read from the cache, not paid again.
    assert fake_claude.usages[1]["cache_read_input_tokens"] >= fake_claude.usages[0]["cache_creation_input_tokens"]
    # What it removes, and what it costs.
    assert [f.title for f in outcome.findings] == ["SQL injection"]
    assert [(d.finding.title, d.reason) for d in outcome.dropped] == [("Consider a docstring",
                                                                      "a style remark, not a problem")]
    assert outcome.checked == 2 and outcome.calls == 2
    assert outcome.verify_usage.cache_read_input_tokens == fake_claude.usages[1]["cache_read_input_tokens"]
    assert 0 < outcome.verify_cost_usd < outcome.cost_usd


async def test_without_verification_one_call_and_no_cache_breakpoint_on_the_batch(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.queue(Answer(findings=TWO))
    outcome = await Reviewer(fake_claude_client, "claude-sonnet-5-5", verify=False).review(CONTEXT, [BATCH])
    [only] = fake_claude.requests
    assert "cache_control" not in only.json["messages"][0]["content"][0]
    assert len(outcome.findings) == 2 and outcome.dropped == () and outcome.verify_cost_usd == 0


async def test_an_unusable_verification_answer_keeps_every_finding(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.queue(Answer(findings=TWO))
    fake_claude.queue_follow_up(Answer(text="not json"))
    outcome = await Reviewer(fake_claude_client, "claude-sonnet-5-5", verify=True).review(CONTEXT, [BATCH])
    assert len(outcome.findings) == 2 and outcome.dropped == () and outcome.calls == 2


async def test_a_batch_without_findings_is_not_verified(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    await Reviewer(fake_claude_client, "claude-sonnet-5-5", verify=True).review(CONTEXT, [BATCH])
    assert len(fake_claude.requests) == 1


@pytest.fixture
def services(app_context: AppContext) -> Services:
    return Services.of(app_context)


async def test_the_app_posts_only_verified_findings_and_counts_the_rest(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    old = "def find_user(conn, name):\n    return None\n"
    new = ("def find_user(conn, name):\n    sql = f\"SELECT id FROM users WHERE name = '{name}'\"\n"
           "    return conn.execute(sql).fetchone()\n")
    fake_github.add_pull("octo", "repo", git_diff({"app/users.py": old}, {"app/users.py": new}),
                         head_sha="a" * 40, base_sha="0" * 40)
    fake_claude.queue(Answer(findings=[
        finding("app/users.py", 2, title="SQL injection in find_user", evidence="WHERE name = '{name}'"),
        finding("app/users.py", 3, title="Might return None someday", category="reliability", severity="medium",
                evidence="return conn.execute(sql).fetchone()"),
    ]))
    fake_claude.queue_follow_up(Answer(summary="", verdicts=[
        {"index": 0, "keep": True, "reason": "real"}, {"index": 1, "keep": False, "reason": "speculative"}]))
    request = ReviewRequest(job_id=1, installation_id=100, owner="octo", repo="repo", number=1,
                            trigger="pull_request.opened")
    outcome = await run_review(request, services)
    assert outcome.status == "posted"
    [review] = [r for r in fake_github.reviews("octo", "repo", 1) if r.get("state") != "PENDING"]
    comments = [c for c in fake_github.review_comments.values() if c["_pull"] == 1]
    assert [c["line"] for c in comments] == [2]
    assert "Might return None someday" not in review["body"]
    assert "1 finding dropped by the verification pass (each finding re-checked: 2 checked)." in review["body"]
