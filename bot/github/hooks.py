"""What reconciliation reads and asks of GitHub: the App's webhook deliveries (list, redeliver), its
installations, their repositories and open pull requests, and whether the App reviewed a head.

Deliveries (docs: rest/apps/webhooks#list-deliveries-for-an-app-webhook) need the App's JWT and are listed
newest first, paginated by an opaque `cursor` that the `Link` header's `next` URL carries. A redelivery
(`POST /app/hook/deliveries/{id}/attempts`, 202) makes GitHub send the same delivery again, with the same
`X-GitHub-Delivery` guid, to the webhook URL. Installation reads share one token per installation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub

from bot.errors import ConfigError
from bot.github.auth import GitHubApp
from bot.github.transport import raw_call

PER_PAGE = 100  # the most GitHub serves per page on every endpoint used here


@dataclass(frozen=True, slots=True)
class HookDelivery:
    """One delivery attempt as GitHub lists it (schema `hook-delivery-item`)."""

    id: int
    guid: str
    delivered_at: float
    redelivery: bool
    status: str
    status_code: int
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    """A page of deliveries (newest first) and the cursor of the next, older page (None at the end)."""

    items: tuple[HookDelivery, ...]
    next_cursor: str | None


def delivery_of(item: Mapping[str, Any]) -> HookDelivery:
    """Parse one `hook-delivery-item` (ValueError/KeyError/TypeError on a malformed one)."""
    delivered = datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00"))
    return HookDelivery(
        id=int(item["id"]), guid=str(item["guid"]), delivered_at=delivered.timestamp(),
        redelivery=bool(item.get("redelivery")), status=str(item.get("status") or ""),
        status_code=int(item.get("status_code") or 0), event=str(item.get("event") or ""),
        action=str(item["action"]) if item.get("action") else None,
        installation_id=_int_or_none(item.get("installation_id")),
        repository_id=_int_or_none(item.get("repository_id")),
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def next_cursor(links: Mapping[Any, Any]) -> str | None:
    """The `cursor` query parameter of the Link header's `next` URL."""
    url = (links.get("next") or {}).get("url")
    if not url:
        return None
    values = parse_qs(urlsplit(str(url)).query).get("cursor")
    return values[0] if values else None


class AppHooks:
    """The App's own (JWT) and per-installation reads used by `bot.reconcile`."""

    def __init__(self, app: GitHubApp) -> None:
        settings = app.settings
        pem = settings.private_key_pem
        if settings.github_app_id is None or pem is None:
            raise ConfigError("GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY are required to reconcile with GitHub")
        self.app = app
        self._app_id, self._key = settings.github_app_id, app.jwt_key
        self._jwt = app.new_client(AppAuthStrategy(self._app_id, self._key))
        self._installations: dict[int, GitHub[Any]] = {}

    async def deliveries(self, cursor: str | None = None, per_page: int = PER_PAGE) -> DeliveryPage:
        """One page of the App's webhook deliveries, newest first, starting at `cursor`."""
        params: dict[str, Any] = {"per_page": per_page}
        if cursor is not None:
            params["cursor"] = cursor
        response = await raw_call(self.app.policy, self._jwt, "GET", "app/hook/deliveries", what="list deliveries",
                                  params=params)
        items = response.raw_response.json()
        return DeliveryPage(tuple(delivery_of(item) for item in items), next_cursor(response.raw_response.links))

    async def redeliver(self, delivery_id: int) -> None:
        """Ask GitHub to attempt delivery `delivery_id` again (spaced like every other write)."""
        await raw_call(self.app.policy, self._jwt, "POST", f"app/hook/deliveries/{int(delivery_id)}/attempts",
                       what="redeliver", before=lambda: self.app.spacer.wait(0))

    async def installations(self, limit: int) -> list[dict[str, Any]]:
        """The App's installations (at most `limit`)."""
        return await self._paginate(self._jwt, "app/installations", "list installations", limit)

    async def repositories(self, installation_id: int, limit: int) -> list[dict[str, Any]]:
        """Repositories an installation grants (at most `limit`)."""
        gh = self._installation(installation_id)
        return await self._paginate(gh, "installation/repositories", "list repositories", limit, key="repositories")

    async def open_pulls(self, installation_id: int, owner: str, repo: str, limit: int) -> list[dict[str, Any]]:
        """A repository's open pull requests, most recently updated first (at most `limit`)."""
        gh = self._installation(installation_id)
        return await self._paginate(gh, f"repos/{owner}/{repo}/pulls", "list open pulls", limit,
                                    params={"state": "open", "sort": "updated", "direction": "desc"})

    async def reviewed_by_app(self, installation_id: int, owner: str, repo: str, number: int, sha: str) -> bool:
        """True when the App submitted a review of pull request `number` at commit `sha`."""
        own = (await self.app.identity()).bot_login
        gh = self._installation(installation_id)
        reviews = await self._paginate(gh, f"repos/{owner}/{repo}/pulls/{int(number)}/reviews", "list reviews", 3_000)
        return any((r.get("user") or {}).get("login") == own and r.get("commit_id") == sha
                   and r.get("state") != "PENDING" for r in reviews)

    def _installation(self, installation_id: int) -> GitHub[Any]:
        if installation_id not in self._installations:
            auth = AppInstallationAuthStrategy(self._app_id, self._key, installation_id)
            self._installations[installation_id] = self.app.new_client(auth)
        return self._installations[installation_id]

    async def _paginate(self, gh: GitHub[Any], url: str, what: str, limit: int, *, key: str | None = None,
                        params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        query: dict[str, Any] | None = {"per_page": PER_PAGE, **(params or {})}
        while next_url is not None and len(items) < limit:
            response = await raw_call(self.app.policy, gh, "GET", next_url, what=what, params=query)
            data = response.raw_response.json()
            page = data.get(key) if key is not None and isinstance(data, dict) else data
            items.extend(item for item in page or [] if isinstance(item, dict))
            next_url, query = response.raw_response.links.get("next", {}).get("url"), None
        return items[:limit]
