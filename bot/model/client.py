"""The Messages API client (`make_client`) and what every call of this package shares: the cached system block,
the output constraint, usage and errors translated into the bot's terms.

429, 5xx and 529 are retried by the SDK (`max_retries` from settings); when the API asks to wait longer than
`MAX_RETRY_WAIT_S` (the SDK would obey any `retry-after`), the call raises `ModelUnavailable(retry_at)` instead of
sleeping.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any, Final, Literal

import anthropic

from bot.domain import Usage
from bot.errors import ModelUnavailable
from bot.model_call import MAX_RETRY_WAIT_S, CallRejected, CallUnreachable
from bot.settings import Settings

# The SDK refuses non-streaming calls whose max_tokens implies over 10 minutes at its assumed 128k tokens/hour
# (`_calculate_nonstreaming_timeout` in anthropic/_base_client.py): 3600 * max_tokens / 128_000 > 600.
NONSTREAMING_MAX_TOKENS: Final = 21_333

#: The Messages API client type, named here for callers (only this package imports anthropic).
ModelClient = anthropic.AsyncAnthropic


def needs_streaming(max_tokens: int) -> bool:
    """Whether the SDK requires streaming for a call with this `max_tokens`."""
    return max_tokens > NONSTREAMING_MAX_TOKENS


class _RetryAfterCap(anthropic.Middleware):
    """Stop the SDK from sleeping through a long `retry-after`: raise ModelUnavailable(retry_at) instead."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s

    async def handle_async(self, request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        status = int(response.status_code)
        if status == 429 or status >= 500:
            wait = retry_after_seconds(response.headers)
            if wait is not None and wait > self.max_wait_s:
                raise ModelUnavailable(
                    f"model API answered {status} and asks to wait {wait:.0f}s", retry_at=time.time() + wait
                )
        return response


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date), as the SDK reads them."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) * scale
        except ValueError:
            parsed = email.utils.parsedate_tz(value) if scale == 1.0 else None
            if parsed is not None:
                return float(email.utils.mktime_tz(parsed) - time.time())
    return None


def make_client(settings: Settings, max_retry_wait_s: float = MAX_RETRY_WAIT_S) -> anthropic.AsyncAnthropic:
    """An AsyncAnthropic client from settings (the SDK reads ANTHROPIC_API_KEY/ANTHROPIC_BASE_URL when unset)."""
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key is not None else None
    return anthropic.AsyncAnthropic(
        api_key=key,
        base_url=settings.anthropic_base_url,
        max_retries=settings.model_max_retries,
        middleware=[_RetryAfterCap(max_retry_wait_s)],
    )


def cached_system(text: str) -> list[anthropic.types.TextBlockParam]:
    """The system prompt as one block the prompt cache keeps (it is static: every call reads it from the cache)."""
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]


def json_output(
    schema: dict[str, Any], effort: Literal["low", "medium", "high"] | None
) -> anthropic.types.OutputConfigParam:
    """The output constrained to `schema` (structured outputs), at `effort` when one is set."""
    config: anthropic.types.OutputConfigParam = {"format": {"type": "json_schema", "schema": schema}}
    if effort is not None:
        config["effort"] = effort
    return config


def usage_of(usage: anthropic.types.Usage) -> Usage:
    """The SDK's usage as the bot's."""
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
    )


def call_error(exc: anthropic.APIStatusError | anthropic.APIConnectionError) -> CallRejected | CallUnreachable:
    """An SDK failure (after its retries) as the bot's: the status, the API's message and its `retry-after`."""
    if isinstance(exc, anthropic.APIConnectionError):
        return CallUnreachable(type(exc).__name__)
    return CallRejected(exc.status_code, _error_message(exc), retry_after_seconds(exc.response.headers))


def _error_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:300]
    return str(exc)[:300]


# A minimal answer, streamed and not, for `warm_up`.
_WARM_UP_MESSAGE: Final[dict[str, Any]] = {
    "id": "msg_warm_up", "type": "message", "role": "assistant", "content": [], "model": "warm-up",
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
}
_WARM_UP_EVENTS: Final[tuple[tuple[str, dict[str, Any]], ...]] = (
    ("message_start", {"type": "message_start", "message": _WARM_UP_MESSAGE}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "{}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 1}}),
    ("message_stop", {"type": "message_stop"}),
)


def warm_up() -> None:
    """Do the SDK's first-use work now (lazy imports, the validators of streamed events and of messages) against
    an in-memory Messages API: about 0.1 s of CPU the first review's event loop would otherwise wait on. Runs its
    own event loop: call it from a thread at start."""
    asyncio.run(_warm_up())


async def _warm_up() -> None:
    import httpx2  # the SDK's HTTP client package

    stream = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in _WARM_UP_EVENTS).encode()
    message = {**_WARM_UP_MESSAGE, "content": [{"type": "text", "text": "{}"}], "stop_reason": "end_turn"}

    def answer(request: Any) -> Any:
        if b'"stream":true' in request.content.replace(b" ", b""):
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=stream)
        return httpx2.Response(200, json=message)

    http = anthropic.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(answer))
    async with anthropic.AsyncAnthropic(api_key="warm-up", base_url="http://warm-up.invalid", max_retries=0,
                                        http_client=http) as client:
        messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "warm-up"}]
        async with client.messages.stream(model="warm-up", max_tokens=1, messages=messages) as events:
            await events.get_final_message()
        await client.messages.create(model="warm-up", max_tokens=1, messages=messages)
