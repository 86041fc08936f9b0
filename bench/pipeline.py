"""Benchmark the review pipeline end to end: a generated 40-file pull request, reviewed in full, then after a
one-file push incrementally, through `bot.review.run_review` with the real GitHubApp, AsyncAnthropic client and
SQLite store pointed at the loopback fakes of GitHub and Claude (the fake model answers at a fixed latency).

Run from the repository root: `.venv/bin/python bench/pipeline.py [--latency 0.5] [--files 40]`.

Three reviews are measured:
- first:  the first review of a repository (mints the repository's installation token and tries the org
          `.github` configuration layer), a full review of PR 1;
- full:   a steady-state full review of PR 2 (the same 40-file diff, a warm repository);
- incr:   PR 2 again after a push that changes one file (compare `last...head` is `ahead`).

Figures (the last lines): GitHub API requests per review (goal <= 8, exactly one POST .../reviews), model
input bytes of the full vs the incremental review (goal: incremental <= 10% of full; measured as the JSON
size of every model request and as the user-message text alone), and wall time / model latency with the
number of model calls; last, a 4-batch review's wall time against the sum of its calls' durations (goal <= 0.35),
next to the reviewer's old strategy (the first call completes before the others start) measured in the same run.
Writes are spaced as in production (1 s per installation); the bench waits that
interval between reviews, outside the timings, so one review's last write does not delay the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OWNER, REPO, INSTALLATION = "octo", "repo", 100
BASE_SHA = "0" * 40
HEAD_A, HEAD_B, HEAD_B2 = "a" * 40, "b" * 40, "c" * 40
FINDING_EVERY = 8  # files whose index is a multiple of this get a finding
PUSHED = 16  # the file changed by the push (it already has an open finding)


def _path(i: int) -> str:
    return f"services/orders/handler_{i:02d}.py"


def _added_block(i: int, lines: int) -> list[str]:
    """Lines 11.. of a head file: a plausible handler body."""
    out = [f"def handle_{i}(request, db):\n"]
    for k in range(lines - 1):
        out.append(f"    value_{k} = db.fetch(request.args.get('key_{k}'), limit={k % 50})  # step {k}\n")
    return out


def generate_trees(files: int) -> tuple[dict[str, str], dict[str, str]]:
    """Base and head trees: every 4th file is new, the others get ~100 lines rewritten/added."""
    base: dict[str, str] = {}
    head: dict[str, str] = {}
    for i in range(files):
        prelude = [f"# handler {i}\n", "import logging\n", "\n", "log = logging.getLogger(__name__)\n"]
        prelude += [f"LIMIT_{k} = {k * 10}\n" for k in range(6)]  # lines 1-10
        tail = [f"\n\ndef helper_{i}_{k}(x):\n    return x * {k}\n" for k in range(3)]
        body = _added_block(i, 100)  # lines 11-110
        if i % 4 != 0:
            old_body = [f"def handle_{i}(request, db):\n"] + [f"    return db.fetch('legacy_{k}')\n" for k in range(10)]
            base[_path(i)] = "".join(prelude + old_body + tail)
        head[_path(i)] = "".join(prelude + body + tail)
    return base, head


def push_one_file(head: dict[str, str]) -> dict[str, str]:
    """The head after a push rewriting six lines (61-66) of one file."""
    lines = head[_path(PUSHED)].splitlines(keepends=True)
    for n in range(60, 66):
        lines[n] = f"    value_{n} = db.execute(f\"SELECT * FROM t WHERE k = '{{request.args['k{n}']}}'\")\n"
    return dict(head, **{_path(PUSHED): "".join(lines)})


def _user_text(body: dict[str, Any]) -> str:
    return "\n".join(
        block.get("text", "") for m in body.get("messages", []) for block in m.get("content", [])
        if isinstance(block, dict)
    )


def answer(body: dict[str, Any]) -> Any:
    """The fake model: a finding on line 12 of every FINDING_EVERY-th file in the batch; on the pushed file's
    rewritten lines a new finding (the repeated line-12 finding there must be suppressed as already open)."""
    from tests.fakes.claude import Answer, finding

    text = _user_text(body)
    found = []
    for i in range(0, 1000, FINDING_EVERY):
        if f"FILE {_path(i)} (" in text:
            found.append(finding(_path(i), 12, title=f"Unbounded fetch in handle_{i}", category="performance",
                                 body="The key comes from the caller and the fetch has no upper bound."))
    if "db.execute(f\"SELECT" in text:
        found.append(finding(_path(PUSHED), 62, title="SQL injection in handle_16", severity="critical",
                             body="Caller input is formatted into the SQL text."))
    return Answer(findings=found)


@dataclass
class Run:
    """What one review cost."""

    name: str
    status: str
    wall: float
    github: list[tuple[str, str]]
    model_calls: int
    model_json_bytes: int
    model_user_bytes: int
    inline: int
    spacing_wait: float  # seconds spent waiting in the write spacer (GitHub's "1 s between writes")
    call_starts: list[float]  # when each model request arrived, seconds after the review started
    inline_at: list[str]  # path:line of the inline comments this review posted
    usages: list[dict[str, int]]  # the fake's `usage` of each model call, in order
    verify_turns: list[bool]  # whether each model call was a verification turn
    context_tokens: int  # estimated tokens of the CONTEXT blocks and TESTS lines the review sent

    @property
    def review_posts(self) -> int:
        return sum(1 for m, p in self.github if m == "POST" and p.endswith("/reviews"))


class _SpacingTimer:
    """Wraps the GitHubApp's write spacer (instance attribute only) to add up the time its waits take."""

    def __init__(self, spacer: Any) -> None:
        self.interval = float(spacer.interval)
        self.waited = 0.0
        self._wait = spacer.wait

    async def wait(self, key: int) -> None:
        started = time.monotonic()
        try:
            await self._wait(key)
        finally:
            self.waited += time.monotonic() - started


