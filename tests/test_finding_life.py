"""The life of a finding against the fakes: re-checked when a push changes its lines (fixed -> reply and resolved,
present -> silence), dismissed by a writer's 👎 (never again, on this PR and on a full review), and remembered
across pull requests when dismissed with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.registry import AppContext
from bot.review import run_review
from bot.services import ReviewRequest, Services
from bot.store.types import Dismissal
from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub, FakePull

OWNER, REPO, INSTALLATION = "octo", "repo", 100
HEAD1, HEAD2, HEAD3 = "a" * 40, "b" * 40, "c" * 40
BASE = "0" * 40
UNSAFE = (
    "def find_user(conn, name):\n"
    "    sql = f\"SELECT id FROM users WHERE name = '{name}'\"\n"
    "    return conn.execute(sql).fetchone()\n"
)
BOUND = (
    "def find_user(conn, name):\n"
    "    sql = \"SELECT id FROM users WHERE name = ?\"\n"
    "    return conn.execute(sql, (name,)).fetchone()\n"
)
STILL_UNSAFE = (
    "def find_user(conn, name):\n"
    "    sql = \"SELECT id FROM users WHERE name = '%s'\" % name\n"
    "    return conn.execute(sql).fetchone()\n"
)
BASE_FILES = {"app/users.py": "def find_user(conn, name):\n    return None\n", "app/util.py": "A = 1\n"}
SQLI = finding("app/users.py", 2, title="SQL injection in find_user", severity="critical",
               body="`name` is formatted into the SQL text, so `' OR '1'='1` returns every user.")


@pytest.fixture
def services(app_context: AppContext) -> Services:
    return Services.of(app_context)


def _request(job_id: int = 1, trigger: str = "pull_request.opened", **kw: Any) -> ReviewRequest:
    return ReviewRequest(job_id=job_id, installation_id=INSTALLATION, owner=OWNER, repo=REPO, number=1,
                         trigger=trigger, **kw)


async def _first_review(fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services) -> tuple[FakePull,
                                                                                                      dict[str, Any]]:
    head1 = {**BASE_FILES, "app/users.py": UNSAFE}
    pr = fake_github.add_pull(OWNER, REPO, git_diff(BASE_FILES, head1), head_sha=HEAD1, base_sha=BASE)
    fake_claude.queue(Answer(findings=[SQLI]))
    assert (await run_review(_request(), services)).status == "posted"
    [root] = [c for c in fake_github.review_comments.values() if "SQL injection" in c["body"]]
    return pr, root


def _push(fake_github: FakeGitHub, pr: FakePull, before: dict[str, str], after: dict[str, str], head: str) -> None:
    fake_github.push(pr, git_diff(BASE_FILES, after), head)
    fake_github.set_compare(OWNER, REPO, pr.past_heads[-1], head, status="ahead", diff_text=git_diff(before, after))


def _replies(fake_github: FakeGitHub, root: dict[str, Any]) -> list[str]:
    return [c["body"] for c in fake_github.review_comments.values() if c["in_reply_to_id"] == root["id"]]


async def _states(services: Services, pr: int = 1) -> dict[str, str]:
    return {r.title or r.fingerprint: r.state for r in await services.store.list_findings(f"{OWNER}/{REPO}", pr)}


def _earlier_section(request: Any) -> str:
    text = request.json["messages"][0]["content"][0]["text"]
    return text.split("Earlier findings to re-check", 1)[1] if "Earlier findings to re-check" in text else ""


async def test_a_fixed_finding_gets_one_reply_and_its_thread_resolved(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    pr, root = await _first_review(fake_github, fake_claude, services)
    head1 = {**BASE_FILES, "app/users.py": UNSAFE}
    _push(fake_github, pr, head1, {**BASE_FILES, "app/users.py": BOUND}, HEAD2)
    fake_claude.queue(Answer(earlier=[{"id": "E1", "status": "fixed", "reason": "the name is a bound parameter"}]))

    outcome = await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)

    # What the request carried: the earlier finding with its id, next to the new code of the same batch.
    section = _earlier_section(fake_claude.first_turns[-1])
    assert "E1: app/users.py, line 2 (security): SQL injection in find_user" in section
    assert "formatted into the SQL text" in section
    assert len(fake_claude.first_turns) == 2  # no extra call: it rode in the batch that reviews the file
    # What was posted: one short reply in the finding's thread, the thread resolved, no new review.
    assert outcome.status == "silent"
    [reply] = _replies(fake_github, root)
    assert reply.startswith("Fixed in `bbbbbbb`.")
    assert fake_github.resolved_threads == {f"PRRT_{root['id']}"}
    assert (await _states(services))["SQL injection in find_user"] == "fixed"

    # A later push leaves the settled finding alone: no second reply.
    head2 = {**BASE_FILES, "app/users.py": BOUND}
    _push(fake_github, pr, head2, {**head2, "app/util.py": "A = 2\n"}, HEAD3)
    await run_review(_request(job_id=3, trigger="pull_request.synchronize"), services)
    assert len(_replies(fake_github, root)) == 1 and _earlier_section(fake_claude.first_turns[-1]) == ""


async def test_a_finding_still_present_stays_open_and_nothing_is_posted(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    pr, root = await _first_review(fake_github, fake_claude, services)
    head1 = {**BASE_FILES, "app/users.py": UNSAFE}
    _push(fake_github, pr, head1, {**BASE_FILES, "app/users.py": STILL_UNSAFE}, HEAD2)
    # The model says it is still there, and repeats it as a new finding in other words: neither is posted.
    fake_claude.queue(Answer(
        findings=[finding("app/users.py", 2, title="SQL injection in find_user!", severity="critical",
                          body="Still formatted with %.")],
        earlier=[{"id": "E1", "status": "present", "reason": "still % formatted"},
                 {"id": "E7", "status": "fixed", "reason": "an id that was never sent"}],
    ))
    reviews_before = len(fake_github.reviews(OWNER, REPO, 1))

    outcome = await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)

    assert outcome.status == "silent" and len(fake_github.reviews(OWNER, REPO, 1)) == reviews_before
    assert _replies(fake_github, root) == [] and fake_github.resolved_threads == set()
    assert (await _states(services))["SQL injection in find_user"] == "open"


async def test_findings_whose_lines_did_not_change_are_not_shown_or_touched(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    pr, root = await _first_review(fake_github, fake_claude, services)
    head1 = {**BASE_FILES, "app/users.py": UNSAFE}
    _push(fake_github, pr, head1, {**head1, "app/util.py": "A = 2\n"}, HEAD2)
    # Even a model claiming a fix for an id it was never shown changes nothing.
    fake_claude.queue(Answer(earlier=[{"id": "E1", "status": "fixed", "reason": "invented"}]))

    await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)

    assert _earlier_section(fake_claude.first_turns[-1]) == ""
    assert _replies(fake_github, root) == [] and fake_github.resolved_threads == set()
    assert (await _states(services))["SQL injection in find_user"] == "open"


async def test_a_file_with_no_other_change_is_rechecked_in_one_small_request(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    pr, root = await _first_review(fake_github, fake_claude, services)
    # The repository excludes the file from now on: the push's only change to it is not reviewed, but the open
    # finding on its lines is still re-checked, alone.
    fake_github.set_file(OWNER, REPO, "main", ".github/senior-review.yml", "paths:\n  exclude: ['app/users.py']\n")
    head1 = {**BASE_FILES, "app/users.py": UNSAFE}
    _push(fake_github, pr, head1, {**BASE_FILES, "app/users.py": BOUND, "app/util.py": "A = 2\n"}, HEAD2)

    def answer(request: dict[str, Any]) -> Answer:
        text = request["messages"][0]["content"][0]["text"]
        if "shown only to re-check" in text:
            return Answer(findings=[finding("app/users.py", 3, title="Ignored: a recheck-only answer")],
                          earlier=[{"id": "E1", "status": "fixed", "reason": "bound parameter"}])
        return Answer()

    fake_claude.queue(answer, answer)
    await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)

    rechecks = [r for r in fake_claude.first_turns[1:] if "shown only to re-check" in json.dumps(r.json)]
    assert len(rechecks) == 1 and "FILE app/users.py" in rechecks[0].json["messages"][0]["content"][0]["text"]
    assert _replies(fake_github, root)[0].startswith("Fixed in `bbbbbbb`.")
    assert not any("Ignored" in c["body"] for c in fake_github.review_comments.values())


async def test_when_resolving_fails_the_reply_stands_and_the_failure_is_logged(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    pr, root = await _first_review(fake_github, fake_claude, services)
    head1 = {**BASE_FILES, "app/users.py": UNSAFE}
    _push(fake_github, pr, head1, {**BASE_FILES, "app/users.py": BOUND}, HEAD2)
    fake_claude.queue(Answer(earlier=[{"id": "E1", "status": "fixed", "reason": "bound"}]))
    # GitHub answers the mutation with a GraphQL error (HTTP 200), as for an App that may not resolve threads.
    fake_github.inject("POST", r"^/graphql$", body_regex="resolveReviewThread", answer={
        "data": {"resolveReviewThread": None}, "errors": [{
            "type": "FORBIDDEN", "path": ["resolveReviewThread"], "extensions": {"saml_failure": False},
            "locations": [{"line": 1, "column": 12}], "message": "Resource not accessible by integration"}]})

    outcome = await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)

    assert outcome.status == "silent"
    assert _replies(fake_github, root)[0].startswith("Fixed in `bbbbbbb`.")
    assert fake_github.resolved_threads == set()
    assert "could not resolve the thread" in caplog.text
    assert (await _states(services))["SQL injection in find_user"] == "fixed"


async def test_a_writers_thumbs_down_dismisses_for_good_an_outsiders_does_not(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    pr, root = await _first_review(fake_github, fake_claude, services)
    fake_github.set_permission(OWNER, REPO, "maint", "write")
    fake_github.react(root["id"], "drive-by", "-1")  # no write access: ignored
    head1 = {**BASE_FILES, "app/users.py": UNSAFE}
    head2 = {**head1, "app/util.py": "A = 2\n"}
    _push(fake_github, pr, head1, head2, HEAD2)
    await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)
    assert _replies(fake_github, root) == [] and (await _states(services))["SQL injection in find_user"] == "open"

    fake_github.react(root["id"], "maint", "-1")
    _push(fake_github, pr, head2, {**head2, "app/util.py": "A = 3\n"}, HEAD3)
    await run_review(_request(job_id=3, trigger="pull_request.synchronize"), services)
    [reply] = _replies(fake_github, root)
    assert reply.startswith("Dismissed after a 👎 from `maint`") and "@maint" not in reply
    assert fake_github.resolved_threads == {f"PRRT_{root['id']}"}
    assert (await _states(services))["SQL injection in find_user"] == "dismissed"

    # A full review where the model raises it again: not posted, and the dismissal is not confirmed twice.
    fake_claude.queue(Answer(findings=[SQLI]))
    outcome = await run_review(_request(job_id=4, trigger="command.full_review", full=True, comment_id=9), services)
    assert outcome.status == "silent"
    assert len([c for c in fake_github.review_comments.values() if "SQL injection" in c["body"]]) == 1
    assert len(_replies(fake_github, root)) == 1


async def test_a_dismissal_with_a_reason_is_remembered_in_later_pull_requests(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    await _first_review(fake_github, fake_claude, services)
    [record] = await services.store.list_findings(f"{OWNER}/{REPO}", 1)
    await services.store.record_dismissal(Dismissal(f"{OWNER}/{REPO}", record.fingerprint, 1, "test fixture only",
                                                    "maint"))
    head1 = {**BASE_FILES, "app/users.py": UNSAFE}
    fake_github.add_pull(OWNER, REPO, git_diff(BASE_FILES, head1), number=2, head_sha=HEAD2, base_sha=BASE)
    fake_claude.queue(Answer(findings=[SQLI, finding("app/users.py", 3, title="No timeout", category="reliability",
                                                     severity="medium")]))

    outcome = await run_review(ReviewRequest(job_id=5, installation_id=INSTALLATION, owner=OWNER, repo=REPO, number=2,
                                             trigger="pull_request.opened"), services)

    assert outcome.status == "posted"
    review = [r for r in fake_github.reviews(OWNER, REPO, 2) if r["state"] != "PENDING"][-1]
    inline = [c["body"] for c in fake_github.review_comments.values() if c["pull_request_review_id"] == review["id"]]
    assert len(inline) == 1 and "No timeout" in inline[0]
    assert "dismissed earlier in #1" in review["body"]
    assert "SQL injection" not in review["body"]


async def test_a_finding_follows_its_code_down_the_file_and_is_rechecked_where_it_now_is(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    pr, root = await _first_review(fake_github, fake_claude, services)
    head1 = {**BASE_FILES, "app/users.py": UNSAFE}
    header = "import logging\nimport os\n\nlog = logging.getLogger(__name__)\n\n"
    head2 = {**BASE_FILES, "app/users.py": header + UNSAFE}  # five lines above the finding: not touched
    _push(fake_github, pr, head1, head2, HEAD2)
    await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)
    assert _earlier_section(fake_claude.first_turns[-1]) == ""
    [record] = await services.store.list_findings(f"{OWNER}/{REPO}", 1)
    assert (record.start_line, record.line, record.last_seen_sha) == (7, 7, HEAD2)

    _push(fake_github, pr, head2, {**BASE_FILES, "app/users.py": header + BOUND}, HEAD3)
    fake_claude.queue(Answer(earlier=[{"id": "E1", "status": "fixed", "reason": "bound parameter"}]))
    await run_review(_request(job_id=3, trigger="pull_request.synchronize"), services)

    assert "E1: app/users.py, line 7 (security)" in _earlier_section(fake_claude.first_turns[-1])
    assert _replies(fake_github, root)[0].startswith("Fixed in `ccccccc`.")


async def test_a_thumbs_down_on_a_copy_of_the_marker_or_with_reactions_off_dismisses_nothing(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    pr, root = await _first_review(fake_github, fake_claude, services)
    fake_github.set_permission(OWNER, REPO, "maint", "write")
    # Mallory's own comment carrying a copy of the finding's marker, and a writer's 👎 on it.
    forged = fake_github.add_review_reply(root["id"], "mallory", root["body"])
    forged["in_reply_to_id"] = None
    fake_github.react(forged["id"], "maint", "-1")
    head1 = {**BASE_FILES, "app/users.py": UNSAFE}
    head2 = {**head1, "app/util.py": "A = 2\n"}
    _push(fake_github, pr, head1, head2, HEAD2)
    await run_review(_request(job_id=2, trigger="pull_request.synchronize"), services)
    assert (await _states(services))["SQL injection in find_user"] == "open"

    # The real finding gets the writer's 👎, but the repository turned reactions off.
    fake_github.react(root["id"], "maint", "-1")
    fake_github.set_file(OWNER, REPO, "main", ".github/senior-review.yml", "threads:\n  dismiss_by_reaction: false\n")
    _push(fake_github, pr, head2, {**head2, "app/util.py": "A = 3\n"}, HEAD3)
    await run_review(_request(job_id=3, trigger="pull_request.synchronize"), services)
    assert (await _states(services))["SQL injection in find_user"] == "open" and _replies(fake_github, root) == []
