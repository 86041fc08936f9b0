"""GitHub failure policy: which answers are retried, waited out or turned into typed errors (no I/O of its own)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.errors import (
    Forbidden,
    GitHubError,
    GitHubUnavailable,
    NotFound,
    RateLimited,
    TooLarge,
    Unprocessable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
NOT_ACCESSIBLE = "Resource not accessible by integration"
DEFAULT_RATE_LIMIT_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed GitHub call: an HTTP answer (status, headers, JSON body) or a connection error (status None)."""

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    detail: str = ""

    @property
    def message(self) -> str:
        """GitHub's `message`, or the connection error's description."""
        if isinstance(self.body, dict) and isinstance(self.body.get("message"), str):
            return str(self.body["message"])
        return self.detail or f"HTTP {self.status}"


class Transient(Exception):
    """Internal signal: the call failed in a way that may succeed when repeated (5xx, connection error)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class RateLimit(Exception):
    """Internal signal: a primary or secondary rate limit that lifts after `wait` seconds."""

    def __init__(self, failure: Failure, wait: float) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.wait = wait


def rate_limit_wait(failure: Failure, now: float) -> float | None:
    """Seconds until a rate limit lifts (retry-after, else x-ratelimit-reset), or None if it is no rate limit.

    GitHub docs (rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit): 403 or 429;
    `retry-after` for secondary limits, `x-ratelimit-remaining: 0` with `x-ratelimit-reset` for primary ones.
    """
    if failure.status not in (403, 429):
        return None
    headers = {k.lower(): v for k, v in failure.headers.items()}
    if "retry-after" in headers:
        try:
            return max(0.0, float(headers["retry-after"]))
        except ValueError:
            return DEFAULT_RATE_LIMIT_WAIT
    if headers.get("x-ratelimit-remaining") == "0":
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - now)
        except (KeyError, ValueError):
            return DEFAULT_RATE_LIMIT_WAIT
    if failure.status == 429 or "secondary rate limit" in failure.message.lower():
        return DEFAULT_RATE_LIMIT_WAIT
    return None


def classify(failure: Failure, now: float) -> Exception:
    """The exception a failure maps to: Transient, RateLimit, or a typed GitHubError (never retried)."""
    if failure.status is None or failure.status >= 500:
        return Transient(failure)
    wait = rate_limit_wait(failure, now)
    if wait is not None:
        return RateLimit(failure, wait)
    return to_error(failure)


def to_error(failure: Failure) -> GitHubError:
    """The typed error for a non-retryable answer; 403 "not accessible by integration" names the permission."""
    status, message = failure.status, failure.message
    if status == 404:
        return NotFound(message, status=404)
    if status == 403:
        if NOT_ACCESSIBLE in message:
            needed = {k.lower(): v for k, v in failure.headers.items()}.get("x-accepted-github-permissions")
            hint = f"the App lacks a permission: {needed}" if needed else "the App lacks a permission"
            return Forbidden(f"{message} ({hint})", status=403)
        return Forbidden(message, status=403)
    if status == 406 and _too_large(failure.body):
        return TooLarge(message, status=406)
    if status == 422:
        errors = failure.body.get("errors") if isinstance(failure.body, dict) else None
        return Unprocessable(message, errors=list(errors) if isinstance(errors, list) else [])
    return GitHubError(message, status=status)


def _too_large(body: Any) -> bool:
    errors = body.get("errors") if isinstance(body, dict) else None
    return isinstance(errors, list) and any(isinstance(e, dict) and e.get("code") == "too_large" for e in errors)


@dataclass
class RetryPolicy:
    """Bounded retries with jittered exponential backoff for transient failures; rate limits waited out
    while the total wait stays within `max_wait` seconds, else RateLimited(retry_at)."""

    retries: int = 3
    max_wait: float = 60.0
    backoff_base: float = 0.5
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.time

    async def run(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """Run `call` (which raises Transient/RateLimit/typed errors) under this policy."""
        transient_left, waited = self.retries, 0.0
        while True:
            try:
                return await call()
            except Transient as exc:
                if transient_left <= 0:
                    raise GitHubUnavailable(
                        f"{what}: GitHub unavailable after {self.retries + 1} attempts ({exc.failure.message})",
                        retry_at=self.clock() + 60,
                    ) from None
                delay = self.backoff_base * 2 ** (self.retries - transient_left) * random.uniform(0.5, 1.5)
                transient_left -= 1
                log.warning("github transient failure, retrying", extra={"what": what, "delay": round(delay, 2)})
                await self.sleep(delay)
            except RateLimit as exc:
                if waited + exc.wait > self.max_wait:
                    raise RateLimited(
                        f"{what}: rate limited for {exc.wait:.0f}s ({exc.failure.message})",
                        retry_at=self.clock() + exc.wait,
                    ) from None
                waited += exc.wait
                log.warning("github rate limit, waiting", extra={"what": what, "wait": exc.wait})
                await self.sleep(exc.wait)


class WriteSpacer:
    """Spaces content-creating requests per installation at least `interval` seconds apart
    (GitHub docs, secondary rate limits: create content at most ~80 times a minute, wait 1 s between)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def wait(self, key: int) -> None:
        """Return once a write for `key` may be sent (and book that slot)."""
        if self.interval <= 0:
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            delay = self._last.get(key, float("-inf")) + self.interval - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last[key] = self._clock()
