"""`@senior-review` commands end to end: routing's payload -> store -> `handle_command_job` -> fake GitHub.

Real `GitHubApp`, `AsyncAnthropic` and SQLite `Store`, all pointed at the loopback fakes. Each command comment is
put into the fake (so reactions and thread replies have a target), routed by `bot.routing.route` (so the payload
field names are the ones production writes), queued and claimed from the store, and handled.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bot.command_jobs import CommandRequest, handle_command_job, reply_after_review
from bot.commands import CommandKind, rate_limited_text
from bot.errors import GitHubUnavailable
from bot.registry import AppContext
from bot.review import handle_review_job, run_review
from bot.routing import route
from bot.services import ReviewRequest, Services
from bot.store.base import Store
from bot.store.types import Job, JobKind, JobSpec, JobState, pr_key
from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub

OWNER, REPO, INSTALLATION, SLUG = "octo", "repo", 100, "senior-review"
HEAD1, HEAD2, BASE = "a" * 40, "b" * 40, "0" * 40
KEY = pr_key(OWNER, REPO, 1)
AUTHOR, WRITER, READER = "alice", "maint", "reader"
CONFIG_FILE = ".github/senior-review.yml"

HANDLER_OLD = "def find_user(conn, name):\n    return None\n"
HANDLER_NEW = (
    "def find_user(conn, name):\n"
    "    sql = f\"SELECT id FROM users WHERE name = '{name}'\"\n"
    "    return conn.execute(sql).fetchone()\n"
)
BEFORE = {"app/users.py": HANDLER_OLD, "app/other.py": "x = 1\n"}
AFTER = {"app/users.py": HANDLER_NEW, "app/other.py": "x = 1\n"}
ALL_COMMANDS = ["review", "full review", "pause", "resume", "help", "config"]


@pytest.fixture
def context(app_context: AppContext, fake_github: FakeGitHub) -> AppContext:
    """The workers' context (see tests/fakes/pipeline_fixtures.py) and one open PR with known permissions."""
    fake_github.add_pull(OWNER, REPO, git_diff(BEFORE, AFTER), head_sha=HEAD1, base_sha=BASE, author=AUTHOR)
    fake_github.set_permission(OWNER, REPO, WRITER, "write")
    fake_github.set_permission(OWNER, REPO, "boss", "admin")
    fake_github.set_permission(OWNER, REPO, READER, "read")
    fake_github.set_permission(OWNER, REPO, AUTHOR, "read")
    return app_context


# ---------------------------------------------------------------- helpers


def _user(login: str, kind: str) -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10_000, "type": kind}


def _put_comment(fake: FakeGitHub, body: str, login: str, kind: str, source: str) -> dict[str, Any]:
    """Make the comment exist on the fake (as GitHub would before sending the webhook)."""
    cid = fake._id()
    if source == "issue_comment":
        comment = {"id": cid, "body": body, "user": _user(login, kind), "_key": (OWNER, REPO, 1),
                   "author_association": "MEMBER", "_put": True}
        fake.issue_comments[cid] = comment
    else:
        comment = {"id": cid, "body": body, "user": _user(login, kind), "path": "app/users.py", "line": 2,
                   "side": "RIGHT", "start_line": None, "in_reply_to_id": None, "pull_request_review_id": None,
                   "_pull": 1, "_pending": False, "_put": True}
        fake.review_comments[cid] = comment
    return comment


