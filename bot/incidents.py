"""What a pull request may learn about a failure: a fixed sentence for its kind and a short incident id (no I/O).

The exception and its text (which can carry database hosts, users, SQL or tokens) go only to the logs, under
the same incident id, so an operator can find them from what the pull request shows.
"""

from __future__ import annotations

import secrets
from enum import StrEnum

from bot.errors import ConfigError, DeadlineExceeded, GitHubError, GitHubUnavailable, ModelUnavailable, RateLimited


class FailureKind(StrEnum):
    """The kinds of failure a public sentence distinguishes."""

    GITHUB = "github"
    MODEL = "model"
    CONFIG = "config"
    INTERNAL = "internal"


SENTENCES = {
    FailureKind.GITHUB: "GitHub was unavailable or refused a request.",
    FailureKind.MODEL: "The model API was unavailable.",
    FailureKind.CONFIG: "The bot's configuration has a problem.",
    FailureKind.INTERNAL: "An internal error occurred.",
}


def new_incident_id() -> str:
    """A short random id (8 hex digits) that ties a public message to its log lines."""
    return secrets.token_hex(4)


def classify(exc: BaseException | None) -> FailureKind:
    """The failure's kind from its exception type (never from its text)."""
    if isinstance(exc, (GitHubError, GitHubUnavailable, RateLimited)):
        return FailureKind.GITHUB
    if isinstance(exc, (ModelUnavailable, DeadlineExceeded)):
        return FailureKind.MODEL
    if isinstance(exc, ConfigError):
        return FailureKind.CONFIG
    return FailureKind.INTERNAL


def public_reason(kind: FailureKind, incident: str) -> str:
    """The sentence a pull request may show: the kind's fixed text and the incident id."""
    return f"{SENTENCES[kind]} (incident `{incident}`)"
