"""The store on SQLite and PostgreSQL: deliveries dedupe, coalescing, leases, retries, exactly-once records."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import text as sa_text

from bot.settings import to_async_database_url
from bot.store import sqlite_intake
from bot.store.base import Store
from bot.store.intake import Delivery
from bot.store.types import Accepted, FindingRecord, JobSpec, JobState, ReviewRecord
from bot.webhook import DATABASE_ERRORS


def review(pr: int = 1, sha: str = "a" * 40, trigger: str = "pull_request.synchronize") -> JobSpec:
    return JobSpec(kind="review", installation_id=7, owner="octo", repo="hello", pr=pr, trigger=trigger, head_sha=sha)


async def test_migrations_are_current_and_idempotent(store: Store) -> None:
    assert await store.migrations_current()
    await store.migrate()
    assert await store.migrations_current()


async def test_duplicate_delivery_does_nothing(store: Store) -> None:
    first = await store.accept_delivery("d-1", "pull_request", "opened", [review()])
    second = await store.accept_delivery("d-1", "pull_request", "opened", [review(sha="b" * 40)])
    assert not first.duplicate and len(first.job_ids) == 1
    assert second.duplicate and second.job_ids == ()
    jobs = await store.list_jobs()
    assert [(j.id, j.head_sha, j.delivery_id, j.state) for j in jobs] == [(first.job_ids[0], "a" * 40, "d-1", "queued")]
    assert jobs[0].payload["installation_id"] == 7 and jobs[0].key == "octo/hello#1" and jobs[0].pr == 1


async def test_concurrent_duplicate_deliveries_make_one_job(db_url: str) -> None:
    stores = [Store.from_url(to_async_database_url(db_url)) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(s.accept_delivery("same", "pull_request", "opened", [review()]) for s in stores for _ in range(3))
        )
        assert sum(not r.duplicate for r in results) == 1
        assert len(await stores[0].list_jobs()) == 1
    finally:
        for s in stores:
            await s.close()


async def test_redelivery_of_a_dead_delivery_is_processed_again(store: Store) -> None:
    accepted = await store.accept_delivery("d-2", "pull_request", "opened", [review()])
    job = await store.claim("w", 30)
    assert job is not None and job.id == accepted.job_ids[0]
    assert await store.bury(job.id, "w", "boom")
    assert await store.delivery_status("d-2") == "failed"
    again = await store.accept_delivery("d-2", "pull_request", "opened", [review()])
    assert not again.duplicate and again.redelivery and len(again.job_ids) == 1
    assert (await store.accept_delivery("d-2", "pull_request", "opened", [review()])).duplicate


async def test_newer_head_supersedes_queued_review(store: Store) -> None:
    ids = [await store.enqueue(review(sha=c * 40)) for c in "abc"]
    assert await store.enqueue(review(sha="c" * 40)) == ids[2]  # same head: the same job
    states = {j.head_sha: j.state for j in await store.list_jobs()}
    assert states == {"a" * 40: "superseded", "b" * 40: "superseded", "c" * 40: "queued"}


async def test_one_running_review_per_pr(store: Store) -> None:
    await store.enqueue(review(sha="a" * 40))
    running = await store.claim("w1", 30)
    assert running is not None
    await store.enqueue(review(sha="b" * 40))
    await store.enqueue(review(pr=2))
    other = await store.claim("w2", 30)
    assert other is not None and other.pr == 2  # PR 1's new head waits for the running review
    assert await store.claim("w2", 30) is None
    assert await store.complete(running.id, "w1")
    newer = await store.claim("w2", 30)
    assert newer is not None and newer.head_sha == "b" * 40


async def test_expired_lease_is_reclaimed_and_old_owner_loses_it(store: Store) -> None:
    job_id = await store.enqueue(review())
    first = await store.claim("w1", 0.05)
    assert first is not None and first.attempts == 1
    await asyncio.sleep(0.1)
    second = await store.claim("w2", 30)
    assert second is not None and second.id == job_id and second.attempts == 2
    assert not await store.renew(job_id, "w1", 30)
    assert not await store.complete(job_id, "w1")
    assert await store.renew(job_id, "w2", 30)
    assert await store.complete(job_id, "w2")
    assert (await store.get_job(job_id)).state == JobState.DONE  # type: ignore[union-attr]


async def test_retry_waits_and_release_does_not_count(store: Store) -> None:
    job_id = await store.enqueue(review())
    job = await store.claim("w", 30)
    assert job is not None
    assert await store.retry(job_id, "w", "transient", time.time() + 60)
    assert await store.claim("w", 30) is None  # not before run_after
    saved = await store.get_job(job_id)
    assert saved is not None and saved.state == "queued" and saved.last_error == "transient"
    await store.enqueue(JobSpec("command", 7, "octo", "hello", 5, "issue_comment.created", None, {"body": "x"}))
    command = await store.claim("w", 30)
    assert command is not None and command.kind == "command" and command.payload["body"] == "x"
    assert await store.release(command.id, "w")
    again = await store.claim("w", 30)
    assert again is not None and again.id == command.id and again.attempts == 1


async def test_retry_of_a_review_with_a_newer_one_queued_is_superseded(store: Store) -> None:
    await store.enqueue(review(sha="a" * 40))
    job = await store.claim("w", 30)
    assert job is not None
    await store.enqueue(review(sha="b" * 40))
    assert await store.retry(job.id, "w", "err", time.time())
    assert {j.head_sha: j.state for j in await store.list_jobs()} == {"a" * 40: "superseded", "b" * 40: "queued"}


async def test_cancel_spec_cancels_queued_jobs_of_the_pr(store: Store) -> None:
    await store.enqueue(review(pr=3))
    await store.enqueue(review(pr=4))
    cancel = JobSpec("cancel", 7, "octo", "hello", 3, "pull_request.closed")
    accepted = await store.accept_delivery("d-3", "pull_request", "closed", [cancel])
    assert accepted.job_ids == ()
    assert {j.pr: j.state for j in await store.list_jobs()} == {3: "cancelled", 4: "queued"}
    assert await store.count_jobs_by_state() == {"cancelled": 1, "queued": 1}


async def test_reviews_are_recorded_once(store: Store) -> None:
    record = ReviewRecord("octo/hello", 1, "a" * 40, "pull_request.opened", github_review_id=99, job_id=1,
                          findings_count=2, input_tokens=10, output_tokens=5, cost_usd=0.01)
    assert not await store.review_exists("octo/hello", 1, "a" * 40, "pull_request.opened")
    assert await store.record_review(record)
    assert not await store.record_review(record)
    assert await store.review_exists("octo/hello", 1, "a" * 40, "pull_request.opened")
    last = await store.last_review("octo/hello", 1)
    assert last is not None and last.github_review_id == 99 and last.cost_usd == 0.01


async def test_findings_upsert_and_state(store: Store) -> None:
    first = FindingRecord("octo/hello", 1, "fp1", "a.py", 3, first_seen_sha="s1", last_seen_sha="s1", title="t")
    await store.upsert_findings([first, FindingRecord("octo/hello", 1, "fp2", "b.py", 4, last_seen_sha="s1")])
    moved = FindingRecord("octo/hello", 1, "fp1", "a.py", 9, last_seen_sha="s2", github_comment_id=555)
    await store.upsert_findings([moved])
    listed = {f.fingerprint: f for f in await store.list_findings("octo/hello", 1)}
    assert listed["fp1"].line == 9 and listed["fp1"].first_seen_sha == "s1" and listed["fp1"].last_seen_sha == "s2"
    assert listed["fp1"].github_comment_id == 555 and listed["fp2"].first_seen_sha == "s1"
    assert await store.set_finding_state("octo/hello", 1, "fp2", "dismissed")
    assert [f.fingerprint for f in await store.list_findings("octo/hello", 1, states=["open"])] == ["fp1"]


async def test_pr_state_and_command_log(store: Store) -> None:
    state = await store.get_pr_state("octo/hello", 1)
    assert not state.paused and state.last_reviewed_sha is None
    await store.set_paused("octo/hello", 1, True)
    await store.set_last_reviewed_sha("octo/hello", 1, "abc")
    state = await store.get_pr_state("octo/hello", 1)
    assert state.paused and state.last_reviewed_sha == "abc"
    now = time.time()
    for at in (now - 100, now - 5, now):
        await store.log_command("octo/hello", 1, "alice", "review", at=at)
    assert await store.count_commands("octo/hello", now - 10, user="alice", pr=1) == 2
    assert await store.count_commands("octo/hello", now - 10, user="bob", pr=1) == 0
    await store.log_command("octo/hello", 2, "alice", "refused:review", at=now)
    await store.log_command("octo/hello", 2, "bob", "pause", at=now)
    assert await store.count_commands("octo/hello", now - 10, user="alice") == 3
    assert await store.count_commands("octo/hello", now - 10, pr=2, accepted_only=True) == 1
    assert await store.count_commands("octo/hello", now - 1000) == 5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sqlite_intake_never_blocks_the_loop_on_a_locked_database(store: Store, db_url: str) -> None:
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock until the event loop lets it go
    intake = asyncio.create_task(store.accept_delivery("d-locked", "pull_request", "opened", [review()]))
    pending_ticks = 0
    while pending_ticks < 10:  # an intake waiting for the lock on the loop would stop these ticks (and the COMMIT)
        await asyncio.sleep(0.01)
        assert not intake.done(), intake  # nothing can be written before the COMMIT below
        pending_ticks += 1
    blocker.execute("COMMIT")  # from the loop: an intake blocking it would fail with "database is locked"
    accepted = await intake
    blocker.close()
    assert len(accepted.job_ids) == 1 and pending_ticks == 10


def command_review(pr: int = 1, sha: str = "a" * 40) -> JobSpec:
    return JobSpec("review", 7, "octo", "hello", pr, "command.review", sha, {"comment_id": 5})


async def test_a_command_review_of_the_queued_head_replaces_it_at_intake(store: Store) -> None:
    automatic = await store.accept_delivery("d-auto", "pull_request", "synchronize", [review()])
    by_hand = await store.accept_delivery("d-cmd", "issue_comment", "created", [command_review()])
    assert by_hand.job_ids != automatic.job_ids
    jobs = {j.id: (j.trigger, j.state) for j in await store.list_jobs()}
    assert jobs == {automatic.job_ids[0]: ("pull_request.synchronize", "superseded"),
                    by_hand.job_ids[0]: ("command.review", "queued")}
    again = await store.accept_delivery("d-auto-2", "pull_request", "synchronize", [review()])
    assert again.job_ids == by_hand.job_ids  # an automatic job of the same head joins the command's


def _steps(seed: int) -> list[JobSpec]:
    rng = random.Random(seed)
    kinds = [lambda pr: review(pr, rng.choice("ab") * 40), lambda pr: command_review(pr, rng.choice("ab") * 40),
             lambda pr: JobSpec("cancel", 7, "octo", "hello", pr, "pull_request.closed"),
             lambda pr: JobSpec("command", 7, "octo", "hello", pr, "issue_comment.created", None, {"body": "x"})]
    return [rng.choice(kinds)(rng.randint(1, 2)) for _ in range(40)]


@pytest.mark.parametrize("seed", range(3))
async def test_intake_and_enqueue_take_the_same_path(store: Store, db_url: str, seed: int) -> None:
    steps = _steps(seed)
    for number, spec in enumerate(steps):
        await store.accept_delivery(f"d-{number}", "e", None, [spec])
    via_intake = [(j.kind, j.key, j.head_sha, j.trigger, j.state) for j in await store.list_jobs()]
    async with store.engine.begin() as conn:
        await conn.execute(sa_text("DELETE FROM jobs"))
    for spec in steps:
        if spec.kind == "cancel":
            await store.cancel_for_pr(spec.key)
        else:
            await store.enqueue(spec)
    via_enqueue = [(j.kind, j.key, j.head_sha, j.trigger, j.state) for j in await store.list_jobs()]
    assert via_intake == via_enqueue
    assert {state for *_, state in via_intake} >= {"queued", "superseded"}


# The database refuses PR 5's job (after its delivery row and PR 3's job were written): a trigger on each backend.
REFUSE_PR_5 = {
    "sqlite": ["CREATE TRIGGER refuse BEFORE INSERT ON jobs WHEN NEW.key = 'octo/hello#5' "
               "BEGIN SELECT RAISE(ABORT, 'refused'); END"],
    "postgresql": ["CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "IF NEW.key = 'octo/hello#5' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$",
                   "CREATE TRIGGER refuse BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION refuse()"],
}
ALLOW_PR_5 = {"sqlite": ["DROP TRIGGER refuse"],
              "postgresql": ["DROP TRIGGER refuse ON jobs", "DROP FUNCTION refuse()"]}


def count_batches(store: Store) -> list[int]:
    """The size of every transaction intake writes from now on."""
    sizes: list[int] = []
    write = store._intake._write

    async def counted(items: Sequence[Delivery]) -> list[Accepted]:
        sizes.append(len(items))
        return await write(items)

    store._intake._write = counted
    return sizes


async def test_concurrent_deliveries_share_one_transaction(store: Store) -> None:
    batches = count_batches(store)
    results = await asyncio.gather(*(store.accept_delivery(f"c-{n}", "pull_request", "opened", [review(pr=n)])
                                     for n in range(10)))
    assert batches == [10]
    assert sorted(job_id for r in results for job_id in r.job_ids) == [j.id for j in await store.list_jobs()]


async def test_one_failing_delivery_does_not_undo_its_group_commit(store: Store) -> None:
    async with store.engine.begin() as conn:
        for sql in REFUSE_PR_5[store.dialect]:
            await conn.exec_driver_sql(sql)
    batches = count_batches(store)
    try:
        results = await asyncio.gather(
            store.accept_delivery("g-1", "pull_request", "opened", [review(pr=1)]),
            store.accept_delivery("g-2", "pull_request", "opened", [review(pr=3), review(pr=5)]),
            store.accept_delivery("g-3", "pull_request", "opened", [review(pr=4)]),
            return_exceptions=True)
    finally:
        async with store.engine.begin() as conn:
            for sql in ALLOW_PR_5[store.dialect]:
                await conn.exec_driver_sql(sql)
    assert batches == [3, 1, 1, 1]  # the batch rolled back whole, then each delivery alone
    assert isinstance(results[1], DATABASE_ERRORS) and "refused" in str(results[1])
    assert all(isinstance(r, Accepted) and len(r.job_ids) == 1 for r in (results[0], results[2]))
    assert sorted(j.pr for j in await store.list_jobs()) == [1, 4]  # the failed delivery left nothing behind
    assert await store.delivery_status("g-2") is None
    again = await store.accept_delivery("g-2", "pull_request", "opened", [review(pr=3), review(pr=5)])
    assert len(again.job_ids) == 2  # GitHub's redelivery of it is recorded once the database accepts it


async def test_one_batch_applies_its_deliveries_in_order(store: Store) -> None:
    heads = ["a" * 40, "b" * 40, "c" * 40]
    results = await asyncio.gather(
        *(store.accept_delivery(f"o-{n}", "pull_request", "synchronize", [review(pr=7, sha=sha)])
          for n, sha in enumerate(heads)),
        store.accept_delivery("o-0", "pull_request", "synchronize", [review(pr=7, sha="d" * 40)]),  # same id
        store.accept_delivery("o-replay", "pull_request", "synchronize", [review(pr=8)], body_sha256="f" * 64),
        store.accept_delivery("o-replay-2", "pull_request", "synchronize", [review(pr=8)], body_sha256="f" * 64),
    )
    assert [r.duplicate for r in results] == [False, False, False, True, False, True]
    jobs = {j.head_sha: j.state for j in await store.list_jobs(key="octo/hello#7")}
    assert jobs == {"a" * 40: "superseded", "b" * 40: "superseded", "c" * 40: "queued"}




async def test_repository_dismissals_keep_the_first_and_are_found_by_fingerprint(store: Store) -> None:
    from bot.store.types import Dismissal

    assert await store.record_dismissal(Dismissal("octo/hello", "fp1", 3, "validated upstream", "maint"))
    # A second dismissal of the same fingerprint (another PR, another reason) does not replace the first.
    assert not await store.record_dismissal(Dismissal("octo/hello", "fp1", 9, "other", "someone"))
    assert await store.record_dismissal(Dismissal("octo/hello", "fp2", 4, "r" * 900, "maint"))
    assert await store.record_dismissal(Dismissal("octo/other", "fp3", 1, "elsewhere", "maint"))
    found = await store.dismissed_in_repo("octo/hello", ["fp1", "fp2", "fp3", "nope"])
    assert {fp: (d.pr, d.reason[:20], d.by_user) for fp, d in found.items()} == {
        "fp1": (3, "validated upstream", "maint"), "fp2": (4, "r" * 20, "maint")}
    assert len(found["fp2"].reason) == 500  # stored as text, capped
    assert await store.dismissed_fingerprints("octo/hello") == {"fp1": 3, "fp2": 4}
    assert await store.dismissed_in_repo("octo/hello", []) == {}


async def test_finding_state_compare_and_set_and_kept_text(store: Store) -> None:
    await store.upsert_findings([FindingRecord("octo/hello", 1, "fp1", "a.py", 5, start_line=3, body="why",
                                               last_seen_sha="s1")])
    # A later upsert without the text keeps it.
    await store.upsert_findings([FindingRecord("octo/hello", 1, "fp1", "a.py", 6, last_seen_sha="s2")])
    [record] = await store.list_findings("octo/hello", 1)
    assert (record.start_line, record.line, record.body) == (3, 6, "why")
    assert await store.set_finding_state("octo/hello", 1, "fp1", "dismissed", only_from=["open"])
    assert not await store.set_finding_state("octo/hello", 1, "fp1", "fixed", only_from=["open"])
    assert [r.state for r in await store.list_findings("octo/hello", 1)] == ["dismissed"]
    await store.set_finding_lines("octo/hello", 1, "fp1", 10, 12, "s3")
    [record] = await store.list_findings("octo/hello", 1)
    assert (record.start_line, record.line, record.last_seen_sha) == (10, 12, "s3")


async def test_commands_are_remembered_per_review_thread(store: Store) -> None:
    assert await store.log_command("octo/hello", 1, "eve", "refused:question", comment_id=11, thread_id=500)
    assert await store.thread_has_command(500, "refused:question")
    assert not await store.thread_has_command(500, "refused:question", before_comment=11)  # its own record
    assert not await store.thread_has_command(501, "refused:question")
    assert not await store.thread_has_command(500, "question")


def _checkpointed_deliveries(db_url: str, tmp_path: Path) -> int:
    """Deliveries in the database file itself, without its WAL: what checkpoints have copied there so far."""
    copy = tmp_path / "main-file-only.sqlite3"
    copy.write_bytes(Path(db_url.removeprefix("sqlite:///")).read_bytes())
    with sqlite3.connect(copy) as conn:
        return int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sqlite_intake_commits_never_checkpoint_themselves(
    store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_intake, "CHECKPOINT_SECONDS", 3600.0)  # the first commit's checkpoint, then none
    await store.accept_delivery("w-0", "pull_request", "opened", [review(pr=1)])
    store._sqlite_intake._checkpointing.result(timeout=30)
    for n in range(1, 300):  # well past SQLite's default of a checkpoint every 1000 pages
        await store.accept_delivery(f"w-{n}", "pull_request", "opened", [review(pr=n + 1)])
    assert _checkpointed_deliveries(db_url, tmp_path) == 1
    assert len(await store.list_jobs()) == 300


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("restart_frames", [0, sqlite_intake.WAL_RESTART_FRAMES])
async def test_sqlite_intake_checkpoints_beside_its_commits(
    store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restart_frames: int
) -> None:
    monkeypatch.setattr(sqlite_intake, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(sqlite_intake, "WAL_RESTART_FRAMES", restart_frames)  # 0: the WAL starts over each time
    for n in range(3):
        await store.accept_delivery(f"k-{n}", "pull_request", "opened", [review(pr=n + 1)])
        store._sqlite_intake._checkpointing.result(timeout=30)
    assert _checkpointed_deliveries(db_url, tmp_path) == 3
    assert len(await store.list_jobs()) == 3


async def test_half_an_emoji_in_a_payload_is_stored_as_a_replacement_character(store: Store) -> None:
    body = "@senior-review review \ud83d"  # a lone surrogate: json.loads makes one from a payload's "\ud83d"
    spec = JobSpec(kind="command", installation_id=7, owner="octo", repo="hello", pr=2, trigger="issue_comment.created",
                   data={"body": body, "comment_id": 5})
    accepted = await store.accept_delivery("s-1", "issue_comment", "created", [spec])
    (job,) = await store.list_jobs()
    assert job.id == accepted.job_ids[0] and job.payload["body"] == "@senior-review review \ufffd"
