"""The review pipeline against the fake GitHub and fake Claude over loopback, with the real clients and store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.memory import CHECK_NAME
from bot.metrics import Metrics
from bot.registry import AppContext
from bot.review import run_review
from bot.services import ReviewRequest, Services
from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub

OWNER, REPO, INSTALLATION = "octo", "repo", 100
HEAD1, HEAD2, HEAD3 = "a" * 40, "b" * 40, "c" * 40
BASE = "0" * 40

HANDLER_OLD = "def find_user(conn, name):\n    return None\n"
HANDLER_NEW = (
    "def find_user(conn, name):\n"
    "    sql = f\"SELECT id FROM users WHERE name = '{name}'\"\n"
    "    return conn.execute(sql).fetchone()\n"
)


def _files(n: int, *, changed: dict[str, str] | None = None) -> dict[str, str]:
    files = {f"svc/mod{i:02d}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(n)}
    files.update(changed or {})
    return files


@pytest.fixture
def services(app_context: AppContext) -> Services:
    """Real GitHubApp, AsyncAnthropic and SQLite store, all pointed at the loopback fakes."""
    return Services.of(app_context)


def _request(job_id: int = 1, trigger: str = "pull_request.opened", **kw: Any) -> ReviewRequest:
    return ReviewRequest(job_id=job_id, installation_id=INSTALLATION, owner=OWNER, repo=REPO, number=1,
                         trigger=trigger, **kw)


def _submitted(fake: FakeGitHub) -> list[dict[str, Any]]:
    return [r for r in fake.reviews(OWNER, REPO, 1) if r.get("state") != "PENDING"]


def _user_text(request: Any) -> str:
    return json.dumps(request.json["messages"])


async def test_opened_pr_gets_one_review_with_anchored_comments(fake_github: FakeGitHub, fake_claude: FakeClaude,
                                                                services: Services) -> None:
    before = {"app/users.py": HANDLER_OLD, "package-lock.json": '{"a": 1}\n'}
    after = {"app/users.py": HANDLER_NEW, "package-lock.json": '{"a": 2}\n'}
    fake_github.add_pull(OWNER, REPO, git_diff(before, after), head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[
        finding("app/users.py", 2, title="SQL injection in find_user", category="security", severity="critical",
                suggestion="    sql = \"SELECT id FROM users WHERE name = ?\""),
    ]))

    outcome = await run_review(_request(), services)

    assert outcome.status == "posted"
    reviews = _submitted(fake_github)
    assert len(reviews) == 1
    review = reviews[0]
    assert review["commit_id"] == HEAD1 and review["state"] == "COMMENTED"
    comments = [c for c in fake_github.review_comments.values() if c.get("pull_request_review_id") == review["id"]]
    assert [(c["path"], c["line"], c["side"]) for c in comments] == [("app/users.py", 2, "RIGHT")]
    assert "SQL injection in find_user" in comments[0]["body"]
    assert "```suggestion" in comments[0]["body"]
    assert "package-lock.json" in review["body"]  # excluded file listed in the coverage report
    assert "not reviewed" in review["body"].lower()
    # The model saw the handler, not the lock file.
    assert "find_user" in _user_text(fake_claude.first_turns[-1])
    assert "package-lock.json\\n" not in _user_text(fake_claude.first_turns[-1]).split("FILE")[-1]
    checks = list(fake_github.check_runs.values())
    assert any(c["name"] == CHECK_NAME and c.get("conclusion") == "success" for c in checks)


async def test_unanchorable_findings_go_to_the_body_and_review_still_posts(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    fake_github.add_pull(OWNER, REPO, git_diff({"app/users.py": HANDLER_OLD}, {"app/users.py": HANDLER_NEW}),
                         head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[
        finding("app/users.py", 2, title="SQL injection"),
        finding("app/users.py", 80, title="Line far outside the diff", category="reliability"),
        finding("app/ghost.py", 3, title="File not in this PR", category="design"),
    ]))

    outcome = await run_review(_request(), services)

    assert outcome.status == "posted"
    [review] = _submitted(fake_github)
    assert "Line far outside the diff" in review["body"]
    # A finding on a file the pull request does not change has no code in this change: counted, not posted.
    assert "File not in this PR" not in review["body"]
    assert "1 finding dropped: their code is not in this change." in review["body"]
    posts = fake_github.requests_to("POST", r"/pulls/1/reviews$")
    assert len(posts) == 1  # anchoring happened before posting: no 422 round trips


async def test_synchronize_reviews_only_the_changed_file_and_does_not_repeat(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    base = _files(50)
    head1 = _files(50, changed={"svc/mod07.py": HANDLER_NEW})
    pr = fake_github.add_pull(OWNER, REPO, git_diff(base, head1), head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[finding("svc/mod07.py", 2, title="SQL injection")]))
    assert (await run_review(_request(), services)).status == "posted"

    head2 = dict(head1, **{"svc/mod31.py": "def f31(x):\n    return eval(x)\n"})
    fake_github.push(pr, git_diff(base, head2), HEAD2)
    fake_github.set_compare(OWNER, REPO, HEAD1, HEAD2, status="ahead", diff_text=git_diff(head1, head2))
    # The model repeats the old finding and adds a new one.
    fake_claude.queue(Answer(findings=[
        finding("svc/mod07.py", 2, title="SQL injection"),
        finding("svc/mod31.py", 2, title="eval on caller input"),
    ]))
    outcome = await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)

    assert outcome.status == "posted"
    assert "svc/mod07.py" not in _diff_section(fake_claude.first_turns[-1])
    assert "svc/mod31.py" in _diff_section(fake_claude.first_turns[-1])
    reviews = _submitted(fake_github)
    assert len(reviews) == 2
    second = [c for c in fake_github.review_comments.values() if c.get("pull_request_review_id") == reviews[1]["id"]]
    assert [c["path"] for c in second] == ["svc/mod31.py"]
    assert "incremental" in reviews[1]["body"].lower()


def _diff_section(request: Any) -> str:
    """The diff part of the batch prompt (file names also appear in the PR file list)."""
    text = "\n".join(
        block["text"] for m in request.json["messages"] for block in m["content"] if block.get("type") == "text"
    )
    marker = text.find("FILE ")
    return text[marker:] if marker >= 0 else ""


async def test_force_push_reviews_everything_but_posts_no_finding_twice(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    before = {"app/users.py": HANDLER_OLD, "app/other.py": "x = 1\n"}
    after = {"app/users.py": HANDLER_NEW, "app/other.py": "x = 1\n"}
    pr = fake_github.add_pull(OWNER, REPO, git_diff(before, after), head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    await run_review(_request(), services)

    rewritten = dict(after, **{"app/other.py": "x = 2\n"})
    fake_github.push(pr, git_diff(before, rewritten), HEAD2)
    fake_github.set_compare(OWNER, REPO, HEAD1, HEAD2, status="diverged", ahead_by=1, behind_by=1)
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    outcome = await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)

    section = _diff_section(fake_claude.first_turns[-1])
    assert "app/users.py" in section and "app/other.py" in section  # full re-review
    titles = [c["body"] for c in fake_github.review_comments.values() if "SQL injection" in c["body"]]
    assert len(titles) == 1
    # Nothing new on a full re-review: no second review; coverage and cost go to the check run only.
    assert outcome.status == "silent" and len(_submitted(fake_github)) == 1
    last_check = list(fake_github.check_runs.values())[-1]
    assert "reviewed" in last_check["output"]["summary"] and "Run: " in last_check["output"]["summary"]


async def test_head_moving_during_review_drops_the_stale_result(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    diff = git_diff({"app/users.py": HANDLER_OLD}, {"app/users.py": HANDLER_NEW})
    pr = fake_github.add_pull(OWNER, REPO, diff, head_sha=HEAD1, base_sha=BASE)

    def answer_and_push(body: dict[str, Any]) -> Answer:
        fake_github.push(pr, diff, HEAD3)  # someone pushes while the model thinks
        return Answer(findings=[finding("app/users.py", 2)])

    fake_claude.queue(answer_and_push)
    outcome = await run_review(_request(), services)

    assert outcome.status == "stale"
    assert _submitted(fake_github) == []
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2)]))
    assert (await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)).status == "posted"
    assert [r["commit_id"] for r in _submitted(fake_github)] == [HEAD3]


async def test_model_output_is_sanitised_before_posting(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    key = "AKIAIOSFODNN7EXAMPLE"
    after = {"app/cfg.py": f'AWS_KEY = "{key}"\n'}
    fake_github.add_pull(OWNER, REPO, git_diff({"app/cfg.py": "AWS_KEY = None\n"}, after), head_sha=HEAD1,
                         base_sha=BASE)
    body = (f"Ping @octo/security. ![x](https://evil.example/?q=secret) <img src=https://evil.example/a.png>\n"
            f"/merge\nThe key {key} is committed in clear.")
    fake_claude.queue(Answer(findings=[finding("app/cfg.py", 1, title="Hard-coded AWS key", body=body)]))

    await run_review(_request(), services)

    [review] = _submitted(fake_github)
    texts = [review["body"], *(c["body"] for c in fake_github.review_comments.values())]
    for text in texts:
        assert key not in text
        assert "![" not in text and "<img" not in text
        assert "evil.example/?q" not in text or "`" in text
        assert "\n/merge" not in text
        assert " @octo/security" not in text
    assert any("AKIA" in t for t in texts)  # masked, with its prefix


async def test_draft_is_skipped_until_ready_and_exact_duplicate_is_not_posted(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    diff = git_diff({"app/users.py": HANDLER_OLD}, {"app/users.py": HANDLER_NEW})
    pr = fake_github.add_pull(OWNER, REPO, diff, head_sha=HEAD1, base_sha=BASE, draft=True)
    assert (await run_review(_request(), services)).status == "skipped"
    assert fake_claude.first_turns == []
    pr.draft = False
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2)]))
    assert (await run_review(_request(job_id=2, trigger="pull_request.ready_for_review"), services)).status == "posted"
    # A redelivered event for the same head: exactly once.
    assert (await run_review(_request(job_id=3, trigger="pull_request.synchronize"), services)).status == "duplicate"
    assert len(_submitted(fake_github)) == 1


async def test_typical_review_api_request_count(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    diff = git_diff({"app/users.py": HANDLER_OLD}, {"app/users.py": HANDLER_NEW})
    fake_github.add_pull(OWNER, REPO, diff, number=1, head_sha=HEAD1, base_sha=BASE)
    fake_github.add_pull(OWNER, REPO, diff, number=2, head_sha=HEAD2, base_sha=BASE)
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2)]), Answer(findings=[finding("app/users.py", 2)]))

    def count(number: int) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in fake_github.requests[start:]]

    start = len(fake_github.requests)
    await run_review(_request(), services)
    first = count(1)
    start = len(fake_github.requests)
    await run_review(ReviewRequest(job_id=2, installation_id=INSTALLATION, owner=OWNER, repo=REPO, number=2,
                                   trigger="pull_request.opened"), services)
    steady = count(2)
    # First review of a repo: repo token, PR, org `.github` token attempt (App not installed there), repo config,
    # check run, diff, the context query (one GraphQL POST), PR re-check before posting, the review, check run update.
    assert len(first) == 10, first
    assert [m for m in first if m[1] == "/graphql"] == [("POST", "/graphql")]
    # Later reviews reuse the repo's token and the cached org layer.
    assert len(steady) == 8, steady
    assert [m for m in steady if m[0] == "POST" and m[1].endswith("/reviews")] == [
        ("POST", f"/repos/{OWNER}/{REPO}/pulls/2/reviews")
    ]
    assert not any("access_tokens" in path for _, path in steady)


async def test_installation_over_its_daily_budget_gets_no_model_call(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    from bot.store.spend import SpendRecord

    fake_github.set_file(OWNER, REPO, "main", ".github/senior-review.yml",
                         "budgets:\n  max_cost_usd_per_installation_per_day: 0.5\n")
    await services.store.record_spend(SpendRecord(OWNER, f"{OWNER}/other", 9, "bob", "claude-sonnet-5-5", 0.6))
    fake_github.add_pull(OWNER, REPO, git_diff({"app/users.py": HANDLER_OLD}, {"app/users.py": HANDLER_NEW}),
                         head_sha=HEAD1, base_sha=BASE)

    outcome = await run_review(_request(), services)

    assert outcome.status == "skipped" and "daily budget" in outcome.detail
    assert fake_claude.first_turns == []
    assert _submitted(fake_github) == []
    [check] = fake_github.check_runs.values()
    assert check["conclusion"] == "neutral" and "Daily budget" in check["output"]["title"]


async def test_pr_over_the_review_budget_gets_a_partial_review_naming_what_was_left_out(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    fake_github.set_file(OWNER, REPO, "main", ".github/senior-review.yml",
                         "budgets:\n  max_tokens_per_review: 1000\n")
    big = "".join(f"line_{i} = {i}\n" for i in range(400))
    before = {"app/auth/login.py": HANDLER_OLD, "docs/guide.md": "old\n", "tests/test_big.py": "x = 0\n"}
    after = {"app/auth/login.py": HANDLER_NEW, "docs/guide.md": big, "tests/test_big.py": big}
    fake_github.add_pull(OWNER, REPO, git_diff(before, after), head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[finding("app/auth/login.py", 2)]))

    assert (await run_review(_request(), services)).status == "posted"

    section = _diff_section(fake_claude.first_turns[-1])
    assert "app/auth/login.py" in section
    assert "docs/guide.md" not in section and "tests/test_big.py" not in section
    [review] = _submitted(fake_github)
    for left_out in ("docs/guide.md", "tests/test_big.py"):
        line = next(ln for ln in review["body"].splitlines() if left_out in ln)
        assert "over budget" in line


async def test_push_that_rewrites_a_findings_lines_marks_it_outdated_and_says_so(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    base = {"app/users.py": HANDLER_OLD, "app/util.py": "A = 1\n"}
    head1 = {"app/users.py": HANDLER_NEW, "app/util.py": "A = 1\n"}
    pr = fake_github.add_pull(OWNER, REPO, git_diff(base, head1), head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    await run_review(_request(), services)

    fixed = "def find_user(conn, name):\n    return conn.execute('SELECT id FROM users WHERE name = ?', (name,))\n"
    head2 = {"app/users.py": fixed, "app/util.py": "A = 2\n"}
    fake_github.push(pr, git_diff(base, head2), HEAD2)
    fake_github.set_compare(OWNER, REPO, HEAD1, HEAD2, status="ahead", diff_text=git_diff(head1, head2))
    fake_claude.queue(Answer(findings=[finding("app/util.py", 1, title="Magic number", category="design",
                                               severity="low")]))
    await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)

    second = _submitted(fake_github)[-1]
    # The model was shown the earlier finding to re-check but did not judge it: outdated, as before.
    assert "- E1: app/users.py, line 2 (security): SQL injection" in _user_text(fake_claude.first_turns[-1])
    assert "Earlier findings whose lines this push touched: 1 marked outdated." in second["body"]
    states = {r.title: r.state for r in await services.store.list_findings(f"{OWNER}/{REPO}", 1)}
    assert states["SQL injection"] == "outdated"


async def test_a_finding_whose_thread_a_person_resolved_is_never_raised_again(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    from bot.registry import AppContext, Registry
    from bot.routing import route
    from bot.thread_jobs import handle_thread_job

    diff = git_diff({"app/users.py": HANDLER_OLD}, {"app/users.py": HANDLER_NEW})
    fake_github.add_pull(OWNER, REPO, diff, head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    await run_review(_request(), services)
    [ours] = [c for c in fake_github.review_comments.values() if "SQL injection" in c["body"]]
    # Someone else's comment carrying our marker must change nothing.
    forged = {"user": {"login": "mallory", "type": "User"}, "body": ours["body"]}
    context = AppContext(services.settings, services.store, Metrics(), Registry(), github=services.github,
                         model=services.model_client)

    fake_github.set_permission(OWNER, REPO, "maintainer", "maintain")
    fake_github.set_permission(OWNER, REPO, "author", "read")

    async def resolve(comments: list[dict[str, Any]], sender: str = "maintainer") -> list[str]:
        payload = {
            "action": "resolved", "installation": {"id": INSTALLATION}, "sender": {"login": sender, "type": "User"},
            "repository": {"name": REPO, "full_name": f"{OWNER}/{REPO}", "owner": {"login": OWNER}},
            "pull_request": {"number": 1}, "thread": {"node_id": "T1", "comments": comments},
        }
        [spec] = route("pull_request_review_thread", payload).specs
        await services.store.enqueue(spec)
        job = await services.store.claim("test", 30, kinds=["thread"])
        assert job is not None
        await handle_thread_job(job, context)
        return [r.state for r in await services.store.list_findings(f"{OWNER}/{REPO}", 1)]

    assert await resolve([forged]) == ["open"]
    assert await resolve([ours], sender="author") == ["open"]  # the PR's author cannot settle the gate
    assert await resolve([ours]) == ["resolved"]

    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    posted_before = len(_submitted(fake_github))
    outcome = await run_review(_request(job_id=2, trigger="command.full_review", full=True, comment_id=5), services)
    assert outcome.status == "silent" and len(_submitted(fake_github)) == posted_before  # nothing new to say
    assert len([c for c in fake_github.review_comments.values() if "SQL injection" in c["body"]]) == 1


async def test_crash_between_posting_and_recording_never_posts_a_second_review(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    from sqlalchemy import delete

    from bot.store.tables import findings, reviews

    fake_github.add_pull(OWNER, REPO, git_diff({"app/users.py": HANDLER_OLD}, {"app/users.py": HANDLER_NEW}),
                         head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2)]))
    assert (await run_review(_request(job_id=7), services)).status == "posted"
    # The worker died after GitHub accepted the review but before the store recorded it.
    async with services.store.engine.begin() as conn:
        await conn.execute(delete(reviews))

    async with services.store.engine.begin() as conn:  # ... and before it remembered its findings
        await conn.execute(delete(findings))

    retried = await run_review(_request(job_id=7, attempts=2), services)

    assert retried.status == "duplicate" and "on GitHub" in retried.detail
    assert len(_submitted(fake_github)) == 1
    assert len(fake_claude.first_turns) == 1
    # What the crashed run posted is remembered again: a later full review does not repeat it.
    assert [r.path for r in await services.store.list_findings(f"{OWNER}/{REPO}", 1)] == ["app/users.py"]
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2)]))
    await run_review(_request(job_id=8, trigger="command.full_review", full=True, comment_id=3), services)
    assert len([c for c in fake_github.review_comments.values() if "Problem at app/users.py:2" in c["body"]]) == 1


async def test_a_failed_batch_makes_the_check_neutral_and_keeps_the_last_head(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    fake_github.add_pull(OWNER, REPO, git_diff({"app/users.py": HANDLER_OLD}, {"app/users.py": HANDLER_NEW}),
                         head_sha=HEAD1, base_sha=BASE)
    fake_claude.fail_next("invalid_json", times=5)

    outcome = await run_review(_request(), services)

    assert outcome.status == "posted"
    [review] = _submitted(fake_github)
    assert any("app/users.py" in ln and "model" in ln for ln in review["body"].splitlines())  # not reviewed, why
    [check] = fake_github.check_runs.values()
    assert check["conclusion"] == "neutral"
    state = await services.store.get_pr_state(f"{OWNER}/{REPO}", 1)
    assert state.last_reviewed_sha is None  # the next run covers these changes again


async def test_merging_the_base_into_the_head_does_not_review_the_bases_changes(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    base = {"app/users.py": HANDLER_OLD, "lib/vendor.py": "V = 1\n"}
    head1 = {"app/users.py": HANDLER_NEW, "lib/vendor.py": "V = 1\n"}
    pr = fake_github.add_pull(OWNER, REPO, git_diff(base, head1), head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[]))
    await run_review(_request(), services)
    # main moved lib/vendor.py; the author merged main into the branch and touched app/users.py again.
    merged = {"app/users.py": HANDLER_NEW + "# retry\n", "lib/vendor.py": "V = 2\n"}
    fake_github.push(pr, git_diff({**base, "lib/vendor.py": "V = 2\n"}, merged), HEAD2)
    fake_github.set_compare(OWNER, REPO, HEAD1, HEAD2, status="ahead", diff_text=git_diff(head1, merged))
    fake_claude.queue(Answer(findings=[]))

    await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)

    section = _diff_section(fake_claude.first_turns[-1])
    assert "app/users.py" in section and "lib/vendor.py" not in section


async def test_an_unreachable_previous_head_means_a_full_review_not_a_dead_job(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    before = {"app/users.py": HANDLER_OLD, "app/other.py": "x = 1\n"}
    after = {"app/users.py": HANDLER_NEW, "app/other.py": "x = 2\n"}
    pr = fake_github.add_pull(OWNER, REPO, git_diff(before, after), head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[]))
    await run_review(_request(), services)
    fake_github.push(pr, git_diff(before, after), HEAD2)  # no compare defined: GitHub answers 404
    fake_claude.queue(Answer(findings=[]))

    outcome = await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)

    assert outcome.status == "silent"  # reviewed in full, found nothing: no review, the check run has the coverage
    section = _diff_section(fake_claude.first_turns[-1])
    assert "app/users.py" in section and "app/other.py" in section
