"""The fake Claude's own behaviour, driven through the real anthropic SDK (and raw HTTP where the SDK can't err)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes.claude import CONTEXT_WINDOW, KNOWN_MODELS, Answer, FakeClaude, count_tokens, finding

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "start_line": {"type": "integer"}},
                "required": ["path", "start_line"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["summary", "findings"],
    "additionalProperties": False,
}
LONG_SYSTEM = "You review code carefully and report only real problems. " * 100  # ~1,600 tokens at 3.5 chars/token


def _params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Review this diff: +x = 1"}],
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
    }
    params.update(overrides)
    return params


def _raw(fake: FakeClaude, body: Any, **headers: str) -> httpx.Response:
    base = {"authorization": f"Bearer {fake.api_key}", "anthropic-version": "2026-10-21"}
    base.update(headers)
    return httpx.post(f"{fake.base_url}/v1/messages", json=body, headers={k: v for k, v in base.items() if v})


# -- auth and headers ----------------------------------------------------------------------------------------


async def test_sdk_sends_bearer_key_and_version(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    await fake_claude_client.messages.create(**_params())
    headers = fake_claude.requests[0].headers
    assert headers["authorization"] == f"Bearer {fake_claude.api_key}"
    assert headers["anthropic-version"]
    assert "x-api-key" not in headers


async def test_wrong_key_is_401_with_anthropic_error_shape(fake_claude: FakeClaude) -> None:
    client = anthropic.AsyncAnthropic(api_key="sk-wrong", base_url=fake_claude.base_url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await client.messages.create(**_params())
    assert caught.value.status_code == 401
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_x_api_key_is_accepted_and_version_header_required(fake_claude: FakeClaude) -> None:
    ok = _raw(fake_claude, _params(), authorization="", **{"x-api-key": fake_claude.api_key})
    assert ok.status_code == 200
    missing = _raw(fake_claude, _params(), **{"anthropic-version": ""})
    assert missing.status_code == 400
    assert missing.json()["error"]["type"] == "invalid_request_error"


# -- strict request shape ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "user"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}, "non-empty"),
        ({"output_format": {"type": "json_schema"}}, "Extra inputs"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"tool_choice": {"type": "tool", "name": "report"}}, "tool_choice"),
        ({"output_config": {"effort": "extreme"}}, "effort"),
        ({"system": [{"type": "text", "text": "x", "cache_control": {"type": "permanent"}}]}, "cache_control"),
    ],
)
def test_malformed_requests_get_400(fake_claude: FakeClaude, change: dict[str, Any], fragment: str) -> None:
    body = {k: v for k, v in _params(**change).items() if v is not None}
    answer = _raw(fake_claude, body)
    assert answer.status_code == 400
    assert answer.json()["type"] == "error"
    assert fragment in answer.json()["error"]["message"]


async def test_forced_tool_choice_is_rejected_through_the_sdk(fake_claude_client: Any) -> None:
    tools = [{"name": "report", "description": "r", "input_schema": {"type": "object", "properties": {}}}]
    with pytest.raises(anthropic.BadRequestError):
        await fake_claude_client.messages.create(**_params(tools=tools, tool_choice={"type": "any"}))


@pytest.mark.parametrize(
    "schema",
    [
        {**SCHEMA, "additionalProperties": True},
        {**SCHEMA, "properties": {**SCHEMA["properties"], "findings": {"type": "array", "items": {"type": "object"}}}},
        {**SCHEMA, "properties": {**SCHEMA["properties"], "summary": {"type": "string", "maxLength": 10}}},
    ],
)
async def test_schema_objects_must_forbid_additional_properties(fake_claude_client: Any, schema: Any) -> None:
    with pytest.raises(anthropic.BadRequestError, match=r"additionalProperties|not supported"):
        await fake_claude_client.messages.create(
            **_params(output_config={"format": {"type": "json_schema", "schema": schema}})
        )


# -- models and the context window -----------------------------------------------------------------------------


def _input_tokens(params: dict[str, Any]) -> int:
    """The fake's count: `count_tokens` per block over system and messages."""
    system = params["system"]
    texts = [system] if isinstance(system, str) else [b["text"] for b in system]
    for message in params["messages"]:
        content = message["content"]
        texts += [content] if isinstance(content, str) else [b["text"] for b in content]
    return sum(count_tokens(t) for t in texts)


