"""The App's spending: today's caps read from the spend ledger, and the per-call gate that records each paid call."""

from __future__ import annotations

import time

from bot.budget import SpendGate
from bot.config.load import EffectiveConfig
from bot.config.schema import Budgets
from bot.domain import PullRequest, Usage
from bot.prices import DEFAULT_PRICES
from bot.store.base import Store
from bot.store.spend import SpendRecord

Caps = tuple[tuple[str, float, float], ...]
DAY = 86_400


async def todays_caps(store: Store, pr: PullRequest, budgets: Budgets) -> Caps:
    """(scope, spent since 00:00 UTC, limit) of the installation, the pull request and its author."""
    day_start = time.time() // DAY * DAY
    spent = await store.daily_spend(pr.owner, pr.full_name, pr.number, pr.author, day_start)
    return (
        ("installation", spent.installation, budgets.max_cost_usd_per_installation_per_day),
        ("pull request", spent.pull_request, budgets.max_cost_usd_per_pr_per_day),
        ("author", spent.author, budgets.max_cost_usd_per_author_per_day),
    )


def spend_gate(store: Store, pr: PullRequest, job_id: int, effective: EffectiveConfig, caps: Caps) -> SpendGate | None:
    """Each model call of this review checked against the per-review cap and today's room, recorded when paid."""
    async def record(usage: Usage, cost: float) -> None:
        await store.record_spend(SpendRecord(
            owner=pr.owner, repo=pr.full_name, pr=pr.number, author=pr.author, model=effective.model,
            cost_usd=cost, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_input_tokens, cache_write_tokens=usage.cache_creation_input_tokens,
            job_id=job_id, at=time.time(),
        ))

    price = DEFAULT_PRICES.get(effective.model)
    if price is None:  # the Reviewer refuses an unpriced model with a configuration error
        return None
    room = min(limit - spent for _, spent, limit in caps)
    return SpendGate(price, effective.config.budgets.max_cost_usd_per_review, room, record)
