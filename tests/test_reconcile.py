"""Redelivery of failed webhooks, against the fake GitHub's delivery log, with the bot served on loopback so that
a redelivery arrives as GitHub sends it: a signed POST to /webhook, through intake, to a review."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.app import create_app
from bot.github.hooks import HookDelivery, delivery_of, next_cursor
from bot.metrics import Metrics
from bot.reconcile import MAX_REQUESTS_PER_GUID, REDELIVER, Reconciler, acts_on, worth_redelivering
from bot.registry import AppContext
from bot.settings import Settings
from bot.store.base import Store
from bot.store.types import JobSpec
from bot.wiring import job_handlers
from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub, FakePull
from tests.fakes.github_reconcile import Deliveries
from tests.fakes.loopback import serve_on_loopback
from tests.waiting import eventually, wait_until

OWNER, REPO, INSTALLATION = "octo", "repo", 100
HEAD = "e" * 40
DIFF = git_diff({"app/users.py": "def f(x):\n    return x\n"}, {"app/users.py": "def f(x):\n    return x + 1\n"})


def opened(fake: FakeGitHub, pull: FakePull, action: str = "opened") -> dict[str, Any]:
    """The `pull_request` event GitHub sends for `pull`."""
    return {"action": action, "number": pull.number, "pull_request": fake.pull_json(pull),
            "repository": {"id": fake.repos[(pull.owner, pull.repo)].id, "name": pull.repo,
                           "full_name": f"{pull.owner}/{pull.repo}", "owner": {"login": pull.owner}},
            "installation": {"id": INSTALLATION}, "sender": {"login": pull.author, "type": pull.author_type}}


@contextmanager
def bot_server(settings: Settings, workers: int = 1) -> Iterator[str]:
    """The bot's app (real pipeline, `workers` workers) served over loopback; yields its base URL once ready."""
    app = create_app(settings, workers=workers, handlers=job_handlers, poll_seconds=0.05)
    with serve_on_loopback(app, lifespan="on") as url:
        wait_until(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, "the bot did not become ready")
        yield url


def bot_reviews(fake: FakeGitHub, number: int) -> list[dict[str, Any]]:
    return [r for r in fake.reviews(OWNER, REPO, number) if r["state"] != "PENDING"]


def with_settings(context: AppContext, **changes: Any) -> AppContext:
    """The same context with some settings changed (settings are frozen)."""
    context.settings = context.settings.model_copy(update=changes)
    return context


# ---------------------------------------------------------------- pure rules


def item(**fields: Any) -> HookDelivery:
    base = {"id": 1, "guid": "g", "delivered_at": "2026-12-01T10:00:00Z", "redelivery": False, "status": "OK",
            "status_code": 202, "event": "pull_request", "action": "opened", "installation_id": 1,
            "repository_id": 2}
    return delivery_of({**base, **fields})


def test_which_deliveries_are_worth_redelivering() -> None:
    assert not worth_redelivering(item())  # delivered
    assert not worth_redelivering(item(status_code=204))  # 2xx of any kind
    assert worth_redelivering(item(status_code=502, status="Invalid HTTP Response: 502"))
    assert worth_redelivering(item(status_code=0, status="timed out"))  # no answer at all
    assert worth_redelivering(item(status_code=401))  # e.g. the secret was being rotated
    assert not worth_redelivering(item(status_code=400))  # the same body gets the same answer
    assert not worth_redelivering(item(status_code=413))
    assert not worth_redelivering(item(status_code=503, event="installation", action="created"))  # not acted on
    assert not worth_redelivering(item(status_code=503, event="push", action=None))  # unknown
    assert worth_redelivering(item(status_code=503, event="issue_comment", action="created"))
    assert acts_on("pull_request", "synchronize") and not acts_on("ping", None)


def test_delivery_parsing_and_cursor() -> None:
    parsed = item(action=None, installation_id=None, delivered_at="2026-12-01T10:00:00Z")
    assert parsed.action is None and parsed.installation_id is None
    assert parsed.delivered_at == datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp()
    with pytest.raises((KeyError, ValueError)):
        delivery_of({"id": 1})
    links = {"next": {"url": "https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_42", "rel": "next"}}
    assert next_cursor(links) == "v1_42"
    assert next_cursor({}) is None
    assert next_cursor({"next": {"url": "https://api.github.com/app/hook/deliveries?page=2"}}) is None