def test_defaults_know_the_priced_models_and_a_200k_window(fake_claude: FakeClaude) -> None:
    from bot.prices import DEFAULT_PRICES

    assert set(DEFAULT_PRICES) <= KNOWN_MODELS == fake_claude.known_models
    assert fake_claude.context_window == CONTEXT_WINDOW == 200_000


async def test_unknown_model_is_404_not_found_error(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        await fake_claude_client.messages.create(**_params(model="claude-sonnet-9-9"))
    assert caught.value.status_code == 404
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"] == {"type": "not_found_error", "message": "model: claude-sonnet-9-9"}  # type: ignore[index]
    assert len(fake_claude.requests) == 1 and fake_claude.usages == []


async def test_known_models_can_be_changed_and_reset_restores_them(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.known_models = {"claude-test-1"}
    assert (await fake_claude_client.messages.create(**_params(model="claude-test-1"))).model == "claude-test-1"
    with pytest.raises(anthropic.NotFoundError):
        await fake_claude_client.messages.create(**_params(model="claude-sonnet-5-5"))
    fake_claude.known_models.add("claude-sonnet-5-5")
    await fake_claude_client.messages.create(**_params(model="claude-sonnet-5-5"))
    fake_claude.reset()
    assert fake_claude.known_models == set(KNOWN_MODELS)


async def test_unknown_model_is_404_when_streaming_too(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    fake_claude.known_models.discard("claude-sonnet-5-5")
    with pytest.raises(anthropic.NotFoundError):
        async with fake_claude_client.messages.stream(**_params()) as stream:
            await stream.get_final_message()


async def test_prompt_over_the_context_window_is_400_prompt_too_long(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    tokens = _input_tokens(_params())
    fake_claude.context_window = tokens - 1
    with pytest.raises(anthropic.BadRequestError) as caught:
        await fake_claude_client.messages.create(**_params())
    assert caught.value.body["error"] == {  # type: ignore[index]
        "type": "invalid_request_error", "message": f"prompt is too long: {tokens} tokens > {tokens - 1} maximum",
    }
    assert fake_claude.usages == []


async def test_input_plus_max_tokens_over_the_window_is_400(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    tokens = _input_tokens(_params())
    fake_claude.context_window = tokens + 1024  # exactly fits input + max_tokens
    await fake_claude_client.messages.create(**_params(max_tokens=1024))
    with pytest.raises(anthropic.BadRequestError) as caught:
        await fake_claude_client.messages.create(**_params(max_tokens=1025))
    assert caught.value.body["error"]["message"] == (  # type: ignore[index]
        f"input length and `max_tokens` exceed context limit: {tokens} + 1025 > {tokens + 1024}, "
        "decrease input length or `max_tokens` and try again"
    )


async def test_context_window_applies_to_streams_and_before_faults(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.context_window = 100
    fake_claude.fail_next("refusal")
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        async with fake_claude_client.messages.stream(**_params()) as stream:
            await stream.get_final_message()
    fake_claude.context_window = CONTEXT_WINDOW
    refused = await fake_claude_client.messages.create(**_params())
    assert refused.stop_reason == "refusal"  # the rejected request did not take the queued fault


async def test_too_long_fault_is_400_and_request_too_large_is_413(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.queue({"summary": "scripted", "findings": []})
    fake_claude.fail_next("too_long")
    fake_claude.fail_next("request_too_large")
    tokens = _input_tokens(_params())
    with pytest.raises(anthropic.BadRequestError) as too_long:
        await fake_claude_client.messages.create(**_params())
    assert too_long.value.body["error"] == {  # type: ignore[index]
        "type": "invalid_request_error", "message": f"prompt is too long: {tokens} tokens > {tokens - 1} maximum",
    }
    with pytest.raises(anthropic.APIStatusError) as too_large:
        await fake_claude_client.messages.create(**_params())
    assert too_large.value.status_code == 413
    assert too_large.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    after = await fake_claude_client.messages.create(**_params())
    assert json.loads(after.content[0].text)["summary"] == "scripted"


def test_too_many_cache_breakpoints_is_400(fake_claude: FakeClaude) -> None:
    block = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    assert _raw(fake_claude, _params(system=[block] * 5)).status_code == 400


# -- answers ---------------------------------------------------------------------------------------------------


async def test_scripted_findings_come_back_as_one_json_text_block(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.queue([{"path": "app.py", "start_line": 3}], {"summary": "second", "findings": []})
    first = await fake_claude_client.messages.create(**_params())
    second = await fake_claude_client.messages.create(**_params())
    third = await fake_claude_client.messages.create(**_params())
    assert [b.type for b in first.content] == ["text"]
    assert json.loads(first.content[0].text)["findings"] == [{"path": "app.py", "start_line": 3}]
    assert json.loads(second.content[0].text)["summary"] == "second"
    assert json.loads(third.content[0].text)["findings"] == []  # queue empty: the default answer
    assert first.stop_reason == "end_turn"


async def test_callable_answer_sees_the_request(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    seen: list[Any] = []

    def answer(request: dict[str, Any]) -> Answer:
        seen.append(request)
        return Answer(summary=request["messages"][0]["content"][:6])

    fake_claude.queue(answer)
    message = await fake_claude_client.messages.create(**_params())
    assert seen[0]["model"] == "claude-sonnet-5-5"
    assert json.loads(message.content[0].text)["summary"] == "Review"


async def test_answer_breaking_the_request_schema_is_reported(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.queue([{"path": "a.py", "start_line": "three"}])
    with pytest.raises(anthropic.BadRequestError, match="does not match the request schema"):
        await fake_claude_client.messages.create(**_params())


async def test_finding_helper_matches_the_bot_schema(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    from bot.answer import output_schema

    fake_claude.queue([finding("a.py", 2, severity="low")])
    message = await fake_claude_client.messages.create(
        **_params(output_config={"format": {"type": "json_schema", "schema": output_schema()}})
    )
    assert json.loads(message.content[0].text)["findings"][0]["severity"] == "low"


# -- usage and caching -----------------------------------------------------------------------------------------


async def test_cache_is_written_once_then_read(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    first = (await fake_claude_client.messages.create(**_params())).usage
    second = (await fake_claude_client.messages.create(**_params())).usage
    prefix = count_tokens(LONG_SYSTEM)
    user = count_tokens("Review this diff: +x = 1")
    def counts(usage: Any) -> tuple[int, int, int]:
        return usage.cache_creation_input_tokens, usage.cache_read_input_tokens, usage.input_tokens

    assert counts(first) == (prefix, 0, user)
    assert counts(second) == (0, prefix, user)
    assert first.output_tokens > 0


async def test_changed_prefix_or_schema_misses_the_cache(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    await fake_claude_client.messages.create(**_params())
    other_system = [{"type": "text", "text": LONG_SYSTEM + "!", "cache_control": {"type": "ephemeral"}}]
    changed = (await fake_claude_client.messages.create(**_params(system=other_system))).usage
    assert changed.cache_read_input_tokens == 0 and changed.cache_creation_input_tokens > 0
    schema = {**SCHEMA, "required": ["findings", "summary"]}
    other = await fake_claude_client.messages.create(
        **_params(output_config={"format": {"type": "json_schema", "schema": schema}})
    )
    assert other.usage.cache_read_input_tokens == 0


async def test_short_prefix_or_no_breakpoint_is_not_cached(fake_claude_client: Any) -> None:
    short = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        usage = (await fake_claude_client.messages.create(**_params(system=short))).usage
        assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0
    for _ in range(2):
        usage = (await fake_claude_client.messages.create(**_params(system=LONG_SYSTEM))).usage
        assert usage.cache_read_input_tokens == 0 and usage.input_tokens > 1000


async def test_concurrent_first_requests_all_write(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    fake_claude.latency = 0.2
    results = await asyncio.gather(*(fake_claude_client.messages.create(**_params()) for _ in range(3)))
    assert all(r.usage.cache_creation_input_tokens > 0 for r in results)
    later = await fake_claude_client.messages.create(**_params())
    assert later.usage.cache_read_input_tokens > 0


async def test_latency_is_applied(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    # Lower bounds only: an answer's own latency overrides the fake's, and the fake's applies otherwise.
    fake_claude.queue(Answer(latency=0.3))
    started = time.monotonic()
    await fake_claude_client.messages.create(**_params())
    assert time.monotonic() - started >= 0.3
    fake_claude.latency = 0.3
    started = time.monotonic()
    await fake_claude_client.messages.create(**_params())
    assert time.monotonic() - started >= 0.3


async def test_held_answers_wait_for_release_and_arrivals_are_counted(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.hold()
    calls = [asyncio.create_task(fake_claude_client.messages.create(**_params())) for _ in range(3)]
    assert await fake_claude.until(lambda: fake_claude.in_flight == 3)
    assert fake_claude.begun == 0 and not any(c.done() for c in calls)
    fake_claude.release(1)
    first = await next(asyncio.as_completed(calls))
    assert first.content and fake_claude.begun == 1 and sum(c.done() for c in calls) <= 1
    fake_claude.release()
    await asyncio.gather(*calls)
    later = await fake_claude_client.messages.create(**_params())
    assert later.content and fake_claude.begun == 4 and fake_claude.in_flight == 0
    assert [(a.in_flight, a.begun) for a in fake_claude.arrivals][-1] == (1, 3)
    assert sorted(a.in_flight for a in fake_claude.arrivals[:3]) == [1, 2, 3]


# -- streaming -------------------------------------------------------------------------------------------------


async def test_streaming_final_message(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    fake_claude.queue(Answer(summary="s" * 300))
    async with fake_claude_client.messages.stream(**_params()) as stream:
        message = await stream.get_final_message()
    assert json.loads(message.content[0].text)["summary"] == "s" * 300
    assert message.stop_reason == "end_turn"
    assert message.usage.cache_creation_input_tokens == count_tokens(LONG_SYSTEM)
    assert message.usage.output_tokens > 1
    assert fake_claude.requests[0].json["stream"] is True


def test_stream_event_order(fake_claude: FakeClaude) -> None:
    answer = _raw(fake_claude, _params(stream=True))
    events = [line.removeprefix("event: ") for line in answer.text.splitlines() if line.startswith("event: ")]
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(events[3:-3]) == {"content_block_delta"}


async def test_stream_begins_before_its_answer_is_generated_and_its_cache_is_readable_from_then(
    fake_claude: FakeClaude, fake_claude_client: Any
) -> None:
    fake_claude.first_event_latency = 0.02
    fake_claude.queue(Answer(summary="s" * 300, latency=0.5), Answer(latency=0.0))
    async with fake_claude_client.messages.stream(**_params()) as stream:
        event = await anext(stream)
        second = await fake_claude_client.messages.create(**_params())
        finished_meanwhile = len(fake_claude.served)  # the second only: the first is still generating
        message = await stream.get_final_message()
    assert event.type == "message_start" and event.message.usage.cache_creation_input_tokens > 0
    assert finished_meanwhile == 1 and len(fake_claude.served) == 2
    assert second.usage.cache_read_input_tokens == message.usage.cache_creation_input_tokens > 0


async def test_streamed_refusal_carries_stop_details(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    fake_claude.fail_next("refusal")
    async with fake_claude_client.messages.stream(**_params()) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == "refusal"
    assert message.stop_details is not None and message.stop_details.type == "refusal"


# -- faults ----------------------------------------------------------------------------------------------------


async def test_rate_limit_has_retry_after_and_the_sdk_obeys_it(fake_claude: FakeClaude) -> None:
    fake_claude.fail_next("rate_limit", retry_after=0.4)
    bare = anthropic.AsyncAnthropic(api_key=fake_claude.api_key, base_url=fake_claude.base_url, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        await bare.messages.create(**_params())
    assert caught.value.response.headers["retry-after"] == "0.4"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]

    fake_claude.fail_next("rate_limit", retry_after=0.4)
    retrying = anthropic.AsyncAnthropic(api_key=fake_claude.api_key, base_url=fake_claude.base_url, max_retries=1)
    message = await retrying.messages.create(**_params())
    assert message.stop_reason == "end_turn"
    gap = fake_claude.requests[-1].at - fake_claude.requests[-2].at
    assert gap >= 0.4


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [("overloaded", 529, "overloaded_error"), ("server_error", 500, "api_error")],
)
async def test_server_faults(
    fake_claude: FakeClaude, fake_claude_client: Any, kind: str, status: int, error_type: str
) -> None:
    fake_claude.fail_next(kind, times=2)
    for _ in range(2):
        with pytest.raises(anthropic.InternalServerError) as caught:
            await fake_claude_client.messages.create(**_params())
        assert caught.value.status_code == status
        assert caught.value.body["error"]["type"] == error_type  # type: ignore[index]
    assert (await fake_claude_client.messages.create(**_params())).stop_reason == "end_turn"


async def test_model_faults(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    fake_claude.queue([{"path": "a.py", "start_line": 1}] * 5)
    fake_claude.fail_next("refusal")
    fake_claude.fail_next("max_tokens")
    fake_claude.fail_next("invalid_json")
    refused = await fake_claude_client.messages.create(**_params())
    truncated = await fake_claude_client.messages.create(**_params())
    invalid = await fake_claude_client.messages.create(**_params())
    assert refused.stop_reason == "refusal" and refused.stop_details.category == "cyber"
    assert truncated.stop_reason == "max_tokens"
    assert invalid.stop_reason == "end_turn"
    for message in (truncated, invalid):
        with pytest.raises(ValueError):
            json.loads(message.content[0].text)
    after = await fake_claude_client.messages.create(**_params())  # faults did not consume the scripted answer
    assert len(json.loads(after.content[0].text)["findings"]) == 5


async def test_output_is_cut_at_max_tokens(fake_claude: FakeClaude, fake_claude_client: Any) -> None:
    fake_claude.queue(Answer(summary="word " * 200))
    message = await fake_claude_client.messages.create(**_params(max_tokens=20))
    assert message.stop_reason == "max_tokens"
    assert len(message.content[0].text) == 70  # 20 tokens at 3.5 characters a token
    assert message.usage.output_tokens == 20


def test_unknown_fault_kind_is_refused(fake_claude: FakeClaude) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake_claude.fail_next("teapot")


async def test_every_request_is_recorded_even_rejected_ones(fake_claude: FakeClaude) -> None:
    _raw(fake_claude, {"model": "m"})
    _raw(fake_claude, _params())
    assert [r.json.get("max_tokens") for r in fake_claude.requests] == [None, 1024]
    assert len(fake_claude.usages) == 1


def test_token_count_follows_the_documented_average() -> None:
    assert count_tokens("") == 0 and count_tokens("a") == 1
    assert count_tokens("x" * 3500) == 1000  # about 3.5 English characters a token
    assert count_tokens("基础设施") == 4  # by assumption, one token a character outside ASCII
    assert count_tokens("x" * 35 + "é") == 11
