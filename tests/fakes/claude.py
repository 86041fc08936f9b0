"""A fake of Anthropic's Messages API (`POST /v1/messages`), served over real HTTP on loopback.

Where each behaviour comes from (Anthropic's public docs and the installed SDK, anthropic 2.14):

- Auth: the SDK sends `Authorization: Bearer <api key>` (`anthropic/_client.py`, `_api_key_auth`) and
  `anthropic-version` (`_constants.ANTHROPIC_API_VERSION`); the API answers 401 `authentication_error`
  without a valid key. `x-api-key` (the header curl examples use) is accepted too.
- Errors: every error body is `{"type": "error", "error": {"type": ..., "message": ...}}` with
  `invalid_request_error` (400), `authentication_error` (401), `not_found_error` (404),
  `request_too_large` (413), `rate_limit_error` (429, with `retry-after`), `api_error` (500) and
  `overloaded_error` (529) ("Errors", platform.claude.com/docs/en/api/errors).
- Unknown model: a `model` the API does not serve is answered 404 `not_found_error` ("Errors": 404
  not_found_error, the requested resource was not found, which is what an unknown or retired model id
  gets); the message here is `model: <name>`. A model is known when it is in `fake.known_models` (default
  `KNOWN_MODELS`: the three models this project prices and its tests use).
- Context window: the API checks input plus `max_tokens` against the model's context window and answers
  400 `invalid_request_error` instead of truncating: "prompt is too long: N tokens > M maximum" when the
  input alone is over, else "input length and `max_tokens` exceed context limit: N + K > M, decrease input
  length or `max_tokens` and try again" (both texts as the API returns them in public reports, e.g.
  anthropics/claude-code issue 12186 and docker/docker-agent issue 569). Here N is the fake's token count
  (`count_tokens`, below) over tools, system and messages, K is `max_tokens` and M is
  `fake.context_window`. These checks (and the model check) run before a queued fault is taken.
- 413 `request_too_large`: the API's answer to a request body over its byte limit (32 MB for Messages);
  only as the fault "request_too_large" here.
- Structured outputs: `output_config.format = {"type": "json_schema", "schema": ...}` makes the answer one
  text block holding JSON that matches the schema; every object in the schema must set
  `additionalProperties: false`, and numeric/string constraints (`minimum`, `maxLength`, `pattern`, ...) are
  not supported ("Structured outputs", build-with-claude/structured-outputs).
- `output_config.effort` is one of low/medium/high/xhigh/max ("Effort", build-with-claude/effort; SDK type
  `OutputConfigParam`).
- Forced tools: `tool_choice` of type `any` or `tool` is answered 400 here, as the current models (Sonnet 5.5,
  Opus 5.5) do (this project's issue 4).
- Prompt caching: a `cache_control: {"type": "ephemeral"}` breakpoint caches the prefix up to and including
  its block (order: tools, system, messages); at most 4 breakpoints; prefixes under the model's minimum
  cacheable length are not cached; `usage` reports `cache_creation_input_tokens` for a write and
  `cache_read_input_tokens` for a hit, and `input_tokens` counts only what follows the last breakpoint;
  a cache entry becomes readable only once the response that wrote it begins, so concurrent first requests
  all write ("Prompt caching", build-with-claude/prompt-caching). The cache key also holds the model and the
  output schema.
- Token counts (`count_tokens`): Anthropic does not publish its tokenizer; it documents that a token is about
  3.5 English characters (Glossary, "Tokens") and that counts are estimates ("Token counting"). So the fake
  counts 3.5 ASCII characters a token and, by assumption (published BPE tokenizers take one or more tokens per
  CJK or other non-Latin character), every other character as a token of its own; at least 1 per non-empty
  text. (It was `len(text) // 4`, which had no source and made the bot's estimate look 15-20% high.)
- Stop reasons: `end_turn`, `max_tokens` (output cut at `max_tokens`), `refusal` with `stop_details`
  `{"type": "refusal", "category": ..., "explanation": ...}` ("Handle streaming refusals",
  test-and-evaluate/strengthen-guardrails/handle-streaming-refusals; SDK type `RefusalStopDetails`).
- Streaming (`"stream": true`): server-sent events `message_start`, `content_block_start`, `ping`,
  `content_block_delta` (`text_delta`), `content_block_stop`, `message_delta` (stop reason, stop details,
  cumulative usage), `message_stop` ("Streaming Messages", build-with-claude/streaming; the SDK's
  `lib/streaming/_messages.py` `accumulate_event`). As with the API, `message_start` (with the input usage)
  comes first, once the prompt is processed, and the text deltas follow as they are generated: here
  `message_start` is sent after `first_event_latency` and the deltas are spread over the rest of `latency`.

Test controls (all thread-safe; the server runs in another thread):
    fake.queue_follow_up(*answers) the same for requests that continue a conversation (they hold an assistant
                                  message: the verification turn); unscripted, they answer with no verdicts
    fake.queue(*answers)          scripted answers, one per successful request, in order; an answer is an
                                  `Answer`, a dict `{"summary", "findings"}` (any other dict is sent as it is, e.g. a
                                  thread answer `{"answer": ...}`), a list of finding dicts, or a
                                  callable(request_json) -> any of those. When empty, `fake.default` answers
                                  (no findings).
    fake.latency = 0.2            seconds each answer takes, first byte to last; `Answer(latency=...)` sets it
                                  for one answer
    fake.first_event_latency      seconds until the response begins (a stream's `message_start`; the cache
                                  entries the request writes are readable from then on); None (default):
                                  the whole `latency`, i.e. everything arrives at once
    fake.fail_next(kind, times=1, retry_after=None)
                                  kinds: "rate_limit" (429), "overloaded" (529), "server_error" (500),
                                  "too_long" (400 "prompt is too long: N tokens > N-1 maximum", N the
                                  request's tokens), "request_too_large" (413), "refusal", "max_tokens",
                                  "invalid_json"; a faulted request does not consume a scripted answer
    fake.known_models             the models answered; any other is 404 (a set: add, remove or replace)
    fake.context_window = 1000    tokens (input + max_tokens) a request may use; default CONTEXT_WINDOW
    fake.first_turns              the requests that start a conversation (no verification turns)
    fake.requests                 every request received, as `Recorded(headers, json, at)`, rejected ones too
    fake.served                   (arrival, end) monotonic times of every answered request, in answer order
    fake.hold() / fake.release(n) answers wait at a gate (before their latency) until released: `release(n)`
                                  lets n more through, `release()` opens the gate; a held answer goes ahead
                                  by itself after HOLD_LIMIT s, so a broken bot fails instead of hanging
    fake.arrivals                 per request, in arrival order: `Arrival(in_flight, begun)`, the requests in
                                  flight counting this one and the answers begun (past the gate, first event sent)
    fake.in_flight, fake.begun    the current counts (ordering and concurrency without a wall clock)
    await fake.until(predicate)   True once predicate() holds (checked on every change), False after HOLD_LIMIT
    fake.usages                   the `usage` of every answered request, in answer order
    fake.reset()                  back to a fresh state (the fixture does it between tests)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.loopback import serve_on_loopback

API_KEY = "sk-ant-fake-test-key"
MIN_CACHEABLE_TOKENS = 1024
MAX_OUTPUT_TOKENS = 128_000
CONTEXT_WINDOW = 200_000
HOLD_LIMIT = 30.0  # seconds; only a broken bot (or test) waits this long
KNOWN_MODELS = frozenset({"claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-4-5"})
FAULT_KINDS = (
    "rate_limit", "overloaded", "server_error", "too_long", "request_too_large", "refusal", "max_tokens",
    "invalid_json",
)
_HTTP_FAULTS = {
    "rate_limit": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server_error": (500, "api_error", "Internal server error"),
    "too_long": (400, "invalid_request_error", "prompt is too long: {tokens} tokens > {below} maximum"),
    "request_too_large": (413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
}
_TOP_LEVEL_KEYS = frozenset(
    {
        "model", "max_tokens", "messages", "system", "metadata", "stop_sequences", "stream", "temperature",
        "top_k", "top_p", "tools", "tool_choice", "thinking", "output_config", "service_tier", "cache_control",
        "container", "inference_geo", "speed", "diagnostics",
    }
)
_UNSUPPORTED_SCHEMA_KEYS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
     "pattern", "maxItems", "uniqueItems"}
)
_EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})


@dataclass(frozen=True)
class Answer:
    """One scripted answer: findings and summary (serialised as JSON), or raw `text`, and a stop reason."""

    findings: Sequence[dict[str, Any]] = ()
    summary: str = "No problems found in this batch."
    verdicts: Sequence[dict[str, Any]] = ()
    earlier: Sequence[dict[str, Any]] = ()  # judgements of earlier findings the batch listed: {id, status, reason}
    json_body: dict[str, Any] | None = None  # any other JSON answer (a thread answer: {"answer": ...}), schema-checked
    text: str | None = None
    stop_reason: str = "end_turn"
    latency: float | None = None  # overrides `FakeClaude.latency` for this answer

    def body_text(self) -> str:
        """The text block the model would produce."""
        if self.text is not None:
            return self.text
        if self.json_body is not None:
            return json.dumps(self.json_body)
        data: dict[str, Any] = {"summary": self.summary, "findings": list(self.findings)}
        if self.verdicts:
            data["verdicts"] = list(self.verdicts)
        if self.earlier:
            data["earlier"] = list(self.earlier)
        return json.dumps(data)


AnswerSource = Answer | dict[str, Any] | list[dict[str, Any]] | Callable[[dict[str, Any]], Any]


def finding(path: str, line: int, **fields: Any) -> dict[str, Any]:
    """A schema-valid finding dict with sensible defaults; `fields` override any key."""
    base: dict[str, Any] = {
        "path": path,
        "start_line": line,
        "end_line": line,
        "side": "right",
        "severity": "high",
        "category": "security",
        "title": f"Problem at {path}:{line}",
        "body": "User input reaches the query unescaped, so any caller can read every row.",
        "suggestion": None,
        "evidence": "",
    }
    base.update(fields)
    return base


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it."""

    headers: dict[str, str]
    json: Any
    at: float


