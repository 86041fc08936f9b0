"""Waiting in tests for something that happens elsewhere (a server, a worker, a child process): poll until it holds.

The only bound is a hang guard, `HANG_GUARD_S`, far beyond what any condition needs even on a loaded machine: a
test fails on it only when the condition will never hold, never because the machine was slow (speed is measured
in bench/, not here). Conditions are checked every `POLL_S`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Final

HANG_GUARD_S: Final = 300.0
POLL_S: Final = 0.05

Why = str | Callable[[], str]


def wait_until(condition: Callable[[], object], why: Why = "the condition never held") -> None:
    """Block until `condition()` is true; past the guard, AssertionError with `why` (a text or a function)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not condition():
        assert time.monotonic() < deadline, why() if callable(why) else why
        time.sleep(POLL_S)


async def eventually(
    condition: Callable[[], object | Awaitable[object]], why: Why = "the condition never held"
) -> None:
    """Like `wait_until` on the event loop; `condition` may be a coroutine function."""
    deadline = time.monotonic() + HANG_GUARD_S
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, why() if callable(why) else why
        await asyncio.sleep(POLL_S)
