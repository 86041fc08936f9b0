"""A strict, stateful fake of the GitHub REST/GraphQL API, served over loopback by `serve_on_loopback`.

Behaviour follows GitHub's documentation (docs.github.com/rest, cited per handler) and known github.com
behaviour where the docs are silent (noted as "known behaviour"). Where the fake is deliberately stricter
than GitHub, the handler's docstring says so.

Test-facing API (fixture `fake_github` yields a reset `FakeGitHub` with `.url` set, the App id 1 / slug
"senior-review" registered with the `rsa_private_key_pem` key and installation 100 on octo/repo and
octo/other; `github_settings` / `github_settings_ghes` give matching `Settings`, the latter with the
GHES-style base URL `…/api/v3`; `fake_github_server` is the session-wide server):

    app = fake.create_app(private_key_pem, app_id=1, slug="senior-review", name="Senior Review")  # FakeApp
    fake.add_installation(installation_id, "octo", ["repo"], permissions=None)  # None: all App permissions
    fake.add_repo("octo", "repo", default_branch="main", private=False)        # add_installation adds repos
    fake.set_file("octo", "repo", ref, path, content)                          # contents API, ref literal
    pr = fake.add_pull("octo", "repo", diff_text, number=1, head_sha=..., base_sha=..., head_ref=...,
                       base_ref="main", title=..., body=..., author="alice", author_type="User",
                       draft=False, state="open", fork=False)                   # -> FakePull (.files parsed)
    fake.push(pr, new_diff, new_head_sha)                                      # head moves
    fake.add_review_reply(root_id, login, body, user_type="User")              # a person replies in a thread
    fake.react(comment_id, login, content)                                     # a person reacts to a review comment
    fake.set_compare("octo", "repo", base, head, status="ahead", diff_text=..., ahead_by=1, behind_by=0)
    fake.set_permission("octo", "repo", "alice", "write")
    fake.add_manifest_code(code, result=None, expires_in=3600)                  # -> the conversion result
    fake.inject(method, path_regex, status=None, times=1, retry_after=None, delay=0, drop=False,
                drop_after_handling=False, message=None, headers=None,
                body_regex=None, answer=None)                                  # next N matching requests
    helpers: fail_next(m, rx, status=502, times), secondary_rate_limit(m, rx, retry_after), too_many_requests,
             primary_rate_limit(m, rx, reset_in), slow(m, rx, seconds), drop_connection(m, rx,
             after_handling=False), not_accessible(m, rx, permission="checks=write")
    state: fake.requests (list[Recorded(method, path, query, headers, json, raw_path)]),
           fake.requests_to(method, path_regex), fake.reviews(owner, repo, n), fake.pulls, fake.review_comments,
           fake.issue_comments, fake.check_runs, fake.reactions, fake.tokens, fake.resolved_threads,
           fake.pull_json(pr), fake.reset(); parse_unified_diff(text) -> list[FakeFile]
    knobs: fake.token_ttl (s, default 3600), fake.max_patch_chars (files API omits longer patches),
           fake.max_blob_text (GraphQL blob text longer than this is truncated),
           fake.viewer_can_resolve, fake.rate_limit_remaining

The App's webhook deliveries, installations and open-pull listings live in `tests/fakes/github_reconcile.py`
(fixture `github_deliveries`).

Review threads, their comments and reactions and `resolveReviewThread` are GraphQL, in
`tests/fakes/github_graphql.py`.

Paths: every route is also served under `/api/v3` (GHES REST) and GraphQL at `/graphql` and `/api/graphql`.
Recorded paths are normalised (without `/api/v3`); `Recorded.raw_path` keeps the original.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.github_graphql import answer_threads
from tests.fakes.github_objects import MAX_BLOB_TEXT, answer_repository_objects

DOCS = "https://docs.github.com/rest"
APP_PERMISSIONS_DEFAULT = {
    "pull_requests": "write",
    "contents": "read",
    "issues": "write",
    "checks": "write",
    "metadata": "read",
}
REACTIONS = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}
MAX_DIFF_FILES = 300
MAX_DIFF_LINES = 20_000
MAX_FILES_LISTED = 3_000
MAX_BODY = 65_536
HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class DroppedConnection(Exception):
    """Raised inside the ASGI app to make uvicorn abort the connection mid-response."""


# ---------------------------------------------------------------- diff parsing (independent of bot.diff)


@dataclass
class FakeFile:
    """One file of a unified diff, as GitHub's files API describes it, plus its commentable lines."""

    filename: str
    previous_filename: str | None
    status: str
    binary: bool
    additions: int
    deletions: int
    patch: str | None
    block: str
    right: set[int] = field(default_factory=set)
    left: set[int] = field(default_factory=set)
    hunks: list[tuple[set[int], set[int]]] = field(default_factory=list)


def parse_unified_diff(text: str) -> list[FakeFile]:
    """Split `git diff` output into files (RIGHT = added/context by new line, LEFT = removed by old line)."""
    blocks: list[list[str]] = []
    lines = text.split("\n")  # git and GitHub split on LF only: a CR stays part of its line
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        if line.startswith("diff --git "):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    return [_parse_block(block) for block in blocks]


def _parse_block(lines: list[str]) -> FakeFile:
    head = lines[0][len("diff --git ") :]
    old_name, new_name = _names_from_header(head)
    status, binary = "modified", False
    index = 1
    while index < len(lines) and not lines[index].startswith("@@"):
        line = lines[index]
        if line.startswith("new file mode"):
            status = "added"
        elif line.startswith("deleted file mode"):
            status = "removed"
        elif line.startswith("rename from "):
            old_name, status = _unquote(line[len("rename from ") :]), "renamed"
        elif line.startswith("rename to "):
            new_name = _unquote(line[len("rename to ") :])
        elif line.startswith("copy from "):
            old_name, status = _unquote(line[len("copy from ") :]), "copied"
        elif line.startswith("copy to "):
            new_name = _unquote(line[len("copy to ") :])
        elif line.startswith("Binary files ") or line.startswith("GIT binary patch"):
            binary = True
        elif line.startswith("--- ") and line[4:] != "/dev/null":
            old_name = _unquote(line[4:].removesuffix("\t")).removeprefix("a/")
        elif line.startswith("+++ ") and line[4:] != "/dev/null":
            new_name = _unquote(line[4:].removesuffix("\t")).removeprefix("b/")
        index += 1
    body = lines[index:]
    file = FakeFile(
        filename=new_name,
        previous_filename=old_name if status in ("renamed", "copied") else None,
        status=status,
        binary=binary,
        additions=0,
        deletions=0,
        patch="\n".join(body) if body and not binary else None,
        block="\n".join(lines) + "\n",
    )
    _collect_lines(file, body)
    return file


def _names_from_header(head: str) -> tuple[str, str]:
    """Names from `diff --git a/X b/Y` (git C-quotes names with special characters; spaces stay bare)."""
    if head.startswith('"') or head.endswith('"'):
        tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\S+', head)
        if len(tokens) == 2:
            return _unquote(tokens[0]).removeprefix("a/"), _unquote(tokens[1]).removeprefix("b/")
    if head.startswith("a/") and " b/" in head:
        half = (len(head) - 1) // 2
        if head[2:half] == head[half + 3 :]:  # same name on both sides, even with spaces in it
            return head[2:half], head[2:half]
        old, new = head[2:].split(" b/", 1)
        return old, new
    return head, head


