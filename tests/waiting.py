"""Waiting for a condition in a test, with a deadline: the machine's cores are shared and a
loaded run is slower, so tests wait for what they check rather than for a fixed time."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def until(cond: Callable[[], bool] | Callable[[], Awaitable[bool]], timeout: float = 10.0,
                every: float = 0.02) -> None:
    """Return once ``cond()`` (plain or async) is true; AssertionError after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return
        if loop.time() >= end:
            raise AssertionError(f"condition not met in {timeout} s")
        await asyncio.sleep(every)
