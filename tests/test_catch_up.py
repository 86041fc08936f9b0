"""Catch-up after downtime against the fake GitHub: open pull requests whose webhook never arrived are enqueued
through the webhook's own intake (so drafts, bots and every other automatic-review rule apply) and reviewed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot import webhook
from bot.catch_up import delivery_id
from bot.jobs import WorkerPool
from bot.reconcile import CATCH_UP, REDELIVER, Reconciler
from bot.registry import AppContext
from bot.routing import route
from bot.store.types import JobSpec
from bot.wiring import job_handlers
from tests.fakes.claude import Answer, FakeClaude, finding
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub
from tests.fakes.github_reconcile import Deliveries
from tests.test_reconcile import bot_reviews, with_settings
from tests.waiting import HANG_GUARD_S, eventually

OWNER, REPO, INSTALLATION = "octo", "repo", 100
DIFF = git_diff({"app/users.py": "def f(x):\n    return x\n"}, {"app/users.py": "def f(x):\n    return x + 1\n"})


def sha(n: int) -> str:
    return f"{n:x}" * 40 if n < 16 else f"{n:040x}"


async def wait_for_jobs(context: AppContext) -> None:
    """Wait until no job is queued or running."""

    async def settled() -> bool:
        return not await context.store.list_jobs(states=["queued", "running"])

    await eventually(settled, "jobs still pending")


async def review_queue(context: AppContext, until: Any) -> None:
    """Run one worker with the real pipeline until `until()` holds."""
    context.registry = job_handlers()
    pool = WorkerPool(context, 1, poll_seconds=0.05)
    pool.start()
    try:
        await eventually(until)
    finally:
        await wait_for_jobs(context)
        await pool.stop(grace_seconds=5)


async def test_missed_pull_requests_are_reviewed_after_a_restart(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries,
    fake_claude: FakeClaude,
) -> None:
    fake_claude.default = Answer(findings=[finding("app/users.py", 2)])  # a finding: each review is posted
    fake_github.add_pull(OWNER, REPO, DIFF, number=1, head_sha=sha(1))  # its webhook never arrived
    fake_github.add_pull(OWNER, REPO, DIFF, number=2, head_sha=sha(2), draft=True)
    fake_github.add_pull(OWNER, REPO, DIFF, number=3, head_sha=sha(3), author="dependabot[bot]", author_type="Bot")
    reviewed = fake_github.add_pull(OWNER, REPO, DIFF, number=4, head_sha=sha(4))
    reviewed.reviews.append({"id": 1, "user": {"login": "senior-review[bot]", "type": "Bot"}, "state": "COMMENTED",
                             "commit_id": sha(4), "body": "earlier review"})
    fake_github.add_pull(OWNER, "other", DIFF, number=5, head_sha=sha(5))  # a job is queued already
    pending = await app_context.store.accept_delivery(
        "d-5", "pull_request", "opened", [JobSpec("review", INSTALLATION, OWNER, "other", 5, "pull_request.opened",
                                                  sha(5))])
    fake_github.add_pull(OWNER, REPO, DIFF, number=6, head_sha=sha(6), state="closed")
    fake_github.add_pull(OWNER, REPO, DIFF, number=7, head_sha=sha(7), author="mallory", author_association="NONE")

    summary = await Reconciler(app_context, owner="restarted").catch_up(force=True)

    assert summary is not None and summary.text().startswith("catch-up: 2 repositories, 6 open pull requests")
    assert (summary.enqueued, summary.not_enqueued, summary.reviewed, summary.pending) == (3, 1, 1, 1)
    jobs = {job.pr: job for job in await app_context.store.list_jobs()}
    assert sorted(jobs) == [1, 2, 5, 7] and jobs[5].id == pending.job_ids[0]
    assert (jobs[1].trigger, jobs[1].head_sha, jobs[1].payload["draft"]) == ("pull_request.opened", sha(1), False)
    assert jobs[2].payload["draft"] is True
    assert jobs[1].delivery_id == delivery_id(f"{OWNER}/{REPO}", 1, sha(1), False)

    await review_queue(app_context, lambda: len(bot_reviews(fake_github, 1)) == 1)
    await wait_for_jobs(app_context)
    done = {job.pr: job.state for job in await app_context.store.list_jobs()}
    assert done == {1: "done", 2: "done", 5: "done", 7: "done"}
    assert bot_reviews(fake_github, 2) == []  # drafts are skipped by the pipeline
    # An outsider's pull request waits for a maintainer (trust tiers), as if its webhook had arrived.
    assert bot_reviews(fake_github, 7) == []
    waiting = [c for c in fake_github.check_runs.values() if c["head_sha"] == sha(7)]
    assert [(c["conclusion"], c["output"]["title"]) for c in waiting] == [("neutral", "Waiting for a maintainer")]

    again = await Reconciler(app_context, owner="later").catch_up(force=True)
    assert again is not None and again.enqueued == 0
    assert (again.reviewed, again.seen_before, again.not_enqueued) == (3, 2, 1)  # 1 and 5 by us, 4 before
    assert len(bot_reviews(fake_github, 1)) == 1
    state = await app_context.store.task_state(CATCH_UP)
    assert state.last_summary == again.text() and state.lease_owner is None


async def test_catch_up_takes_the_webhook_decision_path(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caught-up pull request is decided by the very function a `pull_request` webhook is (so any rule added
    there applies), with an event shaped like GitHub's, here refusing a bot's pull request exactly as the webhook
    would; the job it records is the webhook's job (trust tiers then apply in the pipeline, see above)."""
    fake_github.add_pull(OWNER, REPO, DIFF, number=1, head_sha=sha(1), author="mallory")
    fake_github.add_pull(OWNER, REPO, DIFF, number=2, head_sha=sha(2), author="evil[bot]", author_type="Bot")
    routed: list[tuple[str, dict[str, Any], int]] = []

    def spy(event: str, payload: dict[str, Any]) -> Any:
        result = route(event, payload)
        routed.append((event, payload, len(result.specs)))
        return result

    monkeypatch.setattr(webhook, "route", spy)
    summary = await Reconciler(app_context, owner="a").catch_up(force=True)

    assert summary is not None and (summary.enqueued, summary.not_enqueued) == (1, 1)
    assert [(event, p["pull_request"]["number"], n) for event, p, n in routed] == [
        ("pull_request", 2, 0), ("pull_request", 1, 1)]  # newest first; the bot's yields no job
    event, payload, _ = routed[1]
    assert payload["action"] == "opened" and payload["sender"]["login"] == "mallory"
    assert payload["installation"] == {"id": INSTALLATION} and payload["repository"]["full_name"] == "octo/repo"
    assert payload["pull_request"]["author_association"] and payload["pull_request"]["head"]["sha"] == sha(1)
    [job] = await app_context.store.list_jobs()
    [spec] = route(event, payload).specs
    assert job.payload == spec.payload(job.delivery_id)


