"""The reviewer against the fake Claude over loopback, with the real SDK: request shape, outcomes, accounting."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import anthropic._base_client
import pytest

from bot.answer import output_schema, thread_output_schema
from bot.contract import BatchInput, PullContext, split_batch
from bot.domain import Category, NotReviewed, Severity, Side, Usage
from bot.errors import ConfigError, DeadlineExceeded, ModelUnavailable
from bot.model.client import make_client, needs_streaming, warm_up
from bot.model.reviewer import Reviewer
from bot.prices import DEFAULT_PRICES, Price
from bot.prompts import system_prompt
from bot.settings import load_settings
from tests.fakes.claude import Answer, FakeClaude, count_tokens, finding

CONTEXT = PullContext(
    repo="acme/payments",
    title="Add transfer endpoint TITLE-MARK",
    body="Moves money BODY-MARK",
    instructions="Handlers run inside a transaction OWNER-MARK",
)
TWO_FILES = BatchInput(
    0, "app/api.py\n  1 + a = 1\n  2 + b = 2\napp/db.py\n  1 + c = 3\n  2 + d = 4\n", ("app/api.py", "app/db.py")
)

MakeReviewer = Callable[..., Reviewer]


@pytest.fixture
def make_reviewer(fake_claude: FakeClaude) -> MakeReviewer:
    """Build a Reviewer on a client from settings pointing at the fake (retries off unless asked)."""

    def build(max_retries: int = 0, **options: Any) -> Reviewer:
        settings = load_settings(
            anthropic_api_key=fake_claude.api_key, anthropic_base_url=fake_claude.base_url,
            model_max_retries=max_retries,
        )
        options.setdefault("model", "claude-sonnet-5-5")
        return Reviewer(make_client(settings), **options)

    return build


def _batches(n: int) -> list[BatchInput]:
    return [BatchInput(i, f"src/f{i}.py\n  1 + x = {i}\n", (f"src/f{i}.py",)) for i in range(n)]


# -- the request ----------------------------------------------------------------------------------------------


async def test_request_shape(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    await make_reviewer(effort="medium", max_tokens=8000).review(CONTEXT, [TWO_FILES])
    request = fake_claude.requests[0].json
    assert request["model"] == "claude-sonnet-5-5"
    assert request["max_tokens"] == 8000
    assert request["system"] == [
        {"type": "text", "text": system_prompt(), "cache_control": {"type": "ephemeral"}}
    ]
    assert request["output_config"] == {
        "format": {"type": "json_schema", "schema": output_schema()},
        "effort": "medium",
    }
    assert "tool_choice" not in request and "tools" not in request
    assert "stream" not in request
    [message] = request["messages"]
    assert message["role"] == "user"
    [block] = message["content"]
    assert "cache_control" not in block
    text = block["text"]
    nonce = re.search(r'<untrusted-data nonce="([0-9a-f]{32})">', text).group(1)  # type: ignore[union-attr]
    opening, closing = f'\n<untrusted-data nonce="{nonce}">\n', f'\n</untrusted-data nonce="{nonce}">'
    inside = text.split(opening)[1].split(closing)[0]
    for marker in ("TITLE-MARK", "BODY-MARK", "app/api.py", "app/db.py", "c = 3"):
        assert marker in inside
    assert "OWNER-MARK" in text and "OWNER-MARK" not in inside


async def test_each_request_gets_its_own_nonce(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    await make_reviewer().review(CONTEXT, _batches(3))
    nonces = {re.search(r'nonce="([0-9a-f]{32})"', r.json["messages"][0]["content"][0]["text"]).group(1)  # type: ignore[union-attr]
              for r in fake_claude.requests}
    assert len(nonces) == 3


def test_schema_forbids_additional_properties_everywhere() -> None:
    def objects(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            found = [node] if node.get("type") == "object" else []
            return found + [o for value in node.values() for o in objects(value)]
        if isinstance(node, list):
            return [o for item in node for o in objects(item)]
        return []

    found = objects(output_schema())
    assert len(found) == 4  # the answer, a finding, a verdict, an earlier finding's re-check
    assert all(o["additionalProperties"] is False for o in found)
    # Only the verification turn's `verdicts` and the re-check's `earlier` are optional: one schema serves every
    # turn (and the prompt cache).
    assert [sorted(set(o["properties"]) - set(o["required"])) for o in found] == [["earlier", "verdicts"], [], [], []]
    thread = objects(thread_output_schema())
    assert [(o["required"], o["additionalProperties"]) for o in thread] == [(["answer"], False)]


async def test_large_max_tokens_streams(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    fake_claude.queue([finding("app/api.py", 2)])
    outcome = await make_reviewer(max_tokens=32_000).review(CONTEXT, [TWO_FILES])
    assert fake_claude.requests[0].json["stream"] is True
    assert [f.start_line for f in outcome.findings] == [2]
    assert outcome.usage.cache_creation_input_tokens > 0
    assert needs_streaming(32_000) and not needs_streaming(16_000)


def test_make_client_uses_settings(fake_claude: FakeClaude) -> None:
    settings = load_settings(anthropic_api_key="sk-x", anthropic_base_url=fake_claude.base_url, model_max_retries=5)
    client = make_client(settings)
    assert client.api_key == "sk-x"
    assert str(client.base_url).rstrip("/") == fake_claude.base_url
    assert client.max_retries == 5


# -- parsing ---------------------------------------------------------------------------------------------------


async def test_findings_are_parsed_into_domain_findings(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    fake_claude.queue(
        {
            "summary": " Fix the injection. ",
            "findings": [
                finding("app/api.py", 1, end_line=2, suggestion="a = int(a)\nb = int(b)"),
                finding("app/db.py", 7, side="left", severity="medium", category="reliability", title=" Lost row "),
            ],
        }
    )
    outcome = await make_reviewer().review(CONTEXT, [TWO_FILES])
    first, second = outcome.findings
    assert (first.path, first.start_line, first.end_line, first.side) == ("app/api.py", 1, 2, Side.RIGHT)
    assert (first.severity, first.category) == (Severity.HIGH, Category.SECURITY)
    assert first.suggestion == "a = int(a)\nb = int(b)"
    assert (second.side, second.severity, second.category, second.title) == (
        Side.LEFT, Severity.MEDIUM, Category.RELIABILITY, "Lost row"
    )
    assert outcome.batches[0].summary == "Fix the injection."
    assert outcome.failed == ()


async def test_enums_are_compared_case_insensitively(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    shouting = finding("app/api.py", 1, side="RIGHT", severity="Critical", category="SECURITY")
    fake_claude.queue(Answer(text=json.dumps({"summary": "s", "findings": [shouting]})))
    outcome = await make_reviewer().review(CONTEXT, [TWO_FILES])
    [only] = outcome.findings
    assert (only.side, only.severity, only.category) == (Side.RIGHT, Severity.CRITICAL, Category.SECURITY)


# -- outcomes of model failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "reason"), [("refusal", "declined"), ("max_tokens", "cut off"),
                                              ("invalid_json", "not valid JSON")])
async def test_failure_is_retried_once_in_halves(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer, kind: str, reason: str
) -> None:
    fake_claude.fail_next(kind)
    fake_claude.queue([finding("app/api.py", 1)], [finding("app/db.py", 2)])
    outcome = await make_reviewer().review(CONTEXT, [TWO_FILES])
    assert outcome.calls == 3
    assert outcome.failed == ()
    assert [(f.path, f.start_line) for f in outcome.findings] == [("app/api.py", 1), ("app/db.py", 2)]
    halves = [r.json["messages"][0]["content"][0]["text"] for r in fake_claude.requests[1:]]
    assert "a = 1" in halves[0] and "c = 3" not in halves[0]
    assert "c = 3" in halves[1] and "a = 1" not in halves[1]
    assert outcome.usage == sum((Usage(**u) for u in fake_claude.usages), Usage())


@pytest.mark.parametrize(("kind", "reason"), [("refusal", "declined"), ("max_tokens", "cut off"),
                                              ("invalid_json", "not valid JSON")])
async def test_failure_twice_reports_files_not_reviewed(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer, kind: str, reason: str
) -> None:
    fake_claude.fail_next(kind, times=2)
    fake_claude.queue([finding("app/db.py", 2)])
    outcome = await make_reviewer().review(CONTEXT, [TWO_FILES])
    assert outcome.calls == 3
    [failed] = outcome.failed
    assert failed.files == ("app/api.py",) and reason in (failed.error or "")
    assert failed.findings == ()
    assert [f.path for f in outcome.findings] == ["app/db.py"]
    assert [(n.path, reason in n.reason) for n in outcome.not_reviewed] == [("app/api.py", True)]


async def test_schema_violation_counts_as_failure(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    bad = {"summary": "s", "findings": [finding("a.py", 5, end_line=2)]}
    fake_claude.queue(*[Answer(text=json.dumps(bad))] * 3)
    outcome = await make_reviewer().review(CONTEXT, [BatchInput(3, "a.py\n  5 + x\n", ("a.py",))])
    assert outcome.findings == ()
    assert outcome.calls == 3  # one try, then both halves
    assert len(outcome.failed) == 2
    assert all("did not match the findings schema" in (o.error or "") for o in outcome.failed)


async def test_unsplittable_batch_fails_without_retry(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    fake_claude.fail_next("refusal")
    outcome = await make_reviewer().review(CONTEXT, [BatchInput(0, "one line only", ("a.py",))])
    assert outcome.calls == 1
    assert outcome.failed[0].index == 0 and outcome.failed[0].usage.output_tokens > 0


# -- outcomes of API errors ---------------------------------------------------------------------------------


async def test_rate_limit_is_retried_after_retry_after(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    fake_claude.fail_next("rate_limit", retry_after=0.3)
    outcome = await make_reviewer(max_retries=1).review(CONTEXT, [TWO_FILES])
    assert outcome.failed == () and outcome.calls == 1
    assert fake_claude.requests[1].at - fake_claude.requests[0].at >= 0.3


async def test_persistent_rate_limit_raises_model_unavailable(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer
) -> None:
    fake_claude.fail_next("rate_limit", times=2, retry_after=0.2)
    before = time.time()
    with pytest.raises(ModelUnavailable) as caught:
        await make_reviewer(max_retries=1).review(CONTEXT, [TWO_FILES])
    assert caught.value.retry_at is not None and before + 0.2 <= caught.value.retry_at <= time.time() + 1
    assert len(fake_claude.requests) == 2


async def test_long_retry_after_is_not_slept_through(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:  # the SDK waits between retries with anyio.sleep
        slept.append(seconds)

    monkeypatch.setattr(anthropic._base_client.anyio, "sleep", no_sleep)
    fake_claude.fail_next("rate_limit", retry_after=3600)
    with pytest.raises(ModelUnavailable) as caught:
        await make_reviewer(max_retries=2).review(CONTEXT, [TWO_FILES])
    assert slept == []  # neither the hour nor the SDK's own backoff: the job is retried later instead
    assert caught.value.retry_at is not None and caught.value.retry_at >= time.time() + 3500
    assert len(fake_claude.requests) == 1


@pytest.mark.parametrize("kind", ["overloaded", "server_error"])
async def test_server_errors_are_retried_then_raise(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer, kind: str
) -> None:
    fake_claude.fail_next(kind, retry_after=0.05)
    outcome = await make_reviewer(max_retries=1).review(CONTEXT, [TWO_FILES])
    assert outcome.failed == () and len(fake_claude.requests) == 2

    fake_claude.fail_next(kind, times=2, retry_after=0.05)
    with pytest.raises(ModelUnavailable):
        await make_reviewer(max_retries=1).review(CONTEXT, [TWO_FILES])


async def test_api_error_in_a_later_batch_fails_the_review(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer
) -> None:
    def answer(request: dict[str, Any]) -> Answer:
        if "src/f2.py" in request["messages"][0]["content"][0]["text"]:
            fake_claude.fail_next("overloaded", times=5)
        return Answer()

    fake_claude.queue(*([answer] * 4))
    with pytest.raises(ModelUnavailable):
        await make_reviewer(max_retries=0, concurrency=1).review(CONTEXT, _batches(4))
    assert len(fake_claude.requests) == 4  # f0, f1, f2 answered; f3 got 529 and no result was invented


async def test_rejected_key_is_a_config_error(fake_claude: FakeClaude) -> None:
    settings = load_settings(anthropic_api_key="sk-wrong", anthropic_base_url=fake_claude.base_url)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        await Reviewer(make_client(settings), "claude-sonnet-5-5").review(CONTEXT, [TWO_FILES])


@pytest.mark.parametrize(
    ("model", "prices"),
    [("claude-sonnet-5-5", None), ("claude-sonnet-9-9", {"claude-sonnet-9-9": Price(3.0, 15.0)})],
    ids=["retired", "priced-but-unknown"],
)
async def test_unknown_model_is_a_config_error_naming_review_model(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer, model: str, prices: dict[str, Price] | None
) -> None:
    fake_claude.known_models.discard("claude-sonnet-5-5")
    with pytest.raises(ConfigError, match=rf"REVIEW_MODEL: .*{re.escape(repr(model))}.*\(404\)"):
        await make_reviewer(max_retries=2, model=model, prices=prices).review(CONTEXT, _batches(3))
    assert len(fake_claude.requests) == 1  # 404 is not retried, and the other batches never start
    assert fake_claude.requests[0].json["model"] == model


async def test_deadline_is_enforced(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    fake_claude.hold()  # no answer comes until released (or HOLD_LIMIT, when a broken deadline lets it wait)
    with pytest.raises(DeadlineExceeded):
        await make_reviewer(deadline_s=0.3).review(CONTEXT, _batches(3))
    assert fake_claude.begun == 0 and len(fake_claude.requests) == 1  # given up while the first call was held
    fake_claude.release()


# -- the context window ----------------------------------------------------------------------------------------

# Two files of about 1,000 fake tokens each, so that either half is ~1,000 tokens smaller than the whole.
BIG_TWO_FILES = BatchInput(
    0,
    "app/api.py\n" + "".join(f"{i:3} + api_{i} = 'x' * 80  # {'a' * 60}\n" for i in range(1, 41))
    + "app/db.py\n" + "".join(f"{i:3} + db_{i} = 'y' * 80  # {'d' * 60}\n" for i in range(1, 41)),
    ("app/api.py", "app/db.py"),
)
SMALL_ANSWER_TOKENS = 500


def _request_tokens(request: dict[str, Any]) -> int:
    """The fake's input count for a recorded request: `count_tokens` per system and message block."""
    blocks = [*request["system"], *(b for m in request["messages"] for b in m["content"])]
    return sum(count_tokens(b["text"]) for b in blocks)


