"""The reviewer: Claude as a senior backend developer, structured findings, parallel batches, cost to the token.

This package is the only one that imports `anthropic` (`bot.model.thread` answers questions in findings'
threads). Outcomes, decided and tested (tests/test_model.py):

- `stop_reason` is checked before the output is trusted. `refusal`, `max_tokens` (and
  `model_context_window_exceeded`), an answer that is not JSON or does not validate, and a 400/413 "too long"
  rejection each get one retry with the batch split in two halves; a half that fails again is reported as a
  `BatchOutcome` with `error` set (its files are "not reviewed", never given invented or truncated results).
- 429, 5xx and 529 are retried by the SDK (`max_retries` from settings). When they persist, or when the API
  asks to wait longer than `MAX_RETRY_WAIT_S` (the SDK would obey any `retry-after`), the whole review raises
  `ModelUnavailable(retry_at)`: the job system retries the review later, and no partial review is posted.
- 401/403/404 (bad key, no access, unknown model) raise `ConfigError`.
- The whole review runs under `deadline_s` (`asyncio.timeout`); missing it raises `DeadlineExceeded`.
- The first batch's call streams, and the others start when its first event arrives: a cache entry becomes
  readable once the response that writes it begins, so they read the system prompt from the prompt cache
  without waiting for the first answer to finish. At most `concurrency` calls run at once. When the first
  call ends without streaming (rejected, or split in halves), the others start then; when it raises, they
  never start.

Prompt and diff text are never logged; INFO lines carry counts only.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import anthropic
from pydantic import ValidationError

from bot.answer import output_schema, parse_answer, parse_rechecks, parse_verdicts
from bot.contract import (
    BatchInput,
    BatchOutcome,
    CallGate,
    Grant,
    PullContext,
    ReviewOutcome,
    Splitter,
    split_batch,
)
from bot.domain import Usage
from bot.errors import BotError, ConfigError, DeadlineExceeded, ModelUnavailable, RetryLater
from bot.prices import DEFAULT_PRICES, Price
from bot.prompts import batch_prompt, system_prompt
from bot.settings import Settings
from bot.verify import apply_verdicts, verify_turn

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS: Final = 16_000
# A verdict per finding is short: enough for dozens of findings, and a small reservation against the budgets.
VERIFY_MAX_TOKENS: Final = 4_000
OVER_BUDGET_REASON: Final = "over budget: this call would exceed the review's or the day's remaining budget"
MAX_RETRY_WAIT_S: Final = 60.0
# The SDK refuses non-streaming calls whose max_tokens implies over 10 minutes at its assumed 128k tokens/hour
# (`_calculate_nonstreaming_timeout` in anthropic/_base_client.py): 3600 * max_tokens / 128_000 > 600.
NONSTREAMING_MAX_TOKENS: Final = 21_333

def estimate_prompt_tokens(text: str) -> int:
    """A conservative input-token estimate for budget checks (3 characters a token; images and tools: none)."""
    return len(text) // 3 + 1


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


@dataclass
class _Run:
    """Per-review accounting, shared by the batch tasks."""

    usage: Usage = field(default_factory=Usage)
    verify_usage: Usage = field(default_factory=Usage)
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
        gate: CallGate | None = None,
        verify: bool = False,
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
        self.gate = gate  # budgets checked before each call, spend recorded after it (None: unlimited)
        self.verify = verify
        self._system: list[anthropic.types.TextBlockParam] = [
            {"type": "text", "text": system_prompt(), "cache_control": {"type": "ephemeral"}}
        ]
        self._system_tokens = estimate_prompt_tokens(system_prompt())
        self._output_config: anthropic.types.OutputConfigParam = {
            "format": {"type": "json_schema", "schema": output_schema()}
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
        return ReviewOutcome(outcomes, run.usage, cost, self.model, run.calls, run.verify_usage,
                             self.price.cost(run.verify_usage))

    async def _review_all(
        self, run: _Run, context: PullContext, batches: Sequence[BatchInput]
    ) -> list[list[BatchOutcome]]:
        results: list[list[BatchOutcome]] = [[] for _ in batches]
        if not batches:
            return results
        semaphore = asyncio.Semaphore(self.concurrency)
        # Set when the first call's response begins (its cache write is readable) or it ends without raising.
        cache_started = asyncio.Event() if len(batches) > 1 else None

        async def one(position: int, batch: BatchInput, first_event: asyncio.Event | None = None) -> None:
            results[position] = await self._review_batch(run, semaphore, context, batch, first_event)

        async def the_others(group: asyncio.TaskGroup) -> None:
            if cache_started is not None:
                await cache_started.wait()
            for position, batch in enumerate(batches[1:], start=1):
                group.create_task(one(position, batch))

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(one(0, batches[0], cache_started))
                group.create_task(the_others(group))
        except BaseExceptionGroup as errors:
            raise _first_error(errors) from None
        return results

    async def _review_batch(
        self, run: _Run, semaphore: asyncio.Semaphore, context: PullContext, batch: BatchInput,
        first_event: asyncio.Event | None = None,
    ) -> list[BatchOutcome]:
        first = await self._attempt(run, semaphore, context, batch, first_event)
        if first_event is not None:
            first_event.set()
        if not first.retry_smaller:
            return [first.outcome]
        halves = list(self.split(batch))
        if len(halves) < 2:
            return [first.outcome]
        log.info("retrying batch in halves", extra={"batch": batch.index, "reason": first.outcome.error})
        attempts = await asyncio.gather(*(self._attempt(run, semaphore, context, half) for half in halves))
        # The failed first call cost money too: charge it to the first half's outcome.
        outcomes = [a.outcome for a in attempts]
        outcomes[0] = replace(outcomes[0], usage=outcomes[0].usage + first.outcome.usage)
        return outcomes

    async def _attempt(
        self, run: _Run, semaphore: asyncio.Semaphore, context: PullContext, batch: BatchInput,
        first_event: asyncio.Event | None = None,
    ) -> _Attempt:
        prompt = batch_prompt(
            repo=context.repo, title=context.title, body=context.body, files=batch.files, diff=batch.text,
            instructions=context.instructions, language=context.language, earlier=batch.earlier,
            recheck_only=batch.recheck_only,
        )
        block: anthropic.types.TextBlockParam = {"type": "text", "text": prompt.text}
        if self.verify:  # the verification turn reads the batch from the cache instead of paying for it again
            block["cache_control"] = {"type": "ephemeral"}
        messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": [block]}]
        async with semaphore:
            grant = Grant(self.max_tokens)
            if self.gate is not None:
                grant = await self.gate.admit(self._system_tokens + estimate_prompt_tokens(prompt.text),
                                              self.max_tokens)
                if grant.max_tokens <= 0:
                    return _Attempt(_failed(batch, OVER_BUDGET_REASON, Usage()))
            started = time.monotonic()
            paid = Usage()
            try:
                message = await self._call(messages, first_event, grant.max_tokens)
                paid = _usage(message.usage)
            except anthropic.APIStatusError as exc:
                return self._rejected(batch, exc)
            except anthropic.APIConnectionError as exc:
                raise ModelUnavailable(f"model API unreachable after retries: {type(exc).__name__}") from None
            finally:
                if self.gate is not None:  # recorded as soon as it is paid, whatever happens next
                    await self.gate.settle(grant, paid)
        usage = paid
        run.usage += usage
        run.calls += 1
        stop = message.stop_reason
        log.info(
            "model call",
            extra={
                "batch": batch.index, "stop_reason": stop, "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens, "cache_read_tokens": usage.cache_read_input_tokens,
                "cache_write_tokens": usage.cache_creation_input_tokens, "max_tokens": grant.max_tokens,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        attempt = self._judge(batch, message, usage)
        if self.verify and attempt.outcome.error is None and attempt.outcome.findings:
            answer = "".join(b.text for b in message.content if b.type == "text")
            return _Attempt(await self._verify(run, semaphore, messages, answer, attempt.outcome))
        return attempt

    async def _verify(
        self, run: _Run, semaphore: asyncio.Semaphore, messages: list[anthropic.types.MessageParam], answer: str,
        outcome: BatchOutcome,
    ) -> BatchOutcome:
        """The verification turn (see `bot.verify`): same conversation, same schema; it can only drop findings,
        and when it fails the findings stand."""
        turn: list[anthropic.types.MessageParam] = [
            *messages,
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
            {"role": "user", "content": [{"type": "text", "text": verify_turn()}]},
        ]
        async with semaphore:
            grant = Grant(VERIFY_MAX_TOKENS)
            if self.gate is not None:  # the turn is a model call like any other: inside the budgets
                estimate = self._system_tokens + estimate_prompt_tokens(turn_text(turn))
                grant = await self.gate.admit(estimate, VERIFY_MAX_TOKENS)
                if grant.max_tokens <= 0:
                    log.info("verification skipped: over budget; findings kept", extra={"batch": outcome.index})
                    return outcome
            paid = Usage()
            try:
                message = await self._call(turn, None, grant.max_tokens)
                paid = _usage(message.usage)
            except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
                log.warning("verification turn failed; findings kept", extra={"batch": outcome.index,
                                                                              "error": type(exc).__name__})
                return outcome
            finally:
                if self.gate is not None:
                    await self.gate.settle(grant, paid)
        usage = paid
        run.usage += usage
        run.verify_usage += usage
        run.calls += 1
        checked = replace(outcome, usage=outcome.usage + usage, checked=len(outcome.findings))
        text = "".join(b.text for b in message.content if b.type == "text")
        try:
            if message.stop_reason not in ("end_turn", "stop_sequence"):
                raise ValueError(f"stopped: {message.stop_reason}")
            verdicts = parse_verdicts(text)
        except ValueError as exc:  # pydantic's ValidationError included
            log.warning("verification answer unusable; findings kept", extra={"batch": outcome.index,
                                                                               "error": type(exc).__name__})
            return checked
        kept, dropped = apply_verdicts(outcome.findings, verdicts)
        log.info("verification", extra={"batch": outcome.index, "checked": len(outcome.findings),
                                        "dropped": len(dropped), "input_tokens": usage.input_tokens,
                                        "cache_read_tokens": usage.cache_read_input_tokens,
                                        "output_tokens": usage.output_tokens})
        for item in dropped:  # model text: only at DEBUG, like prompts and diffs
            log.debug("verification dropped %r: %s", item.finding.title, item.reason)
        return replace(checked, findings=kept, dropped=dropped)

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
            rechecks = parse_rechecks(text) if batch.earlier else ()
        except ValidationError as exc:
            reason = f"the model's answer did not match the findings schema ({exc.error_count()} error(s))"
            return _Attempt(_failed(batch, reason, usage), retry_smaller=True)
        except ValueError:
            return _Attempt(_failed(batch, "the model's answer was not valid JSON", usage), retry_smaller=True)
        if batch.recheck_only:  # shown only to re-check earlier findings: new findings in it are not used
            findings = ()
        return _Attempt(BatchOutcome(batch.index, batch.files, findings, summary, usage,
                                     sent=tuple(e.id for e in batch.earlier), rechecks=rechecks,
                                     recheck_only=batch.recheck_only))

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


def turn_text(messages: Sequence[anthropic.types.MessageParam]) -> str:
    """Every text block of a conversation, joined (for the input-token estimate of a later turn)."""
    texts: list[str] = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            texts.append(content)
            continue
        texts += [str(block.get("text", "")) for block in content if isinstance(block, dict)]
    return "\n".join(texts)


def _failed(batch: BatchInput, reason: str, usage: Usage) -> BatchOutcome:
    return BatchOutcome(batch.index, batch.files, (), "", usage, reason, recheck_only=batch.recheck_only)


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
