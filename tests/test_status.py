"""`python -m bot status` and `python -m bot retry JOB` against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from bot.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from bot.settings import to_async_database_url
from bot.status import ago, incident_of
from bot.store.base import Store
from bot.store.types import JobSpec, JobState, ReviewRecord

DEAD_ERROR = "[incident 1a2b3c4d] GitHubUnavailable: list reviews: GitHub unavailable after 4 attempts"


def review(owner: str, pr: int, sha: str = "a" * 40) -> JobSpec:
    return JobSpec("review", 7, owner, "hello", pr, "pull_request.opened", sha)


async def _seed(db_url: str) -> int:
    store = Store.from_url(to_async_database_url(db_url))
    try:
        for n, owner in enumerate(("octo", "octo", "octo", "acme"), start=1):
            await store.accept_delivery(f"d-{n}", "pull_request", "opened", [review(owner, n)])
        job = await store.claim("w", 30)
        assert job is not None and await store.bury(job.id, "w", DEAD_ERROR)
        now = time.time()
        await store.record_review(ReviewRecord("octo/hello", 9, "s", "t", cost_usd=0.25, created_at=now))
        await store.record_review(ReviewRecord("acme/hello", 9, "s", "t", cost_usd=1.5, created_at=now))
        await store.record_review(ReviewRecord("acme/hello", 8, "s", "t", cost_usd=9.0, created_at=now - 3 * 86_400))
        assert await store.acquire_task("redeliver", "host:1:ab", 60)
        assert await store.finish_task("redeliver", "host:1:ab", "redeliver: 3 deliveries scanned, 1 redelivered")
        assert await store.acquire_task("catch_up", "host:1:ab", 60)
        return job.id
    finally:
        await store.close()


async def _job_state(db_url: str, job_id: int) -> str | None:
    store = Store.from_url(to_async_database_url(db_url))
    try:
        job = await store.get_job(job_id)
        return job.state if job else None
    finally:
        await store.close()


def test_status_prints_the_operators_view(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    dead = asyncio.run(_seed(db_url))
    monkeypatch.setenv("DATABASE_URL", db_url)

    assert main(["status"]) == EXIT_OK

    out = capsys.readouterr().out
    assert "queue: queued 3 · running 0 · done 0 · failed 0 · dead 1 · cancelled 0 · superseded 0" in out
    assert re.search(r"^oldest queued job: \d+s old$", out, re.M)
    assert "dead jobs: 1\n" in out
    assert re.search(rf"^  job {dead} review octo/hello#1 @aaaaaaaaaaaa: incident 1a2b3c4d, 1 attempts, \d+s ago: "
                     r"\[incident 1a2b3c4d\] GitHubUnavailable", out, re.M)
    assert "spend today (UTC): acme $1.5000 · octo $0.2500" in out
    assert re.search(r"^  redeliver: \d+s ago: redeliver: 3 deliveries scanned, 1 redelivered$", out, re.M)
    assert "  catch_up: never finished" in out


def test_status_of_an_empty_database(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["status"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "oldest queued job: none queued" in out and "dead jobs: 0" in out
    assert "spend today (UTC): none" in out and "last reconciliation: never" in out


def test_retry_requeues_a_dead_job_once(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    dead = asyncio.run(_seed(db_url))
    monkeypatch.setenv("DATABASE_URL", db_url)

    assert main(["retry", str(dead)]) == EXIT_OK
    assert f"job {dead} queued again" in capsys.readouterr().out
    assert asyncio.run(_job_state(db_url, dead)) == JobState.QUEUED

    assert main(["retry", str(dead)]) == EXIT_FAILURE
    assert "not requeued: " in (err := capsys.readouterr().err) and "queued, not dead" in err
    assert main(["retry", "987654"]) == EXIT_FAILURE
    assert "no job 987654" in capsys.readouterr().err
    assert main(["retry", "seven"]) == EXIT_USAGE


def test_an_unmigrated_database_gets_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert main(["status"]) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read the database") and "python -m bot migrate" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (61, "1m 01s"), (3_600, "1h 00m"),
                                               (3 * 86_400 + 4 * 3_600 + 5, "3d 04h"), (-5, "0s")])
def test_ages(seconds: float, text: str) -> None:
    assert ago(seconds) == text


def test_incident_ids_come_only_from_the_workers_marker() -> None:
    assert incident_of(DEAD_ERROR) == "1a2b3c4d"
    assert incident_of("Traceback ...\nValueError: incident 99 happened") == "-"
    assert incident_of(None) == "-"
