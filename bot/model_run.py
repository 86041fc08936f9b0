"""How one review's model calls run, whatever the SDK (`bot.model` sends each call). Decided and tested
(tests/test_model.py):

- `stop_reason` is checked before the output is trusted. `refusal`, `max_tokens` (and
  `model_context_window_exceeded`), an answer that is not JSON or does not validate, and a 400/413 "too long"
  rejection each get one retry with the batch split in two halves; a half that fails again is reported as a
  `BatchOutcome` with `error` set (its files are "not reviewed", never given invented or truncated results).
- 429, 5xx and 529 that persist after the SDK's retries (or a `retry-after` too long to wait, see `bot.model`)
  raise `ModelUnavailable(retry_at)`: the job system retries the review later, and no partial review is posted.
- 401/403/404 (bad key, no access, unknown model) raise `ConfigError`.
- The whole review runs under `deadline_s` (`asyncio.timeout`); missing it raises `DeadlineExceeded`.
- The first batch's call streams, and the others start when its first event arrives: a cache entry becomes
  readable once the response that writes it begins, so they read the system prompt from the prompt cache
  without waiting for the first answer to finish. At most `concurrency` calls run at once. When the first
  call ends without streaming (rejected, or split in halves), the others start then; when it raises, they
  never start.
- Every call, the verification turn's too, passes the spend gate first and is recorded by it once paid.

Prompt and diff text are never logged; INFO lines carry counts only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from pydantic import ValidationError

from bot.answer import parse_answer, parse_rechecks, parse_verdicts
from bot.contract import BatchInput, BatchOutcome, CallGate, Grant, PullContext, ReviewOutcome, Splitter
from bot.domain import Usage
from bot.errors import BotError, ConfigError, DeadlineExceeded, ModelUnavailable, RetryLater
from bot.model_call import (
    CallRejected,
    CallUnreachable,
    Reply,
    Send,
    Turn,
    estimate_prompt_tokens,
    raise_for_status,
)
from bot.prices import Price, price_of
from bot.prompts import batch_prompt
from bot.verify import apply_verdicts, verify_turn

log = logging.getLogger(__name__)

# A verdict per finding is short: enough for dozens of findings, and a small reservation against the budgets.
VERIFY_MAX_TOKENS: Final = 4_000
OVER_BUDGET_REASON: Final = "over budget: this call would exceed the review's or the day's remaining budget"
# The API's 400 texts for a request over the context window: the input alone ("prompt is too long: N tokens >
# M maximum"), or input plus max_tokens ("input length and `max_tokens` exceed context limit: N + K > M, ...").
_TOO_LONG_MARKERS: Final = ("too long", "exceed context limit")


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


class ReviewRun:
    """Reviews batches of one pull request through `send`: concurrent, bounded, deadline-enforced, accounted."""

    def __init__(
        self,
        send: Send,
        model: str,
        *,
        system_tokens: int,
        concurrency: int,
        deadline_s: float,
        prices: Mapping[str, Price] | None,
        max_tokens: int,
        split: Splitter,
        gate: CallGate | None,
        verify: bool,
    ) -> None:
        self.price = price_of(model, prices)
        if concurrency < 1 or deadline_s <= 0 or max_tokens < 1:
            raise ConfigError("Reviewer: concurrency, deadline_s and max_tokens must be positive")
        self.send = send
        self.model = model
        self.system_tokens = system_tokens
        self.concurrency = concurrency
        self.deadline_s = deadline_s
        self.max_tokens = max_tokens
        self.split = split
        self.gate = gate  # budgets checked before each call, spend recorded after it (None: unlimited)
        self.verify = verify

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
                # One start per turn of the event loop: building a request (a 60,000-token prompt encoded as JSON)
                # is CPU work, and several in one turn would keep everything else waiting for their sum.
                await asyncio.sleep(0)

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
        # With verification, the batch is cached: the verification turn reads it instead of paying for it again.
        turns = [Turn("user", prompt.text, cached=self.verify)]
        async with semaphore:
            grant = Grant(self.max_tokens)
            if self.gate is not None:
                grant = await self.gate.admit(self.system_tokens + estimate_prompt_tokens(prompt.text),
                                              self.max_tokens)
                if grant.max_tokens <= 0:
                    return _Attempt(_failed(batch, OVER_BUDGET_REASON, Usage()))
            started = time.monotonic()
            paid = Usage()
            try:
                reply = await self.send(turns, first_event, grant.max_tokens)
                paid = reply.usage
            except CallRejected as exc:
                return self._rejected(batch, exc)
            except CallUnreachable as exc:
                raise ModelUnavailable(f"model API unreachable after retries: {exc}") from None
            finally:
                if self.gate is not None:  # recorded as soon as it is paid, whatever happens next
                    await self.gate.settle(grant, paid)
        usage = paid
        run.usage += usage
        run.calls += 1
        log.info(
            "model call",
            extra={
                "batch": batch.index, "stop_reason": reply.stop_reason, "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens, "cache_read_tokens": usage.cache_read_input_tokens,
                "cache_write_tokens": usage.cache_creation_input_tokens, "max_tokens": grant.max_tokens,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        attempt = self._judge(batch, reply)
        if self.verify and attempt.outcome.error is None and attempt.outcome.findings:
            return _Attempt(await self._verify(run, semaphore, turns, reply.text, attempt.outcome))
        return attempt

    async def _verify(
        self, run: _Run, semaphore: asyncio.Semaphore, turns: Sequence[Turn], answer: str, outcome: BatchOutcome,
    ) -> BatchOutcome:
        """The verification turn (see `bot.verify`): same conversation, same schema; it can only drop findings,
        and when it fails the findings stand."""
        turn = [*turns, Turn("assistant", answer), Turn("user", verify_turn())]
        async with semaphore:
            grant = Grant(VERIFY_MAX_TOKENS)
            if self.gate is not None:  # the turn is a model call like any other: inside the budgets
                estimate = self.system_tokens + estimate_prompt_tokens("\n".join(t.text for t in turn))
                grant = await self.gate.admit(estimate, VERIFY_MAX_TOKENS)
                if grant.max_tokens <= 0:
                    log.info("verification skipped: over budget; findings kept", extra={"batch": outcome.index})
                    return outcome
            paid = Usage()
            try:
                reply = await self.send(turn, None, grant.max_tokens)
                paid = reply.usage
            except (CallRejected, CallUnreachable) as exc:
                log.warning("verification turn failed; findings kept", extra={"batch": outcome.index,
                                                                              "error": str(exc)[:200]})
                return outcome
            finally:
                if self.gate is not None:
                    await self.gate.settle(grant, paid)
        usage = paid
        run.usage += usage
        run.verify_usage += usage
        run.calls += 1
        checked = replace(outcome, usage=outcome.usage + usage, checked=len(outcome.findings))
        try:
            if reply.stop_reason not in ("end_turn", "stop_sequence"):
                raise ValueError(f"stopped: {reply.stop_reason}")
            verdicts = parse_verdicts(reply.text)
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

    def _judge(self, batch: BatchInput, reply: Reply) -> _Attempt:
        stop, usage = reply.stop_reason, reply.usage
        if stop == "refusal":
            category = reply.refusal_category
            reason = "the model declined to review this part" + (f" ({category})" if category else "")
            return _Attempt(_failed(batch, reason, usage), retry_smaller=True)
        if stop in ("max_tokens", "model_context_window_exceeded"):
            reason = f"the model's answer was cut off ({stop}); nothing from it was used"
            return _Attempt(_failed(batch, reason, usage), retry_smaller=True)
        if stop not in ("end_turn", "stop_sequence"):
            return _Attempt(_failed(batch, f"the model stopped unexpectedly ({stop})", usage), retry_smaller=True)
        try:
            summary, findings = parse_answer(reply.text)
            rechecks = parse_rechecks(reply.text) if batch.earlier else ()
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

    def _rejected(self, batch: BatchInput, exc: CallRejected) -> _Attempt:
        raise_for_status(exc, self.model)
        too_long = exc.status == 413 or any(marker in exc.message.lower() for marker in _TOO_LONG_MARKERS)
        reason = f"the model API rejected the request ({exc.status}): {exc.message}"
        return _Attempt(_failed(batch, reason, Usage()), retry_smaller=too_long)


def _failed(batch: BatchInput, reason: str, usage: Usage) -> BatchOutcome:
    return BatchOutcome(batch.index, batch.files, (), "", usage, reason, recheck_only=batch.recheck_only)


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
