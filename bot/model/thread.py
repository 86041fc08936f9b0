"""Answering a question in a finding's thread: one Messages call with a structured `{answer}`, inside the budgets.

The system prompt (persona + `prompts/thread.md`) is static and cached; the question, the thread, the code and the
finding go in the user message between nonce delimiters. Outcomes: an answer's text, or a reason it could not be
had (over budget, refused, cut off, unreadable), in which case nothing but a fixed sentence is posted.
429/5xx/529 and connection failures raise `ModelUnavailable` (the job retries later); 401/403/404 `ConfigError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import anthropic
from pydantic import ValidationError

from bot.answer import parse_thread_reply, thread_output_schema
from bot.contract import CallGate, Grant
from bot.domain import Usage
from bot.errors import ModelUnavailable
from bot.model.client import cached_system, call_error, json_output, usage_of
from bot.model_call import CallUnreachable, estimate_prompt_tokens, raise_for_status
from bot.prices import Price, price_of
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
        self.price = price_of(model, prices)
        self.client, self.model, self.gate, self.max_tokens = client, model, gate, max_tokens
        self._system = cached_system(thread_system_prompt())
        self._output = json_output(thread_output_schema(), effort)

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
            paid = usage_of(message.usage)
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
            error = call_error(exc)
            if isinstance(error, CallUnreachable):
                raise ModelUnavailable(f"model API unreachable after retries: {error}") from None
            raise_for_status(error, model=self.model)
            return ThreadAnswer(None, error=f"the model API rejected the request ({error.status})")
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