@dataclass
class _Fault:
    kind: str
    remaining: int
    retry_after: float | None


@dataclass(frozen=True)
class Arrival:
    """What the fake was doing when a request arrived."""

    in_flight: int  # requests being handled, this one included
    begun: int  # answers begun so far (past the gate and the latency)


class BadRequest(Exception):
    """A request the real API would answer 400 to."""


@dataclass
class FakeClaude:
    """State and controls of one fake Messages API; `app` is the ASGI app serving it."""

    api_key: str = API_KEY
    min_cacheable_tokens: int = MIN_CACHEABLE_TOKENS
    base_url: str = ""
    latency: float = 0.0
    first_event_latency: float | None = None
    context_window: int = CONTEXT_WINDOW
    known_models: set[str] = field(default_factory=lambda: set(KNOWN_MODELS))
    default: Answer = field(default_factory=Answer)
    requests: list[Recorded] = field(default_factory=list)
    usages: list[dict[str, int]] = field(default_factory=list)
    served: list[tuple[float, float]] = field(default_factory=list)
    _answers: deque[AnswerSource] = field(default_factory=deque)
    _follow_ups: deque[AnswerSource] = field(default_factory=deque)
    _faults: deque[_Fault] = field(default_factory=deque)
    _cache: dict[str, float] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)
    in_flight: int = 0
    begun: int = 0
    _holding: bool = False
    _passes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    # -- test controls -------------------------------------------------------------------------------------

    def queue(self, *answers: AnswerSource) -> None:
        """Script the answers of the next successful requests, in order."""
        with self._lock:
            self._answers.extend(answers)

    def queue_follow_up(self, *answers: AnswerSource) -> None:
        """Script the answers of the next requests that continue a conversation (hold an assistant message)."""
        with self._lock:
            self._follow_ups.extend(answers)

    def fail_next(self, kind: str, times: int = 1, retry_after: float | None = None) -> None:
        """Make the next `times` requests fail with `kind` (see FAULT_KINDS); faults queue in order."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {FAULT_KINDS}")
        with self._lock:
            self._faults.append(_Fault(kind, times, retry_after))

    async def until(self, predicate: Callable[[], bool]) -> bool:
        """Wait (in a thread, the loop stays free) until `predicate()` holds; False if it did not in HOLD_LIMIT s."""

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(predicate, timeout=HOLD_LIMIT)

        return await asyncio.to_thread(wait)

    def hold(self) -> None:
        """Keep answers waiting at the gate until `release`."""
        with self._lock:
            self._holding, self._passes = True, 0

    def release(self, n: int | None = None) -> None:
        """Let `n` held answers (the next to reach the gate) through, or open the gate when `n` is None."""
        with self._lock:
            if n is None:
                self._holding = False
            else:
                self._passes += n

    @property
    def first_turns(self) -> list[Recorded]:
        """The requests that start a conversation (a batch's review), without the verification turns after them."""
        with self._lock:
            return [r for r in self.requests
                    if not (isinstance(r.json, dict) and any(isinstance(m, dict) and m.get("role") == "assistant"
                                                             for m in r.json.get("messages") or []))]

    def reset(self) -> None:
        """Forget requests, scripts, faults, cache and latency; restore the known models and context window."""
        with self._lock:
            self._holding, self._passes = False, 0
            self.arrivals.clear()
            self.begun = 0
            self.requests.clear()
            self.usages.clear()
            self.served.clear()
            self._answers.clear()
            self._follow_ups.clear()
            self._faults.clear()
            self._cache.clear()
            self.latency = 0.0
            self.first_event_latency = None
            self.default = Answer()
            self.min_cacheable_tokens = MIN_CACHEABLE_TOKENS
            self.context_window = CONTEXT_WINDOW
            self.known_models = set(KNOWN_MODELS)

    @property
    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])

    # -- request handling ----------------------------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        with self._lock:
            self.in_flight += 1
            self.arrivals.append(Arrival(self.in_flight, self.begun))
            self._changed.notify_all()
        response: Response | None = None
        try:
            response = await self._handle(request)
        finally:
            if not isinstance(response, StreamingResponse):  # a stream is done when its last event is sent
                self._done()
        return response

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self._changed.notify_all()

    async def _gate(self) -> None:
        """Wait while answers are held (at most HOLD_LIMIT s), taking one pass when there is one."""
        give_up = time.monotonic() + HOLD_LIMIT
        while time.monotonic() < give_up:
            with self._lock:
                if not self._holding:
                    return
                if self._passes > 0:
                    self._passes -= 1
                    return
            await asyncio.sleep(0.005)

    def _begin(self) -> None:
        with self._lock:
            self.begun += 1
            self._changed.notify_all()

    async def _handle(self, request: Request) -> Response:
        arrived = time.monotonic()
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(Recorded(headers, body, time.monotonic()))
        if not self._authorized(headers):
            return _error(401, "authentication_error", "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        try:
            _validate(body)
        except BadRequest as exc:
            return _error(400, "invalid_request_error", str(exc))
        with self._lock:
            known, window = body["model"] in self.known_models, self.context_window
        if not known:
            return _error(404, "not_found_error", f"model: {body['model']}")
        tokens = sum(_tokens(b.get("text", "")) for b in _blocks(body))
        too_long = _context_error(tokens, int(body["max_tokens"]), window)
        if too_long is not None:
            return _error(400, "invalid_request_error", too_long)
        fault = self._take_fault()
        if fault is not None and fault.kind in _HTTP_FAULTS:
            await asyncio.sleep(self.latency / 10)
            status, kind, template = _HTTP_FAULTS[fault.kind]
            extra = {} if fault.retry_after is None else {"retry-after": _fmt_seconds(fault.retry_after)}
            return _error(status, kind, template.format(tokens=tokens, below=tokens - 1), extra)
        try:
            # A model fault answers with the default text (cut or broken) and leaves the scripted queue alone.
            answer = self.default if fault is not None else self._take_answer(body)
        except BadRequest as exc:
            return _error(400, "invalid_request_error", str(exc))
        stop_reason, text, stop_details = _apply_fault(answer, fault)
        text, stop_reason = _cap_output(text, stop_reason, int(body["max_tokens"]))
        # The cache is looked up when the request arrives; what it writes is readable once the answer begins.
        latency = self.latency if answer.latency is None else answer.latency
        await self._gate()
        first = latency if self.first_event_latency is None else min(latency, self.first_event_latency)
        usage = self._usage(body, text, ready_at=time.monotonic() + first)
        if body.get("stream"):
            timing = (arrived, first, latency)
            return StreamingResponse(
                self._stream(body, text, stop_reason, stop_details, usage, timing), media_type="text/event-stream"
            )
        await asyncio.sleep(latency)
        self._begin()
        message = _message(body["model"], text, stop_reason, stop_details, usage)
        self._served(arrived)
        return JSONResponse(message, headers={"request-id": message["id"]})

    def _served(self, arrived: float) -> None:
        with self._lock:
            self.served.append((arrived, time.monotonic()))

    async def _stream(
        self,
        body: dict[str, Any],
        text: str,
        stop_reason: str,
        stop_details: dict[str, Any] | None,
        usage: dict[str, int],
        timing: tuple[float, float, float],
    ) -> AsyncIterator[bytes]:
        try:
            async for event in self._events(body, text, stop_reason, stop_details, usage, timing):
                yield event
        finally:
            self._done()

    async def _events(
        self,
        body: dict[str, Any],
        text: str,
        stop_reason: str,
        stop_details: dict[str, Any] | None,
        usage: dict[str, int],
        timing: tuple[float, float, float],
    ) -> AsyncIterator[bytes]:
        arrived, first, latency = timing
        await asyncio.sleep(first)
        self._begin()
        start = _message(body["model"], "", None, None, {**usage, "output_tokens": 1})
        start["content"] = []
        yield _sse("message_start", {"type": "message_start", "message": start})
        yield _sse("content_block_start",
                   {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        yield _sse("ping", {"type": "ping"})
        step = 64
        chunks = range(0, len(text), step)
        pause = (latency - first) / max(1, len(chunks))
        for i in chunks:
            await asyncio.sleep(pause)  # generation time, spread over the deltas
            delta = {"type": "text_delta", "text": text[i : i + step]}
            yield _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        delta_body = {"stop_reason": stop_reason, "stop_sequence": None, "stop_details": stop_details}
        yield _sse("message_delta", {"type": "message_delta", "delta": delta_body, "usage": usage})
        yield _sse("message_stop", {"type": "message_stop"})
        self._served(arrived)

    def _authorized(self, headers: dict[str, str]) -> bool:
        bearer = headers.get("authorization", "")
        return bearer == f"Bearer {self.api_key}" or headers.get("x-api-key") == self.api_key

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.popleft()
            return fault

    def _take_answer(self, body: dict[str, Any]) -> Answer:
        with self._lock:
            if any(m.get("role") == "assistant" for m in body["messages"]):
                # A later turn of a conversation (the bot's verification turn) has its own script; unscripted,
                # it answers with no verdicts, which keeps every finding.
                source: AnswerSource = self._follow_ups.popleft() if self._follow_ups else Answer(summary="")
            else:
                source = self._answers.popleft() if self._answers else self.default
        if callable(source) and not isinstance(source, Answer):
            source = source(body)
        answer = _as_answer(source)
        schema = ((body.get("output_config") or {}).get("format") or {}).get("schema")
        if schema is not None and answer.text is None:
            problems = _schema_errors(json.loads(answer.body_text()), schema, "$")
            if problems:
                raise BadRequest(f"fake Claude: the scripted answer does not match the request schema: {problems}")
        return answer

    def _usage(self, body: dict[str, Any], text: str, ready_at: float) -> dict[str, int]:
        """Token counts with simulated caching; prefixes written here become readable at `ready_at`."""
        blocks = _blocks(body)
        total = sum(_tokens(b.get("text", "")) for b in blocks)
        extra_key = json.dumps([body["model"], (body.get("output_config") or {}).get("format")], sort_keys=True)
        breakpoints: list[tuple[str, int]] = []
        running = 0
        for i, block in enumerate(blocks):
            running += _tokens(block.get("text", ""))
            if block.get("cache_control"):
                key = extra_key + json.dumps(
                    [{"type": b.get("type"), "text": b.get("text")} for b in blocks[: i + 1]]
                )
                breakpoints.append((key, running))
        now = time.monotonic()
        read = written = 0
        with self._lock:
            eligible = [(k, t) for k, t in breakpoints if t >= self.min_cacheable_tokens]
            for key, tokens in eligible:
                if key in self._cache and self._cache[key] <= now:
                    read = tokens
            last = eligible[-1][1] if eligible else 0
            written = max(0, last - read)
            for key, _tokens_at in eligible:
                self._cache[key] = min(self._cache.get(key, ready_at), ready_at)
            usage = {
                "input_tokens": total - read - written,
                "output_tokens": _tokens(text),
                "cache_creation_input_tokens": written,
                "cache_read_input_tokens": read,
            }
            self.usages.append(usage)
        return usage


@contextmanager
def running_fake_claude(**options: Any) -> Iterator[FakeClaude]:
    """Start a FakeClaude on loopback for the duration of the block (used by the fixture and the benchmark)."""
    fake = FakeClaude(**options)
    with serve_on_loopback(fake.app) as base_url:
        fake.base_url = base_url
        yield fake


# -- helpers -----------------------------------------------------------------------------------------------


def _as_answer(source: Any) -> Answer:
    if isinstance(source, Answer):
        return source
    if isinstance(source, list):
        return Answer(findings=source)
    if isinstance(source, dict) and not {"findings", "summary"} & source.keys():
        return Answer(json_body=source)
    if isinstance(source, dict):
        return Answer(findings=source.get("findings", []), summary=source.get("summary", ""),
                      verdicts=source.get("verdicts", []), earlier=source.get("earlier", []))
    if isinstance(source, str):
        return Answer(text=source)
    raise TypeError(f"fake Claude: cannot use {type(source).__name__} as an answer")


def _apply_fault(answer: Answer, fault: _Fault | None) -> tuple[str, str, dict[str, Any] | None]:
    text = answer.body_text()
    if fault is None:
        details = _refusal_details() if answer.stop_reason == "refusal" else None
        return answer.stop_reason, text, details
    if fault.kind == "refusal":
        return "refusal", text[: len(text) // 3], _refusal_details()
    if fault.kind == "max_tokens":
        return "max_tokens", text[: max(1, len(text) // 2)], None
    return "end_turn", '{"summary": "The change looks fine", "findings": [{"path": ', None  # invalid_json


def _refusal_details() -> dict[str, Any]:
    return {
        "type": "refusal",
        "category": "cyber",
        "explanation": "This request was declined because it could enable cyber harm.",
    }


def _cap_output(text: str, stop_reason: str, max_tokens: int) -> tuple[str, str]:
    """Cut the answer at `max_tokens`, as the API stops generating there."""
    if _tokens(text) <= max_tokens:
        return text, stop_reason
    cut = int(max_tokens * CHARS_PER_TOKEN)
    while cut > 0 and _tokens(text[:cut]) > max_tokens:
        cut = cut * 9 // 10
    return text[:cut], "max_tokens"


def _context_error(tokens: int, max_tokens: int, window: int) -> str | None:
    """The API's 400 message when `tokens` of input plus `max_tokens` of output do not fit `window`, else None."""
    if tokens > window:
        return f"prompt is too long: {tokens} tokens > {window} maximum"
    if tokens + max_tokens > window:
        return (
            f"input length and `max_tokens` exceed context limit: {tokens} + {max_tokens} > {window}, "
            "decrease input length or `max_tokens` and try again"
        )
    return None


CHARS_PER_TOKEN = 3.5


def count_tokens(text: str) -> int:
    """The fake's token count of one text (see the module docstring: the documented average, not a tokenizer)."""
    if not text:
        return 0
    other = len(text) - len(text.encode("ascii", "ignore"))
    return max(1, round((len(text) - other) / CHARS_PER_TOKEN) + other)


_tokens = count_tokens


def _fmt_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every text-like block in cache order: tools, system, then message content."""
    blocks: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        blocks.append({"type": "tool", "text": json.dumps(tool, sort_keys=True),
                       "cache_control": tool.get("cache_control")})
    system = body.get("system")
    if isinstance(system, str):
        blocks.append({"type": "text", "text": system})
    elif isinstance(system, list):
        blocks.extend(system)
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            blocks.append({"type": "text", "text": content})
        else:
            blocks.extend(content)
    return blocks


def _message(
    model: str, text: str, stop_reason: str | None, stop_details: dict[str, Any] | None, usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": f"msg_fake_{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "stop_details": stop_details,
        "usage": usage,
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": "error", "error": {"type": kind, "message": message},
            "request_id": f"req_fake_{uuid.uuid4().hex[:16]}"}
    return JSONResponse(body, status_code=status, headers=headers)


# -- request validation ------------------------------------------------------------------------------------


def _validate(body: Any) -> None:
    """Raise BadRequest for anything the real endpoint rejects with 400 (the subset the bot can get wrong)."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = sorted(set(body) - _TOP_LEVEL_KEYS)
    if unknown:
        raise BadRequest(f"{unknown[0]}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= MAX_OUTPUT_TOKENS:
        raise BadRequest(f"max_tokens: must be an integer between 1 and {MAX_OUTPUT_TOKENS}")
    _validate_messages(body.get("messages"))
    _validate_system(body.get("system"))
    _validate_tool_choice(body.get("tool_choice"))
    _validate_output_config(body.get("output_config"))
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest("stream: Input should be a valid boolean")
    breakpoints = sum(1 for b in _blocks(body) if b.get("cache_control"))
    if breakpoints > 4:
        raise BadRequest("A maximum of 4 blocks with cache_control may be provided. Found " + str(breakpoints))


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if set(message) - {"role", "content"}:
            raise BadRequest(f"messages.{i}: Extra inputs are not permitted")
        content = message.get("content")
        if isinstance(content, str):
            if not content and i < len(messages) - 1:
                raise BadRequest(f"messages.{i}: content must be non-empty")
            continue
        if not isinstance(content, list) or not content:
            raise BadRequest(f"messages.{i}.content: must be a string or a non-empty list of blocks")
        for j, block in enumerate(content):
            _validate_text_block(block, f"messages.{i}.content.{j}")
    if messages[0]["role"] != "user":
        raise BadRequest("messages: first message must use the \"user\" role")


def _validate_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise BadRequest("system: Input should be a valid string or list of text blocks")
    for j, block in enumerate(system):
        _validate_text_block(block, f"system.{j}")


def _validate_text_block(block: Any, where: str) -> None:
    if not isinstance(block, dict) or block.get("type") != "text":
        raise BadRequest(f"{where}.type: this fake accepts text blocks only")
    if not isinstance(block.get("text"), str) or not block["text"]:
        raise BadRequest(f"{where}.text: text content blocks must be non-empty")
    if set(block) - {"type", "text", "cache_control", "citations"}:
        raise BadRequest(f"{where}: Extra inputs are not permitted")
    control = block.get("cache_control")
    if control is not None and (
        not isinstance(control, dict)
        or control.get("type") != "ephemeral"
        or set(control) - {"type", "ttl"}
        or control.get("ttl", "5m") not in ("5m", "1h")
    ):
        raise BadRequest(f"{where}.cache_control: must be {{\"type\": \"ephemeral\"}} with optional ttl 5m|1h")


def _validate_tool_choice(choice: Any) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise BadRequest("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if choice["type"] in ("any", "tool"):
        raise BadRequest("tool_choice: forcing tool use is not supported with this model; use 'auto' or 'none'")


def _validate_output_config(config: Any) -> None:
    if config is None:
        return
    if not isinstance(config, dict) or set(config) - {"effort", "format"}:
        raise BadRequest("output_config: Extra inputs are not permitted")
    effort = config.get("effort")
    if effort is not None and effort not in _EFFORTS:
        raise BadRequest(f"output_config.effort: Input should be one of {sorted(_EFFORTS)}")
    fmt = config.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or set(fmt) - {"type", "schema"}:
        raise BadRequest("output_config.format: must be {\"type\": \"json_schema\", \"schema\": {...}}")
    if not isinstance(fmt.get("schema"), dict):
        raise BadRequest("output_config.format.schema: Field required")
    _check_schema(fmt["schema"], "output_config.format.schema")


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise BadRequest(f"{where}: must be an object")
    bad = sorted(set(schema) & _UNSUPPORTED_SCHEMA_KEYS)
    if bad:
        raise BadRequest(f"{where}: '{bad[0]}' is not supported in structured output schemas")
    types = schema.get("type")
    type_list = types if isinstance(types, list) else [types]
    if "object" in type_list:
        if schema.get("additionalProperties") is not False:
            raise BadRequest(f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false")
        for name, sub in (schema.get("properties") or {}).items():
            _check_schema(sub, f"{where}.properties.{name}")
    if "items" in schema:
        _check_schema(schema["items"], f"{where}.items")
    for key in ("anyOf", "allOf"):
        for k, sub in enumerate(schema.get(key) or []):
            _check_schema(sub, f"{where}.{key}.{k}")


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _schema_errors(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """The places where `value` breaks `schema` (the subset structured outputs supports)."""
    if "anyOf" in schema:
        if all(_schema_errors(value, sub, where) for sub in schema["anyOf"]):
            return [f"{where}: matches no anyOf branch"]
        return []
    types = schema.get("type")
    if types is not None:
        type_list = types if isinstance(types, list) else [types]
        if not any(_JSON_TYPES[t](value) for t in type_list):
            return [f"{where}: expected {types}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    errors: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        errors += [f"{where}: missing {name}" for name in schema.get("required", []) if name not in value]
        for name, item in value.items():
            if name in props:
                errors += _schema_errors(item, props[name], f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected {name}")
    if isinstance(value, list) and "items" in schema:
        for k, item in enumerate(value):
            errors += _schema_errors(item, schema["items"], f"{where}[{k}]")
    return errors