def _time_write_spacing(github: Any) -> _SpacingTimer:
    timer = _SpacingTimer(github.spacer)
    github.spacer.wait = timer.wait
    return timer


async def measure(name: str, number: int, job_id: int, trigger: str, services: Any, gh: Any, claude: Any,
                  spaced: _SpacingTimer) -> Run:
    """One run_review, with the fakes' request logs sliced around it."""
    from bot.review import run_review
    from bot.services import ReviewRequest

    await asyncio.sleep(spaced.interval)  # let the previous review's last write age out of the spacer
    g0, c0, comments0, waited0 = len(gh.requests), len(claude.requests), len(gh.review_comments), spaced.waited
    u0 = len(claude.usages)
    request = ReviewRequest(job_id=job_id, installation_id=INSTALLATION, owner=OWNER, repo=REPO, number=number,
                            trigger=trigger)
    started = time.monotonic()
    outcome = await run_review(request, services)
    wall = time.monotonic() - started
    calls = claude.requests[c0:]
    return Run(
        name, outcome.status, wall, [(r.method, r.path) for r in gh.requests[g0:]], len(calls),
        sum(len(json.dumps(r.json, separators=(",", ":")).encode()) for r in calls),
        sum(len(_user_text(r.json).encode()) for r in calls),
        len(gh.review_comments) - comments0, spaced.waited - waited0, [r.at - started for r in calls],
        [f"{c['path']}:{c['line']}" for c in list(gh.review_comments.values())[comments0:]],
        claude.usages[u0:], [_is_verify(r.json) for r in calls],
        sum(_context_tokens(_user_text(r.json)) for r in calls if not _is_verify(r.json)),
    )


def _is_verify(body: dict[str, Any]) -> bool:
    return any(m.get("role") == "assistant" for m in body["messages"])


def _context_tokens(text: str) -> int:
    from bot.diff.render import estimate_tokens

    return sum(estimate_tokens(line) for line in text.splitlines(keepends=True)
               if line.startswith(("CONTEXT ", "C ", "TESTS ")))


