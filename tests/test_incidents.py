"""Nothing internal on a public PR: dead jobs post a fixed sentence and an incident id; the text goes to the logs."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest
from sqlalchemy.exc import OperationalError

from bot.command_jobs import report_dead_job
from bot.errors import ConfigError, DeadlineExceeded, GitHubUnavailable, ModelUnavailable, NotFound
from bot.incidents import SENTENCES, FailureKind, classify, public_reason
from bot.jobs import WorkerPool
from bot.memory import CHECK_NAME
from bot.registry import AppContext, Registry
from bot.store.types import Job, JobKind, JobSpec
from tests.fakes.gitdiff import git_diff
from tests.fakes.github import FakeGitHub

OWNER, REPO, INSTALLATION, HEAD = "octo", "repo", 100, "a" * 40
SECRET_TEXT = ('(psycopg.OperationalError) connection to server at "db.internal" (10.0.0.5), port 5432 failed: '
               'FATAL: password authentication failed for user "admin" [SQL: SELECT * FROM jobs]')


@pytest.mark.parametrize("exc, kind", [
    (GitHubUnavailable("502 from api.github.com"), FailureKind.GITHUB),
    (NotFound("Not Found", status=404), FailureKind.GITHUB),
    (ModelUnavailable("529 overloaded"), FailureKind.MODEL),
    (DeadlineExceeded("deadline"), FailureKind.MODEL),
    (ConfigError("ANTHROPIC_API_KEY: rejected"), FailureKind.CONFIG),
    (OperationalError("SELECT 1", {}, Exception(SECRET_TEXT)), FailureKind.INTERNAL),
    (ValueError(SECRET_TEXT), FailureKind.INTERNAL),
])
def test_the_public_sentence_depends_on_the_kind_only(exc: Exception, kind: FailureKind) -> None:
    assert classify(exc) is kind
    text = public_reason(classify(exc), "deadbeef")
    assert text == f"{SENTENCES[kind]} (incident `deadbeef`)"
    assert str(exc) not in text


def _pool(context: AppContext, handler: object) -> WorkerPool:
    settings = context.settings.model_copy(update={"job_max_attempts": 1})
    registry = Registry()
    registry.register(JobKind.REVIEW, handler)  # type: ignore[arg-type]
    registry.register(JobKind.COMMAND, handler)  # type: ignore[arg-type]
    registry.on_dead_letter(report_dead_job)
    return WorkerPool(dataclasses.replace(context, settings=settings, registry=registry), 1)


async def _leak(job: Job, ctx: AppContext) -> None:
    raise OperationalError("SELECT * FROM jobs", {}, Exception(SECRET_TEXT))


async def test_a_dead_review_shows_a_fixed_sentence_and_logs_the_text_under_its_incident(
    app_context: AppContext, fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    fake_github.add_pull(OWNER, REPO, git_diff({"a.py": "x = 1\n"}, {"a.py": "x = 2\n"}), head_sha=HEAD)
    pool = _pool(app_context, _leak)
    await app_context.store.enqueue(JobSpec(JobKind.REVIEW, INSTALLATION, OWNER, REPO, 1, "pull_request.opened", HEAD))
    job = await app_context.store.claim("w", 60)
    assert job is not None
    with caplog.at_level(logging.ERROR):
        await pool.run_job(job, "w")

    (check,) = [c for c in fake_github.check_runs.values() if c["name"] == CHECK_NAME]
    summary = check["output"]["summary"]
    assert check["conclusion"] == "failure"
    incident = re.search(r"incident `([0-9a-f]{8})`", summary)
    assert incident is not None and SENTENCES[FailureKind.INTERNAL] in summary
    for secret in ("db.internal", "10.0.0.5", "admin", "SELECT", "OperationalError", "5432"):
        assert secret not in summary
    logged = [r.getMessage() for r in caplog.records if incident.group(1) in r.getMessage()]
    assert logged and any("db.internal" in line for line in logged)
    stored = await app_context.store.get_job(job.id)
    assert stored is not None and incident.group(1) in (stored.last_error or "")


async def test_a_dead_command_replies_with_the_fixed_sentence(app_context: AppContext, fake_github: FakeGitHub) -> None:
    fake_github.add_pull(OWNER, REPO, git_diff({"a.py": "x = 1\n"}, {"a.py": "x = 2\n"}), head_sha=HEAD)
    pool = _pool(app_context, _leak)
    spec = JobSpec(JobKind.COMMAND, INSTALLATION, OWNER, REPO, 1, "issue_comment.created",
                   data={"source": "issue_comment", "comment_id": 5, "body": "@senior-review review",
                         "author": "maint", "author_type": "User"})
    await app_context.store.enqueue(spec)
    job = await app_context.store.claim("w", 60)
    assert job is not None
    await pool.run_job(job, "w")
    (reply,) = [c["body"] for c in fake_github.issue_comments.values() if c["_key"] == (OWNER, REPO, 1)]
    assert reply.startswith("Sorry, this command could not be carried out. An internal error occurred. (incident `")
    assert "db.internal" not in reply and "SELECT" not in reply
