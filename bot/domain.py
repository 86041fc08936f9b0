"""Plain, immutable types shared by the pipeline's modules (no I/O, no third-party imports)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding's consequences are."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Higher is worse: critical=4 ... low=1."""
        return {"critical": 4, "high": 3, "medium": 2, "low": 1}[self.value]


class Category(StrEnum):
    """What kind of problem a finding is."""

    SECURITY = "security"
    VALIDATION = "validation"
    PERFORMANCE = "performance"
    TESTS = "tests"
    RELIABILITY = "reliability"
    DESIGN = "design"


class FindingState(StrEnum):
    """What became of a finding posted earlier on a pull request (stored across runs)."""

    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"
    OUTDATED = "outdated"
    FIXED = "fixed"  # a later push changed its lines and the re-check found the problem gone


class Side(StrEnum):
    """Which side of the diff a line is on, as GitHub spells it."""

    RIGHT = "RIGHT"
    LEFT = "LEFT"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem the model reported, before anchoring and sanitising."""

    path: str
    start_line: int
    end_line: int
    side: Side
    severity: Severity
    category: Category
    title: str
    body: str
    suggestion: str | None = None
    evidence: str = ""  # the code the finding is about, as the model copied it from the diff


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one or more model calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )


@dataclass(frozen=True, slots=True)
class NotReviewed:
    """A file the review did not cover, and why (never silently dropped)."""

    path: str
    reason: str


def unique_paths(items: Iterable[NotReviewed]) -> tuple[NotReviewed, ...]:
    """One entry per path, the first reason kept (a file split across batches fails once per batch)."""
    seen: dict[str, NotReviewed] = {}
    for item in items:
        seen.setdefault(item.path, item)
    return tuple(seen.values())


def is_bot(login: str, user_type: str, app_slug: str = "") -> bool:
    """Bots, `[bot]` logins and the App itself (by its slug): never obeyed, never answered (no bot-to-bot loops).

    Case and surrounding blanks do not matter: GitHub logins are case-insensitive.
    """
    name = login.strip().lower()
    slug = app_slug.strip().lower()
    own = bool(slug) and name in (slug, f"{slug}[bot]")
    return user_type.strip().lower() == "bot" or name.endswith("[bot]") or own


@dataclass(frozen=True, slots=True)
class PullRequest:
    """The few fields of a pull request the bot acts on, re-read from GitHub."""

    owner: str
    repo: str
    number: int
    title: str
    body: str
    author: str
    author_is_bot: bool
    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    draft: bool
    state: str
    # GitHub's relation of the author to the repository (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE...).
    author_association: str = ""
    # The repository's default branch: configuration is read there, whatever branch the PR targets.
    default_branch: str = ""

    @property
    def full_name(self) -> str:
        """`owner/repo`."""
        return f"{self.owner}/{self.repo}"


@dataclass(frozen=True, slots=True)
class InlineComment:
    """A review comment at a position GitHub accepts (see `bot.diff.anchor.anchor`)."""

    path: str
    line: int
    side: Side
    body: str
    start_line: int | None = None
    start_side: Side | None = None


@dataclass(frozen=True, slots=True)
class ReviewToPost:
    """Everything needed for one `POST .../pulls/{n}/reviews` call."""

    commit_id: str
    body: str
    comments: tuple[InlineComment, ...] = field(default_factory=tuple)