async def _full_request_tokens(fake_claude: FakeClaude, make_reviewer: MakeReviewer, batch: BatchInput) -> int:
    """Input tokens of the one request reviewing `batch` (nonces are fixed-length, so sizes repeat)."""
    await make_reviewer(max_tokens=SMALL_ANSWER_TOKENS).review(CONTEXT, [batch])
    tokens = _request_tokens(fake_claude.requests[0].json)
    fake_claude.reset()
    return tokens


async def test_prompt_over_the_context_window_is_retried_in_halves(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer
) -> None:
    full = await _full_request_tokens(fake_claude, make_reviewer, BIG_TWO_FILES)
    fake_claude.context_window = full - 1
    fake_claude.queue([finding("app/api.py", 1)], [finding("app/db.py", 2)])
    outcome = await make_reviewer(max_tokens=SMALL_ANSWER_TOKENS).review(CONTEXT, [BIG_TWO_FILES])

    sizes = [_request_tokens(r.json) for r in fake_claude.requests]
    assert len(sizes) == 3 and sizes[0] == full
    assert all(size + SMALL_ANSWER_TOKENS <= full - 1 for size in sizes[1:])
    texts = [r.json["messages"][0]["content"][0]["text"] for r in fake_claude.requests[1:]]
    assert "api_40 =" in texts[0] and "db_1 =" not in texts[0]
    assert "db_1 =" in texts[1] and "api_40 =" not in texts[1]
    assert outcome.failed == () and outcome.not_reviewed == ()
    assert [b.files for b in outcome.batches] == [("app/api.py",), ("app/db.py",)]
    assert [(f.path, f.start_line) for f in outcome.findings] == [("app/api.py", 1), ("app/db.py", 2)]
    assert outcome.calls == 2  # `calls` counts answered calls; the rejected one cost nothing
    assert len(fake_claude.usages) == 2
    assert outcome.usage == sum((Usage(**u) for u in fake_claude.usages), Usage())