# ---------------------------------------------------------------- against the fake


async def test_failed_delivery_is_redelivered_once_and_reviewed_once(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries,
    fake_claude: FakeClaude,
) -> None:
    fake_claude.default = Answer(findings=[finding("app/users.py", 2)])  # a finding: each review is posted
    pull = fake_github.add_pull(OWNER, REPO, DIFF, number=7, head_sha=HEAD)
    with bot_server(app_context.settings) as url:
        github_deliveries.configure(f"{url}/webhook", "secret")
        failed = github_deliveries.log("pull_request", opened(fake_github, pull), status_code=503)
        reconciler = Reconciler(app_context, owner="instance-a")

        summary = await reconciler.redeliver(force=True)

        assert summary is not None and (summary.failed, summary.redelivered, summary.complete) == (1, 1, True)
        assert github_deliveries.wait_idle()
        await eventually(lambda: len(bot_reviews(fake_github, 7)) == 1)
        # The next scans find the redelivery delivered and ask for nothing more.
        again = await reconciler.redeliver(force=True)
        assert again is not None and again.redelivered == 0 and again.scanned == 1
        assert await reconciler.redeliver() is None  # not due yet
    attempts = github_deliveries.attempts(failed["guid"])
    assert [(a["redelivery"], a["status_code"]) for a in attempts] == [(False, 503), (True, 202)]
    assert github_deliveries.redelivery_requests == [failed["id"]]
    assert len(bot_reviews(fake_github, 7)) == 1
    assert await app_context.store.delivery_status(failed["guid"]) == "processed"
    state = await app_context.store.task_state(REDELIVER)
    assert state.checkpoint == str(attempts[-1]["id"]) and state.lease_owner is None
    assert state.last_summary is not None and "0 redelivered" in state.last_summary


async def test_recorded_and_unworthy_deliveries_are_not_redelivered(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries
) -> None:
    pull = fake_github.add_pull(OWNER, REPO, DIFF, number=8, head_sha=HEAD)
    payload = opened(fake_github, pull)
    github_deliveries.log("pull_request", payload, status_code=503, delivered_at=time.time() - 4 * 86_400)  # too old
    # Recorded by the server, but GitHub gave up waiting for the answer (it counts as failed).
    timed_out = github_deliveries.log("pull_request", payload, status_code=0)
    spec = JobSpec("review", INSTALLATION, OWNER, REPO, 8, "pull_request.opened", HEAD)
    await app_context.store.accept_delivery(timed_out["guid"], "pull_request", "opened", [spec])
    github_deliveries.log("pull_request", payload, status_code=400)  # malformed for good
    github_deliveries.log("installation", {"action": "created"}, status_code=503)  # nothing to act on
    later_ok = github_deliveries.log("pull_request", payload, status_code=503)
    github_deliveries.log("pull_request", payload, status_code=202, guid=later_ok["guid"], redelivery=True)

    summary = await Reconciler(app_context, owner="a").redeliver(force=True)

    assert summary is not None
    assert (summary.scanned, summary.failed, summary.recorded, summary.redelivered) == (5, 1, 1, 0)
    assert github_deliveries.redelivery_requests == []


async def test_a_guid_is_asked_for_a_bounded_number_of_times(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries
) -> None:
    pull = fake_github.add_pull(OWNER, REPO, DIFF, number=9, head_sha=HEAD)
    github_deliveries.configure("http://127.0.0.1:9/webhook", "secret")  # the server is still down: refused
    failed = github_deliveries.log("pull_request", opened(fake_github, pull), status_code=503)
    now = [time.time()]
    reconciler = Reconciler(app_context, owner="a", clock=lambda: now[0])
    summary = await reconciler.redeliver(force=True)
    assert github_deliveries.wait_idle() and summary is not None and summary.redelivered == 1
    summary = await reconciler.redeliver(force=True)  # right away: GitHub's attempt may still be coming
    assert summary is not None and (summary.redelivered, summary.waiting) == (0, 1)
    for _ in range(MAX_REQUESTS_PER_GUID + 1):
        now[0] += app_context.settings.reconcile_interval_seconds
        await reconciler.redeliver(force=True)
        assert github_deliveries.wait_idle()
    assert len(github_deliveries.redelivery_requests) == MAX_REQUESTS_PER_GUID
    assert [a["status_code"] for a in github_deliveries.attempts(failed["guid"])] == [503] + [0] * 3
    assert await app_context.store.redelivery_attempts(failed["guid"]) == MAX_REQUESTS_PER_GUID


