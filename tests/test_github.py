"""bot.github against the fake GitHub over loopback, through the real githubkit."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import pytest

from bot.domain import InlineComment, ReviewToPost, Side
from bot.errors import (
    ConfigError,
    Forbidden,
    GitHubError,
    GitHubUnavailable,
    NotFound,
    RateLimited,
    StaleHead,
    TooLarge,
    Unprocessable,
)
from bot.github.auth import GitHubApp, signing_key
from bot.github.manifest import APP_EVENTS, APP_PERMISSIONS
from bot.github.repo import RepoClient
from bot.github.retry import Failure, RetryPolicy, Transient, classify, rate_limit_wait, to_error
from bot.settings import Settings
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub, FakePull

HEAD = "a" * 40
BASE = "b" * 40
BEFORE = {"app.py": "".join(f"line {n}\n" for n in range(1, 41))}
AFTER = {
    "app.py": "".join(("changed 3\n" if n == 3 else f"line {n}\n") + ("new 30\n" if n == 30 else "")
                      for n in range(1, 41)),
    "new.py": "print('hi')\n",
}


@functools.cache
def _diff() -> str:
    return git_diff(BEFORE, AFTER)


@functools.cache
def _huge_diff() -> str:
    """301 text files and one binary file: GitHub answers 406 for the diff media type."""
    text = "".join(f"diff --git a/f{n:03}.py b/f{n:03}.py\n--- a/f{n:03}.py\n+++ b/f{n:03}.py\n@@ -1 +1 @@\n-a\n+b\n"
                   for n in range(301))
    return text + git_diff({}, {"logo.png": b"\x89PNG\x00binary"})


@pytest.fixture
def pull(fake_github: FakeGitHub) -> FakePull:
    """PR #1 on octo/repo at HEAD."""
    return fake_github.add_pull("octo", "repo", _diff(), head_sha=HEAD, base_sha=BASE)


@pytest.fixture
async def app(github_settings: Settings) -> Any:
    """The bot's GitHubApp for the fake, without write spacing and with fast backoff."""
    gh = GitHubApp(github_settings, write_interval=0, backoff_base=0.01)
    yield gh
    await gh.aclose()


@pytest.fixture
def client(app: GitHubApp) -> RepoClient:
    """A RepoClient for octo/repo through installation 100."""
    return app.for_repo(100, "octo", "repo")


def _comment(line: int, body: str = "finding", side: Side = Side.RIGHT, path: str = "app.py") -> InlineComment:
    return InlineComment(path=path, line=line, side=side, body=body)


# ------------------------------------------------------------------ authentication


async def test_identity_is_cached_and_api_version_is_sent(fake_github: FakeGitHub, app: GitHubApp) -> None:
    first, second = await app.identity(), await app.identity()
    assert first == second and (first.id, first.slug, first.bot_login) == (1, "senior-review", "senior-review[bot]")
    assert len(fake_github.requests_to("GET", r"^/app$")) == 1
    assert fake_github.requests[0].headers["x-github-api-version"] == "2022-11-28"
    assert fake_github.requests[0].headers["authorization"].startswith("Bearer ")


async def test_api_version_is_a_setting(fake_github: FakeGitHub, rsa_private_key_pem: str, pull: FakePull) -> None:
    from bot.settings import load_settings

    settings = load_settings(github_api_url=fake_github.url, github_app_id=1,
                             github_app_private_key=rsa_private_key_pem, github_api_version="2026-03-10")
    await GitHubApp(settings, write_interval=0).for_repo(100, "octo", "repo").get_pull(1)
    assert {r.headers["x-github-api-version"] for r in fake_github.requests} == {"2026-03-10"}


async def test_installation_token_scoped_and_reused(fake_github: FakeGitHub, app: GitHubApp, client: RepoClient,
                                                    pull: FakePull) -> None:
    await client.get_pull(1)
    await client.get_file("missing.txt", "main")
    await app.for_repo(100, "octo", "repo").get_pull(1)  # a new RepoClient reuses the cached token
    (token_request,) = fake_github.requests_to("POST", r"/access_tokens$")
    assert token_request.json == {"repositories": ["repo"]}
    token = next(iter(fake_github.tokens))
    repo_calls = fake_github.requests_to("GET", r"^/repos/")
    assert len(repo_calls) == 3 and {r.headers["authorization"] for r in repo_calls} == {f"token {token}"}
    assert fake_github.tokens[token].repos == ["repo"]