@pytest.mark.parametrize(("kind", "status"), [("too_long", 400), ("request_too_large", 413)])
async def test_too_long_or_too_large_rejection_is_retried_in_halves(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer, kind: str, status: int
) -> None:
    fake_claude.fail_next(kind)
    fake_claude.queue([finding("app/api.py", 1)], [finding("app/db.py", 2)])
    outcome = await make_reviewer().review(CONTEXT, [TWO_FILES])
    assert len(fake_claude.requests) == 3 and outcome.calls == 2
    assert outcome.failed == ()
    assert [(f.path, f.start_line) for f in outcome.findings] == [("app/api.py", 1), ("app/db.py", 2)]


async def test_input_plus_max_tokens_over_the_window_is_retried_in_halves(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer
) -> None:
    full = await _full_request_tokens(fake_claude, make_reviewer, BIG_TWO_FILES)
    fake_claude.context_window = full + SMALL_ANSWER_TOKENS - 1  # the input fits, the answer's room does not
    outcome = await make_reviewer(max_tokens=SMALL_ANSWER_TOKENS).review(CONTEXT, [BIG_TWO_FILES])
    assert len(fake_claude.requests) == 3
    assert outcome.failed == ()


async def test_unsplittable_batch_over_the_window_is_not_reviewed(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer
) -> None:
    batch = BatchInput(4, "big.py  1 + " + "z" * 8_000, ("big.py",))  # one line: split_batch cannot cut it
    full = await _full_request_tokens(fake_claude, make_reviewer, batch)
    fake_claude.context_window = full - 1
    outcome = await make_reviewer(max_tokens=SMALL_ANSWER_TOKENS).review(CONTEXT, [batch])
    assert len(fake_claude.requests) == 1  # no retry: there are no halves
    reason = f"the model API rejected the request (400): prompt is too long: {full} tokens > {full - 1} maximum"
    [only] = outcome.batches
    assert (only.index, only.files, only.findings, only.error) == (4, ("big.py",), (), reason)
    assert outcome.not_reviewed == (NotReviewed("big.py", reason),)
    assert (outcome.calls, outcome.usage, outcome.cost_usd) == (0, Usage(), 0.0)