async def run(latency: float, files: int, write_interval: float, verbose: bool, first_event: float) -> None:
    """Start both fakes, run the three reviews, print the figures."""
    import anthropic

    from bot.github.auth import GitHubApp
    from bot.services import Services
    from bot.settings import load_settings
    from bot.store.base import Store
    from tests.fakes.claude import running_fake_claude
    from tests.fakes.gitdiff import git_diff
    from tests.fakes.github import FakeGitHub
    from tests.fakes.keys import private_key_pem
    from tests.fakes.loopback import serve_on_loopback

    base, head = generate_trees(files)
    head2 = push_one_file(head)
    full_diff, pushed_full_diff, push_diff = git_diff(base, head), git_diff(base, head2), git_diff(head, head2)
    pem = private_key_pem()
    fake = FakeGitHub()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp, serve_on_loopback(fake) as url, \
            running_fake_claude() as claude:
        fake.url = url
        fake.create_app(pem, app_id=1, slug="senior-review")
        fake.add_installation(INSTALLATION, OWNER, [REPO])
        fake.add_pull(OWNER, REPO, full_diff, number=1, head_sha=HEAD_A, base_sha=BASE_SHA)
        for sha, tree in ((HEAD_A, head), (HEAD_B, head), (HEAD_B2, head2)):  # what the context query reads
            for path, text in tree.items():
                fake.set_file(OWNER, REPO, sha, path, text)
        pr2 = fake.add_pull(OWNER, REPO, full_diff, number=2, head_sha=HEAD_B, base_sha=BASE_SHA)
        claude.latency, claude.first_event_latency = latency, first_event
        claude.queue(*([answer] * 1000))
        settings = load_settings(
            github_api_url=url, github_app_id=1, github_app_private_key=pem, github_webhook_secret="secret",
            anthropic_api_key=claude.api_key, anthropic_base_url=claude.base_url,
            database_url=f"sqlite:///{Path(tmp) / 'bot.sqlite3'}", data_dir=tmp,
        )
        store = Store.from_settings(settings)
        await store.migrate()
        github = GitHubApp(settings, write_interval=write_interval)
        client = anthropic.AsyncAnthropic(api_key=claude.api_key, base_url=claude.base_url, max_retries=0)
        try:
            services = Services(settings, store, github, client)  # one per process, as `Services.of` shares it
            spaced = _time_write_spacing(github)
            first = await measure("first", 1, 1, "pull_request.opened", services, fake, claude, spaced)
            full = await measure("full", 2, 2, "pull_request.opened", services, fake, claude, spaced)
            fake.push(pr2, pushed_full_diff, HEAD_B2)
            fake.set_compare(OWNER, REPO, HEAD_B, HEAD_B2, status="ahead", diff_text=push_diff)
            incr = await measure("incr", 2, 3, "pull_request.synchronize", services, fake, claude, spaced)
        finally:
            await client.close()
            await github.aclose()
            await store.close()
    report([first, full, incr], latency, files, len(full_diff), len(push_diff), write_interval,
           settings.model_concurrency, verbose)
    report_fan_out(*await fan_out(latency, first_event, 4), latency, first_event)
    report_quality(full)


# -- fan-out: a 4-batch review against the fake Claude (no GitHub), with its baseline from the same run ------------


@dataclass
class FanOut:
    """One 4-batch review's wall time against the summed durations of its model calls."""

    wall: float
    calls: int
    summed: float

    @property
    def ratio(self) -> float:
        return self.wall / self.summed


async def fan_out(latency: float, first_event: float, batches: int) -> tuple[FanOut, FanOut]:
    """A review of `batches` batches, then the old strategy (first call alone, then the rest) as the baseline."""
    import anthropic

    from bot.contract import BatchInput, PullContext
    from bot.model.reviewer import Reviewer
    from tests.fakes.claude import running_fake_claude

    context = PullContext(repo=f"{OWNER}/{REPO}", title="Fan-out", body="")
    inputs = [BatchInput(i, f"FILE {_path(i)} (added)\n" + "".join(f"R {n} + x = {n}\n" for n in range(1, 200)),
                         (_path(i),)) for i in range(batches)]
    with running_fake_claude() as claude:
        claude.latency, claude.first_event_latency = latency, first_event
        client = anthropic.AsyncAnthropic(api_key=claude.api_key, base_url=claude.base_url, max_retries=0)
        reviewer = Reviewer(client, "claude-sonnet-5-5", concurrency=4)
        try:

            async def measured(review: Callable[[], Awaitable[object]]) -> FanOut:
                claude.reset()  # a cold cache: the review's first call writes it
                claude.latency, claude.first_event_latency = latency, first_event
                started = time.monotonic()
                await review()
                wall = time.monotonic() - started
                return FanOut(wall, len(claude.served), sum(end - start for start, end in claude.served))

            async def old_strategy() -> None:  # what the reviewer did before: the first call completes alone
                await reviewer.review(context, inputs[:1])
                await asyncio.gather(*(reviewer.review(context, [batch]) for batch in inputs[1:]))

            await measured(lambda: reviewer.review(context, inputs[:1]))  # warm the connection pool: not a figure
            now = await measured(lambda: reviewer.review(context, inputs))
            baseline = await measured(old_strategy)
        finally:
            await client.close()
    return now, baseline