async def test_a_push_after_the_last_review_is_caught_up_as_a_push(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries
) -> None:
    fake_github.add_pull(OWNER, REPO, DIFF, number=1, head_sha=sha(2))
    await app_context.store.set_last_reviewed_sha(f"{OWNER}/{REPO}", 1, sha(1))
    summary = await Reconciler(app_context, owner="a").catch_up(force=True)
    assert summary is not None and summary.enqueued == 1
    [job] = await app_context.store.list_jobs()
    assert (job.trigger, job.head_sha) == ("pull_request.synchronize", sha(2))


async def test_catch_up_is_capped_per_pass_and_resumes(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries
) -> None:
    for number in (1, 2, 3):
        fake_github.add_pull(OWNER, REPO, DIFF, number=number, head_sha=sha(number))
    reconciler = Reconciler(with_settings(app_context, catch_up_max_reviews=2), owner="a")
    first = await reconciler.catch_up(force=True)
    assert first is not None and (first.enqueued, first.capped) == (2, True)
    second = await reconciler.catch_up(force=True)
    assert second is not None and (second.enqueued, second.pending, second.capped) == (1, 2, False)
    assert sorted(job.pr for job in await app_context.store.list_jobs()) == [1, 2, 3]
    assert await reconciler.catch_up() is None  # not due again for a day


async def test_disabled_catch_up_and_redelivery_do_nothing(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries
) -> None:
    fake_github.add_pull(OWNER, REPO, DIFF, number=1, head_sha=sha(1))
    context = with_settings(app_context, catch_up=False, reconcile_interval_seconds=0)
    stopping = asyncio.Event()
    await asyncio.wait_for(Reconciler(context, owner="a").run(stopping), timeout=HANG_GUARD_S)  # returns at once
    assert await app_context.store.list_jobs() == [] and fake_github.requests_to("GET", "^/app/") == []


async def test_start_runs_both_tasks_once(
    app_context: AppContext, fake_github: FakeGitHub, github_deliveries: Deliveries
) -> None:
    fake_github.add_pull(OWNER, REPO, DIFF, number=1, head_sha=sha(1))
    stopping = asyncio.Event()
    task = asyncio.create_task(Reconciler(app_context, owner="a").run(stopping))
    try:
        async def both_ran() -> bool:
            states = {s.name: s for s in await app_context.store.task_states()}
            return all(name in states and states[name].last_finished_at for name in (REDELIVER, CATCH_UP))

        await eventually(both_ran)
    finally:
        stopping.set()
        await asyncio.wait_for(task, timeout=HANG_GUARD_S)
    states = {s.name: s for s in await app_context.store.task_states()}
    assert states[REDELIVER].last_finished_at and states[CATCH_UP].last_finished_at
    assert [job.pr for job in await app_context.store.list_jobs()] == [1]
