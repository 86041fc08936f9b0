"""The reviewer on the Messages API: `bot.model_run.ReviewRun` decides which calls a review makes and what their
outcomes mean; `Reviewer` makes each one (system prompt cached, output constrained to the answer's schema derived
in `bot.answer`, streamed when a call waits for its first event or when the SDK requires it).

Prompt and diff text are never logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Final, Literal

import anthropic

from bot.answer import output_schema
from bot.contract import BatchInput, CallGate, PullContext, ReviewOutcome, Splitter, split_batch
from bot.model.client import cached_system, call_error, json_output, needs_streaming, usage_of
from bot.model_call import Reply, Turn, estimate_prompt_tokens
from bot.model_run import ReviewRun
from bot.prices import Price
from bot.prompts import system_prompt

DEFAULT_MAX_TOKENS: Final = 16_000


class Reviewer:
    """Reviews batches of one pull request with Claude: concurrent, bounded, deadline-enforced, accounted."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        model: str,
        effort: Literal["low", "medium", "high"] | None = None,
        concurrency: int = 4,
        deadline_s: float = 600.0,
        prices: Mapping[str, Price] | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        split: Splitter = split_batch,
        gate: CallGate | None = None,
        verify: bool = False,
    ) -> None:
        self.client = client
        self.model = model
        self._system = cached_system(system_prompt())
        self._output_config = json_output(output_schema(), effort)
        self._run = ReviewRun(
            self._send, model, system_tokens=estimate_prompt_tokens(system_prompt()), concurrency=concurrency,
            deadline_s=deadline_s, prices=prices, max_tokens=max_tokens, split=split, gate=gate, verify=verify,
        )

    async def review(self, context: PullContext, batches: Sequence[BatchInput]) -> ReviewOutcome:
        """Review every batch; raises DeadlineExceeded, ModelUnavailable or ConfigError (see `bot.model_run`)."""
        return await self._run.review(context, batches)

    async def _send(self, turns: Sequence[Turn], first_event: asyncio.Event | None, max_tokens: int) -> Reply:
        """One Messages call (see `bot.model_call.Send`)."""
        try:
            message = await self._call(_messages(turns), first_event, max_tokens)
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
            raise call_error(exc) from None
        text = "".join(block.text for block in message.content if block.type == "text")
        category = message.stop_details.category if message.stop_details else None
        return Reply(text, message.stop_reason, usage_of(message.usage), category)

    async def _call(
        self, messages: list[anthropic.types.MessageParam], first_event: asyncio.Event | None, max_tokens: int
    ) -> anthropic.types.Message:
        """One Messages call; streamed when `first_event` waits for its first event or `max_tokens` requires it."""
        if first_event is not None or needs_streaming(max_tokens):
            async with self.client.messages.stream(
                model=self.model, max_tokens=max_tokens, system=self._system,
                messages=messages, output_config=self._output_config,
            ) as stream:
                if first_event is not None:
                    await anext(stream, None)  # message_start: the response has begun and its cache write too
                    first_event.set()
                return await stream.get_final_message()
        return await self.client.messages.create(
            model=self.model, max_tokens=max_tokens, system=self._system,
            messages=messages, output_config=self._output_config,
        )


def _messages(turns: Sequence[Turn]) -> list[anthropic.types.MessageParam]:
    """The conversation as Messages API parameters (one text block a turn)."""
    messages: list[anthropic.types.MessageParam] = []
    for turn in turns:
        block: anthropic.types.TextBlockParam = {"type": "text", "text": turn.text}
        if turn.cached:
            block["cache_control"] = {"type": "ephemeral"}
        if turn.role == "user":
            messages.append({"role": "user", "content": [block]})
        else:
            messages.append({"role": "assistant", "content": [block]})
    return messages
