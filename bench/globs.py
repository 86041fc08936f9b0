"""Benchmark of path globs: the worst case of any valid pattern on any path up to 4,096 characters.

Run: `.venv/bin/python bench/globs.py`. Goal: every (pattern, path) under 1 ms with the RE2 matcher of
`bot.config.globs`. Baseline, in the same run: the previous backtracking translation to Python `re` (copied below),
measured on doubling path lengths in a child process killed after 2 s (so it cannot run for minutes). The new
matcher's figure is the worst pair, each pair timed as the best of 5 first matches of a freshly compiled pattern
(RE2 builds its automaton lazily during the first match, so that cost is included); wall time; printed last.
"""

from __future__ import annotations

import multiprocessing
import re
import time
from functools import lru_cache
from multiprocessing import Queue

from bot.config.globs import MAX_DOUBLE_STARS, MAX_GLOB_CHARS, check_glob, glob_regex
from bot.linear import linear

OLD_LIMIT = 2.0  # seconds before the old matcher's child process is killed

# Worst cases: stacked `**/` (each may absorb any prefix), alternating `*a` (each may absorb any run), classes,
# all padded to the longest valid pattern; paths that nearly match (so no early exit).
PATTERNS = {
    "8x **/ + *a*a*a*b": "**/" * MAX_DOUBLE_STARS + "*a*a*a*b",
    "*a x 99 + b (200 chars)": ("*a" * (MAX_GLOB_CHARS // 2 - 1) + "b")[:MAX_GLOB_CHARS],
    "8x **/a + ? x": ("**/a" * MAX_DOUBLE_STARS + "?" * MAX_GLOB_CHARS)[:MAX_GLOB_CHARS],
    "[!b]* x 50": ("[!b]*" * 50)[:MAX_GLOB_CHARS - 1] + "b",
    "**a**a (8) + *a": ("**a" * MAX_DOUBLE_STARS + "*a" * MAX_GLOB_CHARS)[:MAX_GLOB_CHARS - 1] + "b",
}
PATHS = {
    "a x 4096": "a" * 4096,
    "a/ x 2048": "a/" * 2048,
    "a x 4095 + /": "a" * 4095 + "/",
    "(a/)x1365 + b": "a/a" * 1365 + "b",
}


# ---------------------------------------------------------------- the previous matcher (baseline)


@lru_cache(maxsize=512)
def old_glob_regex(pattern: str) -> re.Pattern[str]:
    """The previous translation: `**/` to `(?:.*/)?`, `*` to `[^/]*`, matched by backtracking `re`."""
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    if pat.endswith("/"):
        pat += "**"
    if pat.startswith("/"):
        pat = pat.lstrip("/")
    elif "/" not in pat.rstrip("/").removesuffix("/**"):
        pat = "**/" + pat
    out: list[str] = []
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        elif pat[i] == "[" and "]" in pat[i + 2 :] and "/" not in pat[i : pat.index("]", i + 2)]:
            end = pat.index("]", i + 2)
            body = pat[i + 1 : end]
            negated = body.startswith("!")
            body = (body[1:] if negated else body).replace("\\", "\\\\")
            out.append("[" + ("^/" if negated else "") + body + "]")
            i = end + 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _best_first_call(pattern: str, path: str, repeat: int = 5) -> float:
    """Best of `repeat` first matches on a freshly compiled pattern (RE2 builds its DFA lazily: that is counted)."""
    best = float("inf")
    for _ in range(repeat):
        compiled = linear(glob_regex(pattern), register=False)
        start = time.perf_counter()
        compiled.fullmatch(path)
        best = min(best, time.perf_counter() - start)
    return best


def _old_once(pattern: str, path: str, out: Queue[float]) -> None:
    start = time.perf_counter()
    old_glob_regex(pattern).match(path)
    out.put(time.perf_counter() - start)


def _old_time(pattern: str, path: str) -> float | None:
    """The old matcher's time on one path, in a child process killed after OLD_LIMIT seconds (None then)."""
    ctx = multiprocessing.get_context("fork")
    out: Queue[float] = ctx.Queue()
    child = ctx.Process(target=_old_once, args=(pattern, path, out))
    child.start()
    child.join(OLD_LIMIT)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    return out.get(timeout=1)


def _old_limit(pattern: str) -> str:
    """How the old matcher fares on doubling path lengths up to 4,096 characters, stopped at the first kill."""
    length, last = 16, "no path"
    while length <= 4096:
        slowest = 0.0
        for shape in PATHS.values():
            took = _old_time(pattern, shape[-length:])
            if took is None:
                return f"{last}; killed after {OLD_LIMIT:.0f} s on {length} chars"
            slowest = max(slowest, took)
        last = f"{slowest * 1e3:.1f} ms on {length} chars"
        length *= 2
    return last


def main() -> None:
    """Measure every (pattern, path) pair with the new matcher, then the old one's limits; figures last."""
    rows: list[str] = []
    worst_new = 0.0
    for pname, pattern in PATTERNS.items():
        check_glob(pattern)  # every pattern here passes configuration validation
        for qname, path in PATHS.items():
            took = _best_first_call(pattern, path)
            worst_new = max(worst_new, took)
            rows.append(f"new  {pname:28} x {qname:16}: {took * 1e3:8.3f} ms")
    for pname, pattern in PATTERNS.items():
        rows.append(f"old  {pname:28}: {_old_limit(pattern)}")
    print("\n".join(rows))
    print(f"glob worst case, any valid pattern x path up to 4,096 chars: {worst_new * 1e3:.3f} ms (goal < 1 ms)")


if __name__ == "__main__":
    main()
