"""Background loops: ending one at shutdown; a job run every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("xueliang")


def cancelled() -> bool:
    """True when the running task was asked to stop. redis-py can swallow a cancellation that
    lands in a blocking read or a command, so loops that may await one ask this as well as
    relying on the CancelledError (otherwise ``stop_task`` waits for ever)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def woken(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until ``event`` is set or ``seconds`` have passed; True when it was set.

    Every wait with a deadline in xueliang goes under ``asyncio.timeout``, never ``wait_for``:
    in Python 3.11, ``wait_for`` returns the inner result, and so loses the cancellation, when
    the event is set in the same turn as the task is cancelled. The loop then goes on, and
    ``stop_task`` waits for ever (a SIP endpoint's stop hung so in CI)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if there is one) and wait until it has ended. Whatever it ends with is
    left unsaid: the loops stopped this way log their own failures as they happen."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class Every:
    """A job run every ``seconds`` in the background, from ``start`` until ``stop``. A run that
    fails is logged and the next one comes as planned."""

    def __init__(self, name: str, seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        self.name = name
        self.seconds = seconds
        self.job = job
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        while not cancelled():
            await asyncio.sleep(self.seconds)
            try:
                await self.job()
            except Exception:
                log.exception("%s failed", self.name)