async def test_token_is_refreshed_before_expiry(fake_github: FakeGitHub, client: RepoClient, pull: FakePull) -> None:
    # githubkit keeps a token until one minute before its `expires_at` (whole seconds, rounded down here):
    # a token with a minute left is never reused, one with an hour left is (test_installation_token_scoped...).
    fake_github.token_ttl = 60
    await client.get_pull(1)
    await client.get_pull(1)
    assert len(fake_github.requests_to("POST", r"/access_tokens$")) == 2


async def test_rejected_token_is_renewed_once(fake_github: FakeGitHub, client: RepoClient, pull: FakePull) -> None:
    await client.get_pull(1)
    for token in fake_github.tokens.values():
        token.expires_at = time.time() - 1  # revoked or expired early: GitHub answers 401 Bad credentials
    assert (await client.get_pull(1)).number == 1
    assert len(fake_github.requests_to("POST", r"/access_tokens$")) == 2
    fake_github.tokens.clear()
    with pytest.raises(GitHubError) as info:
        await client.get_pull(1)
    assert info.value.status == 401


async def test_other_repository_is_not_reachable_with_a_scoped_token(
    fake_github: FakeGitHub, app: GitHubApp, pull: FakePull
) -> None:
    fake_github.add_pull("octo", "other", _diff(), number=1)
    with pytest.raises(Unprocessable):
        await app.for_repo(100, "octo", "missing").get_pull(1)  # the token request itself is refused (422)
    assert (await app.for_repo(100, "octo", "other").get_pull(1)).number == 1


async def test_ghes_base_url(fake_github: FakeGitHub, github_settings_ghes: Settings, pull: FakePull) -> None:
    gh = GitHubApp(github_settings_ghes, write_interval=0)
    client = gh.for_repo(100, "octo", "repo")
    assert (await client.get_pull(1)).head_sha == HEAD
    assert (await gh.identity()).slug == "senior-review"  # App (JWT) route under /api/v3
    await client.post_review(1, ReviewToPost(HEAD, "body", (_comment(3),)))
    threads = await client.review_threads(1)
    assert len(threads) == 1
    assert all(r.raw_path.startswith(("/api/v3/", "/api/graphql")) for r in fake_github.requests)
    assert fake_github.requests_to("POST", r"^/graphql$")[0].raw_path == "/api/graphql"


# ------------------------------------------------------------------ pull-request data


async def test_get_pull_maps_fields(client: RepoClient, pull: FakePull) -> None:
    pr = await client.get_pull(1)
    assert (pr.full_name, pr.number, pr.head_sha, pr.base_sha, pr.base_ref, pr.author, pr.draft, pr.state) == (
        "octo/repo", 1, HEAD, BASE, "main", "alice", False, "open"
    )
    with pytest.raises(NotFound):
        await client.get_pull(2)


async def test_get_diff_text(client: RepoClient, pull: FakePull) -> None:
    raw = await client.get_diff(1)
    assert raw.text == _diff() and raw.file_entries is None


async def test_too_large_diff_falls_back_to_paginated_files(fake_github: FakeGitHub, client: RepoClient) -> None:
    fake_github.add_pull("octo", "repo", _huge_diff(), number=7)
    raw = await client.get_diff(7)
    assert raw.text is None and raw.file_entries is not None
    assert len(raw.file_entries) == 302
    assert [e["filename"] for e in raw.file_entries][:2] == ["f000.py", "f001.py"]
    assert [(n.path, "no patch" in n.reason) for n in raw.not_reviewed] == [("logo.png", True)]
    pages = fake_github.requests_to("GET", r"/pulls/7/files$")
    assert [r.query.get("page", "1") for r in pages] == ["1", "2", "3", "4"]
    assert pages[0].query["per_page"] == "100"


