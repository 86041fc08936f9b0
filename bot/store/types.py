"""Plain records the job store reads and writes: job specs from routing, claimed jobs, reviews, findings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.domain import FindingState


class JobState(StrEnum):
    """Life cycle of a job row."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # reserved: a retry is `queued` again with a later run_after
    DEAD = "dead"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)


class JobKind(StrEnum):
    """Job kinds routing produces (`cancel` is applied at intake and never stored)."""

    REVIEW = "review"
    COMMAND = "command"
    CANCEL = "cancel"
    THREAD = "thread"  # a review thread was resolved or unresolved: update the findings it holds


def pr_key(owner: str, repo: str, pr: int) -> str:
    """The coalescing key of a pull request: `owner/repo#12`."""
    return f"{owner}/{repo}#{pr}"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What routing asks for: one job (or, for `cancel`, an instruction applied at intake)."""

    kind: str
    installation_id: int | None
    owner: str
    repo: str
    pr: int
    trigger: str  # e.g. "pull_request.synchronize"
    head_sha: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)  # kind-specific fields (comment id, body, draft ...)

    @property
    def key(self) -> str:
        """`owner/repo#pr`."""
        return pr_key(self.owner, self.repo, self.pr)

    def payload(self, delivery_id: str | None) -> dict[str, Any]:
        """The JSON stored with the job: the common fields plus `data`."""
        return {
            **self.data,
            "installation_id": self.installation_id,
            "owner": self.owner,
            "repo": self.repo,
            "pr": self.pr,
            "head_sha": self.head_sha,
            "trigger": self.trigger,
            "delivery_id": delivery_id,
        }


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job as a worker sees it after claiming it."""

    id: int
    kind: str
    key: str
    head_sha: str | None
    trigger: str
    delivery_id: str | None
    payload: dict[str, Any]
    state: str
    attempts: int
    run_after: float
    lease_owner: str | None
    lease_expires_at: float | None
    last_error: str | None
    created_at: float
    updated_at: float

    @property
    def installation_id(self) -> int | None:
        """The GitHub App installation the job acts through."""
        value = self.payload.get("installation_id")
        return int(value) if value is not None else None

    @property
    def owner(self) -> str:
        """Repository owner login."""
        return str(self.payload["owner"])

    @property
    def repo(self) -> str:
        """Repository name (without owner)."""
        return str(self.payload["repo"])

    @property
    def full_name(self) -> str:
        """`owner/repo`."""
        return f"{self.owner}/{self.repo}"

    @property
    def pr(self) -> int:
        """Pull request number."""
        return int(self.payload["pr"])


@dataclass(frozen=True, slots=True)
class Accepted:
    """The result of recording a delivery: duplicate (nothing done) or the ids of the jobs it queued."""

    duplicate: bool
    job_ids: tuple[int, ...] = ()
    redelivery: bool = False


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """One posted review (unique per repo, pr, head sha, trigger)."""

    repo: str
    pr: int
    head_sha: str
    trigger: str
    github_review_id: int | None = None
    job_id: int | None = None
    findings_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """A finding's memory across runs, keyed by (repo, pr, fingerprint)."""

    repo: str
    pr: int
    fingerprint: str
    path: str
    line: int | None
    state: str = FindingState.OPEN
    github_comment_id: int | None = None
    first_seen_sha: str = ""
    last_seen_sha: str = ""
    severity: str | None = None
    category: str | None = None
    title: str | None = None
    start_line: int | None = None  # first cited line; `line` is the last
    body: str | None = None  # the start of the finding's text (shown to the model when it re-checks the finding)


@dataclass(frozen=True, slots=True)
class Dismissal:
    """A finding a writer dismissed with a reason: not posted inline again in the repository's pull requests."""

    repo: str
    fingerprint: str
    pr: int
    reason: str
    by_user: str
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class PrState:
    """Per pull request switches: paused by a command, and the last head sha reviewed."""

    repo: str
    pr: int
    paused: bool = False
    last_reviewed_sha: str | None = None
