"""Answering a question in a finding's thread: one Messages call with a structured `{answer}`, inside the budgets.

The system prompt (persona + `prompts/thread.md`) is static and cached; the question, the thread, the code and the
finding go in the user message between nonce delimiters. Outcomes: an answer's text, or a reason it could not be
had (over budget, refused, cut off, unreadable), in which case nothing but a fixed sentence is posted.
429/5xx/529 and connection failures raise `ModelUnavailable` (the job retries later); 401/403/404 `ConfigError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import anthropic
from pydantic import ValidationError

from bot.answer import parse_thread_reply, thread_output_schema
from bot.contract import CallGate, Grant
from bot.domain import Usage
from bot.errors import ConfigError, ModelUnavailable
from bot.model import MAX_RETRY_WAIT_S, estimate_prompt_tokens, retry_after_seconds
from bot.prices import DEFAULT_PRICES, Price
from bot.prompts import thread_system_prompt

log = logging.getLogger(__name__)

#: A thread answer is a few sentences and perhaps a short code block.
THREAD_MAX_TOKENS: Final = 2_000


@dataclass(frozen=True, slots=True)
class ThreadAnswer:
    """The answer's text (None when there is none, and `error` says why), and what the call cost."""

    text: str | None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    error: str = ""


class ThreadAnswerer:
    """Answers questions in findings' threads with Claude, each call admitted and recorded by `gate`."""

    def __init__(self, client: anthropic.AsyncAnthropic, model: str,
                 effort: Literal["low", "medium", "high"] | None = None, gate: CallGate | None = None,
                 max_tokens: int = THREAD_MAX_TOKENS, prices: Mapping[str, Price] | None = None) -> None:
        table = {**DEFAULT_PRICES, **(prices or {})}
        if model not in table:
            raise ConfigError(f"REVIEW_MODEL: no price configured for {model!r}; add it to the price table")
        self.client, self.model, self.gate, self.max_tokens = client, model, gate, max_tokens
        self.price = table[model]
        self._system: list[anthropic.types.TextBlockParam] = [
            {"type": "text", "text": thread_system_prompt(), "cache_control": {"type": "ephemeral"}}
        ]
        self._output: anthropic.types.OutputConfigParam = {
            "format": {"type": "json_schema", "schema": thread_output_schema()}
        }
        if effort is not None:
            self._output["effort"] = effort

    async def answer(self, prompt: str) -> ThreadAnswer:
        """One call for the user message `prompt`."""
        grant = Grant(self.max_tokens)
        if self.gate is not None:
            estimate = estimate_prompt_tokens(self._system[0]["text"]) + estimate_prompt_tokens(prompt)
            grant = await self.gate.admit(estimate, self.max_tokens)
            if grant.max_tokens <= 0:
                return ThreadAnswer(None, error="over budget")
        paid = Usage()
        try:
            message = await self.client.messages.create(
                model=self.model, max_tokens=grant.max_tokens, system=self._system,
                messages=[{"role": "user", "content": [{"type": "text", "text": prompt}]}],
                output_config=self._output,
            )
            u = message.usage
            paid = Usage(u.input_tokens, u.output_tokens, u.cache_creation_input_tokens or 0,
                         u.cache_read_input_tokens or 0)
        except anthropic.APIStatusError as exc:
            _raise_for(exc)
            return ThreadAnswer(None, error=f"the model API rejected the request ({exc.status_code})")
        except anthropic.APIConnectionError as exc:
            raise ModelUnavailable(f"model API unreachable after retries: {type(exc).__name__}") from None
        finally:
            if self.gate is not None:  # recorded as soon as it is paid
                await self.gate.settle(grant, paid)
        cost = self.price.cost(paid)
        log.info("thread answer", extra={"stop_reason": message.stop_reason, "input_tokens": paid.input_tokens,
                                         "output_tokens": paid.output_tokens, "cost_usd": round(cost, 6)})
        if message.stop_reason not in ("end_turn", "stop_sequence"):
            return ThreadAnswer(None, paid, cost, f"the model stopped ({message.stop_reason})")
        text = "".join(block.text for block in message.content if block.type == "text")
        try:
            return ThreadAnswer(parse_thread_reply(text), paid, cost)
        except (ValidationError, ValueError):
            return ThreadAnswer(None, paid, cost, "the model's answer did not match the schema")


def _raise_for(exc: anthropic.APIStatusError) -> None:
    """Key, access or model problems are configuration errors; overload and rate limits are for later."""
    status = exc.status_code
    if status in (401, 403, 404):
        raise ConfigError(f"the model API answered {status} to a thread answer") from None
    if status == 429 or status >= 500:
        wait = retry_after_seconds(exc.response.headers)
        raise ModelUnavailable(f"model API still answering {status} after retries",
                               retry_at=time.time() + (wait if wait is not None else MAX_RETRY_WAIT_S)) from None
