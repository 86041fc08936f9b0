"""The spend ledger and the daily caps (installation, pull request, author) against the fakes, real clients."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.budget import daily_caps
from bot.domain import Usage
from bot.errors import GitHubUnavailable, ModelUnavailable
from bot.memory import CHECK_NAME
from bot.prices import DEFAULT_PRICES
from bot.registry import AppContext
from bot.review import run_review
from bot.services import ReviewRequest, Services
from bot.store.spend import SpendRecord
from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub

OWNER, INSTALLATION, MODEL = "octo", 100, "claude-sonnet-5-5"
CONFIG_FILE = ".github/senior-review.yml"
BEFORE = {"app/users.py": "def find_user(conn, name):\n    return None\n"}
AFTER = {"app/users.py": "def find_user(conn, name):\n    return conn.execute(f\"{name}\")\n"}


@pytest.fixture
def services(app_context: AppContext) -> Services:
    return Services.of(app_context)


def _request(repo: str = "repo", number: int = 1, job_id: int = 1) -> ReviewRequest:
    return ReviewRequest(job_id=job_id, installation_id=INSTALLATION, owner=OWNER, repo=repo, number=number,
                         trigger="pull_request.opened")


def _paid(fake: FakeClaude) -> float:
    price = DEFAULT_PRICES[MODEL]
    return sum(price.cost(Usage(u["input_tokens"], u["output_tokens"], u.get("cache_creation_input_tokens", 0),
                                u.get("cache_read_input_tokens", 0))) for u in fake.usages)


def test_the_first_cap_exceeded_is_named() -> None:
    caps = (("installation", 1.0, 50.0), ("pull request", 14.0, 15.0), ("author", 0.0, 25.0))
    assert daily_caps(caps, 0.5).allowed
    refused = daily_caps(caps, 1.5)
    assert not refused.allowed and refused.scope == "pull request"
    assert "the reviews of this pull request spent $14.00 of its $15.00" in refused.message
    assert "`budgets.max_cost_usd_per_pr_per_day`" in refused.message


async def test_the_ledger_sums_by_scope(services: Services) -> None:
    store, now = services.store, time.time()
    for repo, pr, author, cost in (("octo/repo", 1, "mallory", 1.0), ("octo/repo", 1, "mallory", 2.0),
                                   ("octo/other", 4, "mallory", 4.0), ("octo/other", 5, "alice", 8.0),
                                   ("elsewhere/x", 1, "mallory", 16.0)):
        await store.record_spend(SpendRecord(repo.split("/")[0], repo, pr, author, MODEL, cost, at=now))
    await store.record_spend(SpendRecord("octo", "octo/repo", 1, "mallory", MODEL, 32.0, at=now - 86_400))
    spent = await store.daily_spend("octo", "octo/repo", 1, "mallory", now - 3600)
    assert (spent.installation, spent.pull_request, spent.author) == (15.0, 3.0, 7.0)


async def test_an_outsider_cannot_drain_the_installation(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    # Everyone is trusted here (the worst case); the per-PR and per-author caps still protect the others.
    org = "auto_review: {trust: everyone}\nbudgets:\n  max_cost_usd_per_pr_per_day: 0.01\n" \
          "  max_cost_usd_per_author_per_day: 0.02\n"
    fake_github.add_repo(OWNER, ".github")
    fake_github.set_file(OWNER, ".github", "main", CONFIG_FILE, org)
    fake_github.add_installation(INSTALLATION, OWNER, ["repo", "other", ".github"])
    fake_github.add_pull(OWNER, "repo", git_diff(BEFORE, AFTER), head_sha="a" * 40, author="mallory",
                         author_association="NONE", fork=True)
    fake_github.add_pull(OWNER, "other", git_diff(BEFORE, AFTER), head_sha="c" * 40, author="alice")
    await services.store.record_spend(SpendRecord(OWNER, f"{OWNER}/repo", 1, "mallory", MODEL, 0.01))

    outcome = await run_review(_request(), services)
    assert outcome.status == "skipped" and outcome.detail == "pull request over its daily budget"
    assert fake_claude.requests == []
    (check,) = [c for c in fake_github.check_runs.values() if c["head_sha"] == "a" * 40]
    assert check["name"] == CHECK_NAME and check["conclusion"] == "neutral"
    assert "max_cost_usd_per_pr_per_day" in check["output"]["summary"]

    fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
    assert (await run_review(_request("other", job_id=2), services)).status == "posted"  # an employee's PR


async def test_the_author_cap_spans_repositories(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    fake_github.set_file(OWNER, "other", "main", CONFIG_FILE, "budgets: {max_cost_usd_per_author_per_day: 0.01}\n")
    fake_github.add_pull(OWNER, "other", git_diff(BEFORE, AFTER), head_sha="c" * 40, author="mallory")
    await services.store.record_spend(SpendRecord(OWNER, f"{OWNER}/repo", 7, "mallory", MODEL, 0.01))
    outcome = await run_review(_request("other"), services)
    assert outcome.detail == "author over its daily budget" and fake_claude.requests == []


async def test_spend_is_recorded_when_paid_even_if_posting_fails(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    fake_github.add_pull(OWNER, "repo", git_diff(BEFORE, AFTER), head_sha="a" * 40)
    for attempt in (1, 2):
        fake_claude.queue(Answer(findings=[finding("app/users.py", 2, title="SQL injection")]))
        fake_github.fail_next("POST", r"/pulls/1/reviews$", status=502, times=10)
        with pytest.raises(GitHubUnavailable):
            await run_review(ReviewRequest(job_id=1, installation_id=INSTALLATION, owner=OWNER, repo="repo",
                                           number=1, trigger="pull_request.opened", attempts=attempt), services)
    rows: list[Any] = await services.store.spend_rows()
    # One row per paid call: each review's batch and its verification turn.
    assert len(rows) == len(fake_claude.usages) == 4 and len(fake_claude.first_turns) == 2
    assert sum(r.cost_usd for r in rows) == pytest.approx(_paid(fake_claude))
    assert sum(r.output_tokens for r in rows) == sum(u["output_tokens"] for u in fake_claude.usages)


async def test_caps_count_real_spend_and_the_ledger_equals_what_the_model_reported(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    # A small per-review cap: every call's max_tokens is lowered so input + max_tokens at the output price fits.
    fake_github.set_file(OWNER, "repo", "main", CONFIG_FILE, "budgets: {max_cost_usd_per_review: 0.2}\n")
    files = {f"svc/m{i}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(6)}
    after = {path: text + "\n\ndef g(y):\n    return eval(y)\n" for path, text in files.items()}
    fake_github.add_pull(OWNER, "repo", git_diff(files, after), head_sha="a" * 40)
    fake_claude.default = Answer(findings=[finding("svc/m0.py", 5, title="eval of input")])  # so a review is posted
    fake_claude.fail_next("max_tokens", times=1)  # a truncated answer is paid for, then split into halves
    # Attempt 1: posting fails (GitHub 502) after the model was paid; attempt 2: the model API is overloaded
    # (not paid); attempt 3 succeeds. Every paid call is in the ledger.
    post_fails = fake_github.fail_next("POST", r"/pulls/1/reviews$", status=502, times=10)
    for attempt, error in ((1, GitHubUnavailable), (2, ModelUnavailable), (3, None)):
        if attempt == 2:
            post_fails.times = 0
            fake_claude.fail_next("overloaded", times=1)
        request = ReviewRequest(job_id=1, installation_id=INSTALLATION, owner=OWNER, repo="repo", number=1,
                                trigger="pull_request.opened", attempts=attempt)
        if error is None:
            assert (await run_review(request, services)).status == "posted"
        else:
            with pytest.raises(error):
                await run_review(request, services)
    rows = await services.store.spend_rows()
    assert len(rows) == len(fake_claude.usages) >= 3
    assert sum(r.cost_usd for r in rows) == pytest.approx(_paid(fake_claude))
    assert sum(r.input_tokens for r in rows) == sum(u["input_tokens"] for u in fake_claude.usages)
    asked = [r.json["max_tokens"] for r in fake_claude.requests]
    assert all(0 < tokens < 16_000 for tokens in asked)  # lowered from the default to fit $0.20


async def test_a_call_that_cannot_fit_is_not_made_and_its_files_are_listed_over_budget(
    fake_github: FakeGitHub, fake_claude: FakeClaude, services: Services
) -> None:
    fake_github.set_file(OWNER, "repo", "main", CONFIG_FILE, "budgets: {max_cost_usd_per_review: 0.001}\n")
    fake_github.add_pull(OWNER, "repo", git_diff(BEFORE, AFTER), head_sha="a" * 40)
    outcome = await run_review(_request(), services)
    assert fake_claude.requests == [] and await services.store.spend_rows() == []
    assert outcome.status == "posted"
    (review,) = [r for r in fake_github.reviews(OWNER, "repo", 1) if r.get("state") != "PENDING"]
    assert "app/users.py" in review["body"] and "over budget" in review["body"]
