"""Budgets, decided before any model call: riskiest files first within a review, and a daily cap per installation."""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import PurePosixPath

from bot.contract import Grant
from bot.domain import NotReviewed, Usage
from bot.prices import Price

SECURITY_WORDS = (
    "auth", "oauth", "login", "logout", "signin", "signup", "session", "token", "jwt", "saml", "csrf", "crypt",
    "password", "passwd", "secret", "credential", "permission", "acl", "rbac", "admin", "payment", "billing",
    "sql", "migration", "migrate", "api", "route", "handler", "webhook",
)  # fmt: skip
NOT_SECURITY_WORDS = ("author",)
TEST_DIRS = frozenset({"test", "tests", "spec", "specs", "__tests__", "testing", "testdata", "fixtures"})
_TEST_NAME = re.compile(r"(^test_.*|.*_test\.[^.]+|.*\.(test|spec)\.[^.]+|.*(Test|Tests|Spec)\.[^.]+|conftest\.py)$")
DOC_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".txt", ".adoc", ".asciidoc"})
CONFIG_SUFFIXES = frozenset({".yml", ".yaml", ".json", ".toml", ".ini", ".cfg", ".conf", ".lock", ".xml", ".env"})
DOC_DIRS = frozenset({"doc", "docs", "documentation"})
DOC_NAMES = frozenset({"readme", "changelog", "changes", "license", "licence", "notice", "authors", "contributing"})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


class RiskTier(IntEnum):
    """Review priority when a budget cuts: lower is reviewed first."""

    SECURITY = 0
    SOURCE = 1
    TESTS = 2
    DOCS_CONFIG = 3


@dataclass(frozen=True, slots=True)
class BudgetCut:
    """The files a review keeps (input order) and the ones it leaves out with the reason (input order)."""

    kept: tuple[str, ...]
    not_reviewed: tuple[NotReviewed, ...]
    tokens: int


@dataclass(frozen=True, slots=True)
class DailyBudget:
    """Whether a review may spend its estimate more today; `message` explains a refusal."""

    allowed: bool
    spent_usd: float
    limit_usd: float
    message: str
    scope: str = ""  # which cap refused: installation, pull request or author


def risk_tier(path: str) -> RiskTier:
    """CI workflows and security-sensitive paths, then source, then tests, then docs and configuration."""
    pure = PurePosixPath(path.lower())
    parts = pure.parts
    if path.startswith(".github/workflows/"):
        return RiskTier.SECURITY
    if any(part in TEST_DIRS for part in parts[:-1]) or _TEST_NAME.match(PurePosixPath(path).name):
        return RiskTier.TESTS
    if pure.suffix in DOC_SUFFIXES or pure.suffix in CONFIG_SUFFIXES or any(p in DOC_DIRS for p in parts[:-1]):
        return RiskTier.DOCS_CONFIG
    if pure.stem.split(".")[0] in DOC_NAMES:
        return RiskTier.DOCS_CONFIG
    return RiskTier.SECURITY if _security_sensitive(path) else RiskTier.SOURCE


def _security_sensitive(path: str) -> bool:
    words = [word.lower() for word in _WORD.findall(path)]
    return any(word.startswith(SECURITY_WORDS) and not word.startswith(NOT_SECURITY_WORDS) for word in words)


def risk_order(paths: Iterable[str]) -> list[str]:
    """Paths sorted riskiest first; ties by path, so the order is deterministic."""
    return sorted(paths, key=lambda path: (risk_tier(path), path))


def apply_budget(files: Sequence[tuple[str, int]], max_tokens: int) -> BudgetCut:
    """Keep files riskiest first while their estimated tokens fit `max_tokens`; a file that does not fit is cut."""
    if max_tokens < 0:
        raise ValueError("max_tokens must not be negative")
    estimates = dict(files)
    if len(estimates) != len(files) or any(tokens < 0 for tokens in estimates.values()):
        raise ValueError("files must have distinct paths and non-negative token estimates")
    used, kept = 0, set()
    reasons: dict[str, str] = {}
    for path in risk_order(estimates):
        tokens = estimates[path]
        if used + tokens <= max_tokens:
            used += tokens
            kept.add(path)
        else:
            reasons[path] = (
                f"over budget: ~{tokens:,} tokens, {max_tokens - used:,} left of the {max_tokens:,}-token "
                "per-review budget after riskier files"
            )
    return BudgetCut(
        kept=tuple(path for path, _ in files if path in kept),
        not_reviewed=tuple(NotReviewed(path, reasons[path]) for path, _ in files if path in reasons),
        tokens=used,
    )