async def test_halves_still_over_the_window_are_not_reviewed(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer
) -> None:
    fake_claude.context_window = 100  # the system prompt alone is over it
    outcome = await make_reviewer(max_tokens=SMALL_ANSWER_TOKENS).review(CONTEXT, [BIG_TWO_FILES])
    assert len(fake_claude.requests) == 3 and outcome.calls == 0  # one retry in halves, no further splitting
    assert [b.files for b in outcome.failed] == [("app/api.py",), ("app/db.py",)]
    assert all("prompt is too long" in (b.error or "") for b in outcome.failed)
    assert [n.path for n in outcome.not_reviewed] == ["app/api.py", "app/db.py"]


# -- concurrency, caching, accounting ----------------------------------------------------------------------


async def test_batches_run_concurrently_after_the_first(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    fake_claude.hold()
    review = asyncio.create_task(make_reviewer(concurrency=4).review(CONTEXT, _batches(8)))
    assert await fake_claude.until(lambda: fake_claude.in_flight == 1)
    fake_claude.release(1)  # the first answer begins: the cache is warm
    assert await fake_claude.until(lambda: fake_claude.in_flight == 4)  # then four at once, all held
    fake_claude.release()
    outcome = await review
    assert outcome.calls == 8 and outcome.failed == ()
    first, *later = fake_claude.arrivals
    assert first.in_flight == 1 and all(a.begun >= 1 for a in later)  # the others wait for the first answer
    assert max(a.in_flight for a in fake_claude.arrivals) == 4  # never more than four in flight
    assert [b.index for b in outcome.batches] == list(range(8))


async def test_later_calls_read_the_cache(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    fake_claude.latency = 0.05
    outcome = await make_reviewer().review(CONTEXT, _batches(6))
    first, *rest = fake_claude.usages
    assert first["cache_creation_input_tokens"] > 0 and first["cache_read_input_tokens"] == 0
    assert all(u["cache_read_input_tokens"] == first["cache_creation_input_tokens"] for u in rest)
    assert all(u["cache_creation_input_tokens"] == 0 for u in rest)
    assert outcome.usage.cache_read_input_tokens == 5 * first["cache_creation_input_tokens"]


async def test_usage_and_cost_are_totalled(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    price = Price(input_per_mtok=2.0, output_per_mtok=10.0)
    outcome = await make_reviewer(prices={"claude-sonnet-5-5": price}).review(CONTEXT, _batches(3))
    total = sum((Usage(**u) for u in fake_claude.usages), Usage())
    assert outcome.usage == total
    assert sum((b.usage for b in outcome.batches), Usage()) == total
    expected = (
        total.input_tokens * 2.0 + total.output_tokens * 10.0
        + total.cache_creation_input_tokens * 2.5 + total.cache_read_input_tokens * 0.2
    ) / 1e6
    assert outcome.cost_usd == pytest.approx(expected)
    assert outcome.model == "claude-sonnet-5-5" and outcome.calls == 3


def test_price_table_has_defaults_and_unknown_models_are_refused() -> None:
    assert {"claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-4-5"} <= set(DEFAULT_PRICES)
    assert DEFAULT_PRICES["claude-haiku-4-5"].cost(Usage(cache_read_input_tokens=1_000_000)) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="no price"):
        Reviewer(object(), "claude-unknown-9")  # type: ignore[arg-type]


async def test_empty_review_makes_no_call(fake_claude: FakeClaude, make_reviewer: MakeReviewer) -> None:
    outcome = await make_reviewer().review(CONTEXT, [])
    assert (outcome.calls, outcome.batches, outcome.cost_usd) == (0, (), 0.0)
    assert fake_claude.requests == []


async def test_prompt_and_diff_are_not_logged(
    fake_claude: FakeClaude, make_reviewer: MakeReviewer, caplog: pytest.LogCaptureFixture
) -> None:
    fake_claude.fail_next("refusal")
    with caplog.at_level(logging.DEBUG, logger="bot"):  # bot.model.* and bot.model_run
        await make_reviewer().review(CONTEXT, [TWO_FILES])
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.levelno >= logging.INFO)
    assert "review done" in logged
    for secret in ("TITLE-MARK", "BODY-MARK", "OWNER-MARK", "a = 1", "senior backend"):
        assert secret not in logged


# -- splitting ---------------------------------------------------------------------------------------------


def test_split_batch_cuts_at_a_file_boundary() -> None:
    first, second = split_batch(TWO_FILES)
    assert (first.files, second.files) == (("app/api.py",), ("app/db.py",))
    assert first.text + second.text == TWO_FILES.text
    assert first.index == second.index == 0


def test_split_batch_without_boundaries_cuts_lines_in_half() -> None:
    batch = BatchInput(2, "l1\nl2\nl3\nl4\n", ("x.py",))
    first, second = split_batch(batch)
    assert (first.text, second.text) == ("l1\nl2\n", "l3\nl4\n")
    assert first.files == second.files == ("x.py",)
    assert split_batch(BatchInput(0, "single", ("x.py",))) == [BatchInput(0, "single", ("x.py",))]


async def test_warm_up_sends_nothing_to_the_model_api(fake_claude: FakeClaude) -> None:
    await asyncio.to_thread(warm_up)  # as start-up runs it: in a thread, with its own event loop
    assert fake_claude.requests == []
