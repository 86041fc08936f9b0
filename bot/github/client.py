"""The bot's GitHub client (the only module importing githubkit): App auth, pull-request data, one review per run.

Authentication uses githubkit's App strategies: a JWT for App routes and an installation token scoped to
the one repository a `RepoClient` serves (cached by githubkit until a minute before expiry, in memory
only, never logged). githubkit's own retry is disabled (it may sleep up to an hour); `bot.github.retry`
decides instead. Every request, token requests included, carries `X-GitHub-Api-Version` from the settings
and is counted (`GitHubApp.request_count`, `on_request` callback for metrics). `GitHubToken` /
`token_repo_client` give the same `RepoClient` on a personal or Actions token (the terminal `review` command).

Posting a review (`RepoClient.post_review`): one `POST .../reviews` with `event: COMMENT`. If GitHub
answers 422, the offending comments are found without creating extra visible reviews: first with the
caller's `is_placeable`, then by bisecting with PENDING reviews (created without `event`, then deleted;
pending reviews are visible to nobody but their author). Rejected comments become file-level notes in
the body; exactly one review is submitted and no finding is dropped.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub, Response, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import (
    GitHubException,
    GraphQLFailed,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
)

from bot.domain import InlineComment, NotReviewed, PullRequest, ReviewToPost
from bot.errors import (
    ConfigError,
    Forbidden,
    GitHubError,
    GitHubUnavailable,
    NotFound,
    StaleHead,
    TooLarge,
    Unprocessable,
)
from bot.github.payloads import (
    AppIdentity,
    CheckRun,
    Comparison,
    IssueComment,
    PostedReview,
    RawDiff,
    Review,
    ReviewComment,
    ReviewThread,
    check_run_of,
    comment_json,
    login_of,
    missing_patches,
    review_body,
    review_comment_of,
)
from bot.github.retry import Failure, RateLimit, RetryPolicy, WriteSpacer, classify
from bot.settings import Settings

T = TypeVar("T")

APP_PERMISSIONS: Mapping[str, str] = {
    "pull_requests": "write",
    "contents": "read",
    "issues": "write",
    "checks": "write",
    "metadata": "read",
}
APP_EVENTS: tuple[str, ...] = (
    "pull_request", "issue_comment", "pull_request_review_comment",
    # Resolving a finding's thread tells the bot never to raise that finding again.
    "pull_request_review_thread",
)
DIFF_MEDIA_TYPE = "application/vnd.github.diff"
MAX_LISTED_FILES = 3_000
MAX_COMPARE_FILES = 300
DEFAULT_MAX_INLINE = 25
USER_AGENT = "senior-review"


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
        self._app_id, self._pem = settings.github_app_id, pem
        self._on_request = on_request
        self._timeout = timeout
        self._cache = MemCacheStrategy()  # per App object: tokens never shared across processes or tests
        self.policy = RetryPolicy(settings.github_request_retries, settings.github_max_wait_seconds, backoff_base)
        self.spacer = WriteSpacer(write_interval)
        self._identity: AppIdentity | None = None
        self._transport = _PooledTransport()
        self._gh = self.new_client(AppAuthStrategy(self._app_id, pem))

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
            data = await call(self.policy, self._gh, "GET", "app", what="get app")
            self._identity = AppIdentity(int(data["id"]), str(data["slug"]), str(data.get("name") or data["slug"]))
        return self._identity

    async def installation_id(self, owner: str, repo: str) -> int:
        """The installation covering `owner/repo` (NotFound when the App is not installed there)."""
        data = await call(self.policy, self._gh, "GET", f"repos/{owner}/{repo}/installation", what="installation")
        return int(data["id"])

    def for_repo(self, installation_id: int, owner: str, repo: str) -> RepoClient:
        """A client for one repository, authenticated with an installation token scoped to it."""
        auth = AppInstallationAuthStrategy(self._app_id, self._pem, installation_id, repositories=[repo])
        return RepoClient(self, auth, installation_id, owner, repo)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._transport.close_pool()


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
        self._transport = _PooledTransport()
        self._token_auth = TokenAuthStrategy(token.strip())
        self._gh = self.new_client(self._token_auth)

    async def identity(self) -> AppIdentity:
        """The token's user, `GET /user` once (an Actions token may not read it: then `github-actions[bot]`)."""
        if self._identity is None:
            try:
                data = await call(self.policy, self._gh, "GET", "user", what="get user")
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


