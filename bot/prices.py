"""The model price table: USD per million tokens, and what a review's tokens cost (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from bot.domain import Usage
from bot.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens for one model; cache writes and reads are multiples of the input price."""

    input_per_mtok: float
    output_per_mtok: float
    cache_write_multiplier: float = 1.25
    cache_read_multiplier: float = 0.1

    def cost(self, usage: Usage) -> float:
        """The cost of `usage` in USD."""
        return (
            usage.input_tokens * self.input_per_mtok
            + usage.output_tokens * self.output_per_mtok
            + usage.cache_creation_input_tokens * self.input_per_mtok * self.cache_write_multiplier
            + usage.cache_read_input_tokens * self.input_per_mtok * self.cache_read_multiplier
        ) / 1_000_000


# Defaults only: keeping these current with Anthropic's published prices is the operator's responsibility;
# configuration overrides them per model (`Reviewer(prices=...)`). Cache writes are the 5-minute TTL rate.
DEFAULT_PRICES: Final[Mapping[str, Price]] = MappingProxyType(
    {
        "claude-sonnet-5-5": Price(input_per_mtok=3.0, output_per_mtok=15.0),
        "claude-opus-5-5": Price(input_per_mtok=5.0, output_per_mtok=25.0),
        "claude-haiku-4-5": Price(input_per_mtok=1.0, output_per_mtok=5.0),
    }
)


def price_of(model: str, prices: Mapping[str, Price] | None = None) -> Price:
    """The model's price, `prices` over the defaults; ConfigError when neither has one (no call is made unpriced)."""
    price = {**DEFAULT_PRICES, **(prices or {})}.get(model)
    if price is None:
        raise ConfigError(f"REVIEW_MODEL: no price configured for {model!r}; add it to the price table")
    return price
