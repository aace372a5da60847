"""The event bus (DESIGN principle 4): state changes are events.

`Bus` is the interface every subsystem uses. `EventBus` is the in-process bus of a single
process; the cluster's Redis Streams bus (cluster/redis_bus.py) implements the same interface
and passes the same contract tests.

Two ways to consume:
- ``subscribe(*kinds)``: every subscriber sees every event (fan-out), in a bounded queue, so a
  slow consumer drops its oldest events (and counts them) instead of slowing the publisher. For
  live views: the console's event stream, caches, mirrors.
- ``subscribe(*kinds, group="name")``: a durable consumer group. Across all processes each
  event goes to one member of the group, and on Redis none is lost while the consumer restarts
  (delivery is at least once: a consumer must be idempotent). For records: state history,
  tickets. In one process a group is an ordinary subscription.
``listen(fn, *kinds)`` calls ``fn`` inline for every event of ``kinds`` (all without) this
process sees (local or remote).

Who takes an event of a kind (which listeners, which subscriptions) is worked out once per kind
and kept until one is added or closed: a registration storm publishes a ``device.online`` a
device, which only a few of the process's listeners and subscriptions want.

The in-process bus also offers ``subscribe_batch(*kinds)``: an ordinary subscription kept as a
plain deque that its consumer takes all at once, with no queue bookkeeping and no wake-up per
event. For a consumer that writes in batches anyway (the state history: a storm of 10,000
registrations is 10,000 appends, not 10,000 queue puts and gets).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Protocol


class BusEvent:
    """One state change: ``kind`` (``device.online``, ``alarm``, ``stream.up``), the ``subject``
    it is about (a device, channel or stream), its ``data``, and when (``at``, wall clock).

    A plain class with ``Final`` fields rather than a frozen dataclass: compiled with mypyc
    (src/xueliang/_native.py) its fields cannot be set and building one is a native call, where
    a frozen dataclass stays a Python class whose ``__init__`` runs interpreted (a registration
    storm publishes one a device). Equal by its fields, as the dataclass was.
    """

    __slots__ = ("at", "data", "kind", "subject")

    def __init__(self, kind: str, subject: str, data: dict[str, Any] | None = None, at: float | None = None) -> None:
        self.kind: Final = kind
        self.subject: Final = subject
        self.data: Final[dict[str, Any]] = {} if data is None else data
        self.at: Final[float] = time.time() if at is None else at

    def _fields(self) -> tuple[str, str, dict[str, Any], float]:
        return (self.kind, self.subject, self.data, self.at)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BusEvent):
            return NotImplemented
        return self._fields() == other._fields()

    def __reduce__(self) -> tuple[type[BusEvent], tuple[str, str, dict[str, Any], float]]:
        return (BusEvent, self._fields())

    def __repr__(self) -> str:
        return f"BusEvent(kind={self.kind!r}, subject={self.subject!r}, data={self.data!r}, at={self.at!r})"


def matches(kinds: frozenset[str] | None, kind: str) -> bool:
    """A subscription to ``device`` takes ``device.online``; none (None) takes everything."""
    return kinds is None or kind in kinds or kind.split(".")[0] in kinds


class Subscription:
    def __init__(self, bus: EventBus, kinds: frozenset[str] | None, maxsize: int) -> None:
        self._bus = bus
        self.kinds = kinds
        self.queue: asyncio.Queue[BusEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def put(self, ev: BusEvent) -> None:
        """Queue ``ev`` (of a kind this subscription takes: the bus's routes match them)."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(ev)

    async def get(self) -> BusEvent:
        return await self.queue.get()

    def close(self) -> None:
        self._bus._remove(self)


class Batch:
    """A subscription of the in-process bus taken in batches (``take``), bounded like
    `Subscription`: when full, the oldest event is dropped and counted."""

    def __init__(self, bus: EventBus, kinds: frozenset[str], maxsize: int) -> None:
        self._bus = bus
        self.kinds = kinds
        self.maxsize = maxsize
        self.items: deque[BusEvent] = deque()
        self.dropped = 0
        self._ready = asyncio.Event()

    def put(self, ev: BusEvent) -> None:
        """Keep ``ev`` (of a kind this subscription takes: the bus's routes match them)."""
        items = self.items
        if len(items) >= self.maxsize:
            items.popleft()
            self.dropped += 1
        items.append(ev)
        self._ready.set()

    def empty(self) -> bool:
        return not self.items

    async def wait(self) -> None:
        """Until there is an event to take."""
        while not self.items:
            self._ready.clear()
            await self._ready.wait()

    def take(self, limit: int) -> list[BusEvent]:
        """Up to ``limit`` events, oldest first."""
        items = self.items
        if len(items) <= limit:
            out = list(items)
            items.clear()
            return out
        return [items.popleft() for _ in range(limit)]

    async def get(self) -> BusEvent:
        await self.wait()
        return self.items.popleft()

    def close(self) -> None:
        self._bus._remove(self)


class Consumer(Protocol):
    """What ``Bus.subscribe`` returns."""

    dropped: int

    async def get(self) -> BusEvent: ...

    def close(self) -> None: ...


class Bus(Protocol):
    def publish(self, kind: str, subject: str, **data: Any) -> BusEvent: ...

    def subscribe(self, *kinds: str, maxsize: int = 10_000, group: str | None = None) -> Consumer: ...

    def listen(self, fn: Callable[[BusEvent], None], *kinds: str) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class EventBus:
    """The in-process bus."""

    def __init__(self) -> None:
        self._subs: set[Subscription | Batch] = set()
        self._listeners: list[tuple[frozenset[str] | None, Callable[[BusEvent], None]]] = []
        #: Per kind: the listeners and subscriptions that take it (:meth:`_route`).
        self._routes: dict[str, tuple[tuple[Callable[[BusEvent], None], ...], tuple[Subscription | Batch, ...]]] = {}

    def publish(self, kind: str, subject: str, **data: Any) -> BusEvent:
        ev = BusEvent(kind, subject, data)
        self.deliver(ev)
        return ev

    def deliver(self, ev: BusEvent) -> None:
        """Hand an event (published here, or arrived from another process) to this process's
        listeners and subscribers."""
        route = self._routes.get(ev.kind)
        if route is None:
            route = self._route(ev.kind)
        listeners, subs = route
        for listener in listeners:
            listener(ev)
        for sub in subs:
            sub.put(ev)

    def _route(self, kind: str) -> tuple[tuple[Callable[[BusEvent], None], ...], tuple[Subscription | Batch, ...]]:
        """Who takes ``kind``, in the order they came (a snapshot: one added while an event is
        delivered takes the next)."""
        if len(self._routes) >= 4096:  # kinds are the code's own; bounded all the same
            self._routes.clear()
        route = self._routes[kind] = (tuple(fn for kinds, fn in self._listeners if matches(kinds, kind)),
                                      tuple(sub for sub in self._subs if matches(sub.kinds, kind)))
        return route

    def _add(self, sub: Subscription | Batch) -> None:
        self._subs.add(sub)
        self._routes.clear()

    def _remove(self, sub: Subscription | Batch) -> None:
        self._subs.discard(sub)
        self._routes.clear()

    def subscribe(self, *kinds: str, maxsize: int = 10_000, group: str | None = None) -> Subscription:
        # One process: a group has one member, which sees every event.
        sub = Subscription(self, frozenset(kinds) if kinds else None, maxsize)
        self._add(sub)
        return sub

    def subscribe_batch(self, *kinds: str, maxsize: int = 10_000) -> Batch:
        """A subscription to ``kinds`` (at least one) taken in batches (`Batch`)."""
        if not kinds:
            raise ValueError("a batch subscription names its kinds")
        sub = Batch(self, frozenset(kinds), maxsize)
        self._add(sub)
        return sub

    def listen(self, fn: Callable[[BusEvent], None], *kinds: str) -> None:
        """Synchronous listener of ``kinds`` (all without; ``device`` takes ``device.online``),
        called inline: keep it cheap (e.g. append to a batch)."""
        self._listeners.append((frozenset(kinds) if kinds else None, fn))
        self._routes.clear()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