async def test_files_past_3000_are_reported_not_reviewed(fake_github: FakeGitHub, client: RepoClient) -> None:
    many = "".join(f"diff --git a/f{n} b/f{n}\n--- a/f{n}\n+++ b/f{n}\n@@ -1 +1 @@\n-a\n+b\n" for n in range(3002))
    fake_github.add_pull("octo", "repo", many, number=8)
    raw = await client.get_diff(8)
    assert raw.file_entries is not None and len(raw.file_entries) == 3000
    assert [(n.path, n.reason) for n in raw.not_reviewed] == [("*", "only the first 3000 of 3002 files are listed")]
    assert len(fake_github.requests_to("GET", r"/pulls/8/files$")) == 30


async def test_compare(fake_github: FakeGitHub, client: RepoClient) -> None:
    text = git_diff({"a.py": "1\n"}, {"a.py": "2\n"})
    fake_github.set_compare("octo", "repo", BASE, HEAD, status="ahead", diff_text=text, ahead_by=2)
    ahead = await client.compare(BASE, HEAD)
    assert (ahead.status, ahead.ahead_by, ahead.behind_by, ahead.diff_text) == ("ahead", 2, 0, None)
    assert [e["filename"] for e in ahead.file_entries or ()] == ["a.py"]  # the JSON's own patches
    assert len(fake_github.requests_to("GET", r"/compare/")) == 1  # no second request for the diff text
    fake_github.max_patch_chars = 1  # a file without its patch: fetch the diff text
    fake_github.set_compare("octo", "repo", "d" * 40, HEAD, status="ahead", diff_text=text)
    assert (await client.compare("d" * 40, HEAD)).diff_text == text
    fake_github.max_patch_chars = 100_000
    fake_github.set_compare("octo", "repo", "c" * 40, HEAD, status="diverged", diff_text=text, behind_by=3)
    diverged = await client.compare("c" * 40, HEAD)
    assert (diverged.status, diverged.behind_by, diverged.diff_text) == ("diverged", 3, None)


async def test_too_large_compare_falls_back_to_its_files(fake_github: FakeGitHub, client: RepoClient) -> None:
    fake_github.set_compare("octo", "repo", BASE, HEAD, status="ahead", diff_text=_huge_diff())
    comparison = await client.compare(BASE, HEAD)
    assert comparison.diff_text is None and comparison.file_entries is not None
    assert len(comparison.file_entries) == 300
    assert [n.path for n in comparison.not_reviewed] == ["*"]


async def test_get_file_from_ref(fake_github: FakeGitHub, client: RepoClient) -> None:
    fake_github.set_file("octo", "repo", "main", ".github/senior-review.yml", "language: fr\n")
    fake_github.set_file("octo", "repo", HEAD, ".github/senior-review.yml", "language: xx\n")
    assert await client.get_file(".github/senior-review.yml", "main") == "language: fr\n"
    assert await client.get_file(".github/absent.yml", "main") is None
    assert await client.get_file(".github/senior-review.yml") == "language: fr\n"  # default branch
    assert "ref" not in fake_github.requests[-1].query


# ------------------------------------------------------------------ posting reviews


async def test_review_is_one_comment_event(fake_github: FakeGitHub, client: RepoClient, pull: FakePull) -> None:
    review = ReviewToPost(HEAD, "Summary", (_comment(3), _comment(3, side=Side.LEFT),
                                            InlineComment("app.py", 5, Side.RIGHT, "range", start_line=2,
                                                          start_side=Side.RIGHT)))
    posted = await client.post_review(1, review)
    assert len(posted.inline) == 3 and posted.moved_to_body == ()
    (request,) = fake_github.requests_to("POST", r"/reviews$")
    assert request.json["event"] == "COMMENT" and request.json["commit_id"] == HEAD
    assert request.json["comments"][2] == {"path": "app.py", "line": 5, "side": "RIGHT", "body": "range",
                                           "start_line": 2, "start_side": "RIGHT"}


