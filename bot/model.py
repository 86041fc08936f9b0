"""The reviewer: Claude as a senior backend developer, structured findings, parallel batches, cost to the token.

This is the only module that imports `anthropic`. Outcomes, decided and tested (tests/test_model.py):

- `stop_reason` is checked before the output is trusted. `refusal`, `max_tokens` (and
  `model_context_window_exceeded`), an answer that is not JSON or does not validate, and a 400/413 "too long"
  rejection each get one retry with the batch split in two halves; a half that fails again is reported as a
  `BatchOutcome` with `error` set (its files are "not reviewed", never given invented or truncated results).
- 429, 5xx and 529 are retried by the SDK (`max_retries` from settings). When they persist, or when the API
  asks to wait longer than `MAX_RETRY_WAIT_S` (the SDK would obey any `retry-after`), the whole review raises
  `ModelUnavailable(retry_at)`: the job system retries the review later, and no partial review is posted.
- 401/403/404 (bad key, no access, unknown model) raise `ConfigError`.
- The whole review runs under `deadline_s` (`asyncio.timeout`); missing it raises `DeadlineExceeded`.
- The first batch's call completes before the others start, so they read the system prompt from the prompt
  cache (a cache entry becomes readable once the response that writes it begins); then at most `concurrency`
  calls run at once.

Prompt and diff text are never logged; INFO lines carry counts only.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

import anthropic
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.domain import Category, Finding, NotReviewed, Severity, Side, Usage
from bot.errors import BotError, ConfigError, DeadlineExceeded, ModelUnavailable, RetryLater
from bot.prompts import batch_prompt, system_prompt
from bot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS: Final = 16_000
MAX_RETRY_WAIT_S: Final = 60.0
# The SDK refuses non-streaming calls whose max_tokens implies over 10 minutes at its assumed 128k tokens/hour
# (`_calculate_nonstreaming_timeout` in anthropic/_base_client.py): 3600 * max_tokens / 128_000 > 600.
NONSTREAMING_MAX_TOKENS: Final = 21_333

# Stable on purpose: the schema is part of the cached prefix, so any change invalidates the prompt cache.
REVIEW_SCHEMA: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string"},
                        "start_line": {"type": "integer"},
                        "end_line": {"type": "integer"},
                        "side": {"type": "string", "enum": ["right", "left"]},
                        "severity": {"type": "string", "enum": ["critical", "high", "medium", "low"]},
                        "category": {
                            "type": "string",
                            "enum": ["security", "validation", "performance", "tests", "reliability", "design"],
                        },
                        "title": {"type": "string"},
                        "body": {"type": "string"},
                        "suggestion": {"type": ["string", "null"]},
                    },
                    "required": [
                        "path", "start_line", "end_line", "side", "severity", "category", "title", "body",
                        "suggestion",
                    ],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["summary", "findings"],
        "additionalProperties": False,
    }
)


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


@dataclass(frozen=True, slots=True)
class PullContext:
    """What the prompt says about the pull request; `instructions` is the owner's trusted configuration text."""

    repo: str
    title: str
    body: str
    instructions: str = ""
    language: str = "English"


