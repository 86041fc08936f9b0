"""Benchmark of the diff engine on a synthetic 3,000-file, 100,000-changed-line diff (no git needed).

Run: `.venv/bin/python bench/diff.py`. Reports, as its last lines: a bare `unidiff.PatchSet` parse,
this module's full parse + index (commentable lines of both sides) + filtering + batch rendering, their
ratio, and peak memory of the full run (tracemalloc). Times are the best of
3 runs, as CPU time (steady on a shared machine) and wall time. Goal: ratio <= 1.5 and full run < 1 s.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Callable

from unidiff import PatchSet

from bot.diff import parse_diff
from bot.diff_render import filter_files, make_batches
from bot.domain import Side

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


if __name__ == "__main__":
    main()
