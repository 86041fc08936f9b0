"""A repository client's plumbing: REST calls (spaced writes, pagination, one token renewal on 401) and GraphQL,
as the installation (token scoped to the one repository) or as a personal or Actions token.

Every request goes through the App's githubkit configuration (`GitHubApp.new_client`): no githubkit retry,
the retry policy of `bot.github.retry`, the API version header, request counting.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from githubkit import AppInstallationAuthStrategy, GitHub, Response, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, GraphQLFailed, RateLimitExceeded

from bot.errors import GitHubError
from bot.github.payloads import AppIdentity
from bot.github.retry import Failure, RateLimit, RetryPolicy, WriteSpacer, classify
from bot.github.transport import decode, failure_of, raw_call


class Connection(Protocol):
    """What a repository client needs of the App (or token) that made it: see `bot.github.auth.GitHubApp`."""

    policy: RetryPolicy
    spacer: WriteSpacer

    def new_client(
        self, auth: AppInstallationAuthStrategy | TokenAuthStrategy, cache: MemCacheStrategy | None = None,
    ) -> GitHub[Any]:
        """A githubkit client with the bot's configuration."""
        ...

    async def identity(self) -> AppIdentity:
        """Who the bot is on GitHub."""
        ...

    async def aclose(self) -> None:
        """Close the pooled connections."""
        ...


class RepoSession:
    """Calls on one repository; `bot.github.repo.RepoClient` adds the operations."""

    def __init__(
        self, app: Connection, auth: AppInstallationAuthStrategy | TokenAuthStrategy, installation_id: int,
        owner: str, repo: str,
    ) -> None:
        self.app, self._auth, self.installation_id = app, auth, installation_id
        self._gh = app.new_client(auth)
        self._token_renewed = False
        self.owner, self.repo = owner, repo
        self._base = f"repos/{owner}/{repo}"

    async def _raw(self, method: str, url: str, what: str, policy: RetryPolicy | None = None,
                   **kwargs: Any) -> Response[Any]:
        """A call under the policy; a 401 (token revoked or expired early) renews the token once."""
        policy = policy or self.app.policy
        try:
            return await raw_call(policy, self._gh, method, url, what=what, **kwargs)
        except GitHubError as exc:
            if exc.status != 401 or self._token_renewed:
                raise
        self._token_renewed = True
        self._gh = self.app.new_client(self._auth, MemCacheStrategy())  # a fresh cache forgets the token
        return await raw_call(policy, self._gh, method, url, what=what, **kwargs)

    async def _get(self, path: str, what: str, *, accept: str | None = None, **kwargs: Any) -> Any:
        response = await self._raw("GET", f"{self._base}/{path}", what, accept=accept, **kwargs)
        return decode(response, accept)

    async def _write(self, method: str, path: str, what: str, json: Any = None,
                     policy: RetryPolicy | None = None) -> Any:
        response = await self._raw(method, f"{self._base}/{path}", what, policy, json=json, before=self._space)
        return decode(response, None)

    async def _space(self) -> None:
        await self.app.spacer.wait(self.installation_id)

    async def _paginate(self, path: str, what: str, limit: int = 10_000) -> list[dict[str, Any]]:
        """GET every page (100 per page) following the Link header, up to `limit` items."""
        items: list[dict[str, Any]] = []
        url: str | None = f"{self._base}/{path}"
        params: dict[str, Any] | None = {"per_page": 100}
        while url is not None and len(items) < limit:
            response = await self._raw("GET", url, what, params=params)
            items.extend(response.raw_response.json())
            url, params = response.raw_response.links.get("next", {}).get("url"), None
        return items[:limit]

    async def _own_login(self) -> str:
        return (await self.app.identity()).bot_login

    async def query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Run a read-only GraphQL query (retried like every call) and return its `data`."""
        return await self._graphql(query, variables)

    async def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            try:
                return await self._gh.async_graphql(query, variables)
            except GraphQLFailed as exc:
                errors = exc.response.errors or []
                raise GitHubError(f"GraphQL: {'; '.join(e.message for e in errors)}") from None
            except RateLimitExceeded as exc:  # GraphQL reports RATE_LIMITED in a 200 answer
                failure = Failure(exc.response.status_code, dict(exc.response.headers), None, "GraphQL rate limit")
                raise RateLimit(failure, exc.retry_after.total_seconds()) from None
            except GitHubException as exc:
                signal = classify(failure_of(exc), time.time())
                raise signal from None

        return await self.app.policy.run(attempt, "graphql")
