"""The `.github/senior-review.yml` model: every key, its type, default and documentation (no I/O)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from bot.config.globs import MAX_GLOB_CHARS, check_glob
from bot.domain import Category, Severity

Effort = Literal["low", "medium", "high"]
GateSeverity = Literal["critical", "high", "medium", "low", "none"]
Trust = Literal["collaborators", "everyone"]

MAX_GLOBS = 100
MAX_GLOB_LENGTH = MAX_GLOB_CHARS
MAX_INSTRUCTIONS = 20
MAX_INSTRUCTION_CHARS = 2_000


class _Strict(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_glob(value: str) -> str:
    check_glob(value)  # GlobError is a ValueError: pydantic reports it at the glob's own line
    return value


Glob = Annotated[str, AfterValidator(_check_glob)]


class AutoReview(_Strict):
    """When reviews start without anyone asking."""

    on_open: bool = Field(
        default=True, description="Review when a pull request is opened, reopened or marked ready for review."
    )
    on_push: bool = Field(default=True, description="Review the new commits (incrementally) on every push.")
    trust: Trust = Field(
        default="collaborators",
        description=(
            "Whose pull requests are reviewed without anyone asking. 'collaborators': authors with write, maintain "
            "or admin permission, or whose association is OWNER, MEMBER or COLLABORATOR; any other pull request "
            "(forks by outsiders, first-time contributors) gets a neutral check run and waits for a maintainer's "
            "`@<app> review`. 'everyone': every pull request (each push is a paid model run)."
        ),
    )
    approval_carries_over: bool = Field(
        default=False,
        description=(
            "Once a maintainer has started a review of an untrusted author's pull request with a command, later "
            "pushes to it are reviewed automatically too."
        ),
    )


class Paths(_Strict):
    """Which changed files are reviewed."""

    include: tuple[Glob, ...] = Field(
        default=(),
        max_length=MAX_GLOBS,
        description="Globs of files to review; empty means every file. Example: ['src/**', '**/*.py'].",
    )
    exclude: tuple[Glob, ...] = Field(
        default=(),
        max_length=MAX_GLOBS,
        description="Globs of files never reviewed (listed in the review as excluded); wins over include.",
    )
    default_excludes: bool = Field(
        default=True,
        description="Also exclude lock files, vendored, generated and minified files, build output and binaries.",
    )


class Instruction(_Strict):
    """Extra guidance for the reviewer, for the files matching a glob."""

    path: Glob = Field(default="**", max_length=MAX_GLOB_LENGTH, description="Glob of the files this applies to.")
    text: str = Field(
        min_length=1,
        max_length=MAX_INSTRUCTION_CHARS,
        description="Instructions appended to the prompt as trusted guidance from the repository's owners.",
    )


class Categories(_Strict):
    """Which kinds of finding are reported (all on by default)."""

    security: bool = Field(default=True, description="Injection, authn/authz, secrets, unsafe deserialisation...")
    validation: bool = Field(default=True, description="Missing or wrong input validation and error handling.")
    performance: bool = Field(default=True, description="N+1 queries, unbounded work, blocking calls in async code.")
    tests: bool = Field(default=True, description="Missing or ineffective tests for the changed behaviour.")
    reliability: bool = Field(default=True, description="Races, retries, timeouts, resource leaks, data loss.")
    design: bool = Field(default=True, description="API and schema design, coupling, maintainability.")

    @property
    def enabled(self) -> frozenset[Category]:
        """The categories switched on."""
        return frozenset(c for c in Category if getattr(self, c.value))


class Budgets(_Strict):
    """Spending limits, enforced before any model call."""

    max_tokens_per_review: int = Field(
        default=400_000,
        ge=1_000,
        le=10_000_000,
        description="Estimated input tokens one review may send; over it, the riskiest files are reviewed first.",
    )
    max_cost_usd_per_review: float = Field(
        default=5.0, gt=0, le=1_000, description="Estimated cost (USD) one review may spend."
    )
    max_cost_usd_per_installation_per_day: float = Field(
        default=50.0,
        gt=0,
        le=100_000,
        description="Cost (USD) all repositories of the installation may spend per UTC day; over it, no review.",
    )
    max_cost_usd_per_pr_per_day: float = Field(
        default=15.0,
        gt=0,
        le=100_000,
        description="Cost (USD) the reviews of one pull request may spend per UTC day (pushes and commands alike).",
    )
    max_cost_usd_per_author_per_day: float = Field(
        default=25.0,
        gt=0,
        le=100_000,
        description="Cost (USD) the reviews of one author's pull requests may spend per UTC day, all repositories.",
    )


class Commands(_Strict):
    """Who may steer the bot with @-mention commands, and how often."""

    allow_pr_author: bool = Field(
        default=False, description="Let the pull request's author use commands even without write access."
    )
    max_per_pr_per_hour: int = Field(
        default=10, ge=0, le=1_000, description="Accepted commands per pull request per hour."
    )
    max_per_user_per_hour: int = Field(
        default=20, ge=0, le=1_000, description="Commands (accepted or refused) per user per hour, all PRs."
    )


class Review(_Strict):
    """How each finding is checked before it is posted."""

    verify: bool = Field(
        default=True,
        description=(
            "After each batch's answer, a second turn of the same conversation (read from the prompt cache) has the "
            "model re-check every finding; the ones it drops are counted in the review body, never posted."
        ),
    )


class Threads(_Strict):
    """What the bot does in its findings' review threads after posting them."""

    resolve_fixed: bool = Field(
        default=True,
        description=(
            "On a push that changes the lines of an open finding, the review of that push re-checks it; when the "
            "problem is gone the bot replies \"Fixed in <commit>.\" in its thread and resolves the thread."
        ),
    )
    dismiss_by_reaction: bool = Field(
        default=True,
        description=(
            "A thumbs-down reaction on a finding from someone with write access dismisses it (read when the next "
            "review of the pull request runs), like replying `@<app> dismiss`."
        ),
    )
    remember_dismissals: bool = Field(
        default=True,
        description=(
            "A finding dismissed with a reason (`@<app> dismiss <reason>`) is not posted inline again in later pull "
            "requests of this repository; the review body counts it as dismissed earlier."
        ),
    )
    answer_questions: bool = Field(
        default=True,
        description=(
            "Answer a reply in one of the bot's threads that mentions the App (`@<app> why?`), in that thread: a "
            "paid model call within the budgets and the command rate limits, from people with write access or the "
            "pull request's trusted author."
        ),
    )