@dataclass(frozen=True, slots=True)
class BatchInput:
    """One batch: rendered diff text (with line-number gutters) and the files it covers."""

    index: int
    text: str
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """The result for (part of) one batch; `error` set means its files were not reviewed, and why."""

    index: int
    files: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    summary: str = ""
    usage: Usage = field(default_factory=Usage)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    """Every batch's outcome plus the review's totals."""

    batches: tuple[BatchOutcome, ...]
    usage: Usage
    cost_usd: float
    model: str
    calls: int

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Findings of every batch that was reviewed, in batch order."""
        return tuple(f for b in self.batches if b.error is None for f in b.findings)

    @property
    def failed(self) -> tuple[BatchOutcome, ...]:
        """Outcomes whose files were not reviewed."""
        return tuple(b for b in self.batches if b.error is not None)

    @property
    def not_reviewed(self) -> tuple[NotReviewed, ...]:
        """The files of failed outcomes, each with the reason."""
        return tuple(NotReviewed(path, b.error or "") for b in self.failed for path in b.files)


Splitter = Callable[[BatchInput], Sequence[BatchInput]]


def split_batch(batch: BatchInput) -> list[BatchInput]:
    """Split a batch into two halves at the file boundary nearest the middle (else the line nearest it).

    A file boundary is a line that starts with a file's path, or with a `diff --git`/`+++ `/`--- ` header
    mentioning one. Each half keeps the batch's index and the files whose path its text mentions. Returns a
    single element when the text cannot be split.
    """
    lines = batch.text.splitlines(keepends=True)
    if len(lines) < 2:
        return [batch]
    boundaries = [i for i, line in enumerate(lines) if i > 0 and _starts_file(line, batch.files)]
    candidates = boundaries or list(range(1, len(lines)))
    middle = len(lines) / 2
    cut = min(candidates, key=lambda i: abs(i - middle))
    halves = ("".join(lines[:cut]), "".join(lines[cut:]))
    return [
        BatchInput(batch.index, text, tuple(f for f in batch.files if f in text) or batch.files) for text in halves
    ]


def _starts_file(line: str, files: Sequence[str]) -> bool:
    stripped = line.lstrip("#= ").removeprefix("diff --git ").removeprefix("+++ ").removeprefix("--- ")
    stripped = stripped.removeprefix("a/").removeprefix("b/")
    return any(stripped.startswith(path) for path in files)


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


#: The Messages API client type, named here for callers (only this module imports anthropic).
ModelClient = anthropic.AsyncAnthropic


def make_client(settings: Settings, max_retry_wait_s: float = MAX_RETRY_WAIT_S) -> anthropic.AsyncAnthropic:
    """An AsyncAnthropic client from settings (the SDK reads ANTHROPIC_API_KEY/ANTHROPIC_BASE_URL when unset)."""
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key is not None else None
    return anthropic.AsyncAnthropic(
        api_key=key,
        base_url=settings.anthropic_base_url,
        max_retries=settings.model_max_retries,
        middleware=[_RetryAfterCap(max_retry_wait_s)],
    )


MAX_PATH_CHARS = 1_000
MAX_TITLE_CHARS = 1_000
MAX_TEXT_CHARS = 40_000


class _FindingAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    side: Literal["right", "left"]
    severity: Severity
    category: Category
    title: str = Field(min_length=1)
    body: str = Field(min_length=1)
    suggestion: str | None

    @field_validator("side", "severity", "category", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ordered(self) -> _FindingAnswer:
        if self.end_line < self.start_line:
            raise ValueError("end_line precedes start_line")
        return self

    def to_finding(self) -> Finding:
        # Structured outputs cannot bound string lengths, so the boundary does: the sanitiser later caps far
        # lower with a visible "(truncated)"; these limits only keep pathological answers from costing CPU.
        return Finding(
            path=self.path[:MAX_PATH_CHARS],
            start_line=self.start_line,
            end_line=self.end_line,
            side=Side.RIGHT if self.side == "right" else Side.LEFT,
            severity=self.severity,
            category=self.category,
            title=self.title.strip()[:MAX_TITLE_CHARS],
            body=self.body.strip()[:MAX_TEXT_CHARS],
            suggestion=self.suggestion[:MAX_TEXT_CHARS] if self.suggestion is not None else None,
        )


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str
    findings: list[_FindingAnswer]


def parse_answer(text: str) -> tuple[str, tuple[Finding, ...]]:
    """Validate the model's JSON answer; raises ValueError (incl. pydantic's ValidationError) when it is unusable."""
    data = json.loads(text)
    answer = _Answer.model_validate(data)
    return answer.summary.strip(), tuple(f.to_finding() for f in answer.findings)


@dataclass
class _Run:
    """Per-review accounting, shared by the batch tasks."""

    usage: Usage = field(default_factory=Usage)
    calls: int = 0


@dataclass(frozen=True, slots=True)
class _Attempt:
    outcome: BatchOutcome
    retry_smaller: bool = False


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
    ) -> None:
        table = {**DEFAULT_PRICES, **(prices or {})}
        if model not in table:
            raise ConfigError(f"REVIEW_MODEL: no price configured for {model!r}; add it to the price table")
        if concurrency < 1 or deadline_s <= 0 or max_tokens < 1:
            raise ConfigError("Reviewer: concurrency, deadline_s and max_tokens must be positive")
        self.client = client
        self.model = model
        self.effort = effort
        self.concurrency = concurrency
        self.deadline_s = deadline_s
        self.price = table[model]
        self.max_tokens = max_tokens
        self.split = split
        self._system: list[anthropic.types.TextBlockParam] = [
            {"type": "text", "text": system_prompt(), "cache_control": {"type": "ephemeral"}}
        ]
        self._output_config: anthropic.types.OutputConfigParam = {
            "format": {"type": "json_schema", "schema": dict(REVIEW_SCHEMA)}
        }
        if effort is not None:
            self._output_config["effort"] = effort

    async def review(self, context: PullContext, batches: Sequence[BatchInput]) -> ReviewOutcome:
        """Review every batch; raises DeadlineExceeded, ModelUnavailable or ConfigError (see module docstring)."""
        run = _Run()
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.deadline_s):
                results = await self._review_all(run, context, batches)
        except TimeoutError:
            log.warning("review missed its deadline", extra={"deadline_s": self.deadline_s, "calls": run.calls})
            raise DeadlineExceeded(f"review missed its deadline of {self.deadline_s:g}s") from None
        outcomes = tuple(o for per_batch in results for o in per_batch)
        cost = self.price.cost(run.usage)
        log.info(
            "review done",
            extra={
                "batches": len(batches), "failed": sum(1 for o in outcomes if o.error), "calls": run.calls,
                "input_tokens": run.usage.input_tokens, "output_tokens": run.usage.output_tokens,
                "cache_write_tokens": run.usage.cache_creation_input_tokens,
                "cache_read_tokens": run.usage.cache_read_input_tokens, "cost_usd": round(cost, 6),
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return ReviewOutcome(outcomes, run.usage, cost, self.model, run.calls)

    async def _review_all(
        self, run: _Run, context: PullContext, batches: Sequence[BatchInput]
    ) -> list[list[BatchOutcome]]:
        results: list[list[BatchOutcome]] = [[] for _ in batches]
        if not batches:
            return results
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(position: int, batch: BatchInput) -> None:
            results[position] = await self._review_batch(run, semaphore, context, batch)

        # The first call completes alone so that the others read the system prompt from the cache.
        await one(0, batches[0])
        try:
            async with asyncio.TaskGroup() as group:
                for position, batch in enumerate(batches[1:], start=1):
                    group.create_task(one(position, batch))
        except BaseExceptionGroup as errors:
            raise _first_error(errors) from None
        return results

    async def _review_batch(
        self, run: _Run, semaphore: asyncio.Semaphore, context: PullContext, batch: BatchInput
    ) -> list[BatchOutcome]:
        first = await self._attempt(run, semaphore, context, batch)
        if not first.retry_smaller:
            return [first.outcome]
        halves = list(self.split(batch))
        if len(halves) < 2:
            return [first.outcome]
        log.info("retrying batch in halves", extra={"batch": batch.index, "reason": first.outcome.error})
        attempts = await asyncio.gather(*(self._attempt(run, semaphore, context, half) for half in halves))
        # The failed first call cost money too: charge it to the first half's outcome.
        outcomes = [a.outcome for a in attempts]
        head = outcomes[0]
        outcomes[0] = BatchOutcome(
            head.index, head.files, head.findings, head.summary, head.usage + first.outcome.usage, head.error
        )
        return outcomes

    async def _attempt(
        self, run: _Run, semaphore: asyncio.Semaphore, context: PullContext, batch: BatchInput
    ) -> _Attempt:
        prompt = batch_prompt(
            repo=context.repo, title=context.title, body=context.body, files=batch.files, diff=batch.text,
            instructions=context.instructions, language=context.language,
        )
        messages: list[anthropic.types.MessageParam] = [
            {"role": "user", "content": [{"type": "text", "text": prompt.text}]}
        ]
        async with semaphore:
            started = time.monotonic()
            try:
                message = await self._call(messages)
            except anthropic.APIStatusError as exc:
                return self._rejected(batch, exc)
            except anthropic.APIConnectionError as exc:
                raise ModelUnavailable(f"model API unreachable after retries: {type(exc).__name__}") from None
        usage = _usage(message.usage)
        run.usage += usage
        run.calls += 1
        stop = message.stop_reason
        log.info(
            "model call",
            extra={
                "batch": batch.index, "stop_reason": stop, "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens, "cache_read_tokens": usage.cache_read_input_tokens,
                "cache_write_tokens": usage.cache_creation_input_tokens,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return self._judge(batch, message, usage)

    async def _call(self, messages: list[anthropic.types.MessageParam]) -> anthropic.types.Message:
        if needs_streaming(self.max_tokens):
            async with self.client.messages.stream(
                model=self.model, max_tokens=self.max_tokens, system=self._system,
                messages=messages, output_config=self._output_config,
            ) as stream:
                return await stream.get_final_message()
        return await self.client.messages.create(
            model=self.model, max_tokens=self.max_tokens, system=self._system,
            messages=messages, output_config=self._output_config,
        )

    def _judge(self, batch: BatchInput, message: anthropic.types.Message, usage: Usage) -> _Attempt:
        stop = message.stop_reason
        if stop == "refusal":
            category = message.stop_details.category if message.stop_details else None
            reason = "the model declined to review this part" + (f" ({category})" if category else "")
            return _Attempt(_failed(batch, reason, usage), retry_smaller=True)
        if stop in ("max_tokens", "model_context_window_exceeded"):
            reason = f"the model's answer was cut off ({stop}); nothing from it was used"
            return _Attempt(_failed(batch, reason, usage), retry_smaller=True)
        if stop not in ("end_turn", "stop_sequence"):
            return _Attempt(_failed(batch, f"the model stopped unexpectedly ({stop})", usage), retry_smaller=True)
        text = "".join(block.text for block in message.content if block.type == "text")
        try:
            summary, findings = parse_answer(text)
        except ValidationError as exc:
            reason = f"the model's answer did not match the findings schema ({exc.error_count()} error(s))"
            return _Attempt(_failed(batch, reason, usage), retry_smaller=True)
        except ValueError:
            return _Attempt(_failed(batch, "the model's answer was not valid JSON", usage), retry_smaller=True)
        return _Attempt(BatchOutcome(batch.index, batch.files, findings, summary, usage))

    def _rejected(self, batch: BatchInput, exc: anthropic.APIStatusError) -> _Attempt:
        status = exc.status_code
        if status in (401, 403):
            raise ConfigError(f"ANTHROPIC_API_KEY: the model API rejected the key ({status})") from None
        if status == 404:
            raise ConfigError(f"REVIEW_MODEL: the model API does not know {self.model!r} (404)") from None
        if status == 429 or status >= 500:
            wait = retry_after_seconds(exc.response.headers)
            retry_at = time.time() + (wait if wait is not None else MAX_RETRY_WAIT_S)
            raise ModelUnavailable(f"model API still answering {status} after retries", retry_at=retry_at) from None
        message = _error_message(exc)
        too_long = status == 413 or any(marker in message.lower() for marker in _TOO_LONG_MARKERS)
        reason = f"the model API rejected the request ({status}): {message}"
        return _Attempt(_failed(batch, reason, Usage()), retry_smaller=too_long)


# The API's 400 texts for a request over the context window: the input alone ("prompt is too long: N tokens >
# M maximum"), or input plus max_tokens ("input length and `max_tokens` exceed context limit: N + K > M, ...").
_TOO_LONG_MARKERS: Final = ("too long", "exceed context limit")


def _failed(batch: BatchInput, reason: str, usage: Usage) -> BatchOutcome:
    return BatchOutcome(batch.index, batch.files, (), "", usage, reason)


def _usage(usage: anthropic.types.Usage) -> Usage:
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
    )


def _error_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:300]
    return str(exc)[:300]


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to surface from a task group: a bot error (RetryLater first) over anything else."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        current = pending.pop(0)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        else:
            leaves.append(current)
    for kind in (RetryLater, BotError):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0]
