"""The bot's small exception hierarchy; the worker loop is the one place that catches broadly."""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the bot raises on purpose."""


class ConfigError(BotError):
    """A setting or configuration file is missing or malformed; the message names it."""


class RetryLater(BotError):
    """A transient condition: the job system should retry, not before `retry_at` (epoch seconds) if set."""

    def __init__(self, message: str, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class GitHubError(BotError):
    """GitHub answered with an error the bot cannot work around."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(GitHubError):
    """The resource does not exist or the App cannot see it (GitHub answers 404 for both)."""


class Forbidden(GitHubError):
    """The App lacks a permission ("Resource not accessible by integration"); the message says which."""


class TooLarge(GitHubError):
    """GitHub refused to produce a resource because it is too large (406 too_large on diffs)."""


class Unprocessable(GitHubError):
    """GitHub rejected a request as invalid (422); `errors` carries GitHub's error details."""

    def __init__(self, message: str, errors: list[object] | None = None) -> None:
        super().__init__(message, status=422)
        self.errors = errors or []


class RateLimited(RetryLater):
    """A GitHub primary or secondary rate limit that lasts longer than the bot is willing to wait."""


class GitHubUnavailable(RetryLater):
    """GitHub kept answering 5xx or dropping connections after bounded retries."""


class ModelUnavailable(RetryLater):
    """The model API kept failing (429/5xx/529) after the SDK's bounded retries."""


class DeadlineExceeded(RetryLater):
    """A review missed its overall deadline; the job system retries it later."""


class StaleHead(BotError):
    """The pull request's head moved while reviewing; the newer job reviews the new head."""