def _webhook(comment: dict[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    """The webhook GitHub sends for the comment (only the fields routing reads, plus realistic neighbours)."""
    common = {
        "action": "created",
        "comment": {k: v for k, v in comment.items() if not k.startswith("_")},
        "repository": {"name": REPO, "full_name": f"{OWNER}/{REPO}", "owner": {"login": OWNER}},
        "installation": {"id": INSTALLATION},
        "sender": comment["user"],
    }
    if source == "issue_comment":
        return "issue_comment", {**common, "issue": {"number": 1, "pull_request": {"url": "https://x/pulls/1"}}}
    return "pull_request_review_comment", {**common, "pull_request": {"number": 1}}


async def _claim(store: Store, kind: str) -> Job:
    job = await store.claim("test-worker", 60, kinds=[kind])
    assert job is not None, f"no {kind} job queued"
    return job


async def command(
    context: AppContext, fake: FakeGitHub, body: str, *, login: str = WRITER, kind: str = "User",
    source: str = "issue_comment",
) -> dict[str, Any]:
    """Post `body` as `login`, route the webhook, queue, claim and handle the command job; the comment."""
    comment = _put_comment(fake, body, login, kind, source)
    event, payload = _webhook(comment, source)
    routed = route(event, payload)
    assert routed.known
    for spec in routed.specs:
        await context.store.enqueue(spec, delivery_id=f"d-{comment['id']}")
        job = await _claim(context.store, JobKind.COMMAND)
        await handle_command_job(job, context)
        await context.store.complete(job.id, "test-worker")
    return comment


async def direct_command(context: AppContext, fake: FakeGitHub, body: str, login: str, kind: str) -> dict[str, Any]:
    """A command job that routing would not have created (defence in depth: bots are ignored by the handler too)."""
    comment = _put_comment(fake, body, login, kind, "issue_comment")
    spec = JobSpec(JobKind.COMMAND, INSTALLATION, OWNER, REPO, 1, "issue_comment.created", data={
        "source": "issue_comment", "comment_id": comment["id"], "body": body, "author": login, "author_type": kind,
    })
    await context.store.enqueue(spec)
    job = await _claim(context.store, JobKind.COMMAND)
    await handle_command_job(job, context)
    return comment


def bot_replies(fake: FakeGitHub) -> list[str]:
    """Everything the App wrote as comments: conversation comments and thread replies."""
    mine = f"{SLUG}[bot]"
    issue = [c["body"] for c in fake.issue_comments.values() if c["user"]["login"] == mine and "_put" not in c]
    thread = [c["body"] for c in fake.review_comments.values()
              if c["user"]["login"] == mine and c.get("pull_request_review_id") is None and "_put" not in c]
    return issue + thread


def reactions_on(fake: FakeGitHub, comment: dict[str, Any]) -> list[str]:
    return [r["content"] for r in fake.reactions.values() if r["_on"][1] == comment["id"]]


async def queued_reviews(store: Store) -> list[Job]:
    return [j for j in await store.list_jobs(KEY, states=[JobState.QUEUED]) if j.kind == JobKind.REVIEW]


def _submitted(fake: FakeGitHub) -> list[dict[str, Any]]:
    return [r for r in fake.reviews(OWNER, REPO, 1) if r.get("state") != "PENDING"]


async def _automatic_review(context: AppContext, job_id: int = 900, trigger: str = "pull_request.opened") -> str:
    request = ReviewRequest(job_id=job_id, installation_id=INSTALLATION, owner=OWNER, repo=REPO, number=1,
                            trigger=trigger)
    return (await run_review(request, Services.of(context))).status


# ---------------------------------------------------------------- writers


async def test_review_from_a_writer_reacts_queues_a_review_and_the_job_posts_it(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    comment = await command(context, fake_github, f"Thanks!\n\n@{SLUG} review")

    assert reactions_on(fake_github, comment) == ["eyes"]
    assert bot_replies(fake_github) == []  # the review itself is the answer
    assert fake_claude.first_turns == []  # nothing reaches the model before the review job runs
    [job] = await queued_reviews(context.store)
    assert job.head_sha == HEAD1 and job.trigger == "command.review"
    assert {k: job.payload[k] for k in ("full", "comment_id", "source", "pr", "owner", "repo", "installation_id")} == {
        "full": False, "comment_id": comment["id"], "source": "issue_comment", "pr": 1, "owner": OWNER,
        "repo": REPO, "installation_id": INSTALLATION,
    }
    request = ReviewRequest.from_job(job)
    assert not request.automatic and not request.full
    assert (request.comment_id, request.comment_source) == (comment["id"], "issue_comment")

    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection in find_user")]))
    await handle_review_job(await _claim(context.store, JobKind.REVIEW), context)
    [review] = _submitted(fake_github)
    assert review["commit_id"] == HEAD1
    assert len(fake_claude.first_turns) == 1


async def test_full_review_queues_a_full_job_that_reviews_the_whole_pr(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    assert await _automatic_review(context) == "posted"
    pr = fake_github.pulls[(OWNER, REPO, 1)]
    after2 = dict(AFTER, **{"app/other.py": "x = 2\n"})
    fake_github.push(pr, git_diff(BEFORE, after2), HEAD2)
    fake_github.set_compare(OWNER, REPO, HEAD1, HEAD2, status="ahead", diff_text=git_diff(AFTER, after2))

    comment = await command(context, fake_github, f"@{SLUG}  Full   Review")

    assert reactions_on(fake_github, comment) == ["eyes"]
    [job] = await queued_reviews(context.store)
    assert job.payload["full"] is True and job.trigger == "command.full_review" and job.head_sha == HEAD2
    assert ReviewRequest.from_job(job).full
    await handle_review_job(await _claim(context.store, JobKind.REVIEW), context)
    prompt = str(fake_claude.first_turns[-1].json["messages"])
    assert "app/users.py" in prompt.split("FILE", 1)[-1]  # not only the incremental change to other.py
    assert not fake_github.requests_to("GET", r"/compare/")  # full scope: no incremental comparison


async def test_review_command_in_a_thread_reacts_on_the_review_comment(
    context: AppContext, fake_github: FakeGitHub
) -> None:
    # The payload routing writes is the one CommandRequest reads (field names: pr, comment_id, source, ...).
    comment = _put_comment(fake_github, f"@{SLUG} review", WRITER, "User", "review_comment")
    [spec] = route(*_webhook(comment, "review_comment")).specs
    await context.store.enqueue(spec)
    job = await _claim(context.store, JobKind.COMMAND)
    assert CommandRequest.from_job(job) == CommandRequest(
        INSTALLATION, OWNER, REPO, 1, comment["id"], "review_comment", f"@{SLUG} review", WRITER, "User"
    )
    await handle_command_job(job, context)

    assert [r["content"] for r in fake_github.reactions.values() if r["_on"] == ("review", comment["id"])] == ["eyes"]
    [review_job] = await queued_reviews(context.store)
    assert review_job.payload["source"] == "review_comment"
    assert ReviewRequest.from_job(review_job).comment_source == "review_comment"


async def test_pause_skips_automatic_reviews_but_review_still_works_and_resume_restores(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    paused = await command(context, fake_github, f"@{SLUG} pause")
    assert reactions_on(fake_github, paused) == ["eyes"]
    assert (await context.store.get_pr_state(f"{OWNER}/{REPO}", 1)).paused
    assert len(bot_replies(fake_github)) == 1 and "paused" in bot_replies(fake_github)[0]
    assert await _automatic_review(context, trigger="pull_request.synchronize") == "skipped"
    assert fake_claude.first_turns == []

    await command(context, fake_github, f"@{SLUG} review")
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    await handle_review_job(await _claim(context.store, JobKind.REVIEW), context)
    assert len(_submitted(fake_github)) == 1 and len(fake_claude.first_turns) == 1

    resumed = await command(context, fake_github, f"@{SLUG} resume")
    assert reactions_on(fake_github, resumed) == ["eyes"]
    assert not (await context.store.get_pr_state(f"{OWNER}/{REPO}", 1)).paused
    assert "back on" in bot_replies(fake_github)[-1]
    pr = fake_github.pulls[(OWNER, REPO, 1)]
    fake_github.push(pr, git_diff(BEFORE, AFTER), HEAD2)
    fake_github.set_compare(OWNER, REPO, HEAD1, HEAD2, status="ahead", diff_text=git_diff(BEFORE, BEFORE))
    assert await _automatic_review(context, job_id=901, trigger="pull_request.synchronize") != "skipped"


async def test_review_on_a_paused_pr_is_not_swallowed_by_a_queued_automatic_job(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    """A push queued an automatic review (skipped, paused) at the same head: the command must still review."""
    await command(context, fake_github, f"@{SLUG} pause")
    await context.store.enqueue(JobSpec(JobKind.REVIEW, INSTALLATION, OWNER, REPO, 1, "pull_request.synchronize",
                                        head_sha=HEAD1, data={"draft": False}))
    comment = await command(context, fake_github, f"@{SLUG} full review")

    [job] = await queued_reviews(context.store)
    request = ReviewRequest.from_job(job)
    assert not request.automatic and request.full and request.comment_id == comment["id"]
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    await handle_review_job(await _claim(context.store, JobKind.REVIEW), context)
    assert len(_submitted(fake_github)) == 1


async def test_help_replies_with_the_command_list_in_the_same_place(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    await command(context, fake_github, f"@{SLUG} help")
    [reply] = bot_replies(fake_github)
    for word in ALL_COMMANDS:
        assert f"`@{SLUG} {word}`" in reply
    assert "write, maintain or admin" in reply
    # Asked in a review thread: answered in that thread, not in the conversation.
    comment = await command(context, fake_github, f"@{SLUG} help", source="review_comment")
    [threaded] = [c for c in fake_github.review_comments.values() if c.get("in_reply_to_id") == comment["id"]]
    assert threaded["body"] == reply
    assert len([c for c in fake_github.issue_comments.values() if "_put" not in c]) == 1
    assert await queued_reviews(context.store) == [] and fake_claude.first_turns == []


async def test_config_replies_with_the_effective_configuration_as_yaml(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    fake_github.set_file(OWNER, REPO, "main", CONFIG_FILE, "max_inline_comments: 7\n")
    await command(context, fake_github, f"@{SLUG} config", login="boss")
    [reply] = bot_replies(fake_github)
    assert "```yaml\n" in reply
    data = yaml.safe_load(reply.split("```yaml\n", 1)[1].rsplit("```", 1)[0])
    assert data["max_inline_comments"] == 7
    assert f"{OWNER}/{REPO}:{CONFIG_FILE}@main" in reply
    assert await queued_reviews(context.store) == [] and fake_claude.first_turns == []


async def test_unknown_or_argument_carrying_commands_get_help_and_nothing_else(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    bodies = [f"@{SLUG} review --model=x", f"@{SLUG} review https://evil.example", f"@{SLUG} please review",
              f"@{SLUG}", f"@{SLUG} full review --all"]
    for count, body in enumerate(bodies, start=1):
        comment = await command(context, fake_github, body)
        replies = bot_replies(fake_github)
        assert len(replies) == count, body
        assert replies[-1].startswith("I did not recognise that command."), body
        assert reactions_on(fake_github, comment) == [], body
    assert await queued_reviews(context.store) == [] and fake_claude.first_turns == []


# ---------------------------------------------------------------- who may not


async def test_read_only_users_get_one_refusal_per_command_and_nothing_runs(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    refusal = (f"Sorry, `@{SLUG}` commands can only be used by people with write, maintain or admin access to this "
               "repository.")
    attempts = [(READER, word) for word in ALL_COMMANDS] + [("drive-by", "review")]  # drive-by: "none"
    for count, (login, word) in enumerate(attempts, start=1):
        comment = await command(context, fake_github, f"@{SLUG} {word}", login=login)
        assert bot_replies(fake_github) == [refusal] * count, word
        assert reactions_on(fake_github, comment) == [], word
    assert await queued_reviews(context.store) == []
    assert not (await context.store.get_pr_state(f"{OWNER}/{REPO}", 1)).paused
    assert fake_claude.first_turns == []


async def test_pr_author_without_write_access_is_refused_by_default(
    context: AppContext, fake_github: FakeGitHub
) -> None:
    # The PR's own branch tries to let its author in; configuration is read from the base branch only.
    fake_github.set_file(OWNER, REPO, "feature", CONFIG_FILE, "commands:\n  allow_pr_author: true\n")
    fake_github.set_file(OWNER, REPO, HEAD1, CONFIG_FILE, "commands:\n  allow_pr_author: true\n")
    comment = await command(context, fake_github, f"@{SLUG} review", login=AUTHOR)
    [reply] = bot_replies(fake_github)
    assert reply.startswith("Sorry") and "author" not in reply
    assert reactions_on(fake_github, comment) == [] and await queued_reviews(context.store) == []


async def test_pr_author_may_command_when_the_base_branch_config_allows(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    fake_github.set_file(OWNER, REPO, "main", CONFIG_FILE, "commands:\n  allow_pr_author: true\n")
    comment = await command(context, fake_github, f"@{SLUG} review", login=AUTHOR)
    assert reactions_on(fake_github, comment) == ["eyes"]
    assert len(await queued_reviews(context.store)) == 1
    assert bot_replies(fake_github) == []
    # Another read-only user is still refused, and the refusal names the author rule.
    await command(context, fake_github, f"@{SLUG} review", login=READER)
    [reply] = bot_replies(fake_github)
    assert reply.startswith("Sorry") and "pull request's author" in reply


async def test_bots_and_the_app_itself_are_never_answered(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    for login, kind in [("ci-helper", "Bot"), ("renovate[bot]", "User"), (f"{SLUG}[bot]", "Bot"), (SLUG, "User"),
                        ("Senior-Review[bot]", "User")]:
        fake_github.set_permission(OWNER, REPO, login, "admin")  # even with access
        comment = _put_comment(fake_github, f"@{SLUG} review", login, kind, "issue_comment")
        event, payload = _webhook(comment, "issue_comment")
        if kind == "Bot" or login.endswith("[bot]"):
            assert route(event, payload).specs == (), login  # routing already drops them

        await direct_command(context, fake_github, f"@{SLUG} review", login, kind)

        assert bot_replies(fake_github) == [] and fake_github.reactions == {}, login
    assert await queued_reviews(context.store) == [] and fake_claude.first_turns == []
    assert not fake_github.requests_to("GET", r"/permission$")
    assert await context.store.count_commands(f"{OWNER}/{REPO}", 0) == 0


async def test_mentions_in_code_quotes_or_to_other_apps_do_nothing(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    bodies = [
        f"```\n@{SLUG} review\n```",
        f"~~~text\n@{SLUG} review\n~~~",
        f"`@{SLUG} review`",
        f"> @{SLUG} review",
        f"    @{SLUG} review",
        f"@other-app review\n@{SLUG}-bot review",
        f"please @{SLUG} review",
        f"@{SLUG}/team review",
    ]
    for body in bodies:
        comment = await command(context, fake_github, body)
        assert bot_replies(fake_github) == [] and reactions_on(fake_github, comment) == [], body
    assert await queued_reviews(context.store) == [] and fake_claude.first_turns == []
    assert not fake_github.requests_to("GET", r"/permission$")
    assert await context.store.count_commands(f"{OWNER}/{REPO}", 0) == 0
    # The same handler does obey the plain form (the cases above fail for the right reason).
    await command(context, fake_github, f"@{SLUG} help")
    assert len(bot_replies(fake_github)) == 1


# ---------------------------------------------------------------- rate limits and failures


async def test_the_eleventh_command_on_a_pr_in_an_hour_gets_one_limit_reply_then_silence(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    for _ in range(10):
        await command(context, fake_github, f"@{SLUG} help")
    assert len(bot_replies(fake_github)) == 10

    eleventh = await command(context, fake_github, f"@{SLUG} review")
    assert bot_replies(fake_github)[10:] == [rate_limited_text("pull request", 10, SLUG)]
    assert reactions_on(fake_github, eleventh) == [] and await queued_reviews(context.store) == []

    for login in (WRITER, "boss", WRITER):
        await command(context, fake_github, f"@{SLUG} review", login=login)
    assert len(bot_replies(fake_github)) == 11  # silence after the one limit reply
    assert await queued_reviews(context.store) == [] and fake_claude.first_turns == []
    assert not fake_github.reactions


async def test_per_user_limit_silences_a_spamming_reader_without_using_the_pr_budget(
    context: AppContext, fake_github: FakeGitHub
) -> None:
    for _ in range(22):
        await command(context, fake_github, f"@{SLUG} review", login=READER)
    replies = bot_replies(fake_github)
    assert len(replies) == 21 and replies[-1] == rate_limited_text("user", 20, SLUG)
    # The reader's refusals did not use up the pull request's command budget.
    comment = await command(context, fake_github, f"@{SLUG} review")
    assert reactions_on(fake_github, comment) == ["eyes"] and len(await queued_reviews(context.store)) == 1


async def test_permission_lookup_errors_fail_closed(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    # 5xx beyond the client's retries: the job fails (and is retried later); nothing is done meanwhile.
    fake_github.fail_next("GET", r"/collaborators/.+/permission$", status=500, times=10)
    with pytest.raises(GitHubUnavailable):
        await command(context, fake_github, f"@{SLUG} review")
    assert len(fake_github.requests_to("GET", r"/permission$")) == 3  # first try + 2 retries
    assert bot_replies(fake_github) == [] and not fake_github.reactions
    assert await queued_reviews(context.store) == [] and fake_claude.first_turns == []
    fake_github.faults.clear()

    # A definite refusal from GitHub (403): refused, with the one short reply.
    fake_github.not_accessible("GET", r"/collaborators/.+/permission$", permission="metadata=read")
    comment = await command(context, fake_github, f"@{SLUG} review")
    [reply] = bot_replies(fake_github)
    assert reply.startswith("Sorry") and reactions_on(fake_github, comment) == []
    assert await queued_reviews(context.store) == [] and fake_claude.first_turns == []


async def test_disabled_repository_refuses_review_but_answers_help(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    fake_github.set_file(OWNER, REPO, "main", CONFIG_FILE, "enabled: false\n")
    comment = await command(context, fake_github, f"@{SLUG} review")
    assert "enabled: false" in bot_replies(fake_github)[0]
    assert reactions_on(fake_github, comment) == [] and await queued_reviews(context.store) == []
    await command(context, fake_github, f"@{SLUG} help")
    assert "reviews disabled" in bot_replies(fake_github)[1]


# ---------------------------------------------------------------- the reply when the review posted nothing


async def _silent_command_review(context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude,
                                 source: str = "issue_comment") -> tuple[Job, dict[str, Any]]:
    """An automatic review at HEAD1, a push to HEAD2 with nothing wrong, then `@app review`: the queued job."""
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    assert await _automatic_review(context) == "posted"
    pr = fake_github.pulls[(OWNER, REPO, 1)]
    after2 = dict(AFTER, **{"app/other.py": "x = 2\n"})
    fake_github.push(pr, git_diff(BEFORE, after2), HEAD2)
    fake_github.set_compare(OWNER, REPO, HEAD1, HEAD2, status="ahead", diff_text=git_diff(AFTER, after2))
    await context.store.set_paused(f"{OWNER}/{REPO}", 1, True)  # no automatic review of HEAD2 in the way
    comment = await command(context, fake_github, f"@{SLUG} review", source=source)
    fake_claude.queue(Answer(findings=[]))
    return await _claim(context.store, JobKind.REVIEW), comment


@pytest.mark.parametrize("source", ["issue_comment", "review_comment"])
async def test_a_command_review_with_nothing_new_replies_no_new_findings_since(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude, source: str
) -> None:
    job, comment = await _silent_command_review(context, fake_github, fake_claude, source)
    request = ReviewRequest.from_job(job)
    services = Services.of(context)
    outcome = await run_review(request, services)
    assert outcome.status == "silent"
    await reply_after_review(request, outcome, services)

    assert len(_submitted(fake_github)) == 1  # only the first, automatic review
    [reply] = bot_replies(fake_github)
    assert reply == f"No new findings since `{HEAD1[:12]}`."
    if source == "review_comment":
        assert [c["in_reply_to_id"] for c in fake_github.review_comments.values()
                if c["body"] == reply] == [comment["id"]]


async def test_reply_after_review_says_nothing_when_a_review_was_posted_or_the_run_was_automatic(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    await command(context, fake_github, f"@{SLUG} review")
    request = ReviewRequest.from_job(await _claim(context.store, JobKind.REVIEW))
    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    services = Services.of(context)
    outcome = await run_review(request, services)
    assert outcome.status == "posted"
    await reply_after_review(request, outcome, services)
    automatic = ReviewRequest(job_id=5, installation_id=INSTALLATION, owner=OWNER, repo=REPO, number=1,
                              trigger="pull_request.synchronize")
    await context.store.set_paused(f"{OWNER}/{REPO}", 1, True)
    skipped = await run_review(automatic, services)
    assert skipped.status == "skipped"
    await reply_after_review(automatic, skipped, services)
    assert bot_replies(fake_github) == []


async def test_a_command_review_of_a_closed_pr_says_why_nothing_happened(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    await command(context, fake_github, f"@{SLUG} review")
    fake_github.pulls[(OWNER, REPO, 1)].state = "closed"
    request = ReviewRequest.from_job(await _claim(context.store, JobKind.REVIEW))
    services = Services.of(context)
    outcome = await run_review(request, services)
    await reply_after_review(request, outcome, services)
    assert bot_replies(fake_github) == ["No review: pull request is not open."]
    assert fake_claude.first_turns == []


async def test_review_job_handler_replies_no_new_findings_for_commands(
    context: AppContext, fake_github: FakeGitHub, fake_claude: FakeClaude
) -> None:
    job, _ = await _silent_command_review(context, fake_github, fake_claude)
    await handle_review_job(job, context)
    assert bot_replies(fake_github) == [f"No new findings since `{HEAD1[:12]}`."]


def test_command_kinds_cover_the_grammar() -> None:
    """Guard: the parametrised lists above name every command of the grammar (the thread kinds, `dismiss` and
    questions, are tested in tests/test_thread_commands.py)."""
    from bot.commands import THREAD_KINDS

    assert {*ALL_COMMANDS} == {k.value for k in CommandKind if k is not CommandKind.UNKNOWN and k not in THREAD_KINDS}


async def test_dismiss_outside_a_finding_thread_says_where_it_works(context: AppContext, fake_github: FakeGitHub,
                                                                    fake_claude: FakeClaude) -> None:
    await command(context, fake_github, "@senior-review dismiss this is fine")
    assert bot_replies(fake_github) == [
        "`@senior-review dismiss` works as a reply in the thread of one of my findings."]
    await command(context, fake_github, "@senior-review why?")  # not in a thread: an unknown command gets help
    assert bot_replies(fake_github)[-1].startswith("I did not recognise that command.")
    assert fake_claude.requests == []
