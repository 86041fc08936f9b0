"""Who the bot is to GitHub: the App (a JWT for App routes, installation tokens scoped to one repository) or a
personal or Actions token (the terminal `review` command), and the `RepoClient`s each gives.

Installation tokens are cached by githubkit until a minute before expiry, in memory only, never logged. Every
request, token requests included, carries `X-GitHub-Api-Version` from the settings and is counted
(`GitHubApp.request_count`, `on_request` callback for metrics).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy

from bot.errors import ConfigError, Forbidden, NotFound
from bot.github.payloads import AppIdentity
from bot.github.repo import RepoClient
from bot.github.retry import RetryPolicy, WriteSpacer
from bot.github.transport import PooledTransport, get_json
from bot.settings import Settings

USER_AGENT = "senior-review"


def signing_key(pem: str) -> str:
    """The App's private key, parsed once, for githubkit to sign its JWTs with.

    githubkit hands the key to PyJWT unchanged, and PyJWT signs with a parsed key as it does with PEM text; given
    text, it would parse and check the key again for every JWT: about 80 ms of CPU holding the GIL, so the event
    loop would wait. The key is our own (from the settings), so the consistency check meant for keys from others
    is skipped: a damaged key shows as GitHub refusing the JWT. Typed `str`, which is what githubkit declares.
    """
    try:
        key = load_pem_private_key(pem.encode(), password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError):
        raise ConfigError("GITHUB_APP_PRIVATE_KEY is not a PEM private key without a passphrase") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError("GITHUB_APP_PRIVATE_KEY must be an RSA key: GitHub App JWTs are signed with RS256")
    return cast(str, key)


class GitHubApp:
    """The App: JWT-authenticated calls and a factory of per-repository installation clients."""

    # (method, status, rate-limit remaining, resource) after every answer: the app's metrics set it.
    on_response: Callable[[str, int, int | None, str], None] | None = None

    def __init__(
        self,
        settings: Settings,
        *,
        write_interval: float = 1.0,
        backoff_base: float = 0.5,
        on_request: Callable[[str, str], None] | None = None,
        timeout: float = 30.0,
    ) -> None:
        pem = settings.private_key_pem
        if settings.github_app_id is None or pem is None:
            raise ConfigError("GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY are required to talk to GitHub")
        self.settings = settings
        self.request_count = 0
        self._app_id, self.jwt_key = settings.github_app_id, signing_key(pem)
        self._on_request = on_request
        self._timeout = timeout
        self._cache = MemCacheStrategy()  # per App object: tokens never shared across processes or tests
        self.policy = RetryPolicy(settings.github_request_retries, settings.github_max_wait_seconds, backoff_base)
        self.spacer = WriteSpacer(write_interval)
        self._identity: AppIdentity | None = None
        self._transport = PooledTransport()
        self._gh = self.new_client(AppAuthStrategy(self._app_id, self.jwt_key))

    def new_client(
        self, auth: AppAuthStrategy | AppInstallationAuthStrategy | TokenAuthStrategy,
        cache: MemCacheStrategy | None = None,
    ) -> GitHub[Any]:
        """A githubkit client with the bot's configuration (no githubkit retry, pooled transport, API version)."""
        return GitHub(
            auth,
            base_url=self.settings.github_api_url,
            user_agent=USER_AGENT,
            timeout=self._timeout,
            cache_strategy=cache or self._cache,
            http_cache=False,
            auto_retry=False,
            async_transport=self._transport,
            async_event_hooks={"request": [self._before_request], "response": [self._after_response]},
        )

    async def _after_response(self, response: httpx.Response) -> None:
        if self.on_response is None:
            return
        remaining = response.headers.get("x-ratelimit-remaining")
        self.on_response(
            response.request.method,
            response.status_code,
            int(remaining) if remaining and remaining.isdigit() else None,
            response.headers.get("x-ratelimit-resource", "core"),
        )

    async def _before_request(self, request: httpx.Request) -> None:
        request.headers["X-GitHub-Api-Version"] = self.settings.github_api_version
        self.request_count += 1
        if self._on_request is not None:
            self._on_request(request.method, request.url.path)

    async def identity(self) -> AppIdentity:
        """`GET /app` once; later calls answer from memory."""
        if self._identity is None:
            data = await get_json(self.policy, self._gh, "app", what="get app")
            self._identity = AppIdentity(int(data["id"]), str(data["slug"]), str(data.get("name") or data["slug"]))
        return self._identity

    async def installation_id(self, owner: str, repo: str) -> int:
        """The installation covering `owner/repo` (NotFound when the App is not installed there)."""
        data = await get_json(self.policy, self._gh, f"repos/{owner}/{repo}/installation", what="installation")
        return int(data["id"])

    def for_repo(self, installation_id: int, owner: str, repo: str) -> RepoClient:
        """A client for one repository, authenticated with an installation token scoped to it."""
        auth = AppInstallationAuthStrategy(self._app_id, self.jwt_key, installation_id,
                                           repositories=[repo])
        return RepoClient(self, auth, installation_id, owner, repo)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._transport.close_pool()

    def warm_up(self) -> None:
        """Do githubkit's first-use work now (its model imports and validators, the installation-token flow with
        this App's key, the HTTP stack) against an in-memory GitHub: about 0.2 s of CPU the first job's event loop
        would otherwise wait on. Runs its own event loop: call it from a thread at start."""
        asyncio.run(self._warm_up())

    async def _warm_up(self) -> None:
        import httpcore  # noqa: F401 - httpx imports it when the first connection pool is built

        def answer(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/access_tokens"):
                return httpx.Response(201, json={"token": "warm-up", "expires_at": "2099-01-01T00:00:00Z"})
            return httpx.Response(200, json={})

        auth = AppInstallationAuthStrategy(self._app_id, self.jwt_key, 1, repositories=["warm-up"])
        gh = GitHub(auth, base_url="https://warm-up.invalid/", cache_strategy=MemCacheStrategy(), http_cache=False,
                    auto_retry=False, async_transport=httpx.MockTransport(answer))
        await get_json(self.policy, gh, "warm-up", what="warm-up")


class TokenIdentity(AppIdentity):
    """The user a token acts as: `bot_login` is that login (what `RepoClient` compares authors with), and the id
    is 0 so that it never equals an App's id in `performed_via_github_app`."""

    __slots__ = ()

    @property
    def bot_login(self) -> str:
        """The token user's login (a user's own reviews carry it as is, with no `[bot]` suffix)."""
        return self.slug


# Who an Actions `GITHUB_TOKEN` (an installation token of the `github-actions` App) acts as: `GET /user` answers it
# 403 "Resource not accessible by integration", and what it posts is authored by this login (known behaviour).
ACTIONS_LOGIN = "github-actions[bot]"


class GitHubToken(GitHubApp):
    """A token instead of the App, for `python -m bot review OWNER/REPO#N`: a personal access token (classic or
    fine-grained) or an Actions `GITHUB_TOKEN`, sent as `Authorization: token ...` by githubkit's
    `TokenAuthStrategy`. It is a `GitHubApp` to `RepoClient` (same retry policy, write spacing, pooled transport,
    API version and request counting), without a JWT or installations: `for_repo` ignores the installation id,
    and `identity()` is the token's user (`GET /user`). GitHubApp's constructor is not called because it insists
    on App credentials; this one sets the same attributes.
    """

    def __init__(
        self,
        settings: Settings,
        token: str,
        *,
        write_interval: float = 1.0,
        backoff_base: float = 0.5,
        on_request: Callable[[str, str], None] | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not token.strip():
            raise ConfigError("GITHUB_TOKEN is empty")
        self.settings = settings
        self.request_count = 0
        self._on_request = on_request
        self._timeout = timeout
        self._cache = MemCacheStrategy()
        self.policy = RetryPolicy(settings.github_request_retries, settings.github_max_wait_seconds, backoff_base)
        self.spacer = WriteSpacer(write_interval)
        self._identity: AppIdentity | None = None
        self._transport = PooledTransport()
        self._token_auth = TokenAuthStrategy(token.strip())
        self._gh = self.new_client(self._token_auth)

    async def identity(self) -> AppIdentity:
        """The token's user, `GET /user` once (an Actions token may not read it: then `github-actions[bot]`)."""
        if self._identity is None:
            try:
                data = await get_json(self.policy, self._gh, "user", what="get user")
                login, user_id = str(data["login"]), int(data.get("id") or 0)
            except (Forbidden, NotFound):
                login, user_id = ACTIONS_LOGIN, 0
            self._identity = TokenIdentity(0, login, f"{login} ({user_id})" if user_id else login)
        return self._identity

    async def installation_id(self, owner: str, repo: str) -> int:
        """A token has no installation: 0 (only keys the write spacer)."""
        return 0

    def for_repo(self, installation_id: int, owner: str, repo: str) -> RepoClient:
        """A client for one repository, authenticated with the token (`installation_id` is ignored)."""
        return RepoClient(self, self._token_auth, 0, owner, repo)


def token_repo_client(settings: Settings, token: str, owner: str, repo: str, **options: Any) -> RepoClient:
    """A `RepoClient` on `owner/repo` authenticated with a personal or Actions token instead of the App
    (`options` go to `GitHubToken`); close it with `await client.app.aclose()`."""
    return GitHubToken(settings, token, **options).for_repo(0, owner, repo)