def _unquote(name: str) -> str:
    """Undo git's C-style quoting (core.quotePath): `"a/t\\303\\251st"` → `a/tést`."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    escapes = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
    out, body, index = bytearray(), name[1:-1], 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            if body[index + 1 : index + 4].isdigit() and len(body[index + 1 : index + 4]) == 3:
                out.append(int(body[index + 1 : index + 4], 8))
                index += 4
                continue
            out.append(escapes.get(body[index + 1], ord(body[index + 1])))
            index += 2
            continue
        out += char.encode()
        index += 1
    return out.decode("utf-8", errors="replace")


def _collect_lines(file: FakeFile, body: list[str]) -> None:
    old_no = new_no = 0
    for line in body:
        match = HUNK_RE.match(line)
        if match:
            old_no, new_no = int(match.group(1)), int(match.group(3))
            file.hunks.append((set(), set()))
            continue
        if not file.hunks or line.startswith("\\"):
            continue
        right, left = file.hunks[-1]
        if line.startswith("+"):
            right.add(new_no)
            file.additions += 1
            new_no += 1
        elif line.startswith("-"):
            left.add(old_no)
            file.deletions += 1
            old_no += 1
        else:
            right.add(new_no)
            old_no += 1
            new_no += 1
    for right, left in file.hunks:
        file.right |= right
        file.left |= left


# ---------------------------------------------------------------- state


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    raw_path: str


@dataclass
class Fault:
    """An injected fault for the next `times` requests matching `method` and `pattern` (re.search on path)."""

    method: str
    pattern: str
    times: int = 1
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    drop_after_handling: bool = False
    body_regex: str | None = None  # only requests whose raw body matches (re.search), e.g. one GraphQL mutation


@dataclass
class FakeApp:
    """The GitHub App the fake knows: id, slug, name and the public key verifying its JWTs."""

    id: int
    slug: str
    name: str
    public_key: Any
    owner: str = "octo"

    @property
    def bot_login(self) -> str:
        """The App's bot account login, as GitHub names it."""
        return f"{self.slug}[bot]"


@dataclass
class FakeInstallation:
    """An installation: which repositories (names, under `owner`) and permissions it grants."""

    id: int
    owner: str
    repos: list[str]
    permissions: dict[str, str]


@dataclass
class FakeToken:
    """An installation access token with its scope."""

    token: str
    installation_id: int
    repos: list[str]
    permissions: dict[str, str]
    expires_at: float


@dataclass
class FakeRepo:
    """A repository."""

    owner: str
    name: str
    id: int
    default_branch: str = "main"
    private: bool = False


@dataclass
class FakePull:
    """A pull request built from a base/head pair and its unified diff."""

    owner: str
    repo: str
    number: int
    diff_text: str
    head_sha: str
    base_sha: str
    head_ref: str
    base_ref: str
    title: str
    body: str
    author: str
    author_type: str
    draft: bool
    state: str
    fork: bool
    id: int
    files: list[FakeFile]
    reviews: list[dict[str, Any]] = field(default_factory=list)
    past_heads: list[str] = field(default_factory=list)
    # GitHub's `author_association` of the PR (docs: webhooks, pull_request object): OWNER, MEMBER, COLLABORATOR,
    # CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, FIRST_TIMER, NONE. Tests default to an organization member.
    author_association: str = "MEMBER"


@dataclass
class FakeCompare:
    """A compare result for `base...head`."""

    status: str
    diff_text: str
    ahead_by: int
    behind_by: int
    files: list[FakeFile]