async def test_restart_resumes_from_the_stored_cursor(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries
) -> None:
    pull = fake_github.add_pull(OWNER, REPO, DIFF, number=10, head_sha=HEAD)
    payload = opened(fake_github, pull)
    logged = [github_deliveries.log("pull_request", payload, status_code=503 if i % 50 == 0 else 202)
              for i in range(250)]  # newest first: pages of 100, 100, 50
    failed = {entry["guid"] for entry in logged if entry["status_code"] == 503}
    github_deliveries.fail_paged = 3  # the second page fails through every retry
    first = await Reconciler(app_context, owner="before-restart").redeliver(force=True)
    assert first is not None and not first.complete
    asked_first = set(github_deliveries.redelivery_requests)
    assert len(asked_first) == 2  # the failed deliveries of the first page
    state = await app_context.store.task_state(REDELIVER)
    assert state.scan_cursor == f"v1_{logged[149]['id']}" and state.checkpoint is None
    assert state.last_summary is not None and "stopped" in state.last_summary
    fake_github.requests.clear()

    second = await Reconciler(app_context, owner="after-restart").redeliver(force=True)

    assert second is not None and second.complete and second.scanned == 150
    listings = fake_github.requests_to("GET", r"^/app/hook/deliveries$")
    assert [r.query.get("cursor") for r in listings] == [f"v1_{logged[149]['id']}", f"v1_{logged[49]['id']}"]
    by_id = {entry["id"]: entry["guid"] for entry in logged}
    assert sorted(by_id[i] for i in github_deliveries.redelivery_requests) == sorted(failed)
    assert len(github_deliveries.redelivery_requests) == len(failed) == 5
    assert (await app_context.store.task_state(REDELIVER)).checkpoint == str(logged[-1]["id"])


async def test_the_per_run_cap_leaves_the_rest_for_the_next_run(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries
) -> None:
    pull = fake_github.add_pull(OWNER, REPO, DIFF, number=11, head_sha=HEAD)
    for _ in range(3):
        github_deliveries.log("pull_request", opened(fake_github, pull), status_code=503)
    reconciler = Reconciler(with_settings(app_context, reconcile_max_redeliveries=2), owner="a")
    first = await reconciler.redeliver(force=True)
    assert first is not None and (first.redelivered, first.complete) == (2, False)
    second = await reconciler.redeliver(force=True)
    assert second is not None and (second.redelivered, second.complete) == (1, True)
    assert len(set(github_deliveries.redelivery_requests)) == 3


async def test_two_instances_do_not_both_reconcile(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries
) -> None:
    pull = fake_github.add_pull(OWNER, REPO, DIFF, number=12, head_sha=HEAD)
    github_deliveries.log("pull_request", opened(fake_github, pull), status_code=503)
    other_store = Store.from_settings(app_context.settings)
    other = AppContext(app_context.settings, other_store, Metrics(), app_context.registry, github=app_context.github)
    try:
        fake_github.slow("GET", r"^/app/hook/deliveries$", 0.3)  # the first scan is still running ...
        results = await asyncio.gather(Reconciler(app_context, owner="a").redeliver(force=True),
                                       Reconciler(other, owner="b").redeliver(force=True))
        assert sum(r is not None for r in results) == 1  # ... when the other instance tries
        assert len(github_deliveries.redelivery_requests) == 1
        # While an instance holds the lease, the other one skips even a forced run.
        assert await app_context.store.acquire_task(REDELIVER, "a", 60)
        assert await Reconciler(other, owner="b").redeliver(force=True) is None
    finally:
        await other_store.close()