async def test_rejected_comment_moves_to_body_by_bisecting(
    fake_github: FakeGitHub, client: RepoClient, pull: FakePull
) -> None:
    comments = (_comment(3, "one"), _comment(20, "outside the diff"), _comment(31, "two"),
                _comment(1, "three", path="new.py"), _comment(2, "context on LEFT", side=Side.LEFT))
    posted = await client.post_review(1, ReviewToPost(HEAD, "Summary", comments))
    assert [c.body for c in posted.moved_to_body] == ["outside the diff", "context on LEFT"]
    assert [c.body for c in posted.inline] == ["one", "two", "three"]
    reviews = fake_github.reviews("octo", "repo", 1)
    assert [r["state"] for r in reviews] == ["COMMENTED"]  # probes were pending and deleted
    assert "outside the diff" in reviews[0]["body"] and "context on LEFT" in reviews[0]["body"]
    assert "`app.py`**, line 20" in reviews[0]["body"]
    stored = sorted(c["body"] for c in fake_github.review_comments.values())
    assert stored == ["one", "three", "two"]


async def test_is_placeable_avoids_bisecting(fake_github: FakeGitHub, client: RepoClient, pull: FakePull) -> None:
    comments = (_comment(3, "ok"), _comment(20, "bad"))
    posted = await client.post_review(1, ReviewToPost(HEAD, "S", comments), is_placeable=lambda c: c.line != 20)
    assert [c.body for c in posted.moved_to_body] == ["bad"]
    assert len(fake_github.requests_to("POST", r"/reviews$")) == 2
    assert [r["state"] for r in fake_github.reviews("octo", "repo", 1)] == ["COMMENTED"]


async def test_inline_cap_sends_the_rest_to_the_body(
    fake_github: FakeGitHub, client: RepoClient, pull: FakePull
) -> None:
    comments = tuple(_comment(3, f"finding {n}") for n in range(30))
    posted = await client.post_review(1, ReviewToPost(HEAD, "S", comments))
    assert len(posted.inline) == 25 and len(posted.overflow) == 5
    body = fake_github.reviews("octo", "repo", 1)[0]["body"]
    assert all(f"finding {n}" in body for n in range(25, 30)) and "More findings (5)" in body


async def test_stale_head_is_reported(fake_github: FakeGitHub, client: RepoClient, pull: FakePull) -> None:
    with pytest.raises(StaleHead):
        await client.post_review(1, ReviewToPost("f" * 40, "S", (_comment(3),)))
    assert fake_github.reviews("octo", "repo", 1) == []


async def test_lost_answer_does_not_duplicate_the_review(
    fake_github: FakeGitHub, client: RepoClient, pull: FakePull
) -> None:
    fake_github.drop_connection("POST", r"/pulls/1/reviews$", after_handling=True)
    posted = await client.post_review(1, ReviewToPost(HEAD, "S", (_comment(3),)))
    reviews = fake_github.reviews("octo", "repo", 1)
    assert len(reviews) == 1 and posted.id == reviews[0]["id"]


async def test_dropped_review_request_is_retried(fake_github: FakeGitHub, client: RepoClient, pull: FakePull) -> None:
    fake_github.drop_connection("POST", r"/pulls/1/reviews$")
    await client.post_review(1, ReviewToPost(HEAD, "S", (_comment(3),)))
    assert len(fake_github.reviews("octo", "repo", 1)) == 1
    assert len(fake_github.requests_to("POST", r"/pulls/1/reviews$")) == 2


# ------------------------------------------------------------------ other writes


async def test_comments_reactions_replies_checks_permissions(
    fake_github: FakeGitHub, client: RepoClient, pull: FakePull
) -> None:
    first = await client.create_issue_comment(1, "summary <!-- senior-review:summary -->")
    assert first.is_own and [c.body for c in await client.list_issue_comments(1)] == [first.body]
    assert await client.add_reaction(first.id, "eyes") > 0

    await client.post_review(1, ReviewToPost(HEAD, "S", (_comment(3),)))
    (root,) = await client.list_review_comments(1)
    assert root.is_own and (root.path, root.line, root.side) == ("app.py", 3, "RIGHT")
    reply = await client.reply_to_review_comment(1, root.id, "fixed?")
    assert reply.in_reply_to_id == root.id
    nested = await client.reply_to_review_comment(1, reply.id, "answering the reply")  # mapped to the root
    assert nested.in_reply_to_id == root.id
    assert await client.add_reaction(root.id, "+1", review_comment=True) > 0

    run = await client.create_check_run(HEAD, "Senior review", title="Reviewing")
    assert run.status == "in_progress"
    done = await client.update_check_run(run.id, conclusion="neutral", title="Done", summary="2 findings")
    assert (done.status, done.conclusion) == ("completed", "neutral")
    assert fake_github.check_runs[run.id]["output"] == {"title": "Done", "summary": "2 findings"}

    fake_github.set_permission("octo", "repo", "bob", "admin")
    assert await client.collaborator_permission("bob") == "admin"
    assert await client.collaborator_permission("eve") == "none"

    assert await client.resolve_review_thread(1, root.id) is True
    assert await client.resolve_review_thread(1, root.id) is False  # already resolved
    assert fake_github.resolved_threads == {f"PRRT_{root.id}"}


