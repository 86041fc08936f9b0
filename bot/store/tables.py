"""The database schema (SQLAlchemy Core tables); Alembic migrations in `bot/store/migrations/` create exactly this."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(64), primary_key=True),  # X-GitHub-Delivery guid
    Column("event", String(64), nullable=False),
    Column("action", String(64), nullable=True),
    Column("received_at", Float, nullable=False),
    Column("status", String(16), nullable=False),  # processed | failed
    # SHA-256 of the exact signed body: a replay under a new delivery id is recognised by it (7 days).
    Column("body_sha256", String(64), nullable=True),
    Index("ix_deliveries_body_sha256", "body_sha256"),
    Index("ix_deliveries_received_at", "received_at"),  # retention pruning
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("key", String(300), nullable=False),  # "owner/repo#12"
    Column("head_sha", String(64), nullable=True),
    Column("trigger", String(64), nullable=False),
    Column("delivery_id", String(64), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("run_after", Float, nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Index("ix_jobs_state_run_after", "state", "run_after"),
    Index("ix_jobs_key_state", "key", "state"),
    Index("ix_jobs_delivery_id", "delivery_id"),
    Index("ix_jobs_finished_at", "finished_at"),  # retention pruning of finished jobs
    # Coalescing: at most one queued review job per pull request, enforced by the database.
    Index(
        "uq_jobs_one_queued_review",
        "key",
        unique=True,
        sqlite_where=text("kind = 'review' AND state = 'queued'"),
        postgresql_where=text("kind = 'review' AND state = 'queued'"),
    ),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("repo", String(200), nullable=False),
    Column("pr", Integer, nullable=False),
    Column("head_sha", String(64), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("github_review_id", BigInteger, nullable=True),
    Column("job_id", BigInteger, nullable=True),
    Column("findings_count", Integer, nullable=False, server_default=text("0")),
    Column("input_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("output_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cache_read_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cache_write_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cost_usd", Float, nullable=False, server_default=text("0")),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("repo", "pr", "head_sha", "trigger"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("repo", String(200), nullable=False),
    Column("pr", Integer, nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("path", Text, nullable=False),
    Column("line", Integer, nullable=True),
    Column("start_line", Integer, nullable=True),  # first cited line (`line` is the last), as of `last_seen_sha`
    Column("state", String(16), nullable=False),  # open | resolved | dismissed | outdated | fixed
    Column("severity", String(16), nullable=True),
    Column("category", String(32), nullable=True),
    Column("title", Text, nullable=True),
    Column("body", Text, nullable=True),  # the start of the finding's text, shown to the model when it re-checks it
    Column("github_comment_id", BigInteger, nullable=True),
    Column("first_seen_sha", String(64), nullable=False),
    Column("last_seen_sha", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("repo", "pr", "fingerprint"),
)

pr_state = Table(
    "pr_state",
    metadata,
    Column("repo", String(200), primary_key=True),
    Column("pr", Integer, primary_key=True),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("last_reviewed_sha", String(64), nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("closed_at", Float, nullable=True),  # set when the PR closes, cleared on reopen; findings pruned later
    Index("ix_pr_state_closed_at", "closed_at"),
)

command_log = Table(
    "command_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("repo", String(200), nullable=False),
    Column("pr", Integer, nullable=False),
    Column("user", String(100), nullable=False),
    Column("command", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("comment_id", BigInteger, nullable=True),  # a command is carried out at most once per comment
    Column("thread_id", BigInteger, nullable=True),  # the root comment of the review thread it was made in
    Index("ix_command_log_repo_pr_user_at", "repo", "pr", "user", "at"),
    Index("ix_command_log_at", "at"),  # retention pruning
    Index("ix_command_log_thread_id", "thread_id"),  # one refusal per thread
    Index(
        "uq_command_log_comment_id",
        "comment_id",
        unique=True,
        sqlite_where=text("comment_id IS NOT NULL"),
        postgresql_where=text("comment_id IS NOT NULL"),
    ),
)

# The spend ledger: one row per paid model call, written when it is paid (whatever happens to the job after).
spend = Table(
    "spend",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("owner", String(100), nullable=False),  # the installation's account
    Column("repo", String(200), nullable=False),
    Column("pr", Integer, nullable=False),
    Column("author", String(100), nullable=False),  # the pull request's author
    Column("job_id", BigInteger, nullable=True),
    Column("model", String(100), nullable=False),
    Column("input_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("output_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cache_read_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cache_write_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cost_usd", Float, nullable=False),
    Index("ix_spend_owner_at", "owner", "at"),
    Index("ix_spend_repo_pr_at", "repo", "pr", "at"),
    Index("ix_spend_owner_author_at", "owner", "author", "at"),
    Index("ix_spend_at", "at"),
)

# Findings a writer dismissed with a reason: the same fingerprint is not posted inline in the repository's later
# pull requests (counted in the body as "dismissed earlier in #N"). The reason is text, never an instruction.
dismissals = Table(
    "dismissals",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("repo", String(200), nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("pr", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("by_user", String(100), nullable=False),
    Column("at", Float, nullable=False),
    UniqueConstraint("repo", "fingerprint"),
)

# Reconciliation with GitHub (bot/reconcile.py): one row per task ("redeliver", "catch_up") holding its lease (one
# instance at a time), its progress (a scan's cursor, so a restart resumes) and its last run (for `status`).
reconcile_state = Table(
    "reconcile_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("checkpoint", String(64), nullable=True),  # newest GitHub delivery id fully scanned
    Column("scan_cursor", String(200), nullable=True),  # the next page of a scan under way
    Column("scan_top", String(64), nullable=True),  # newest delivery id of the scan under way
    Column("last_started_at", Float, nullable=True),
    Column("last_finished_at", Float, nullable=True),
    Column("last_summary", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
)

# Redeliveries asked of GitHub, by delivery guid: a guid is asked for a bounded number of times.
redelivery_requests = Table(
    "redelivery_requests",
    metadata,
    Column("guid", String(64), primary_key=True),
    Column("github_delivery_id", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("requested_at", Float, nullable=False),
)
