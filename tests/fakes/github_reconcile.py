"""The fake GitHub's App-level endpoints that reconciliation uses, added to a `FakeGitHub` by `attach`:

- the App's webhook delivery log, listed newest first with cursor pagination, and redelivery, which (as GitHub
  does) really POSTs the delivery again, signed, with the same guid, to the configured webhook URL and logs that
  attempt with its answer;
- the App's installations, an installation's repositories, and a repository's pull requests (`state=open`).

Test API (fixture `github_deliveries` yields the `Deliveries` attached to the reset `fake_github`):

    hooks.configure(webhook_url, secret)                       # where deliveries and redeliveries go
    hooks.log(event, payload, status_code=503, guid=None, delivered_at=None, redelivery=False)  # -> item
    hooks.deliver(event, payload, guid=None)                   # POST now (sync), log the answer -> item
    hooks.items (newest last), hooks.attempts(guid), hooks.redelivery_requests (ids asked for)
    hooks.wait_idle(timeout)      # until no redelivery POST is under way (from any thread)
    hooks.fail_paged = N          # the next N listing requests with a cursor answer 502
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.responses import JSONResponse, Response

from tests.fakes.github import FakeGitHub, FakePull, _Ctx, _error, _installation_json, _paginate, _repo_json

HOOK_ID = 4711
GITHUB_TIMEOUT_SECONDS = 10.0  # GitHub gives a webhook receiver 10 s to answer (docs: webhooks best practices)
# Fields of `pull-request` that the list endpoint's `pull-request-simple` lacks (docs: rest/pulls/pulls).
_NOT_IN_SIMPLE = ("merged", "mergeable", "rebaseable", "mergeable_state", "merged_by", "comments",
                  "review_comments", "maintainer_can_modify", "commits", "additions", "deletions", "changed_files")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_text(code: int) -> str:
    """GitHub's `status` for an attempt: "OK" for 2xx, else a description of what went wrong (known behaviour)."""
    if 200 <= code < 300:
        return "OK"
    return "failed to connect to host" if code == 0 else f"Invalid HTTP Response: {code}"