class RepoConfig(_Strict):
    """The whole `.github/senior-review.yml` file; every key is optional."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="Senior review configuration (.github/senior-review.yml)",
    )

    enabled: bool = Field(
        default=True, description="Master switch: false means no automatic reviews and the review commands are refused."
    )
    review_drafts: bool = Field(default=False, description="Review draft pull requests too.")
    auto_review: AutoReview = Field(default_factory=AutoReview, description=AutoReview.__doc__)
    paths: Paths = Field(default_factory=Paths, description=Paths.__doc__)
    instructions: tuple[Instruction, ...] = Field(
        default=(), max_length=MAX_INSTRUCTIONS, description="Path-scoped extra instructions for the reviewer."
    )
    min_inline_severity: Severity = Field(
        default=Severity.LOW, description="Findings below this severity are not posted as inline comments."
    )
    max_inline_comments: int = Field(
        default=25, ge=0, le=100, description="At most this many inline comments per review (most severe first)."
    )
    gate_severity: GateSeverity = Field(
        default="none",
        description="The check run fails while a finding at or above this severity is open; 'none' never fails.",
    )
    categories: Categories = Field(default_factory=Categories, description=Categories.__doc__)
    language: str = Field(
        default="English", min_length=1, max_length=40, description="Language the comments are written in."
    )
    model: str | None = Field(
        default=None, max_length=100, description="Model name, from the server operator's allow-list; null: default."
    )
    allowed_models: tuple[str, ...] | None = Field(
        default=None,
        max_length=20,
        description=(
            "Models the layers below may choose (the organization's `.github` narrowing the server's "
            "ALLOWED_MODELS for its repositories); only narrows, never widens. null: inherited."
        ),
    )
    effort: Effort | None = Field(default=None, description="Reasoning effort; null: the server's default.")
    budgets: Budgets = Field(default_factory=Budgets, description=Budgets.__doc__)
    commands: Commands = Field(default_factory=Commands, description=Commands.__doc__)
    review: Review = Field(default_factory=Review, description=Review.__doc__)
    threads: Threads = Field(default_factory=Threads, description=Threads.__doc__)
    summary_comment: bool = Field(
        default=True,
        description="Open the review body with a short summary of the change; false: verdict and coverage only.",
    )

    @field_validator("language")
    @classmethod
    def _language_words(cls, value: str) -> str:
        # The value reaches the prompt: letters, spaces, hyphens and parentheses only.
        if not all(ch.isalpha() or ch in " -()" for ch in value) or not value.strip():
            raise ValueError("a language name has only letters, spaces, hyphens and parentheses")
        return value.strip()

    @property
    def gate(self) -> Severity | None:
        """The gate severity, or None when the gate is off."""
        return None if self.gate_severity == "none" else Severity(self.gate_severity)