def report(runs: list[Run], latency: float, files: int, diff_bytes: int, push_bytes: int, write_interval: float,
           concurrency: int, verbose: bool) -> None:
    """Print the per-request detail (with --verbose), then the figures as the last lines."""
    full, incr = runs[1], runs[2]
    if verbose:
        for r in runs:
            starts = ", ".join(f"{t:.2f}s" for t in r.call_starts)
            print(f"[{r.name}] status={r.status} model calls started at: {starts}; inline: {', '.join(r.inline_at)}")
            for method, path in r.github:
                print(f"    {method} {path}")
    print(f"pull request: {files} files, diff {diff_bytes / 1e3:.1f} kB; push: 1 file, diff {push_bytes / 1e3:.1f} kB; "
          f"model latency {latency:g}s; write spacing {write_interval:g}s")
    print("outcomes: " + ", ".join(f"{r.name}={r.status} ({r.inline} inline)" for r in runs))
    for r in runs:
        print(f"GitHub requests, {r.name:5} review: {len(r.github)} (goal <= 8), "
              f"POST .../reviews: {r.review_posts} (goal 1 when a review is posted)")
    print(f"model input bytes (request JSON): full {full.model_json_bytes}, incremental {incr.model_json_bytes}, "
          f"ratio {incr.model_json_bytes / full.model_json_bytes:.3f} (goal <= 0.10)")
    print(f"model input bytes (user text):    full {full.model_user_bytes}, incremental {incr.model_user_bytes}, "
          f"ratio {incr.model_user_bytes / full.model_user_bytes:.3f} (goal <= 0.10)")
    for r in runs:
        print(f"wall/latency, {r.name:5} review: {r.wall / latency:.2f} ({r.wall:.2f}s, {r.model_calls} model calls, "
              f"at most {concurrency} at once; {(r.wall - r.spacing_wait) / latency:.2f} without the "
              f"{r.spacing_wait:.2f}s of write spacing)")


def report_fan_out(now: FanOut, baseline: FanOut, latency: float, first_event: float) -> None:
    """The fan-out figures, last: this reviewer against the old strategy, measured in the same run."""
    print(f"fan-out: 4-batch review, model calls of {latency:g}s whose first event arrives after {first_event:g}s")
    print(f"fan-out baseline (first call completes before the others start): wall / sum of call durations "
          f"{baseline.ratio:.2f} ({baseline.wall:.2f}s / {baseline.summed:.2f}s over {baseline.calls} calls)")
    print(f"fan-out at the first streamed event: wall / sum of call durations {now.ratio:.2f} "
          f"({now.wall:.2f}s / {now.summed:.2f}s over {now.calls} calls) (goal <= 0.35)")


def report_quality(full: Run) -> None:
    """What context and verification cost one full review: GitHub calls and model tokens (the last lines)."""
    from bot.domain import Usage
    from bot.prices import DEFAULT_PRICES

    price = DEFAULT_PRICES["claude-sonnet-5-5"]
    usages = [Usage(u["input_tokens"], u["output_tokens"], u["cache_creation_input_tokens"],
                    u["cache_read_input_tokens"]) for u in full.usages]
    review = sum(usages, Usage())
    verify = sum((u for u, v in zip(usages, full.verify_turns, strict=True) if v), Usage())
    inputs = review.input_tokens + review.cache_read_input_tokens + review.cache_creation_input_tokens
    graphql = sum(1 for m, p in full.github if (m, p) == ("POST", "/graphql"))
    print(f"context, full review: +{graphql} GitHub call (GraphQL) (goal <= 2 more), +{full.context_tokens:,} "
          f"estimated model input tokens ({full.context_tokens / inputs:.1%} of the review's {inputs:,})")
    share = price.cost(verify) / price.cost(review)
    print(f"verification, full review: {sum(full.verify_turns)} of {len(usages)} model calls, "
          f"{verify.input_tokens + verify.cache_read_input_tokens + verify.cache_creation_input_tokens:,} input "
          f"tokens ({verify.cache_read_input_tokens:,} read from cache), {verify.output_tokens:,} output tokens, "
          f"${price.cost(verify):.4f} of ${price.cost(review):.4f} = {share:.1%} of the review's cost (goal <= 25%)")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per fake model call")
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--write-interval", type=float, default=1.0,
                        help="seconds between GitHub writes per installation (production: 1)")
    parser.add_argument("--first-event", type=float, default=None,
                        help="seconds until a fake model response begins (default: a tenth of --latency)")
    parser.add_argument("--verbose", action="store_true", help="list every GitHub request")
    args = parser.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # for tests.fakes
    for name in list(os.environ):  # never read the developer's credentials: settings come from here
        if name.startswith(("GITHUB_", "ANTHROPIC_", "REVIEW_", "DATABASE_URL", "LOG_", "DATA_DIR")):
            del os.environ[name]
    # A review's answer takes far longer to generate than its prompt takes to start answering (thousands of
    # output tokens against a time to first token of a second or two), hence a tenth by default.
    first_event = args.latency / 10 if args.first_event is None else args.first_event
    asyncio.run(run(args.latency, args.files, args.write_interval, args.verbose, first_event))


if __name__ == "__main__":
    main()
