"""One GitHub REST call through githubkit under the retry policy, over a pooled transport.

githubkit's own retry is disabled (it may sleep up to an hour); `bot.github.retry` decides instead, from the
`Failure` this module reads off githubkit's exceptions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from githubkit import GitHub, Response
from githubkit.exception import GitHubException, RateLimitExceeded, RequestError, RequestFailed

from bot.github.retry import Failure, RetryPolicy, classify

DIFF_MEDIA_TYPE = "application/vnd.github.diff"


class PooledTransport(httpx.AsyncBaseTransport):
    """One connection pool and TLS context per App and event loop: githubkit builds an httpx client per
    request, which would otherwise load the CA bundle each time (~0.2 s of CPU) and close the pool after
    every call. A pool is bound to its event loop, so a new loop gets a new pool."""

    def __init__(self) -> None:
        self._ssl = httpx.create_ssl_context()
        self._pool: httpx.AsyncHTTPTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through this loop's pool."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:
            self._pool, self._loop = httpx.AsyncHTTPTransport(verify=self._ssl, retries=0), loop
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        """Ignore githubkit closing its per-request client; `close_pool` really closes."""

    async def close_pool(self) -> None:
        """Close every pooled connection of the current pool."""
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._pool.aclose()
        self._pool = None


async def get_json(policy: RetryPolicy, gh: GitHub[Any], url: str, *, what: str) -> Any:
    """One GET under the retry policy; the decoded JSON."""
    return decode(await raw_call(policy, gh, "GET", url, what=what), None)


def decode(response: Response[Any], accept: str | None) -> Any:
    """The answer's JSON, its text for the diff media type, None when empty."""
    if accept == DIFF_MEDIA_TYPE:
        return response.raw_response.text
    if response.status_code == 204 or not response.raw_response.content:
        return None
    return response.raw_response.json()


async def raw_call(
    policy: RetryPolicy,
    gh: GitHub[Any],
    method: str,
    url: str,
    *,
    what: str,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    accept: str | None = None,
    before: Callable[[], Awaitable[None]] | None = None,
) -> Response[Any]:
    """One REST call under the retry policy; githubkit's response (`decode` reads its body)."""
    headers = {"Accept": accept} if accept else None

    async def attempt() -> Response[Any]:
        if before is not None:
            await before()
        try:
            return await gh.arequest(method, url, params=params, json=json, headers=headers)
        except GitHubException as exc:
            raise classify(failure_of(exc), time.time()) from None

    return await policy.run(attempt, what)


def failure_of(exc: GitHubException) -> Failure:
    """Describe a githubkit exception (auth-flow failures arrive wrapped in RequestError)."""
    inner: object = exc
    while isinstance(inner, RequestError) and not isinstance(inner, RequestFailed):
        inner = inner.exc
    if isinstance(inner, RequestFailed | RateLimitExceeded):
        raw = inner.response.raw_response
        try:
            body = raw.json()
        except ValueError:
            body = None
        return Failure(raw.status_code, dict(raw.headers), body)
    if isinstance(inner, GitHubException | httpx.HTTPError):
        return Failure(None, detail=f"{type(inner).__name__}: {inner}")
    return Failure(None, detail=repr(inner))

