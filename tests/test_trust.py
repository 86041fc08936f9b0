"""Trust tiers: outsiders' pull requests cost nothing until a maintainer asks (pure rule, pipeline, commands).

Pipeline tests run the real GitHubApp, AsyncAnthropic and SQLite store against the loopback fakes.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.command_jobs import handle_command_job
from bot.memory import CHECK_NAME
from bot.registry import AppContext
from bot.review import run_review
from bot.routing import route
from bot.services import ReviewRequest, Services
from bot.store.types import JobKind
from bot.trust import TRUSTED_ASSOCIATIONS, author_trusted
from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub

OWNER, REPO, INSTALLATION, SLUG = "octo", "repo", 100, "senior-review"
HEAD1, HEAD2, BASE = "a" * 40, "b" * 40, "0" * 40
CONFIG_FILE = ".github/senior-review.yml"
OUTSIDER, WRITER = "mallory", "maint"
BEFORE = {"app/users.py": "def find_user(conn, name):\n    return None\n"}
AFTER = {"app/users.py": "def find_user(conn, name):\n    return conn.execute(f\"{name}\")\n"}
AFTER2 = {"app/users.py": AFTER["app/users.py"] + "\ndef g(x):\n    return eval(x)\n"}


# ---------------------------------------------------------------- the pure rule


@pytest.mark.parametrize("association", [*sorted(TRUSTED_ASSOCIATIONS), "member", "Owner"])
def test_trusted_associations_need_no_permission(association: str) -> None:
    assert author_trusted(association, None, "collaborators").allowed


@pytest.mark.parametrize("permission", ["write", "maintain", "admin", "ADMIN"])
def test_writers_are_trusted_whatever_their_association(permission: str) -> None:
    assert author_trusted("CONTRIBUTOR", permission, "collaborators").allowed


@pytest.mark.parametrize("association", ["CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "NONE", "MANNEQUIN",
                                         ""])
@pytest.mark.parametrize("permission", ["read", "triage", "none", None, "writer", ""])
def test_everyone_else_is_not(association: str, permission: str | None) -> None:
    decision = author_trusted(association, permission, "collaborators")
    assert not decision.allowed
    assert author_trusted(association, permission, "everyone").allowed


# ---------------------------------------------------------------- the pipeline


@pytest.fixture
def services(app_context: AppContext) -> Services:
    return Services.of(app_context)


def _outsider_pr(fake: FakeGitHub, association: str = "FIRST_TIME_CONTRIBUTOR") -> Any:
    fake.set_permission(OWNER, REPO, WRITER, "write")
    return fake.add_pull(OWNER, REPO, git_diff(BEFORE, AFTER), head_sha=HEAD1, base_sha=BASE, author=OUTSIDER,
                         fork=True, author_association=association)


def _request(job_id: int = 1, trigger: str = "pull_request.opened", **kw: Any) -> ReviewRequest:
    return ReviewRequest(job_id=job_id, installation_id=INSTALLATION, owner=OWNER, repo=REPO, number=1,
                         trigger=trigger, **kw)


def _checks(fake: FakeGitHub, head: str) -> list[dict[str, Any]]:
    return [c for c in fake.check_runs.values() if c["name"] == CHECK_NAME and c["head_sha"] == head]


def _push(fake: FakeGitHub, pull: Any) -> None:
    fake.push(pull, git_diff(BEFORE, AFTER2), HEAD2)
    fake.set_compare(OWNER, REPO, HEAD1, HEAD2, status="ahead", diff_text=git_diff(AFTER, AFTER2))


@pytest.mark.parametrize("association", ["FIRST_TIME_CONTRIBUTOR", "CONTRIBUTOR", "NONE"])
async def test_fork_pr_by_an_outsider_costs_nothing_and_says_how_to_start(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services, association: str
) -> None:
    pull = _outsider_pr(fake_github, association)
    fake_github.set_permission(OWNER, REPO, OUTSIDER, "read")

    for trigger, head in (("pull_request.opened", HEAD1), ("pull_request.synchronize", HEAD2)):
        if head == HEAD2:
            _push(fake_github, pull)
        outcome = await run_review(_request(trigger=trigger), services)
        assert outcome.status == "skipped" and "untrusted author" in outcome.detail
        (check,) = _checks(fake_github, head)  # one neutral check run per head, no comment
        assert check["conclusion"] == "neutral" and check["status"] == "completed"
        assert f"`@{SLUG} review`" in check["output"]["summary"]

    assert fake_claude.first_turns == []
    assert fake_github.reviews(OWNER, REPO, 1) == []
    assert [c for c in fake_github.issue_comments.values() if c["_key"] == (OWNER, REPO, 1)] == []


async def test_an_author_with_write_access_is_reviewed_even_as_contributor(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    _outsider_pr(fake_github, "CONTRIBUTOR")
    fake_github.set_permission(OWNER, REPO, OUTSIDER, "write")
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    assert (await run_review(_request(), services)).status == "posted"
    assert len(fake_claude.first_turns) == 1


async def test_trust_everyone_restores_automatic_reviews_for_all(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    _outsider_pr(fake_github)
    fake_github.set_file(OWNER, REPO, "main", CONFIG_FILE, "auto_review:\n  trust: everyone\n")
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    assert (await run_review(_request(), services)).status == "posted"


@pytest.mark.parametrize("carries_over", [False, True])
async def test_a_maintainers_command_reviews_and_carrying_over_is_a_choice(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services, carries_over: bool
) -> None:
    pull = _outsider_pr(fake_github)
    if carries_over:
        fake_github.set_file(OWNER, REPO, "main", CONFIG_FILE, "auto_review:\n  approval_carries_over: true\n")
    assert (await run_review(_request(), services)).status == "skipped"
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    command = _request(job_id=2, trigger="command.review", comment_id=77, comment_source="issue_comment")
    assert (await run_review(command, services)).status == "posted"  # the maintainer's command is obeyed

    _push(fake_github, pull)
    fake_claude.queue(Answer(findings=[finding("app/users.py", 5, title="eval")]))
    outcome = await run_review(_request(job_id=3, trigger="pull_request.synchronize"), services)
    assert outcome.status == ("posted" if carries_over else "skipped")
    assert len(fake_claude.first_turns) == (2 if carries_over else 1)


# ---------------------------------------------------------------- the PR author's own commands


def _comment_job_payload(fake: FakeGitHub, body: str, login: str) -> tuple[str, dict[str, Any]]:
    cid = fake._id()
    user = {"login": login, "id": 4242, "type": "User"}
    fake.issue_comments[cid] = {"id": cid, "body": body, "user": user, "_key": (OWNER, REPO, 1),
                                "author_association": "CONTRIBUTOR", "_put": True}
    return "issue_comment", {
        "action": "created", "comment": {"id": cid, "body": body, "user": user, "author_association": "CONTRIBUTOR"},
        "issue": {"number": 1, "pull_request": {"url": "https://x/pulls/1"}},
        "repository": {"name": REPO, "full_name": f"{OWNER}/{REPO}", "owner": {"login": OWNER}},
        "installation": {"id": INSTALLATION}, "sender": user,
    }


async def _run_command(context: AppContext, fake: FakeGitHub, body: str, login: str) -> None:
    event, payload = _comment_job_payload(fake, body, login)
    (spec,) = route(event, payload).specs
    await context.store.enqueue(spec)
    job = await context.store.claim("w", 60, kinds=[JobKind.COMMAND])
    assert job is not None
    await handle_command_job(job, context)


@pytest.mark.parametrize("trust, obeyed", [("collaborators", False), ("everyone", True)])
async def test_pr_authors_own_review_command_follows_the_same_rule(
    fake_github: FakeGitHub, app_context: AppContext, trust: str, obeyed: bool
) -> None:
    _outsider_pr(fake_github)
    fake_github.set_file(OWNER, REPO, "main", CONFIG_FILE,
                         f"commands:\n  allow_pr_author: true\nauto_review:\n  trust: {trust}\n")
    await _run_command(app_context, fake_github, f"@{SLUG} review", OUTSIDER)

    queued = await app_context.store.claim("w", 60, kinds=[JobKind.REVIEW])
    assert (queued is not None) == obeyed
    replies = [c["body"] for c in fake_github.issue_comments.values() if c.get("user", {}).get("type") == "Bot"]
    if not obeyed:
        assert any("started by a maintainer" in r and f"`@{SLUG} review`" in r for r in replies)
    # Help is not a paid run: the author may still ask for it.
    await _run_command(app_context, fake_github, f"@{SLUG} help", OUTSIDER)
    replies = [c["body"] for c in fake_github.issue_comments.values() if c.get("user", {}).get("type") == "Bot"]
    assert any("Commands (one per comment" in r for r in replies)


# ---------------------------------------------------------------- replays of a command


async def test_a_replayed_command_is_carried_out_once_before_and_after_a_push(
    fake_github: FakeGitHub, app_context: AppContext
) -> None:
    pull = _outsider_pr(fake_github)
    event, payload = _comment_job_payload(fake_github, f"@{SLUG} full review", WRITER)
    (spec,) = route(event, payload).specs
    for delivery in ("d-original", "d-replay-1", "d-replay-2"):
        if delivery == "d-replay-2":
            _push(fake_github, pull)  # a captured command re-sent after every push must not buy a new review
        await app_context.store.enqueue(spec, delivery_id=delivery)
        job = await app_context.store.claim("w", 60, kinds=[JobKind.COMMAND])
        assert job is not None
        await handle_command_job(job, app_context)
    reviews = [j for j in await app_context.store.list_jobs() if j.kind == JobKind.REVIEW]
    assert len(reviews) == 1
    assert len(fake_github.reactions) == 1  # one 👀: the replays were ignored before any GitHub call


@pytest.mark.parametrize("age_days, obeyed", [(0.01, True), (8, False)])
async def test_a_command_older_than_the_replay_window_is_ignored(
    fake_github: FakeGitHub, app_context: AppContext, age_days: float, obeyed: bool
) -> None:
    import datetime

    _outsider_pr(fake_github)
    event, payload = _comment_job_payload(fake_github, f"@{SLUG} review", WRITER)
    created = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=age_days)
    payload["comment"]["created_at"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    (spec,) = route(event, payload).specs
    await app_context.store.enqueue(spec)
    job = await app_context.store.claim("w", 60, kinds=[JobKind.COMMAND])
    assert job is not None
    await handle_command_job(job, app_context)
    assert (await app_context.store.claim("w", 60, kinds=[JobKind.REVIEW]) is not None) == obeyed
