"""One model call as a review run sees it (`bot.model_run`): the conversation's turns, the reply, how a call
fails, and which failures end the review. `bot.model.reviewer` implements `Send` with the Messages API; nothing
here knows the SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from bot.domain import Usage
from bot.errors import ConfigError, ModelUnavailable

# How long a call waits before it is retried when the API gave no `retry-after`, and the longest `retry-after` the
# SDK may sleep through (longer: ModelUnavailable at once).
MAX_RETRY_WAIT_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a conversation; `cached` asks the prompt cache to keep the conversation up to it."""

    role: Literal["user", "assistant"]
    text: str
    cached: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """What one call returned: the answer's text, why it stopped (and a refusal's category), what it cost."""

    text: str
    stop_reason: str | None
    usage: Usage
    refusal_category: str | None = None


class CallRejected(Exception):
    """The API answered an error status (after the SDK's own retries)."""

    def __init__(self, status: int, message: str, retry_after_s: float | None) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.retry_after_s = status, message, retry_after_s


class CallUnreachable(Exception):
    """The API could not be reached (after the SDK's own retries); the message names the connection error."""


class Send(Protocol):
    """One Messages call: streamed when `first_event` waits for its first event (set then); raises CallRejected
    or CallUnreachable."""

    async def __call__(self, turns: Sequence[Turn], first_event: asyncio.Event | None, max_tokens: int) -> Reply:
        """Send the conversation; the reply."""
        ...


def estimate_prompt_tokens(text: str) -> int:
    """A conservative input-token estimate for budget checks (3 characters a token; images and tools: none)."""
    return len(text) // 3 + 1


def raise_for_status(exc: CallRejected, model: str) -> None:
    """Key, access or model problems are configuration errors (ConfigError); overload and rate limits that outlived
    the SDK's retries are for later (ModelUnavailable with `retry_at`); other statuses return (the caller decides)."""
    status = exc.status
    if status in (401, 403):
        raise ConfigError(f"ANTHROPIC_API_KEY: the model API rejected the key ({status})") from None
    if status == 404:
        raise ConfigError(f"REVIEW_MODEL: the model API does not know {model!r} (404)") from None
    if status == 429 or status >= 500:
        retry_at = time.time() + (exc.retry_after_s if exc.retry_after_s is not None else MAX_RETRY_WAIT_S)
        raise ModelUnavailable(f"model API still answering {status} after retries", retry_at=retry_at) from None
