"""Requests admitted a few per turn of the event loop, so that a burst cannot stall the media.

A burst of requests, such as 300 viewers opening their streams at once after a video wall
reloads, would otherwise run back to back in one turn of the loop: the first step of each
request (routing, authentication, the access checks, a stream's reader with its cached GOP, the
first chunk) is synchronous, so the turn lasts as long as all of them together, 0.7-1.4 s for
300 joins on a slow two-core host (docs/performance.md). The timers that drain the RTP ports
wait as long, and UDP overflows the kernel's receive queue: every stream loses packets.

:class:`TurnAdmission` lets ``per_turn`` requests (HTTP and WebSocket) start in one turn and
queues the rest, in arrival order, for the turns after; the loop's timers and reads run in
between. A request that finds room starts at once, so outside a burst nothing waits.
"""

from __future__ import annotations

import asyncio
from collections import deque

from starlette.types import ASGIApp, Receive, Scope, Send

#: Requests started per loop turn. At a few milliseconds of synchronous work each on a slow
#: host, their share of a turn stays within tens of milliseconds.
PER_TURN = 8


class TurnAdmission:
    """ASGI wrapper: at most about ``per_turn`` new requests start per loop turn (module doc)."""

    def __init__(self, app: ASGIApp, per_turn: int = PER_TURN) -> None:
        self.app = app
        self.per_turn = max(1, per_turn)
        self._used = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._turn_scheduled = False
        #: Requests that had to wait for a later turn (a burst); read by the tests.
        self.deferred = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            await self._admit()
        await self.app(scope, receive, send)

    async def _admit(self) -> None:
        if self._used < self.per_turn and not self._waiting:
            self._used += 1
            self._schedule()
            return
        self.deferred += 1
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._schedule()
        await waiter

    def _schedule(self) -> None:
        # call_soon from inside a turn runs at the next one: the loop runs only the callbacks that
        # were ready when the turn began (asyncio and uvloop alike).
        if not self._turn_scheduled:
            self._turn_scheduled = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._turn_scheduled = False
        self._used = 0
        while self._waiting and self._used < self.per_turn:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a client gone meanwhile: its slot goes to the next
                waiter.set_result(None)
                self._used += 1
        if self._waiting or self._used:
            self._schedule()