def token_budget(max_tokens: int, max_cost_usd: float, usd_per_million_tokens: float) -> int:
    """The per-review token budget: the token cap, lowered to what the cost cap buys at the given blended price."""
    if usd_per_million_tokens <= 0:
        return max_tokens
    return min(max_tokens, math.floor(max_cost_usd / usd_per_million_tokens * 1_000_000))


_RAISE_KEY = {
    "installation": "max_cost_usd_per_installation_per_day",
    "pull request": "max_cost_usd_per_pr_per_day",
    "author": "max_cost_usd_per_author_per_day",
}
_WHO = {
    "installation": "this installation spent",
    "pull request": "the reviews of this pull request spent",
    "author": "the reviews of this pull request's author spent",
}


def daily_budget(spent_today_usd: float, estimate_usd: float, limit_usd: float,
                 scope: str = "installation") -> DailyBudget:
    """A review may start only if today's spend in `scope` plus this estimate stays within its daily limit."""
    if spent_today_usd + estimate_usd <= limit_usd:
        return DailyBudget(True, spent_today_usd, limit_usd, "")
    message = (
        f"Daily budget reached: {_WHO[scope]} ${spent_today_usd:.2f} of its ${limit_usd:.2f} "
        f"limit today (UTC) and this review is estimated at ${estimate_usd:.2f}. "
        "Reviews resume after 00:00 UTC, or ask an owner to raise "
        f"`budgets.{_RAISE_KEY[scope]}`."
    )
    return DailyBudget(False, spent_today_usd, limit_usd, message, scope)


def daily_caps(caps: Iterable[tuple[str, float, float]], estimate_usd: float) -> DailyBudget:
    """The first of `(scope, spent today, limit)` this review would exceed (installation, pull request, author)."""
    verdict = DailyBudget(True, 0.0, 0.0, "")
    for scope, spent, limit in caps:
        verdict = daily_budget(spent, estimate_usd, limit, scope)
        if not verdict.allowed:
            return verdict
    return verdict


MIN_OUTPUT_TOKENS = 1_024  # below this a findings answer cannot fit: the call is not made


class SpendGate:
    """Caps on real spend, per call: spent in this review + the call's input estimate + its `max_tokens` at the
    output price must fit the per-review cap and what is left of today's caps; `max_tokens` is lowered to fit.

    Concurrent calls reserve their worst case until they settle with the usage the API reported, which is
    recorded at once through `record` (so a failure afterwards cannot lose it).
    """

    def __init__(self, price: Price, review_cap_usd: float, daily_room_usd: float,
                 record: Callable[[Usage, float], Awaitable[None]]) -> None:
        self.price = price
        self.limit = min(review_cap_usd, daily_room_usd)
        self.record = record
        self.spent = 0.0
        self.reserved = 0.0

    async def admit(self, input_tokens: int, max_tokens: int) -> Grant:
        """The largest `max_tokens` (at most the one asked) whose worst case fits; 0 when not even a minimum does."""
        room = self.limit - self.spent - self.reserved
        input_cost = input_tokens * self.price.input_per_mtok / 1_000_000
        affordable = math.floor((room - input_cost) * 1_000_000 / self.price.output_per_mtok)
        granted = min(max_tokens, affordable)
        if granted < min(MIN_OUTPUT_TOKENS, max_tokens):
            return Grant(0)
        reserved = input_cost + granted * self.price.output_per_mtok / 1_000_000
        self.reserved += reserved
        return Grant(granted, reserved)

    async def settle(self, grant: Grant, usage: Usage) -> None:
        """Release the call's reservation and record what it cost (nothing to record for an unpaid call)."""
        self.reserved -= grant.reserved_usd
        cost = self.price.cost(usage)
        self.spent += cost
        if usage != Usage():
            await self.record(usage, cost)
