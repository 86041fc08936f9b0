"""Benchmark of the sanitiser's patterns on their worst cases (100,000 characters each), and of whole answers.

Run: `.venv/bin/python bench/sanitize.py`. For every RE2 pattern run over untrusted text (`bot.linear.COMPILED`:
secret rules, detect-secrets' included, the hidden-character finders, the sanitiser's and `bot.prose`'s, the
context reader's), one scan (`search`) of each worst-case input of tests/test_linear.py, the slowest kept, one
line per pattern. Then the scans written by hand on RE2 (`bot.prose.constructs`, `bot.prose.bot_words`) on each
worst case of tests/test_prose.py, with their baseline in the same run: the backtracking `re` pattern the sanitiser
used before, on the same input (its work per construct is smaller; what RE2 buys is the guarantee). Then
`mask_secrets` and `mark_invisible` whole on each worst case (matches included: RE2's Python binding costs some
microseconds per match), the previous JWT and assignment patterns on Python `re` (baseline; the JWT one on 20,000
characters only, as it is quadratic) and `sanitize_markdown` of a 40,000-character hostile model answer.
Goal: every pattern < 50 ms. Times are the best of 3 (wall); figures last.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stall import hostile_body  # noqa: E402
from bot.invisible import mark_invisible  # noqa: E402
from bot.masking import mask_secrets  # noqa: E402
from bot.prose import bot_words, constructs  # noqa: E402
from bot.sanitize import sanitize_markdown  # noqa: E402
from tests.test_linear import WORST_CASES, all_patterns  # noqa: E402
from tests.test_prose import REFERENCE, REFERENCE_BOT, WORST  # noqa: E402

OLD_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
OLD_ASSIGNMENT = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?P<key>[A-Za-z0-9_.-]{0,64}(?:password|passwd|pwd|secret|token|api[_-]?key"
    r"|access[_-]?key|private[_-]?key|credential|client[_-]?secret)[A-Za-z0-9_.-]{0,64})"
    r"(?P<sep>[\"']?[ \t]*(?::=|=>|[:=])[ \t]*)"
    r"(?:(?P<q>[\"'])(?P<qv>[^\"'\n]{8,200})(?P=q)|(?P<uv>[^\s\"'`,;(){}\[\]<>]{8,})(?=[\s,;]|$))",
    re.M,
)
N = 100_000


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of `repeat` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Measure, print the figures last."""
    rows: list[tuple[float, str]] = []
    for pattern in all_patterns():
        worst, worst_case = 0.0, ""
        for name, text in WORST_CASES.items():
            took = best(lambda p=pattern, t=text: p.search(t))  # type: ignore[misc]
            if took > worst:
                worst, worst_case = took, name
        rows.append((worst, f"{worst * 1e3:7.1f} ms  {pattern.pattern[:70]!r} (worst: {worst_case})"))
    rows.sort(reverse=True)
    for _, row in rows:
        print(row)
    scans: list[float] = []
    for name, unit in WORST.items():
        text = unit * (N // len(unit) if len(unit) < N // 2 else 1)
        took = best(lambda t=text: constructs(t), repeat=1)
        words = best(lambda t=text: bot_words(t), repeat=1)
        old = best(lambda t=text: sum(1 for _ in REFERENCE.finditer(t)), repeat=1)
        old_words = best(lambda t=text: sum(1 for _ in REFERENCE_BOT.finditer(t)), repeat=1)
        scans.append(max(took, words))
        print(f"prose scan of {name!r} ({len(text):,} chars, {len(constructs(text)):,} constructs): "
              f"{took * 1e3:.1f} ms, bot words {words * 1e3:.1f} ms; baseline (backtracking re): "
              f"{old * 1e3:.1f} ms, {old_words * 1e3:.1f} ms")
    masked = [(best(lambda t=text: mask_secrets(t), repeat=1), name) for name, text in WORST_CASES.items()]
    marked = [(best(lambda t=text: mark_invisible(t), repeat=1), name) for name, text in WORST_CASES.items()]
    jwt_old = best(lambda: sum(1 for _ in OLD_JWT.finditer("eyJ" * 6_667)), repeat=1)
    assign_old = best(lambda: sum(1 for _ in OLD_ASSIGNMENT.finditer("a." * 50_000)), repeat=1)
    answer = hostile_body(40_000)
    whole = best(lambda: sanitize_markdown(answer, "https://github.com/o/r"), repeat=1)
    print(f"baseline: old JWT pattern (Python re) on 20,000 chars of 'eyJ': {jwt_old * 1e3:.1f} ms")
    print(f"baseline: old assignment pattern (Python re) on 100,000 chars of 'a.': {assign_old * 1e3:.1f} ms")
    print(f"sanitize_markdown of a 40,000-char hostile model answer: {whole * 1e3:.1f} ms")
    print(f"mask_secrets (every rule, matches included) on the worst 100,000-char input ({max(masked)[1]}): "
          f"{max(masked)[0] * 1e3:.1f} ms")
    print(f"mark_invisible on the worst 100,000-char input ({max(marked)[1]}): {max(marked)[0] * 1e3:.1f} ms")
    print(f"prose scans (bot.prose, RE2 searched from each construct) on their worst 100,000-char inputs: slowest "
          f"{max(scans) * 1e3:.1f} ms (linear: one search per construct found)")
    print(f"patterns measured: {len(rows)}; slowest pattern scanning its worst 100,000-char input: "
          f"{rows[0][0] * 1e3:.1f} ms (goal < 50 ms each)")


if __name__ == "__main__":
    main()
