"""Leadership: work that one process of a cluster does at a time (the state history's writer
keeps every point's state in memory; two would each see part of the events).

A ``Lease`` is held by one node until it stops renewing it; ``Led`` runs a component only while
its node holds the lease, and hands over when it loses it. One process holds it always
(``SoleLease``); a cluster keeps it in Redis (cluster/redis_lease.py). The scheduler's jobs need
none of this: each run takes a PostgreSQL advisory lock of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from xueliang.tasks import cancelled, stop_task

log = logging.getLogger("xueliang.leadership")


class Lease(Protocol):
    #: Seconds a holder keeps the lease without renewing it.
    ttl: float

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it (or this node already does)."""

    async def renew(self) -> bool:
        """Extend it; False when this node no longer holds it."""

    async def release(self) -> None:
        """Give it up at once (if held), so another takes it without waiting out the TTL."""

    async def holder(self) -> str | None: ...


class SoleLease:
    """One process: always the holder."""

    ttl = float("inf")

    def __init__(self, node: str = "") -> None:
        self.node = node

    async def acquire(self) -> bool:
        return True

    async def renew(self) -> bool:
        return True

    async def release(self) -> None:
        return None

    async def holder(self) -> str | None:
        return self.node


class Led:
    """Runs ``start``/``stop`` while this node holds ``lease``: tries to take it every ``ttl/3``,
    renews it as often while running, and stops the work the moment a renewal fails (another
    node may have it then). A component (``start``/``stop``) itself."""

    def __init__(self, name: str, lease: Lease, start: Callable[[], Awaitable[None]],
                 stop: Callable[[], Awaitable[None]], *, every: float | None = None) -> None:
        self.name = name
        self.lease = lease
        self._start, self._stop = start, stop
        self.every = every if every is not None else max(0.2, lease.ttl / 3)
        self.leading = False
        #: Times this node took the lead (tests, the log).
        self.terms = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Try once now, so a single worker leads from its first moment.
        await self._step()
        self._task = asyncio.create_task(self._run(), name=f"led-{self.name}")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        if self.leading:
            await self._resign()
            await self.lease.release()

    async def _resign(self) -> None:
        self.leading = False
        try:
            await self._stop()
        except Exception:
            log.exception("%s: stopping after losing the lead failed", self.name)

    async def _step(self) -> None:
        try:
            if self.leading:
                if not await self.lease.renew():
                    log.warning("%s: lost the lead; stopping", self.name)
                    await self._resign()
            elif await self.lease.acquire():
                log.info("%s: this node leads now", self.name)
                self.leading, self.terms = True, self.terms + 1
                try:
                    await self._start()
                except Exception:
                    log.exception("%s: starting failed; giving the lead up", self.name)
                    await self._resign()
                    await self.lease.release()
        except Exception:  # the lease's store away: a leader that cannot renew stops
            log.warning("%s: lease unavailable", self.name, exc_info=True)
            if self.leading:
                await self._resign()

    async def _run(self) -> None:
        while not cancelled():  # a cancel swallowed by redis-py must still end the loop
            await asyncio.sleep(self.every)
            await self._step()