async def test_resolve_respects_viewer_can_resolve(fake_github: FakeGitHub, client: RepoClient, pull: FakePull) -> None:
    await client.post_review(1, ReviewToPost(HEAD, "S", (_comment(3),)))
    (root,) = await client.list_review_comments(1)
    fake_github.viewer_can_resolve = False
    assert await client.resolve_review_thread(1, root.id) is False
    assert fake_github.requests_to("POST", r"^/graphql$")[-1].json["query"].strip().startswith("query")


async def test_writes_are_spaced_per_installation(
    fake_github: FakeGitHub, github_settings: Settings, pull: FakePull
) -> None:
    client = GitHubApp(github_settings, write_interval=0.2).for_repo(100, "octo", "repo")
    started = time.monotonic()
    for n in range(3):
        await client.create_issue_comment(1, f"c{n}")
    assert time.monotonic() - started >= 0.4


# ------------------------------------------------------------------ limits and faults


async def test_502_502_200_succeeds(fake_github: FakeGitHub, client: RepoClient, pull: FakePull) -> None:
    fake_github.fail_next("GET", r"/pulls/1$", status=502, times=2)
    assert (await client.get_pull(1)).number == 1
    assert len(fake_github.requests_to("GET", r"/pulls/1$")) == 3


async def test_persistent_5xx_and_drops_become_github_unavailable(
    fake_github: FakeGitHub, client: RepoClient, pull: FakePull
) -> None:
    fake_github.fail_next("GET", r"/pulls/1$", status=500, times=2)
    fake_github.drop_connection("GET", r"/pulls/1$", times=2)
    with pytest.raises(GitHubUnavailable) as info:
        await client.get_pull(1)
    assert info.value.retry_at is not None
    assert len(fake_github.requests_to("GET", r"/pulls/1$")) == 4  # 1 + github_request_retries (3)


async def test_token_request_failure_is_retried(fake_github: FakeGitHub, client: RepoClient, pull: FakePull) -> None:
    fake_github.fail_next("POST", r"/access_tokens$", status=502)
    assert (await client.get_pull(1)).number == 1
    assert len(fake_github.requests_to("POST", r"/access_tokens$")) == 2