class FakeGitHub:
    """The fake's state and ASGI entry point (see the module docstring for the test API)."""

    def __init__(self) -> None:
        self.url = ""
        self._lock = threading.RLock()
        self.reset()

    # ------------------------------------------------------------ test API

    def reset(self) -> None:
        """Forget everything: apps, repos, pulls, tokens, recorded requests, faults, knobs."""
        self.apps: dict[int, FakeApp] = {}
        self.installations: dict[int, FakeInstallation] = {}
        self.repos: dict[tuple[str, str], FakeRepo] = {}
        self.files: dict[tuple[str, str, str, str], bytes] = {}
        self.pulls: dict[tuple[str, str, int], FakePull] = {}
        self.compares: dict[tuple[str, str, str, str], FakeCompare] = {}
        self.permissions: dict[tuple[str, str, str], str] = {}
        self.tokens: dict[str, FakeToken] = {}
        self.issue_comments: dict[int, dict[str, Any]] = {}
        self.review_comments: dict[int, dict[str, Any]] = {}
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.reactions: dict[int, dict[str, Any]] = {}
        self.resolved_threads: set[str] = set()
        self.manifest_codes: dict[str, tuple[dict[str, Any], float]] = {}
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.token_ttl = 3600.0
        self.max_patch_chars = 100_000
        self.max_blob_text = MAX_BLOB_TEXT
        self.viewer_can_resolve = True
        self.rate_limit_remaining = 5000
        self._next_id = 1000
        # Routes other fake modules add (tests/fakes/github_reconcile.py), matched after the ones below.
        self.extra_routes: list[tuple[str, str, Callable[..., Response]]] = []

    def create_app(
        self, private_key_pem: str, app_id: int = 1, slug: str = "senior-review", name: str = "Senior Review"
    ) -> FakeApp:
        """Register the App; JWTs must be RS256-signed by `private_key_pem`'s key with iss = app_id."""
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        app = FakeApp(id=app_id, slug=slug, name=name, public_key=key.public_key())
        self.apps[app_id] = app
        return app

    def add_repo(self, owner: str, name: str, default_branch: str = "main", private: bool = False) -> FakeRepo:
        """Create (or return) a repository."""
        key = (owner, name)
        if key not in self.repos:
            self.repos[key] = FakeRepo(owner, name, self._id(), default_branch, private)
        return self.repos[key]

    def add_installation(
        self, installation_id: int, owner: str, repos: list[str], permissions: Mapping[str, str] | None = None
    ) -> FakeInstallation:
        """Install the App on `owner`'s `repos` (created if absent) with `permissions` (default: all needed)."""
        for name in repos:
            self.add_repo(owner, name)
        perms = dict(permissions if permissions is not None else APP_PERMISSIONS_DEFAULT)
        inst = FakeInstallation(installation_id, owner, list(repos), perms)
        self.installations[installation_id] = inst
        return inst

    def set_file(self, owner: str, repo: str, ref: str, path: str, content: bytes | str) -> None:
        """Make `path` exist at `ref` (a branch name or sha, matched literally) for the contents API."""
        self.files[(owner, repo, ref, path)] = content.encode() if isinstance(content, str) else content

    def add_pull(
        self,
        owner: str,
        repo: str,
        diff_text: str,
        *,
        number: int = 1,
        head_sha: str = "h" * 40,
        base_sha: str = "b" * 40,
        head_ref: str = "feature",
        base_ref: str = "main",
        title: str = "Add a feature",
        body: str = "",
        author: str = "alice",
        author_type: str = "User",
        draft: bool = False,
        state: str = "open",
        fork: bool = False,
        author_association: str = "MEMBER",
    ) -> FakePull:
        """Open pull request `number` whose diff (base...head) is `diff_text`."""
        self.add_repo(owner, repo)
        pull = FakePull(
            owner, repo, number, diff_text, head_sha, base_sha, head_ref, base_ref, title, body, author,
            author_type, draft, state, fork, self._id(), parse_unified_diff(diff_text),
            author_association=author_association,
        )
        self.pulls[(owner, repo, number)] = pull
        return pull

    def push(self, pull: FakePull, new_diff: str, new_head_sha: str) -> None:
        """Move the pull request's head to `new_head_sha` with the new overall diff."""
        pull.past_heads.append(pull.head_sha)
        pull.head_sha, pull.diff_text, pull.files = new_head_sha, new_diff, parse_unified_diff(new_diff)

    def set_compare(
        self, owner: str, repo: str, base: str, head: str, *, status: str = "ahead", diff_text: str = "",
        ahead_by: int = 1, behind_by: int = 0,
    ) -> None:
        """Define what `GET compare/{base}...{head}` answers (status: ahead|behind|diverged|identical)."""
        self.compares[(owner, repo, base, head)] = FakeCompare(
            status, diff_text, ahead_by, behind_by, parse_unified_diff(diff_text)
        )

    def set_permission(self, owner: str, repo: str, user: str, permission: str) -> None:
        """Set `user`'s repository permission (admin|maintain|write|triage|read|none)."""
        self.permissions[(owner, repo, user)] = permission

    def add_manifest_code(
        self, code: str, result: Mapping[str, Any] | None = None, expires_in: float = 3600
    ) -> dict[str, Any]:
        """Accept `code` once (within `expires_in` s) at `POST /app-manifests/{code}/conversions`."""
        default: dict[str, Any] = {
            "id": 4242, "slug": "senior-review", "node_id": "A_kwDO", "name": "Senior Review",
            "client_id": "Iv1.0123456789abcdef", "client_secret": "s" * 40,
            "webhook_secret": "w" * 32, "pem": "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n",
            "owner": _user("octo", 1, "Organization"), "html_url": "https://github.com/apps/senior-review",
            "external_url": "https://example.com", "description": "", "created_at": _now_iso(),
            "updated_at": _now_iso(), "permissions": dict(APP_PERMISSIONS_DEFAULT),
            "events": ["pull_request", "issue_comment", "pull_request_review_comment"],
        }
        default.update(result or {})
        self.manifest_codes[code] = (default, time.time() + expires_in)
        return default

    def inject(
        self,
        method: str,
        path_regex: str,
        *,
        status: int | None = None,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        drop: bool = False,
        drop_after_handling: bool = False,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        body_regex: str | None = None,
        answer: Any = None,
    ) -> Fault:
        """Fault the next `times` requests matching (method, re.search(path_regex, normalised path)) and, with
        `body_regex`, whose raw body matches it; `answer` replaces the answer's JSON (status 200 unless given),
        e.g. a GraphQL error, which GitHub sends with HTTP 200."""
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["retry-after"] = str(int(retry_after))
        body = None
        if answer is not None:
            status, body = status or 200, answer
        elif status is not None:
            body = {"message": message or _reason(status), "documentation_url": DOCS, "status": str(status)}
        fault = Fault(method.upper(), path_regex, times, status, body, hdrs, delay, drop or drop_after_handling,
                      drop_after_handling, body_regex)
        self.faults.append(fault)
        return fault

    def fail_next(self, method: str, path_regex: str, status: int = 502, times: int = 1) -> Fault:
        """Answer the next `times` matching requests with a bare 5xx."""
        return self.inject(method, path_regex, status=status, times=times)

    def secondary_rate_limit(self, method: str, path_regex: str, retry_after: float = 1, times: int = 1) -> Fault:
        """GitHub's secondary rate limit: 403 with retry-after (docs: rate-limits-for-the-rest-api)."""
        return self.inject(
            method, path_regex, status=403, times=times, retry_after=retry_after,
            message="You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        )

    def too_many_requests(self, method: str, path_regex: str, retry_after: float = 1, times: int = 1) -> Fault:
        """429 with retry-after (GitHub documents 403 or 429 for rate limits)."""
        return self.inject(method, path_regex, status=429, times=times, retry_after=retry_after)

    def primary_rate_limit(self, method: str, path_regex: str, reset_in: float = 1, times: int = 1) -> Fault:
        """Primary rate limit: 403 with x-ratelimit-remaining 0 and x-ratelimit-reset (epoch seconds)."""
        reset = str(int(time.time() + reset_in) + 1)
        return self.inject(
            method, path_regex, status=403, times=times,
            message="API rate limit exceeded for installation ID 1.",
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset},
        )

    def slow(self, method: str, path_regex: str, seconds: float, times: int = 1) -> Fault:
        """Delay the next matching answers by `seconds` (then answer normally)."""
        return self.inject(method, path_regex, delay=seconds, times=times)

    def drop_connection(self, method: str, path_regex: str, times: int = 1, after_handling: bool = False) -> Fault:
        """Abort the connection without a complete answer (httpx raises RemoteProtocolError); with
        `after_handling` the request takes effect first (e.g. the review is created, the answer lost)."""
        return self.inject(method, path_regex, drop=not after_handling, drop_after_handling=after_handling,
                           times=times)

    def not_accessible(self, method: str, path_regex: str, permission: str = "checks=write", times: int = 1) -> Fault:
        """403 "Resource not accessible by integration" with GitHub's X-Accepted-GitHub-Permissions header."""
        return self.inject(
            method, path_regex, status=403, times=times, message="Resource not accessible by integration",
            headers={"x-accepted-github-permissions": permission},
        )

    def add_review_reply(self, root_id: int, login: str, body: str, user_type: str = "User") -> dict[str, Any]:
        """`login` replies in the thread of review comment `root_id` from the web UI (a reply's `in_reply_to_id`
        is the thread's first comment); returns the stored comment (with `id`) for the webhook payload."""
        root = self.review_comments[root_id]
        pull = next(p for p in self.pulls.values() if p.number == root["_pull"])
        ctx = _Ctx("POST", "", {}, {}, None, "https://api.github.com", "")
        user = _user(login, 7000 + len(login), user_type)
        return self._store_review_comment(ctx, pull, None, {"body": body}, user, root)

    def react(self, comment_id: int, login: str, content: str) -> dict[str, Any]:
        """`login` reacts with `content` (`+1`, `-1`, ...) to review comment `comment_id` from the web UI."""
        rid = self._id()
        reaction = {"id": rid, "node_id": f"REA_{rid}", "user": _user(login, 7000 + len(login), "User"),
                    "content": content, "created_at": _now_iso(), "_on": ("review", comment_id)}
        self.reactions[rid] = reaction
        return reaction

    def requests_to(self, method: str, path_regex: str) -> list[Recorded]:
        """Recorded requests matching method and re.search(path_regex, path)."""
        return [r for r in self.requests if r.method == method.upper() and re.search(path_regex, r.path)]

    def reviews(self, owner: str, repo: str, number: int) -> list[dict[str, Any]]:
        """The pull request's reviews (submitted and pending)."""
        return self.pulls[(owner, repo, number)].reviews

    # ------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        raw_path = scope["path"]
        path = raw_path.removeprefix("/api/v3") if raw_path.startswith("/api/v3/") else raw_path
        if path == "/api/graphql":
            path = "/graphql"
        body = await request.body()
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(Recorded(request.method, path, query, headers, payload, raw_path))
            fault = self._take_fault(request.method, path, body.decode("utf-8", "replace"))
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.drop and not fault.drop_after_handling:
            await _drop(send)
            return
        if fault is not None and fault.status is not None:
            response: Response = JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        else:
            with self._lock:
                response = self._dispatch(request.method, path, query, headers, payload, request)
            if fault is not None and fault.drop_after_handling:
                await _drop(send)  # the request took effect, but the client never learns it
                return
        self._rate_headers(response, path, fault)
        await response(scope, receive, send)

    def _take_fault(self, method: str, path: str, body: str = "") -> Fault | None:
        for fault in self.faults:
            if fault.body_regex is not None and not re.search(fault.body_regex, body):
                continue
            if fault.times > 0 and fault.method == method and re.search(fault.pattern, path):
                fault.times -= 1
                return fault
        return None

    def _rate_headers(self, response: Response, path: str, fault: Fault | None) -> None:
        """x-ratelimit-* on every answer (docs: rate-limits-for-the-rest-api#checking-the-status-of-your-rate-limit)."""
        self.rate_limit_remaining = max(0, self.rate_limit_remaining - 1)
        values = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(self.rate_limit_remaining),
            "x-ratelimit-used": str(5000 - self.rate_limit_remaining),
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-resource": "graphql" if path == "/graphql" else "core",
        }
        for name, value in values.items():
            if fault is None or name not in fault.headers:
                response.headers[name] = value

    # ------------------------------------------------------------ routing and auth

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any, request: Request
    ) -> Response:
        ctx = _Ctx(method, path, query, headers, body, str(request.base_url).rstrip("/"), request.url.path)
        for route_method, pattern, handler in self._routes():
            if route_method != method:
                continue
            match = re.fullmatch(pattern, path)
            if match:
                return handler(ctx, **match.groupdict())
        return _error(404, "Not Found")

    def _routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        pull = repo + r"/pulls/(?P<number>\d+)"
        tok = self._tok
        pr_r, pr_w = ("pull_requests", "read"), ("pull_requests", "write")
        is_r, is_w = ("issues", "read"), ("issues", "write")
        return [
            ("POST", r"/app-manifests/(?P<code>[^/]+)/conversions", self._manifest_conversion),
            ("GET", r"/app", self._jwt(self._get_app)),
            ("GET", repo + r"/installation", self._jwt(self._repo_installation)),
            ("POST", r"/app/installations/(?P<inst_id>\d+)/access_tokens", self._jwt(self._access_token)),
            ("GET", pull, tok(*pr_r, self._get_pull)),
            ("GET", pull + r"/files", tok(*pr_r, self._pull_files)),
            ("GET", pull + r"/reviews", tok(*pr_r, self._list_reviews)),
            ("POST", pull + r"/reviews", tok(*pr_w, self._create_review)),
            ("DELETE", pull + r"/reviews/(?P<review_id>\d+)", tok(*pr_w, self._delete_review)),
            ("GET", pull + r"/comments", tok(*pr_r, self._list_review_comments)),
            ("POST", pull + r"/comments/(?P<cid>\d+)/replies", tok(*pr_w, self._reply)),
            ("GET", repo + r"/compare/(?P<basehead>.+)", tok("contents", "read", self._compare)),
            ("GET", repo + r"/contents/(?P<fpath>.+)", tok("contents", "read", self._contents)),
            ("GET", repo + r"/issues/(?P<number>\d+)/comments", tok(*is_r, self._list_issue_comments)),
            ("POST", repo + r"/issues/(?P<number>\d+)/comments", tok(*is_w, self._create_issue_comment)),
            ("PATCH", repo + r"/issues/comments/(?P<cid>\d+)", tok(*is_w, self._edit_issue_comment)),
            ("POST", repo + r"/issues/comments/(?P<cid>\d+)/reactions", tok(*is_w, self._react_issue)),
            ("DELETE", repo + r"/issues/comments/(?P<cid>\d+)/reactions/(?P<rid>\d+)", tok(*is_w, self._unreact_issue)),
            ("GET", repo + r"/pulls/comments/(?P<cid>\d+)", tok(*pr_r, self._get_review_comment)),
            ("GET", repo + r"/pulls/comments/(?P<cid>\d+)/reactions", tok(*pr_r, self._list_review_reactions)),
            ("POST", repo + r"/pulls/comments/(?P<cid>\d+)/reactions", tok(*pr_w, self._react_review)),
            ("DELETE", repo + r"/pulls/comments/(?P<cid>\d+)/reactions/(?P<rid>\d+)", tok(*pr_w, self._unreact_review)),
            ("GET", repo + r"/collaborators/(?P<user>[^/]+)/permission", tok("metadata", "read", self._permission)),
            ("POST", repo + r"/check-runs", tok("checks", "write", self._create_check_run)),
            ("PATCH", repo + r"/check-runs/(?P<run_id>\d+)", tok("checks", "write", self._update_check_run)),
            ("POST", r"/graphql", self._graphql_auth(self._graphql)),
            *self.extra_routes,
        ]

    def _jwt(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        """App (JWT) authentication (docs: apps/creating-github-apps/authenticating-with-a-github-app/
        generating-a-json-web-token-jwt-for-a-github-app): RS256, iss = app id, exp at most 10 min ahead."""

        def wrapped(ctx: _Ctx, **kwargs: str) -> Response:
            app_or_error = self._verify_jwt(ctx.headers.get("authorization", ""))
            if isinstance(app_or_error, Response):
                return app_or_error
            ctx.app = app_or_error
            return handler(ctx, **kwargs)

        return wrapped

    def _verify_jwt(self, authorization: str) -> FakeApp | Response:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token or token.count(".") != 2:
            return _error(401, "A JSON web token could not be decoded")
        try:
            # PyJWS checks the RS256 signature; the claims are checked here because GitHub accepts an
            # integer or string `iss` (PyJWT's claim validation insists on a string).
            unverified = json.loads(jwt.api_jws.decode_complete(token, options={"verify_signature": False})["payload"])
            app = self.apps.get(int(str(unverified.get("iss"))))
        except (jwt.PyJWTError, ValueError, TypeError):
            return _error(401, "A JSON web token could not be decoded")
        if app is None:
            return _error(401, "'Issuer' claim ('iss') must be an Integer")
        try:
            jwt.api_jws.decode_complete(token, app.public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return _error(401, "A JSON web token could not be decoded")
        iat, exp, now = unverified.get("iat"), unverified.get("exp"), time.time()
        if not isinstance(iat, int | float) or iat > now + 60:
            return _error(401, "'Issued at' claim ('iat') must be an Integer representing the time that the "
                          "assertion was issued")
        if not isinstance(exp, int | float) or exp < now - 60:
            return _error(401, "'Expiration time' claim ('exp') must be a numeric value representing the future "
                          "time at which the assertion expires")
        if exp - now > 600 + 60 or exp - iat > 600 + 60:
            return _error(401, "'Expiration time' claim ('exp') is too far in the future")
        return app

    def _tok(self, perm: str, level: str, handler: Callable[..., Response]) -> Callable[..., Response]:
        """Installation-token authentication (`token X` or `Bearer X`); 401 "Bad credentials" otherwise.

        A token scoped to other repositories gets 404 on this one (known behaviour: GitHub hides
        repositories a token cannot see). A token lacking the permission gets 403 "Resource not accessible
        by integration" with `X-Accepted-GitHub-Permissions` (docs: rest/using-the-rest-api/troubleshooting).
        """

        def wrapped(ctx: _Ctx, **kwargs: str) -> Response:
            tok = self._verify_token(ctx.headers.get("authorization", ""))
            if isinstance(tok, Response):
                return tok
            owner, repo = kwargs["owner"], kwargs["repo"]
            inst = self.installations[tok.installation_id]
            if owner != inst.owner or repo not in tok.repos or (owner, repo) not in self.repos:
                return _error(404, "Not Found")
            if not _grants(tok.permissions, perm, level) and not (
                perm == "issues" and _grants(tok.permissions, "pull_requests", level)
            ):
                return _error(403, "Resource not accessible by integration",
                              headers={"x-accepted-github-permissions": f"{perm}={level}"})
            ctx.token = tok
            return handler(ctx, **kwargs)

        return wrapped

    def _verify_token(self, authorization: str) -> FakeToken | Response:
        scheme, _, value = authorization.partition(" ")
        tok = self.tokens.get(value) if scheme.lower() in ("token", "bearer") else None
        if tok is None or tok.expires_at < time.time():
            return _error(401, "Bad credentials")
        return tok

    def _graphql_auth(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        def wrapped(ctx: _Ctx, **kwargs: str) -> Response:
            tok = self._verify_token(ctx.headers.get("authorization", ""))
            if isinstance(tok, Response):
                return tok
            ctx.token = tok
            return handler(ctx, **kwargs)

        return wrapped

    # ------------------------------------------------------------ app endpoints

    def _get_app(self, ctx: _Ctx) -> Response:
        """GET /app (docs: rest/apps/apps#get-the-authenticated-app)."""
        app = ctx.app
        assert app is not None
        return JSONResponse({
            "id": app.id, "slug": app.slug, "node_id": f"A_{app.id}", "name": app.name,
            "owner": _user(app.owner, 1, "Organization"), "description": "", "external_url": "https://example.com",
            "html_url": f"https://github.com/apps/{app.slug}", "created_at": _now_iso(), "updated_at": _now_iso(),
            "permissions": dict(APP_PERMISSIONS_DEFAULT),
            "events": ["pull_request", "issue_comment", "pull_request_review_comment"],
            "installations_count": len(self.installations),
        })

    def _repo_installation(self, ctx: _Ctx, owner: str, repo: str) -> Response:
        """GET /repos/{o}/{r}/installation (docs: rest/apps/apps#get-a-repository-installation-for-the-
        authenticated-app)."""
        for inst in self.installations.values():
            if inst.owner == owner and repo in inst.repos:
                return JSONResponse(_installation_json(inst, ctx.app))
        return _error(404, "Not Found")

    def _access_token(self, ctx: _Ctx, inst_id: str) -> Response:
        """POST /app/installations/{id}/access_tokens (docs: rest/apps/apps#create-an-installation-access-token-
        for-an-app).

        Token: `ghs_` + 36 random characters (length not part of the contract), expires in `token_ttl` s
        (GitHub: one hour). `repositories` and `permissions` narrow the token; asking for more → 422.
        """
        inst = self.installations.get(int(inst_id))
        if inst is None:
            return _error(404, "Not Found")
        body = ctx.body or {}
        repos = list(body.get("repositories") or inst.repos)
        if any(name not in inst.repos for name in repos):
            return _error(422, "There is at least one repository that does not exist or is not accessible to the "
                          "parent installation.")
        perms = dict(body.get("permissions") or inst.permissions)
        if any(not _grants(inst.permissions, name, level) for name, level in perms.items()):
            return _error(422, "The permissions requested are not granted to this installation.")
        token = "ghs_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
        expires = time.time() + self.token_ttl
        self.tokens[token] = FakeToken(token, inst.id, repos, perms, expires)
        return JSONResponse(
            {
                "token": token,
                "expires_at": datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "permissions": perms,
                "repository_selection": "selected",
                "repositories": [_repo_json(self.repos[(inst.owner, name)]) for name in repos],
            },
            status_code=201,
        )

    def _manifest_conversion(self, ctx: _Ctx, code: str) -> Response:
        """POST /app-manifests/{code}/conversions: unauthenticated, code single-use and expiring
        (docs: apps/sharing-github-apps/registering-a-github-app-from-a-manifest: codes expire after one hour)."""
        entry = self.manifest_codes.pop(code, None)
        if entry is None or entry[1] < time.time():
            return _error(404, "Not Found")
        return JSONResponse(entry[0], status_code=201)

    # ------------------------------------------------------------ pulls

    def _pull(self, owner: str, repo: str, number: str) -> FakePull | None:
        return self.pulls.get((owner, repo, int(number)))

    def _get_pull(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        """GET pulls/{n} (docs: rest/pulls/pulls#get-a-pull-request); `application/vnd.github.diff` → diff text,
        406 too_large past 300 files or 20,000 lines (docs: same page, "diff" media type limits)."""
        pull = self._pull(owner, repo, number)
        if pull is None:
            return _error(404, "Not Found")
        if "application/vnd.github.diff" in ctx.headers.get("accept", ""):
            too_large = _too_large(pull.files, pull.diff_text)
            if too_large is not None:
                return too_large
            return Response(pull.diff_text, media_type="text/plain; charset=utf-8")
        return JSONResponse(self.pull_json(pull, ctx.base))

    def pull_json(self, pull: FakePull, base: str = "https://api.github.com") -> dict[str, Any]:
        """The full pull-request object GitHub returns (fields githubkit's PullRequest model requires)."""
        repo = self.repos[(pull.owner, pull.repo)]
        api = f"{base}/repos/{pull.owner}/{pull.repo}"
        html = f"https://github.com/{pull.owner}/{pull.repo}/pull/{pull.number}"
        user = _user(pull.author, 7, pull.author_type)
        head_repo = _repo_json(repo) if not pull.fork else {**_repo_json(repo), "id": repo.id + 1, "fork": True}
        link = {"href": f"{api}/pulls/{pull.number}"}
        return {
            "url": f"{api}/pulls/{pull.number}", "id": pull.id, "node_id": f"PR_{pull.id}", "html_url": html,
            "diff_url": html + ".diff", "patch_url": html + ".patch", "issue_url": f"{api}/issues/{pull.number}",
            "commits_url": f"{api}/pulls/{pull.number}/commits",
            "review_comments_url": f"{api}/pulls/{pull.number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{pull.number}/comments", "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": pull.number, "state": pull.state, "locked": False, "title": pull.title, "user": user,
            "body": pull.body, "labels": [], "milestone": None, "active_lock_reason": None,
            "created_at": _now_iso(), "updated_at": _now_iso(), "closed_at": None, "merged_at": None,
            "merge_commit_sha": None, "assignee": None, "assignees": [], "requested_reviewers": [],
            "requested_teams": [],
            "head": {"label": f"{pull.owner}:{pull.head_ref}", "ref": pull.head_ref, "sha": pull.head_sha,
                     "user": user, "repo": head_repo},
            "base": {"label": f"{pull.owner}:{pull.base_ref}", "ref": pull.base_ref, "sha": pull.base_sha,
                     "user": _user(pull.owner, 1, "Organization"), "repo": _repo_json(repo)},
            "_links": {"self": link, "html": {"href": html}, "issue": link, "comments": link,
                       "review_comments": link, "review_comment": link, "commits": link, "statuses": link},
            "author_association": pull.author_association, "auto_merge": None, "draft": pull.draft, "merged": False,
            "mergeable": None, "rebaseable": None, "mergeable_state": "unknown", "merged_by": None,
            "comments": 0, "review_comments": 0, "maintainer_can_modify": False, "commits": 1,
            "additions": sum(f.additions for f in pull.files), "deletions": sum(f.deletions for f in pull.files),
            "changed_files": len(pull.files),
        }

    def _pull_files(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        """GET pulls/{n}/files (docs: rest/pulls/pulls#list-pull-requests-files): 30 per page by default,
        at most 100, at most 3,000 files; `patch` omitted for binary files and over `max_patch_chars`."""
        pull = self._pull(owner, repo, number)
        if pull is None:
            return _error(404, "Not Found")
        entries = [self._file_json(f, pull.head_sha, owner, repo) for f in pull.files[:MAX_FILES_LISTED]]
        return _paginate(ctx, entries)

    def _file_json(self, file: FakeFile, sha: str, owner: str, repo: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "sha": hashlib.sha1(file.block.encode()).hexdigest(),
            "filename": file.filename, "status": file.status, "additions": file.additions,
            "deletions": file.deletions, "changes": file.additions + file.deletions,
            "blob_url": f"https://github.com/{owner}/{repo}/blob/{sha}/{file.filename}",
            "raw_url": f"https://github.com/{owner}/{repo}/raw/{sha}/{file.filename}",
            "contents_url": f"https://api.github.com/repos/{owner}/{repo}/contents/{file.filename}?ref={sha}",
        }
        if file.patch is not None and len(file.patch) <= self.max_patch_chars:
            entry["patch"] = file.patch
        if file.previous_filename is not None:
            entry["previous_filename"] = file.previous_filename
        return entry

    def _compare(self, ctx: _Ctx, owner: str, repo: str, basehead: str) -> Response:
        """GET compare/{base}...{head} (docs: rest/commits/commits#compare-two-commits); JSON or diff media type.
        The JSON lists at most 300 files (docs)."""
        base, sep, head = basehead.partition("...")
        comp = self.compares.get((owner, repo, base, head)) if sep else None
        if comp is None:
            return _error(404, "Not Found")
        if "application/vnd.github.diff" in ctx.headers.get("accept", ""):
            too_large = _too_large(comp.files, comp.diff_text)
            return too_large or Response(comp.diff_text, media_type="text/plain; charset=utf-8")
        commit = {"sha": head, "commit": {"message": "change"}, "parents": [{"sha": base}]}
        return JSONResponse({
            "url": f"{ctx.base}/repos/{owner}/{repo}/compare/{basehead}", "status": comp.status,
            "ahead_by": comp.ahead_by, "behind_by": comp.behind_by, "total_commits": comp.ahead_by,
            "base_commit": {"sha": base}, "merge_base_commit": {"sha": base},
            "commits": [commit] * comp.ahead_by,
            "files": [self._file_json(f, head, owner, repo) for f in comp.files[:MAX_DIFF_FILES]],
        })

    def _contents(self, ctx: _Ctx, owner: str, repo: str, fpath: str) -> Response:
        """GET contents/{path}?ref= (docs: rest/repos/contents#get-repository-content): base64, 404 when absent."""
        ref = ctx.query.get("ref") or self.repos[(owner, repo)].default_branch
        data = self.files.get((owner, repo, ref, fpath))
        if data is None:
            return _error(404, "Not Found")
        encoded = base64.encodebytes(data).decode()  # GitHub wraps base64 at 60-76 columns, with newlines
        return JSONResponse({
            "type": "file", "encoding": "base64", "size": len(data), "name": fpath.rsplit("/", 1)[-1],
            "path": fpath, "content": encoded, "sha": hashlib.sha1(data).hexdigest(),
            "url": f"{ctx.base}/repos/{owner}/{repo}/contents/{fpath}?ref={ref}",
        })

    # ------------------------------------------------------------ reviews and review comments

    def _list_reviews(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        """GET pulls/{n}/reviews (docs: rest/pulls/reviews#list-reviews-for-a-pull-request); paginated."""
        pull = self._pull(owner, repo, number)
        if pull is None:
            return _error(404, "Not Found")
        return _paginate(ctx, list(pull.reviews))

    def _create_review(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        """POST pulls/{n}/reviews (docs: rest/pulls/reviews#create-a-review-for-a-pull-request).

        Validates every comment like github.com and rejects the WHOLE review with 422 on any bad one:
        unknown path → "Path could not be resolved"; line not commentable on its side → "Line could not be
        resolved" (RIGHT = added/context by new number, LEFT = removed by old number); start_line after line
        → "...start line must precede the end line."; ends in different hunks → "...same hunk as the line.".
        commit_id must be the current head (stricter than GitHub, which accepts older PR commits and marks
        the comments outdated): otherwise "The commitOID is not part of the pull request" (known behaviour).
        `position`-based comments are rejected (the bot uses line/side). No event → a PENDING review; only
        one pending review per user and pull request (known behaviour).
        """
        pull = self._pull(owner, repo, number)
        if pull is None:
            return _error(404, "Not Found")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        event = body.get("event")
        if event not in (None, "COMMENT", "APPROVE", "REQUEST_CHANGES"):
            return _unprocessable([f"Invalid event: {event}"])
        if len(body.get("body") or "") > MAX_BODY:
            return _unprocessable(["Body is too long (maximum is 65536 characters)"])
        if body.get("commit_id", pull.head_sha) != pull.head_sha:
            return _unprocessable(["The commitOID is not part of the pull request"])
        if event in ("COMMENT", "REQUEST_CHANGES") and not body.get("body") and not body.get("comments"):
            return _unprocessable([f"Body is required when event is {event}"])
        comments = body.get("comments") or []
        for comment in comments:
            problem = _comment_problem(pull, comment)
            if problem:
                return _unprocessable([problem])
        bot = self._token_user(ctx)
        if event is None and any(r["state"] == "PENDING" and r["user"]["login"] == bot["login"] for r in pull.reviews):
            return _unprocessable(["User can only have one pending review per pull request"])
        review_id = self._id()
        state = {"COMMENT": "COMMENTED", "APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}.get(
            event or "", "PENDING"
        )
        review = {
            "id": review_id, "node_id": f"PRR_{review_id}", "user": bot, "body": body.get("body") or "",
            "state": state, "commit_id": pull.head_sha, "author_association": "NONE",
            "html_url": f"https://github.com/{owner}/{repo}/pull/{number}#pullrequestreview-{review_id}",
            "pull_request_url": f"{ctx.base}/repos/{owner}/{repo}/pulls/{number}",
            "_links": {"html": {"href": "https://github.com"}, "pull_request": {"href": "https://github.com"}},
            "submitted_at": _now_iso() if state != "PENDING" else None,
        }
        pull.reviews.append(review)
        for comment in comments:
            self._store_review_comment(ctx, pull, review_id, comment, bot, None, pending=state == "PENDING")
        return JSONResponse(review)

    def _delete_review(self, ctx: _Ctx, owner: str, repo: str, number: str, review_id: str) -> Response:
        """DELETE pulls/{n}/reviews/{id}: only pending reviews (docs: rest/pulls/reviews#delete-a-pending-review)."""
        pull = self._pull(owner, repo, number)
        review = next((r for r in pull.reviews if r["id"] == int(review_id)), None) if pull else None
        if pull is None or review is None:
            return _error(404, "Not Found")
        if review["state"] != "PENDING":
            return _unprocessable(["Can not delete a non-pending pull request review"])
        pull.reviews.remove(review)
        for cid in [c for c, v in self.review_comments.items() if v["pull_request_review_id"] == review["id"]]:
            del self.review_comments[cid]
        return JSONResponse(review)

    def _store_review_comment(
        self, ctx: _Ctx, pull: FakePull, review_id: int | None, comment: dict[str, Any], user: dict[str, Any],
        reply_to: dict[str, Any] | None, pending: bool = False,
    ) -> dict[str, Any]:
        cid = self._id()
        base = reply_to or comment
        api = f"{ctx.base}/repos/{pull.owner}/{pull.repo}"
        stored = {
            "url": f"{api}/pulls/comments/{cid}", "id": cid, "node_id": f"PRRC_{cid}",
            "pull_request_review_id": review_id, "diff_hunk": "@@", "path": base["path"],
            "position": None, "original_position": None, "commit_id": pull.head_sha,
            "original_commit_id": pull.head_sha, "in_reply_to_id": reply_to["id"] if reply_to else None,
            "user": user, "body": comment["body"], "created_at": _now_iso(), "updated_at": _now_iso(),
            "html_url": f"https://github.com/{pull.owner}/{pull.repo}/pull/{pull.number}#discussion_r{cid}",
            "pull_request_url": f"{api}/pulls/{pull.number}", "author_association": "NONE",
            "_links": {"self": {"href": f"{api}/pulls/comments/{cid}"}, "html": {"href": "https://github.com"},
                       "pull_request": {"href": f"{api}/pulls/{pull.number}"}},
            "start_line": base.get("start_line"), "original_start_line": base.get("start_line"),
            "start_side": base.get("start_side") if base.get("start_line") else None,
            "line": base.get("line"), "original_line": base.get("line"), "side": base.get("side") or "RIGHT",
            "subject_type": "line", "_pull": pull.number, "_pending": pending,
        }
        self.review_comments[cid] = stored
        return stored

    def _list_review_comments(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        """GET pulls/{n}/comments (docs: rest/pulls/comments#list-review-comments-on-a-pull-request); paginated,
        pending reviews' comments excluded (known behaviour: only their author sees them, in the review)."""
        pull = self._pull(owner, repo, number)
        if pull is None:
            return _error(404, "Not Found")
        items = [self._review_comment_json(c) for c in self.review_comments.values()
                 if c["_pull"] == pull.number and not c["_pending"]]
        return _paginate(ctx, items)

    def _review_comment_json(self, comment: dict[str, Any]) -> dict[str, Any]:
        """A review comment with its `reactions` rollup: `total_count` and a count per content, as GitHub's review
        comment objects carry it (docs: rest/pulls/comments, the `reaction-rollup` schema)."""
        counts = {content: 0 for content in sorted(REACTIONS)}
        for reaction in self.reactions.values():
            if reaction["_on"] == ("review", comment["id"]):
                counts[reaction["content"]] += 1
        rollup = {"url": f"{comment['url']}/reactions", "total_count": sum(counts.values()), **counts}
        return {**_public(comment), "reactions": rollup}

    def _get_review_comment(self, ctx: _Ctx, owner: str, repo: str, cid: str) -> Response:
        """GET pulls/comments/{id} (docs: rest/pulls/comments#get-a-review-comment-for-a-pull-request)."""
        comment = self.review_comments.get(int(cid))
        pull = self.pulls.get((owner, repo, comment["_pull"])) if comment else None
        if comment is None or pull is None or comment["_pending"]:
            return _error(404, "Not Found")
        return JSONResponse(self._review_comment_json(comment))

    def _reply(self, ctx: _Ctx, owner: str, repo: str, number: str, cid: str) -> Response:
        """POST pulls/{n}/comments/{id}/replies (docs: rest/pulls/comments#create-a-reply-for-a-review-comment):
        replies to replies are not supported → 422 (stricter than docs' wording; the bot replies to roots)."""
        pull = self._pull(owner, repo, number)
        target = self.review_comments.get(int(cid))
        if pull is None or target is None or target["_pull"] != pull.number:
            return _error(404, "Not Found")
        if target["in_reply_to_id"] is not None:
            return _unprocessable(["Replies to replies are not supported"])
        body = (ctx.body or {}).get("body") or ""
        if not body or len(body) > MAX_BODY:
            return _unprocessable(["Body is invalid"])
        stored = self._store_review_comment(ctx, pull, None, {"body": body}, self._token_user(ctx), target)
        return JSONResponse(self._review_comment_json(stored), status_code=201)

    # ------------------------------------------------------------ issue comments and reactions

    def _list_issue_comments(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        """GET issues/{n}/comments (docs: rest/issues/comments#list-issue-comments); paginated."""
        items = [_public(c) for c in self.issue_comments.values() if c["_key"] == (owner, repo, int(number))]
        return _paginate(ctx, items)

    def _create_issue_comment(self, ctx: _Ctx, owner: str, repo: str, number: str) -> Response:
        """POST issues/{n}/comments (docs: rest/issues/comments#create-an-issue-comment); body ≤ 65,536."""
        if (owner, repo, int(number)) not in self.pulls:
            return _error(404, "Not Found")
        body = (ctx.body or {}).get("body") or ""
        if not body or len(body) > MAX_BODY:
            return _unprocessable(["Body is too long (maximum is 65536 characters)" if body else "Body is missing"])
        cid = self._id()
        api = f"{ctx.base}/repos/{owner}/{repo}"
        app = self._token_app(ctx)
        comment = {
            "id": cid, "node_id": f"IC_{cid}", "url": f"{api}/issues/comments/{cid}",
            "html_url": f"https://github.com/{owner}/{repo}/pull/{number}#issuecomment-{cid}", "body": body,
            "user": self._token_user(ctx), "created_at": _now_iso(), "updated_at": _now_iso(),
            "issue_url": f"{api}/issues/{number}", "author_association": "NONE",
            "performed_via_github_app": {"id": app.id, "slug": app.slug} if app else None,
            "_key": (owner, repo, int(number)),
        }
        self.issue_comments[cid] = comment
        return JSONResponse(_public(comment), status_code=201)

    def _edit_issue_comment(self, ctx: _Ctx, owner: str, repo: str, cid: str) -> Response:
        """PATCH issues/comments/{id} (docs: rest/issues/comments#update-an-issue-comment)."""
        comment = self.issue_comments.get(int(cid))
        if comment is None or comment["_key"][:2] != (owner, repo):
            return _error(404, "Not Found")
        body = (ctx.body or {}).get("body") or ""
        if not body or len(body) > MAX_BODY:
            return _unprocessable(["Body is invalid"])
        comment["body"], comment["updated_at"] = body, _now_iso()
        return JSONResponse(_public(comment))

    def _react(self, ctx: _Ctx, kind: str, comment: dict[str, Any] | None) -> Response:
        """Create a reaction (docs: rest/reactions/reactions): 201 new, 200 when it already exists."""
        if comment is None:
            return _error(404, "Not Found")
        content = (ctx.body or {}).get("content")
        if content not in REACTIONS:
            return _unprocessable(["content is not included in the list"])
        user = self._token_user(ctx)
        for reaction in self.reactions.values():
            if (reaction["_on"] == (kind, comment["id"]) and reaction["content"] == content
                    and reaction["user"]["login"] == user["login"]):
                return JSONResponse(_public(reaction), status_code=200)
        rid = self._id()
        reaction = {"id": rid, "node_id": f"REA_{rid}", "user": user, "content": content,
                    "created_at": _now_iso(), "_on": (kind, comment["id"])}
        self.reactions[rid] = reaction
        return JSONResponse(_public(reaction), status_code=201)

    def _unreact(self, kind: str, cid: str, rid: str) -> Response:
        reaction = self.reactions.get(int(rid))
        if reaction is None or reaction["_on"] != (kind, int(cid)):
            return _error(404, "Not Found")
        del self.reactions[int(rid)]
        return Response(status_code=204)

    def _react_issue(self, ctx: _Ctx, owner: str, repo: str, cid: str) -> Response:
        return self._react(ctx, "issue", self.issue_comments.get(int(cid)))

    def _unreact_issue(self, ctx: _Ctx, owner: str, repo: str, cid: str, rid: str) -> Response:
        return self._unreact("issue", cid, rid)

    def _list_review_reactions(self, ctx: _Ctx, owner: str, repo: str, cid: str) -> Response:
        """GET pulls/comments/{id}/reactions (docs: rest/reactions/reactions#list-reactions-for-a-pull-request-
        review-comment): paginated, `?content=` filters by one reaction type (an unknown one is 422)."""
        comment = self.review_comments.get(int(cid))
        if comment is None or comment["_pending"] or (owner, repo) != self._comment_repo(comment):
            return _error(404, "Not Found")
        content = ctx.query.get("content")
        if content is not None and content not in REACTIONS:
            return _unprocessable(["content is not included in the list"])
        items = [_public(r) for r in self.reactions.values()
                 if r["_on"] == ("review", comment["id"]) and content in (None, r["content"])]
        return _paginate(ctx, items)

    def _comment_repo(self, comment: dict[str, Any]) -> tuple[str, str]:
        pull = next(p for p in self.pulls.values() if p.number == comment["_pull"])
        return pull.owner, pull.repo

    def _react_review(self, ctx: _Ctx, owner: str, repo: str, cid: str) -> Response:
        return self._react(ctx, "review", self.review_comments.get(int(cid)))

    def _unreact_review(self, ctx: _Ctx, owner: str, repo: str, cid: str, rid: str) -> Response:
        return self._unreact("review", cid, rid)

    # ------------------------------------------------------------ collaborators, checks, graphql

    def _permission(self, ctx: _Ctx, owner: str, repo: str, user: str) -> Response:
        """GET collaborators/{user}/permission (docs: rest/collaborators/collaborators#get-repository-
        permissions-for-a-user); users the test did not set answer "none"."""
        permission = self.permissions.get((owner, repo, user), "none")
        return JSONResponse({"permission": permission, "role_name": permission, "user": _user(user, 9, "User")})

    def _create_check_run(self, ctx: _Ctx, owner: str, repo: str) -> Response:
        """POST check-runs (docs: rest/checks/runs#create-a-check-run): name and head_sha required;
        `pull_requests` lists same-repository PRs at that head only (forks: empty, known behaviour)."""
        body = ctx.body or {}
        if not body.get("name") or not body.get("head_sha"):
            return _unprocessable(["name and head_sha are required"])
        run_id = self._id()
        run = {"id": run_id, "node_id": f"CR_{run_id}", "head_sha": body["head_sha"], "name": body["name"],
               "status": body.get("status", "queued"), "conclusion": body.get("conclusion"),
               "output": body.get("output") or {}, "details_url": body.get("details_url"),
               "external_id": body.get("external_id"), "started_at": body.get("started_at"),
               "completed_at": body.get("completed_at"),
               "html_url": f"https://github.com/{owner}/{repo}/runs/{run_id}",
               "pull_requests": [
                   {"number": p.number, "id": p.id} for p in self.pulls.values()
                   if (p.owner, p.repo) == (owner, repo) and p.head_sha == body["head_sha"] and not p.fork
               ], "_repo": (owner, repo)}
        if run["conclusion"] is not None:
            run["status"] = "completed"
        self.check_runs[run_id] = run
        return JSONResponse(_public(run), status_code=201)

    def _update_check_run(self, ctx: _Ctx, owner: str, repo: str, run_id: str) -> Response:
        """PATCH check-runs/{id} (docs: rest/checks/runs#update-a-check-run); a conclusion completes it."""
        run = self.check_runs.get(int(run_id))
        if run is None or run["_repo"] != (owner, repo):
            return _error(404, "Not Found")
        body = ctx.body or {}
        for key in ("name", "status", "conclusion", "output", "details_url", "completed_at"):
            if key in body:
                run[key] = body[key]
        if body.get("conclusion"):
            run["status"] = "completed"
        return JSONResponse(_public(run))

    def _graphql(self, ctx: _Ctx) -> Response:
        """POST /graphql: review threads, their comments and reactions, and `resolveReviewThread`
        (tests/fakes/github_graphql.py), and `repository { object(expression:) }` reads of files and directories
        (tests/fakes/github_objects.py). GraphQL answers errors with HTTP 200 (docs: graphql/guides/
        forming-calls-with-graphql)."""
        body = ctx.body if isinstance(ctx.body, dict) else {}
        answered = answer_threads(self, ctx.token, body)
        if answered is not None:
            return JSONResponse(answered)
        query, variables = str(body.get("query", "")), body.get("variables") or {}
        if "object(" in query:
            tok = ctx.token
            visible = {(self.installations[tok.installation_id].owner, r) for r in tok.repos} if tok else set()
            return JSONResponse(answer_repository_objects(query, variables, self.files, visible, self.max_blob_text))
        return JSONResponse({"errors": [{"message": "This fake only knows reviewThreads, resolveReviewThread and "
                                                    "repository objects"}]})

    # ------------------------------------------------------------ helpers

    def _token_app(self, ctx: _Ctx) -> FakeApp | None:
        return next(iter(self.apps.values()), None) if ctx.token else None

    def _token_user(self, ctx: _Ctx) -> dict[str, Any]:
        app = self._token_app(ctx)
        return _user(app.bot_login if app else "ghost", 41898282 + (app.id if app else 0), "Bot")

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id


@dataclass
class _Ctx:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    base: str
    url_path: str
    app: FakeApp | None = None
    token: FakeToken | None = None


def _comment_problem(pull: FakePull, comment: Any) -> str | None:
    """What GitHub would say about one review comment, or None when it is placeable."""
    if not isinstance(comment, dict) or not comment.get("body"):
        return "Body can't be blank"
    if "position" in comment and "line" not in comment:
        return "position-based comments are not supported by this fake; use line/side"
    file = next((f for f in pull.files if f.filename == comment.get("path")), None)
    if file is None:
        return "Path could not be resolved"
    line, side = comment.get("line"), comment.get("side", "RIGHT")
    if not isinstance(line, int) or side not in ("RIGHT", "LEFT"):
        return "Line could not be resolved"
    if line not in (file.right if side == "RIGHT" else file.left):
        return "Line could not be resolved"
    start = comment.get("start_line")
    if start is None:
        return None
    start_side = comment.get("start_side", side)
    if not isinstance(start, int) or start not in (file.right if start_side == "RIGHT" else file.left):
        return "Pull request review thread start line must be part of the diff"
    if start_side == side and start >= line:
        return "Pull request review thread start line must precede the end line."
    end_hunk = _hunk_index(file, line, side)
    if _hunk_index(file, start, start_side) != end_hunk:
        return "Pull request review thread start line must be part of the same hunk as the line."
    return None


def _hunk_index(file: FakeFile, line: int, side: str) -> int:
    for index, (right, left) in enumerate(file.hunks):
        if line in (right if side == "RIGHT" else left):
            return index
    return -1


def _too_large(files: list[FakeFile], diff_text: str) -> Response | None:
    """GitHub's 406 for diffs over 300 files or 20,000 lines (known behaviour, exact body)."""
    if len(files) > MAX_DIFF_FILES:
        what = f"files ({MAX_DIFF_FILES})"
    elif diff_text.count("\n") > MAX_DIFF_LINES:
        what = f"lines ({MAX_DIFF_LINES})"
    else:
        return None
    return JSONResponse(
        {
            "message": f"Sorry, the diff exceeded the maximum number of {what}. Consider using 'List pull "
            "requests files' API or locally cloning the repository instead.",
            "errors": [{"resource": "PullRequest", "field": "diff", "code": "too_large"}],
            "documentation_url": f"{DOCS}/pulls/pulls#list-pull-requests-files",
            "status": "406",
        },
        status_code=406,
    )


def _paginate(ctx: _Ctx, items: list[dict[str, Any]]) -> Response:
    """Page `items` with per_page (default 30, max 100) and page, plus a Link header
    (docs: rest/using-the-rest-api/using-pagination-in-the-rest-api)."""
    try:
        per_page = max(1, min(100, int(ctx.query.get("per_page", "30"))))
        page = max(1, int(ctx.query.get("page", "1")))
    except ValueError:
        return _error(422, "Invalid pagination parameters")
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []

    def url(n: int) -> str:
        query = {**ctx.query, "per_page": str(per_page), "page": str(n)}
        return f"<{ctx.base}{ctx.url_path}?{urlencode(query)}>"

    if page > 1:
        links += [f'{url(page - 1)}; rel="prev"', f'{url(1)}; rel="first"']
    if page < last:
        links += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
    headers = {"link": ", ".join(links)} if links else {}
    return JSONResponse(chunk, headers=headers)


def _grants(granted: Mapping[str, str], name: str, level: str) -> bool:
    order = {"read": 1, "write": 2, "admin": 3}
    return order.get(granted.get(name, ""), 0) >= order.get(level, 9)


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_") or k == "_links"}


def _unprocessable(errors: list[str]) -> Response:
    """GitHub's 422 body for review validation (known behaviour: message "Unprocessable Entity")."""
    return JSONResponse(
        {"message": "Unprocessable Entity", "errors": errors,
         "documentation_url": f"{DOCS}/pulls/reviews#create-a-review-for-a-pull-request", "status": "422"},
        status_code=422,
    )


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """GitHub's error JSON: message and documentation_url (and status, as github.com now sends)."""
    return JSONResponse({"message": message, "documentation_url": DOCS, "status": str(status)},
                        status_code=status, headers=dict(headers or {}))


def _reason(status: int) -> str:
    return {500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 403: "Forbidden",
            429: "Too Many Requests", 404: "Not Found"}.get(status, "Error")


async def _drop(send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Start an answer that promises a body, then fail: uvicorn closes the socket mid-response.

    Verified with uvicorn 0.54: an ASGI app raising *before* `http.response.start` gets a 500 answer from
    uvicorn, not a dropped connection; raising after it makes uvicorn close the socket, and httpx raises
    `RemoteProtocolError` (githubkit: `RequestError`), which is what a connection reset looks like.
    """
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
    raise DroppedConnection("fault injection: connection dropped")


def _user(login: str, user_id: int, kind: str) -> dict[str, Any]:
    """A simple-user object (the fields githubkit's SimpleUser requires)."""
    url = f"https://api.github.com/users/{login}"
    return {
        "login": login, "id": user_id, "node_id": f"U_{user_id}", "avatar_url": "https://avatars.example/u",
        "gravatar_id": "", "url": url, "html_url": f"https://github.com/{login}", "followers_url": url,
        "following_url": url, "gists_url": url, "starred_url": url, "subscriptions_url": url,
        "organizations_url": url, "repos_url": url, "events_url": url, "received_events_url": url,
        "type": kind, "site_admin": False,
    }


def _repo_json(repo: FakeRepo) -> dict[str, Any]:
    """A repository object with the fields githubkit's Repository model requires."""
    api = f"https://api.github.com/repos/{repo.owner}/{repo.name}"
    urls = {name: api for name in (
        "archive_url", "assignees_url", "blobs_url", "branches_url", "collaborators_url", "comments_url",
        "commits_url", "compare_url", "contents_url", "contributors_url", "deployments_url", "downloads_url",
        "events_url", "forks_url", "git_commits_url", "git_refs_url", "git_tags_url", "issue_comment_url",
        "issue_events_url", "issues_url", "keys_url", "labels_url", "languages_url", "merges_url",
        "milestones_url", "notifications_url", "pulls_url", "releases_url", "stargazers_url", "statuses_url",
        "subscribers_url", "subscription_url", "tags_url", "teams_url", "trees_url", "hooks_url",
    )}
    return {
        **urls, "id": repo.id, "node_id": f"R_{repo.id}", "name": repo.name,
        "full_name": f"{repo.owner}/{repo.name}", "owner": _user(repo.owner, 1, "Organization"),
        "private": repo.private, "html_url": f"https://github.com/{repo.owner}/{repo.name}", "description": None,
        "fork": False, "url": api, "git_url": f"git://github.com/{repo.owner}/{repo.name}.git",
        "ssh_url": f"git@github.com:{repo.owner}/{repo.name}.git",
        "clone_url": f"https://github.com/{repo.owner}/{repo.name}.git",
        "svn_url": f"https://github.com/{repo.owner}/{repo.name}", "mirror_url": None, "homepage": None,
        "language": None, "forks_count": 0, "stargazers_count": 0, "watchers_count": 0, "size": 1,
        "default_branch": repo.default_branch, "open_issues_count": 0, "is_template": False, "topics": [],
        "has_issues": True, "has_projects": False, "has_wiki": False, "has_pages": False, "has_downloads": True,
        "archived": False, "disabled": False, "visibility": "private" if repo.private else "public",
        "pushed_at": _now_iso(), "created_at": _now_iso(), "updated_at": _now_iso(), "forks": 0,
        "open_issues": 0, "watchers": 0, "license": None, "allow_forking": True,
        "web_commit_signoff_required": False,
    }


def _installation_json(inst: FakeInstallation, app: FakeApp | None) -> dict[str, Any]:
    return {
        "id": inst.id, "account": _user(inst.owner, 1, "Organization"), "repository_selection": "selected",
        "access_tokens_url": f"https://api.github.com/app/installations/{inst.id}/access_tokens",
        "repositories_url": "https://api.github.com/installation/repositories",
        "html_url": f"https://github.com/settings/installations/{inst.id}", "app_id": app.id if app else 0,
        "app_slug": app.slug if app else "", "target_id": 1, "target_type": "Organization",
        "permissions": inst.permissions, "events": ["pull_request", "issue_comment", "pull_request_review_comment"],
        "created_at": _now_iso(), "updated_at": _now_iso(), "single_file_name": None, "suspended_at": None,
        "suspended_by": None,
    }


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
