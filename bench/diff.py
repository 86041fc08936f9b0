"""Benchmark of the diff engine on a synthetic 3,000-file, 100,000-changed-line diff (no git needed).

Run: `.venv/bin/python bench/diff.py`. Reports, as its last lines: a bare `unidiff.PatchSet` parse,
this module's full parse + index (commentable lines of both sides) + filtering + batch rendering, their
ratio, and peak memory of the full run (tracemalloc). Times are the best of
3 runs, as CPU time (steady on a shared machine) and wall time. Goal: ratio <= 1.5 and full run < 1 s.

Last, the token estimate's error over the real-world corpus (`../shared/corpus/diffs`, or `$CORPUS_DIR/diffs`):
each diff planned as the App plans it, each batch sent by the real Reviewer to the fake Claude, the estimate
against the input tokens it reports, next to the old estimator (UTF-8 bytes / 3) as the baseline. Goal: +-10%.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from unidiff import PatchSet

from bot.diff.batches import make_batches
from bot.diff.filter import filter_files
from bot.diff.parse import parse_diff
from bot.domain import Side

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("CORPUS_DIR", ROOT.parent / "shared" / "corpus")) / "diffs"
FILES = 3_000
CHANGED = 100_000
HUNKS_PER_FILE = 2
CONTEXT = 3


def _line(rng: random.Random, n: int) -> str:
    """A plausible line of code."""
    return f"    value_{n} = compute(item_{rng.randrange(1000)}, limit={rng.randrange(100)})  # note {n}\n"


def synthetic_diff(seed: int = 7) -> str:
    """A `git diff`-shaped text with FILES files and exactly CHANGED added+removed lines."""
    rng = random.Random(seed)
    per_hunk, extra = divmod(CHANGED, FILES * HUNKS_PER_FILE)
    out: list[str] = []
    for i in range(FILES):
        path = f"src/pkg{i % 50}/module_{i}.py"
        out.append(f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n")
        old = new = 10
        for h in range(HUNKS_PER_FILE):
            changed = per_hunk + (1 if (i * HUNKS_PER_FILE + h) < extra else 0)
            removed = changed // 3
            added = changed - removed
            old_count, new_count = removed + 2 * CONTEXT, added + 2 * CONTEXT
            out.append(f"@@ -{old},{old_count} +{new},{new_count} @@ def function_{h}():\n")
            body = [" " + _line(rng, k) for k in range(CONTEXT)]
            body += ["-" + _line(rng, k) for k in range(removed)]
            body += ["+" + _line(rng, k) for k in range(added)]
            body += [" " + _line(rng, k) for k in range(CONTEXT)]
            out.append("".join(body))
            old += old_count + 40
            new += new_count + 40
    return "".join(out)


def full_pipeline(text: str) -> int:
    """Parse, index both sides, filter and render batches; returns the number of batches."""
    diff = parse_diff(text)
    for f in diff.files:
        f.commentable(Side.RIGHT)
        f.commentable(Side.LEFT)
    keep, _ = filter_files(diff)
    return len(make_batches(keep, 60_000))


def timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, float]:
    """Best (CPU time, wall time) of `repeat` runs, in seconds (CPU time is steadier on a busy machine)."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall


# -- token estimate against the fake Claude's count, over the real-world corpus -----------------------------------


def _old_estimate(text: str) -> int:
    """The estimator before issue 12: UTF-8 bytes / 3, rounded up (the baseline)."""
    return -(-len(text.encode("utf-8", "surrogatepass")) // 3)


async def _reported_tokens(diffs: list[tuple[str, str]]) -> list[tuple[str, int, int, int]]:
    """(diff, reported, new estimate, old estimate) per batch: the diffs planned as the App plans them, each batch
    sent by the real Reviewer to the fake Claude, whose `usage.input_tokens` is the user message's count."""
    import anthropic

    from bot.analysis import batch_inputs, estimate_batch
    from bot.contract import PullContext
    from bot.diff.filter import filter_files
    from bot.diff.parse import parse_diff
    from bot.model.reviewer import Reviewer
    from bot.prompts import batch_prompt
    from tests.fakes.claude import running_fake_claude

    context = PullContext(repo="octo/repo", title="Corpus diff", body="")
    rows: list[tuple[str, int, int, int]] = []
    with running_fake_claude() as claude:
        async with anthropic.AsyncAnthropic(api_key=claude.api_key, base_url=claude.base_url, max_retries=0) as client:
            reviewer = Reviewer(client, "claude-sonnet-5-5")
            for name, text in diffs:
                files, _ = filter_files(parse_diff(text))
                for batch in batch_inputs(files, 60_000):
                    claude.usages.clear()
                    await reviewer.review(context, [batch])
                    sent = batch_prompt(repo=context.repo, title=context.title, body=context.body,
                                        files=batch.files, diff=batch.text).text
                    rows.append((name, claude.usages[0]["input_tokens"], estimate_batch(context, batch),
                                 _old_estimate(sent)))
    return rows


def token_estimate_figures(corpus: Path) -> None:
    """Print the estimators' error against the reported input tokens (aggregate and worst batch), last."""
    if not corpus.is_dir():
        print(f"token estimate: corpus not present at {corpus}; skipped")
        return
    paths = sorted(corpus.glob("*.diff")) + sorted(corpus.glob("*.patch"))
    diffs = [(p.name, p.read_bytes().decode("utf-8", "surrogateescape")) for p in paths]
    rows = asyncio.run(_reported_tokens(diffs))
    reported = sum(r[1] for r in rows)
    for label, column in (("old estimator (UTF-8 bytes / 3, baseline)", 3), ("estimator", 2)):
        total = sum(r[column] for r in rows)
        worst = max(rows, key=lambda r: abs(r[column] / r[1] - 1))
        print(f"token estimate, {label}: {total / reported - 1:+.1%} over {len(rows)} batches of "
              f"{len({r[0] for r in rows})} corpus diffs ({total:,} vs {reported:,} reported); worst batch "
              f"{worst[column] / worst[1] - 1:+.1%} ({worst[0]}) (goal within +-10%)")


def main() -> None:
    """Generate the diff, measure, print the figures last."""
    text = synthetic_diff()
    lines = text.count("\n")
    bare = timed(lambda: PatchSet(text))
    full = timed(lambda: full_pipeline(text))
    tracemalloc.start()
    batches = full_pipeline(text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"input: {FILES} files, {CHANGED} changed lines, {lines} diff lines, {len(text) / 1e6:.1f} MB, "
          f"{batches} batches")
    print(f"unidiff.PatchSet parse: {bare[0]:.3f} s CPU ({bare[1]:.3f} s wall)")
    print(f"bot.diff parse+index+filter+batch: {full[0]:.3f} s CPU ({full[1]:.3f} s wall) (goal < 1 s)")
    print(f"ratio: {full[0] / bare[0]:.2f} CPU ({full[1] / bare[1]:.2f} wall) (goal <= 1.5)")
    print(f"peak memory (tracemalloc, full run): {peak / 2**20:.1f} MiB")
    token_estimate_figures(CORPUS)


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # for tests.fakes
    main()