async def test_short_secondary_rate_limit_is_waited_out(
    fake_github: FakeGitHub, client: RepoClient, pull: FakePull
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    client.app.policy.sleep = sleep
    fake_github.secondary_rate_limit("GET", r"/pulls/1$", retry_after=1)
    fake_github.too_many_requests("GET", r"/pulls/1$", retry_after=0)
    assert (await client.get_pull(1)).number == 1
    assert slept[0] >= 1  # the secondary limit's retry-after is waited out before the next try
    assert len(fake_github.requests_to("GET", r"/pulls/1$")) == 3


async def test_long_rate_limit_surfaces_as_retry_later(
    fake_github: FakeGitHub, client: RepoClient, pull: FakePull
) -> None:
    fake_github.secondary_rate_limit("GET", r"/pulls/1$", retry_after=120)
    with pytest.raises(RateLimited) as info:
        await client.get_pull(1)
    assert info.value.retry_at is not None and 100 < info.value.retry_at - time.time() <= 121
    fake_github.primary_rate_limit("GET", r"/pulls/1$", reset_in=600)
    with pytest.raises(RateLimited):
        await client.get_pull(1)
    assert len(fake_github.requests_to("GET", r"/pulls/1$")) == 2


async def test_not_accessible_is_forbidden_naming_the_permission_and_not_retried(
    fake_github: FakeGitHub, client: RepoClient, pull: FakePull
) -> None:
    fake_github.not_accessible("POST", r"/check-runs$", permission="checks=write")
    with pytest.raises(Forbidden, match="checks=write"):
        await client.create_check_run(HEAD, "Senior review")
    assert len(fake_github.requests_to("POST", r"/check-runs$")) == 1


async def test_other_4xx_are_not_retried(fake_github: FakeGitHub, client: RepoClient, pull: FakePull) -> None:
    fake_github.inject("GET", r"/pulls/1$", status=422, message="Validation Failed")
    with pytest.raises(Unprocessable):
        await client.get_pull(1)
    assert len(fake_github.requests_to("GET", r"/pulls/1$")) == 1


# ------------------------------------------------------------------ request budget


async def test_typical_review_request_count(fake_github: FakeGitHub, app: GitHubApp, pull: FakePull) -> None:
    """PR, diff, config file, existing comments, one review, check run create + update: recorded exactly."""
    seen: list[tuple[str, str]] = []
    counted = GitHubApp(app.settings, write_interval=0, on_request=lambda m, p: seen.append((m, p)))
    client = counted.for_repo(100, "octo", "repo")
    pr = await client.get_pull(1)
    run = await client.create_check_run(pr.head_sha, "Senior review")
    await client.get_diff(1)
    await client.get_file(".github/senior-review.yml", pr.base_sha)
    await client.list_review_comments(1)
    await client.post_review(1, ReviewToPost(pr.head_sha, "Summary", (_comment(3),)))
    await client.update_check_run(run.id, conclusion="success")
    assert [m + " " + p for m, p in seen] == [
        "POST /app/installations/100/access_tokens",
        "GET /repos/octo/repo/pulls/1",
        "POST /repos/octo/repo/check-runs",
        "GET /repos/octo/repo/pulls/1",
        "GET /repos/octo/repo/contents/.github/senior-review.yml",
        "GET /app",
        "GET /repos/octo/repo/pulls/1/comments",
        "POST /repos/octo/repo/pulls/1/reviews",
        "PATCH /repos/octo/repo/check-runs/" + str(run.id),
    ]
    assert counted.request_count == 9 == len(fake_github.requests)


# ------------------------------------------------------------------ policy units and constants


def test_failure_classification() -> None:
    now = 1000.0
    assert rate_limit_wait(Failure(403, {"Retry-After": "7"}), now) == 7
    assert rate_limit_wait(Failure(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030"}), now) == 30
    assert rate_limit_wait(Failure(403, {}, {"message": "Resource not accessible by integration"}), now) is None
    assert rate_limit_wait(Failure(429, {}), now) == 60
    assert isinstance(classify(Failure(None, detail="reset"), now), Transient)
    assert isinstance(classify(Failure(503), now), Transient)
    too_large = {"message": "Sorry", "errors": [{"resource": "PullRequest", "field": "diff", "code": "too_large"}]}
    assert isinstance(to_error(Failure(406, {}, too_large)), TooLarge)
    body = {"message": "Unprocessable Entity", "errors": ["Line could not be resolved"]}
    unprocessable = to_error(Failure(422, {}, body))
    assert isinstance(unprocessable, Unprocessable) and unprocessable.errors == ["Line could not be resolved"]


async def test_retry_policy_bounds_waits() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy(retries=2, max_wait=10, backoff_base=1, sleep=sleep, clock=lambda: 0.0)

    async def always_transient() -> None:
        raise Transient(Failure(502))

    with pytest.raises(GitHubUnavailable):
        await policy.run(always_transient, "x")
    assert len(slept) == 2 and 0.5 <= slept[0] <= 1.5 and 1 <= slept[1] <= 3


def test_permissions_and_events_constants() -> None:
    assert dict(APP_PERMISSIONS) == {"pull_requests": "write", "contents": "read", "issues": "write",
                                     "checks": "write", "metadata": "read"}
    assert APP_EVENTS == ("pull_request", "issue_comment", "pull_request_review_comment",
                          "pull_request_review_thread")


def test_one_app_serves_successive_event_loops(github_settings: Settings, pull: FakePull) -> None:
    gh = GitHubApp(github_settings, write_interval=0)
    client = gh.for_repo(100, "octo", "repo")
    assert asyncio.run(client.get_pull(1)).number == 1
    assert asyncio.run(client.get_pull(1)).number == 1  # the connection pool follows the running loop


def test_missing_credentials_are_a_config_error() -> None:
    from bot.errors import ConfigError
    from bot.settings import load_settings

    with pytest.raises(ConfigError, match="GITHUB_APP_ID"):
        GitHubApp(load_settings())


# ------------------------------------------------------------------ context at the head commit


async def test_context_is_read_in_one_graphql_query(fake_github: FakeGitHub, client: RepoClient) -> None:
    from bot.github.context import read_context

    fake_github.set_file("octo", "repo", HEAD, "app/users.py", "def find(name):\n    return name\n")
    fake_github.set_file("octo", "repo", HEAD, "tests/test_users.py", "def test_find(): ...\n")
    fake_github.set_file("octo", "repo", HEAD, "tests/fixtures/data.json", "{}")
    fake_github.set_file("octo", "repo", HEAD, "logo.png", b"\x89PNG\x00\x00binary")
    fake_github.set_file("octo", "repo", BASE, "tests/test_old.py", "gone at the head\n")
    before = len(fake_github.requests_to("POST", r"/graphql$"))
    view = await read_context(client, HEAD, ["app/users.py", "logo.png", "missing.py"], ["tests", "nowhere", "app"])
    assert len(fake_github.requests_to("POST", r"/graphql$")) - before == 1
    assert view.texts == {"app/users.py": "def find(name):\n    return name\n"}  # binary and missing left out
    assert view.listings == {"tests": ("test_users.py",), "app": ("users.py",)}  # files only, at the head commit
    sent = fake_github.requests_to("POST", r"/graphql$")[-1].json
    assert "app/users.py" not in sent["query"]  # paths travel as variables, never in the query text
    assert f"{HEAD}:app/users.py" in sent["variables"].values()


async def test_context_reads_many_files_in_at_most_two_queries(fake_github: FakeGitHub, client: RepoClient) -> None:
    from bot.github.context import BLOBS_PER_QUERY, MAX_CALLS, read_context

    paths = [f"m{n}.py" for n in range(BLOBS_PER_QUERY * 3)]
    for path in paths:
        fake_github.set_file("octo", "repo", HEAD, path, f"# {path}\n")
    before = len(fake_github.requests_to("POST", r"/graphql$"))
    view = await read_context(client, HEAD, paths, [""])
    assert len(fake_github.requests_to("POST", r"/graphql$")) - before == MAX_CALLS
    assert len(view.texts) == BLOBS_PER_QUERY * MAX_CALLS and view.texts["m0.py"] == "# m0.py\n"


async def test_context_of_a_truncated_blob_is_left_out(fake_github: FakeGitHub, client: RepoClient) -> None:
    from bot.github.context import read_context

    fake_github.max_blob_text = 10
    fake_github.set_file("octo", "repo", HEAD, "big.py", "x = 1\n" * 10)
    view = await read_context(client, HEAD, ["big.py"], [])
    assert view.texts == {}


def test_the_app_key_is_parsed_once_and_must_be_an_rsa_pem(rsa_private_key_pem: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key: object = signing_key(rsa_private_key_pem)
    assert isinstance(key, rsa.RSAPrivateKey)  # PyJWT signs with it as it is: no parsing per JWT
    with pytest.raises(ConfigError, match="not a PEM private key"):
        signing_key("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(ConfigError, match="RSA"):
        signing_key(ec_pem)


async def test_warm_up_sends_nothing_to_github(fake_github: FakeGitHub, app: GitHubApp, client: RepoClient,
                                               pull: FakePull) -> None:
    await asyncio.to_thread(app.warm_up)  # as start-up runs it: in a thread, with its own event loop
    assert fake_github.requests == [] and app.request_count == 0
    assert (await client.get_pull(1)).number == 1  # the App works as before, its token flow included
    assert len(fake_github.requests_to("POST", r"/app/installations/100/access_tokens")) == 1