class Deliveries:
    """The App webhook's delivery log and the endpoints that read it and redeliver from it."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.webhook_url = ""
        self.secret = ""
        self.items: list[dict[str, Any]] = []
        self.redelivery_requests: list[int] = []
        self._next_id = 90_000_000_000
        self.fail_paged = 0  # the next N listing requests that carry a cursor get a 502 (GitHub has bad moments)
        self._pending = 0
        self._idle = threading.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ test API

    def configure(self, webhook_url: str, secret: str) -> None:
        """Deliver to `webhook_url`, signing with `secret` (the App's webhook settings)."""
        self.webhook_url, self.secret = webhook_url, secret

    def log(self, event: str, payload: Mapping[str, Any], *, status_code: int = 503, guid: str | None = None,
            delivered_at: float | None = None, redelivery: bool = False) -> dict[str, Any]:
        """Log an attempt GitHub made (without sending anything): e.g. one that failed while the server was down."""
        body = json.dumps(payload).encode()
        return self._record(event, payload, body, guid or str(uuid.uuid4()), status_code,
                            time.time() if delivered_at is None else delivered_at, redelivery)

    def deliver(self, event: str, payload: Mapping[str, Any], guid: str | None = None) -> dict[str, Any]:
        """Send a delivery now (from the calling thread) and log it with the server's answer."""
        body = json.dumps(payload).encode()
        guid = guid or str(uuid.uuid4())
        try:
            code = httpx.post(self.webhook_url, content=body, headers=self._headers(event, guid, body),
                              timeout=GITHUB_TIMEOUT_SECONDS).status_code
        except httpx.HTTPError:
            code = 0
        return self._record(event, payload, body, guid, code, time.time(), False)

    def attempts(self, guid: str) -> list[dict[str, Any]]:
        """Every logged attempt of one delivery guid, oldest first."""
        return [item for item in self.items if item["guid"] == guid]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no redelivery POST is under way; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # ------------------------------------------------------------ state

    def _record(self, event: str, payload: Mapping[str, Any], body: bytes, guid: str, code: int, at: float,
                redelivery: bool) -> dict[str, Any]:
        with self.fake._lock:
            self._next_id += 1
            action = payload.get("action")
            installation = payload.get("installation") or {}
            repository = payload.get("repository") or {}
            item = {
                "id": self._next_id, "guid": guid, "delivered_at": _iso(at), "redelivery": redelivery,
                "duration": 0.05, "status": _status_text(code), "status_code": code, "event": event,
                "action": action if isinstance(action, str) else None,
                "installation_id": installation.get("id"), "repository_id": repository.get("id"),
                "throttled_at": None, "_at": at, "_body": body,
            }
            self.items.append(item)
            return item

    def _headers(self, event: str, guid: str, body: bytes) -> dict[str, str]:
        """What GitHub sends with a delivery (docs: webhooks/webhook-events-and-payloads#delivery-headers)."""
        signature = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return {
            "X-GitHub-Event": event, "X-GitHub-Delivery": guid, "X-Hub-Signature-256": signature,
            "X-GitHub-Hook-ID": str(HOOK_ID), "X-GitHub-Hook-Installation-Target-Type": "integration",
            "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/fake",
        }

    # ------------------------------------------------------------ endpoints

    def routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        """The endpoints, wrapped in the fake's JWT and installation-token checks."""
        fake = self.fake
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        return [
            ("GET", r"/app/hook/deliveries", fake._jwt(self._list)),
            ("POST", r"/app/hook/deliveries/(?P<delivery_id>\d+)/attempts", fake._jwt(self._redeliver)),
            ("GET", r"/app/installations", fake._jwt(self._installations)),
            ("GET", r"/installation/repositories", self._installation_repositories),
            ("GET", repo + r"/pulls", fake._tok("pull_requests", "read", self._pulls)),
        ]

    def _list(self, ctx: _Ctx) -> Response:
        """GET /app/hook/deliveries (docs: rest/apps/webhooks#list-deliveries-for-an-app-webhook): newest first,
        `per_page` (default 30, max 100); `cursor` is "the starting delivery from which the page is fetched",
        opaque, taken from the Link header's `next` URL; `redelivery=true|false` filters."""
        try:
            per_page = max(1, min(100, int(ctx.query.get("per_page", "30"))))
        except ValueError:
            return _error(422, "Invalid per_page")
        items = sorted(self.items, key=lambda item: item["id"], reverse=True)
        if "redelivery" in ctx.query:
            wanted = ctx.query["redelivery"] == "true"
            items = [item for item in items if item["redelivery"] is wanted]
        cursor = ctx.query.get("cursor")
        if cursor is not None and self.fail_paged > 0:
            self.fail_paged -= 1
            return _error(502, "Bad Gateway")
        if cursor is not None:
            if not cursor.startswith("v1_") or not cursor[3:].isdigit():
                return _error(400, "Bad Request")  # an unknown cursor (documented: 400 Bad Request)
            items = [item for item in items if item["id"] <= int(cursor[3:])]
        page, rest = items[:per_page], items[per_page:]
        headers = {}
        if rest:
            query = {**ctx.query, "per_page": str(per_page), "cursor": f"v1_{rest[0]['id']}"}
            headers["link"] = f'<{ctx.base}{ctx.url_path}?{urlencode(query)}>; rel="next"'
        public = [{k: v for k, v in item.items() if not k.startswith("_")} for item in page]
        return JSONResponse(public, headers=headers)

    def _redeliver(self, ctx: _Ctx, delivery_id: str) -> Response:
        """POST /app/hook/deliveries/{id}/attempts (docs: rest/apps/webhooks#redeliver-a-delivery-for-an-app-
        webhook): 202 Accepted; GitHub then sends the same delivery (same guid and body) again, and lists that
        attempt with `redelivery: true` (docs: webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks).
        """
        item = next((i for i in self.items if i["id"] == int(delivery_id)), None)
        if item is None:
            return _error(404, "Not Found")
        self.redelivery_requests.append(item["id"])
        with self._idle:
            self._pending += 1
        task = asyncio.get_running_loop().create_task(self._send_again(item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return JSONResponse({}, status_code=202)

    async def _send_again(self, item: dict[str, Any]) -> None:
        body: bytes = item["_body"]
        try:
            try:
                async with httpx.AsyncClient(timeout=GITHUB_TIMEOUT_SECONDS) as client:
                    answer = await client.post(self.webhook_url, content=body,
                                               headers=self._headers(item["event"], item["guid"], body))
                    code = answer.status_code
            except httpx.HTTPError:
                code = 0
            self._record(item["event"], json.loads(body), body, item["guid"], code, time.time(), True)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _installations(self, ctx: _Ctx) -> Response:
        """GET /app/installations (docs: rest/apps/apps#list-installations-for-the-authenticated-app); paginated."""
        return _paginate(ctx, [_installation_json(inst, ctx.app) for inst in self.fake.installations.values()])

    def _installation_repositories(self, ctx: _Ctx) -> Response:
        """GET /installation/repositories with an installation token (docs: rest/apps/installations#list-
        repositories-accessible-to-the-app-installation): `{total_count, repositories}`, paginated."""
        tok = self.fake._verify_token(ctx.headers.get("authorization", ""))
        if isinstance(tok, Response):
            return tok
        inst = self.fake.installations[tok.installation_id]
        repos = [_repo_json(self.fake.repos[(inst.owner, name)]) for name in tok.repos]
        listed = _paginate(ctx, repos)
        page = json.loads(bytes(listed.body))
        if listed.status_code != 200:
            return listed
        headers = {"link": listed.headers["link"]} if "link" in listed.headers else {}
        return JSONResponse({"total_count": len(repos), "repository_selection": "selected", "repositories": page},
                            headers=headers)

    def _pulls(self, ctx: _Ctx, owner: str, repo: str) -> Response:
        """GET /repos/{o}/{r}/pulls (docs: rest/pulls/pulls#list-pull-requests): `state` open (default), closed
        or all; paginated; items are `pull-request-simple` (no merge or count fields). The fake does not track
        updates: any `sort` orders by creation, in `direction` (desc by default)."""
        state = ctx.query.get("state", "open")
        pulls: list[FakePull] = [p for p in self.fake.pulls.values() if (p.owner, p.repo) == (owner, repo)
                                 and (state == "all" or p.state == state)]
        pulls.sort(key=lambda p: p.id, reverse=ctx.query.get("direction", "desc") == "desc")
        items = []
        for pull in pulls:
            full = self.fake.pull_json(pull, ctx.base)
            items.append({k: v for k, v in full.items() if k not in _NOT_IN_SIMPLE})
        return _paginate(ctx, items)


def attach(fake: FakeGitHub) -> Deliveries:
    """Add the reconciliation endpoints to `fake` (after its reset) and return their state."""
    deliveries = Deliveries(fake)
    fake.extra_routes = deliveries.routes()
    return deliveries
