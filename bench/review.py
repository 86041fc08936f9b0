"""Benchmark the reviewer: a generated 120-file pull request against the fake Claude at a fixed latency.

Run from the repository root: `.venv/bin/python bench/review.py [--latency 0.5] [--concurrency 4]`.
Sequential time is `calls x latency` (what one call at a time would take). The figures are the last lines.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def synthetic_batches(files: int, per_batch: int) -> list[Any]:
    """Rendered batch texts (path headers, gutters with line numbers) for `files` generated files."""
    from bot.contract import BatchInput

    batches = []
    paths = [f"services/orders/module_{n:03d}.py" for n in range(files)]
    for index, start in enumerate(range(0, files, per_batch)):
        chunk = paths[start : start + per_batch]
        parts = []
        for path in chunk:
            lines = [f"### {path} (modified)", "@@ -10,4 +10,9 @@ def handler(request):"]
            lines += [f"  {10 + k:>4} {k + 10:>4}   context_line_{k} = load(request)" for k in range(2)]
            lines += [f"       {12 + k:>4} + value_{k} = request.args.get('v{k}')  # new" for k in range(5)]
            lines += [f"  {12:>4} {17:>4}   return respond(value_0)"]
            parts.append("\n".join(lines))
        batches.append(BatchInput(index, "\n\n".join(parts) + "\n", tuple(chunk)))
    return batches


async def run(latency: float, files: int, per_batch: int, concurrency: int) -> None:
    """Start the fake in-process, review, print the figures."""
    from bot.contract import PullContext
    from bot.model.client import make_client
    from bot.model.reviewer import Reviewer
    from bot.settings import load_settings
    from tests.fakes.claude import running_fake_claude

    batches = synthetic_batches(files, per_batch)
    context = PullContext(repo="acme/orders", title="Read values from the query string", body="Bench PR.")
    with running_fake_claude() as fake:
        fake.latency = latency
        settings = load_settings(anthropic_api_key=fake.api_key, anthropic_base_url=fake.base_url)
        client = make_client(settings)
        reviewer = Reviewer(client, settings.review_model, concurrency=concurrency, deadline_s=600)
        started = time.monotonic()
        outcome = await reviewer.review(context, batches)
        wall = time.monotonic() - started
        await client.close()
        later = fake.usages[1:]
    read = sum(u["cache_read_input_tokens"] for u in later)
    total_input = sum(
        u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"] for u in later
    )
    sequential = outcome.calls * latency
    print(f"pull request: {files} files, {len(batches)} batches; latency {latency:g}s; concurrency {concurrency}")
    print(f"failed batches: {len(outcome.failed)}; cost: ${outcome.cost_usd:.4f} ({settings.review_model} prices)")
    print(f"model calls: {outcome.calls}")
    print(f"wall time: {wall:.2f}s (sequential: {sequential:.2f}s)")
    print(f"wall/sequential: {wall / sequential:.3f} (goal <= 0.35)")
    print(f"cache-read share of input tokens after the first call: {read / total_input:.3f}")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per fake model call")
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--files-per-batch", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # for tests.fakes
    asyncio.run(run(args.latency, args.files, args.files_per_batch, args.concurrency))


if __name__ == "__main__":
    main()