class _PooledTransport(httpx.AsyncBaseTransport):
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


async def call(
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
) -> Any:
    """One REST call under the retry policy; the decoded JSON (or text for non-JSON media types)."""
    response = await raw_call(policy, gh, method, url, what=what, params=params, json=json, accept=accept,
                              before=before)
    return decode(response, accept)


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
    """Like `call`, returning githubkit's response (for headers such as Link)."""
    headers = {"Accept": accept} if accept else None

    async def attempt() -> Response[Any]:
        if before is not None:
            await before()
        try:
            return await gh.arequest(method, url, params=params, json=json, headers=headers)
        except GitHubException as exc:
            raise classify(_failure(exc), time.time()) from None

    return await policy.run(attempt, what)


def _failure(exc: GitHubException) -> Failure:
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


class RepoClient:
    """GitHub operations on one repository, as the App's installation (token scoped to this repository)."""

    def __init__(
        self, app: GitHubApp, auth: AppInstallationAuthStrategy | TokenAuthStrategy, installation_id: int,
        owner: str, repo: str,
    ) -> None:
        self.app, self._auth, self.installation_id = app, auth, installation_id
        self._gh = app.new_client(auth)
        self._token_renewed = False
        self.owner, self.repo = owner, repo
        self._base = f"repos/{owner}/{repo}"

    # ------------------------------------------------------------ plumbing

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

    # ------------------------------------------------------------ pull-request data

    async def get_pull(self, number: int) -> PullRequest:
        """The pull request, re-read from GitHub."""
        data = await self._get(f"pulls/{number}", "get pull")
        user = data.get("user") or {}
        return PullRequest(
            owner=self.owner, repo=self.repo, number=int(data["number"]), title=str(data.get("title") or ""),
            body=str(data.get("body") or ""), author=str(user.get("login") or ""),
            author_is_bot=user.get("type") == "Bot", head_sha=str(data["head"]["sha"]),
            head_ref=str(data["head"]["ref"]), base_sha=str(data["base"]["sha"]), base_ref=str(data["base"]["ref"]),
            draft=bool(data.get("draft")), state=str(data.get("state") or "open"),
            author_association=str(data.get("author_association") or ""),
            default_branch=str(((data["base"].get("repo") or {}).get("default_branch")) or ""),
        )

    async def get_diff(self, number: int) -> RawDiff:
        """The unified diff; on 406 too_large the files API (100 per page, at most 3,000 files)."""
        try:
            text = await self._get(f"pulls/{number}", "get diff", accept=DIFF_MEDIA_TYPE)
            return RawDiff(text=str(text))
        except TooLarge:
            entries = await self._paginate(f"pulls/{number}/files", "list files", MAX_LISTED_FILES)
        pull = await self._get(f"pulls/{number}", "get pull") if len(entries) >= MAX_LISTED_FILES else None
        return RawDiff(None, tuple(entries), missing_patches(entries, pull))

    async def compare(self, base: str, head: str) -> Comparison:
        """`base...head`: status and counts (JSON), and for `ahead` the changes: the JSON's own per-file patches
        when it lists every file with its patch (one request), else the diff text (diff media type)."""
        basehead = f"compare/{quote(base)}...{quote(head)}"
        data = await self._get(basehead, "compare")
        status, ahead, behind = str(data["status"]), int(data["ahead_by"]), int(data["behind_by"])
        if status != "ahead":
            return Comparison(status, ahead, behind, None)
        files = list(data.get("files") or [])
        if files and len(files) < MAX_COMPARE_FILES and all("patch" in f for f in files):
            return Comparison(status, ahead, behind, None, tuple(files))
        try:
            text = await self._get(basehead, "compare diff", accept=DIFF_MEDIA_TYPE)
            return Comparison(status, ahead, behind, str(text))
        except TooLarge:
            notes = missing_patches(files, None)
            if len(files) >= MAX_COMPARE_FILES:
                notes += (NotReviewed("*", f"GitHub lists at most {MAX_COMPARE_FILES} files of a comparison"),)
            return Comparison(status, ahead, behind, None, tuple(files), notes)

    async def get_file(self, path: str, ref: str | None = None) -> str | None:
        """A file's text at `ref` (None: the default branch; configuration is read from the default branch, never
        the head), None when it does not exist."""
        try:
            data = await self._get(f"contents/{quote(path)}", "get file", params={"ref": ref} if ref else None)
        except NotFound:
            return None
        if not isinstance(data, dict) or data.get("type") != "file" or data.get("encoding") != "base64":
            return None
        return base64.b64decode(str(data.get("content") or "")).decode("utf-8", errors="replace")

    async def list_reviews(self, number: int) -> tuple[Review, ...]:
        """Every review of the pull request (the bot's own flagged)."""
        own = await self._own_login()
        return tuple(
            Review(int(r["id"]), login_of(r), str(r.get("state") or ""), str(r.get("body") or ""),
                   str(r.get("commit_id") or ""), login_of(r) == own)
            for r in await self._paginate(f"pulls/{number}/reviews", "list reviews")
        )

    async def list_review_comments(self, number: int) -> tuple[ReviewComment, ...]:
        """Every review comment of the pull request (for dedupe; the bot's own flagged by its bot login)."""
        own = await self._own_login()
        return tuple(review_comment_of(c, own) for c in await self._paginate(f"pulls/{number}/comments", "comments"))

    async def list_issue_comments(self, number: int) -> tuple[IssueComment, ...]:
        """The pull request's conversation comments (the bot's own flagged by App id or bot login)."""
        me = await self.app.identity()
        return tuple(
            IssueComment(int(c["id"]), str(c.get("body") or ""), login_of(c),
                         (c.get("performed_via_github_app") or {}).get("id") == me.id or login_of(c) == me.bot_login)
            for c in await self._paginate(f"issues/{number}/comments", "issue comments")
        )

    async def collaborator_permission(self, user: str) -> str:
        """`admin`, `maintain`, `write`, `triage`, `read` or `none` (unknown users: `none`)."""
        try:
            data = await self._get(f"collaborators/{quote(user, safe='')}/permission", "permission")
        except NotFound:
            return "none"
        return str(data.get("permission") or "none")

    # ------------------------------------------------------------ posting

    async def post_review(
        self,
        number: int,
        review: ReviewToPost,
        is_placeable: Callable[[InlineComment], bool] | None = None,
        max_inline: int = DEFAULT_MAX_INLINE,
    ) -> PostedReview:
        """Submit exactly one COMMENT review; comments GitHub rejects (or past `max_inline`) go to the body."""
        inline, overflow = list(review.comments[:max_inline]), tuple(review.comments[max_inline:])
        moved: list[InlineComment] = []
        try:
            return await self._submit(number, review, inline, moved, overflow)
        except Unprocessable as exc:
            _raise_if_stale(exc, review.commit_id)
        if is_placeable is not None:
            moved = [c for c in inline if not is_placeable(c)]
            inline = [c for c in inline if is_placeable(c)]
            if moved:
                try:
                    return await self._submit(number, review, inline, moved, overflow)
                except Unprocessable as exc:
                    _raise_if_stale(exc, review.commit_id)
        rejected = await self._find_rejected(number, review.commit_id, inline)
        inline = [c for c in inline if c not in rejected]
        moved += rejected
        try:
            return await self._submit(number, review, inline, moved, overflow)
        except Unprocessable:
            return await self._submit(number, review, [], moved + inline, overflow)

    async def _submit(
        self, number: int, review: ReviewToPost, inline: Sequence[InlineComment], moved: Sequence[InlineComment],
        overflow: Sequence[InlineComment],
    ) -> PostedReview:
        body = review_body(review.body, moved, overflow)
        payload = {"commit_id": review.commit_id, "event": "COMMENT", "body": body,
                   "comments": [comment_json(c) for c in inline]}
        data = await self._create_review(number, payload, body)
        return PostedReview(int(data["id"]), str(data.get("html_url") or ""), tuple(inline), tuple(moved),
                            tuple(overflow))

    async def _create_review(self, number: int, payload: dict[str, Any], body: str) -> dict[str, Any]:
        """POST the review; after a transient failure, look for it before posting again (no duplicates)."""
        policy = self.app.policy
        once = RetryPolicy(0, policy.max_wait, policy.backoff_base, policy.sleep, policy.clock)
        for attempt in range(policy.retries + 1):
            try:
                return dict(await self._write("POST", f"pulls/{number}/reviews", "post review", payload, once))
            except GitHubUnavailable:
                existing = [r for r in await self.list_reviews(number)
                            if r.is_own and r.commit_id == payload["commit_id"] and r.body == body
                            and r.state != "PENDING"]
                if existing:
                    return {"id": existing[-1].id, "html_url": ""}
                if attempt == policy.retries:
                    raise
                await policy.sleep(policy.backoff_base * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _find_rejected(self, number: int, commit_id: str, comments: list[InlineComment]) -> list[InlineComment]:
        """Bisect `comments` (known to fail together) with pending reviews that are deleted right away."""
        for stale in [r for r in await self.list_reviews(number) if r.is_own and r.state == "PENDING"]:
            await self._write("DELETE", f"pulls/{number}/reviews/{stale.id}", "delete pending review")
        rejected: list[InlineComment] = []

        async def accepted(group: Sequence[InlineComment]) -> bool:
            payload = {"commit_id": commit_id, "comments": [comment_json(c) for c in group]}
            try:
                data = await self._write("POST", f"pulls/{number}/reviews", "probe comments", payload)
            except Unprocessable:
                return False
            await self._write("DELETE", f"pulls/{number}/reviews/{data['id']}", "delete pending review")
            return True

        async def walk(group: Sequence[InlineComment], known_bad: bool) -> None:
            if not group or (not known_bad and await accepted(group)):
                return
            if len(group) == 1:
                rejected.append(group[0])
                return
            half = len(group) // 2
            await walk(group[:half], False)
            await walk(group[half:], False)

        await walk(comments, True)
        return rejected

    async def create_issue_comment(self, number: int, body: str) -> IssueComment:
        """Add a conversation comment to the pull request."""
        data = await self._write("POST", f"issues/{number}/comments", "create comment", {"body": body})
        return IssueComment(int(data["id"]), str(data["body"]), login_of(data), True)

    async def update_issue_comment(self, comment_id: int, body: str) -> IssueComment:
        """Edit a conversation comment in place."""
        data = await self._write("PATCH", f"issues/comments/{comment_id}", "update comment", {"body": body})
        return IssueComment(int(data["id"]), str(data["body"]), login_of(data), True)

    async def upsert_issue_comment(self, number: int, body: str, marker: str) -> IssueComment:
        """Update the bot's comment containing `marker` (hidden HTML comment), or create it."""
        for comment in await self.list_issue_comments(number):
            if comment.is_own and marker in comment.body:
                return await self.update_issue_comment(comment.id, body)
        return await self.create_issue_comment(number, body)

    async def add_reaction(self, comment_id: int, content: str, *, review_comment: bool = False) -> int:
        """React to an issue comment (or a review comment); the reaction id (for removal)."""
        kind = "pulls" if review_comment else "issues"
        data = await self._write("POST", f"{kind}/comments/{comment_id}/reactions", "react", {"content": content})
        return int(data["id"])

    async def remove_reaction(self, comment_id: int, reaction_id: int, *, review_comment: bool = False) -> None:
        """Delete one of the bot's reactions."""
        kind = "pulls" if review_comment else "issues"
        await self._write("DELETE", f"{kind}/comments/{comment_id}/reactions/{reaction_id}", "unreact")

    async def reply_to_review_comment(self, number: int, comment_id: int, body: str) -> ReviewComment:
        """Reply in the thread of review comment `comment_id` (a reply's id is mapped to its thread's root,
        since GitHub documents that replies to replies are not supported)."""
        try:
            data = await self._write("POST", f"pulls/{number}/comments/{comment_id}/replies", "reply", {"body": body})
        except Unprocessable:
            root = (await self._get(f"pulls/comments/{comment_id}", "get review comment")).get("in_reply_to_id")
            if not root:
                raise
            data = await self._write("POST", f"pulls/{number}/comments/{root}/replies", "reply", {"body": body})
        return review_comment_of(data, login_of(data))

    async def create_check_run(
        self, head_sha: str, name: str, *, status: str = "in_progress", conclusion: str | None = None,
        title: str = "", summary: str = "", details_url: str | None = None,
    ) -> CheckRun:
        """Create a check run on `head_sha` (works for fork PRs: keyed by sha, not by pull request)."""
        payload: dict[str, Any] = {"name": name, "head_sha": head_sha, "status": status}
        if conclusion is not None:
            payload.update(status="completed", conclusion=conclusion)
        if title or summary:
            payload["output"] = {"title": title or name, "summary": summary or title}
        if details_url:
            payload["details_url"] = details_url
        return check_run_of(await self._write("POST", "check-runs", "create check run", payload))

    async def update_check_run(
        self, run_id: int, *, status: str | None = None, conclusion: str | None = None, title: str = "",
        summary: str = "",
    ) -> CheckRun:
        """Update a check run (a conclusion completes it)."""
        payload: dict[str, Any] = {}
        if status is not None:
            payload["status"] = status
        if conclusion is not None:
            payload.update(status="completed", conclusion=conclusion)
        if title or summary:
            payload["output"] = {"title": title or "Review", "summary": summary or title}
        return check_run_of(await self._write("PATCH", f"check-runs/{run_id}", "update check run", payload))

    # ------------------------------------------------------------ GraphQL

    async def review_threads(self, number: int) -> tuple[ReviewThread, ...]:
        """The pull request's review threads (first 100), via GraphQL."""
        data = await self._graphql(THREADS_QUERY, {"owner": self.owner, "repo": self.repo, "number": number})
        pull = (data.get("repository") or {}).get("pullRequest") or {}
        return tuple(
            ReviewThread(str(n["id"]), bool(n["isResolved"]), bool(n["viewerCanResolve"]),
                         tuple(int(c["databaseId"]) for c in n["comments"]["nodes"]))
            for n in (pull.get("reviewThreads") or {}).get("nodes") or []
        )

    async def resolve_review_thread(self, number: int, comment_id: int) -> bool:
        """Resolve the thread started by `comment_id` when the bot may; True when it did."""
        for thread in await self.review_threads(number):
            if thread.comment_ids[:1] == (comment_id,):
                if thread.is_resolved or not thread.viewer_can_resolve:
                    return False
                await self._space()
                await self._graphql(RESOLVE_MUTATION, {"threadId": thread.id})
                return True
        return False

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
                signal = classify(_failure(exc), time.time())
                raise signal from None

        return await self.app.policy.run(attempt, "graphql")


THREADS_QUERY = """
query($owner: String!, $repo: String!, $number: Int!) {
  repository(owner: $owner, name: $repo) {
    pullRequest(number: $number) {
      reviewThreads(first: 100) {
        nodes { id isResolved viewerCanResolve comments(first: 100) { nodes { databaseId } } }
      }
    }
  }
}
"""
RESOLVE_MUTATION = """
mutation($threadId: ID!) { resolveReviewThread(input: {threadId: $threadId}) { thread { id isResolved } } }
"""


def _raise_if_stale(exc: Unprocessable, commit_id: str) -> None:
    """A 422 about the commit means the head moved: the newer job reviews the new head."""
    if any("commit" in str(e).lower() for e in exc.errors) or "commit" in str(exc).lower():
        raise StaleHead(f"GitHub rejected commit {commit_id[:12]}: {exc.errors or exc}") from exc
