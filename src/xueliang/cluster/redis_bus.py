"""The event bus over Redis Streams: the same `Bus` as the in-process one, across processes.

One stream carries every event (``cluster.stream``, trimmed to about ``cluster.stream_maxlen``).
- ``publish`` is synchronous, as on the in-process bus: the event goes to this process's
  listeners and fan-out subscribers at once, and into a buffer that a writer task appends to the
  stream in pipelined batches. Redis down: the buffer holds (bounded, oldest dropped and counted)
  and the writer retries.
- Fan-out: a reader task follows the stream from where it stood when the process started and
  hands other processes' events to the local listeners and subscribers.
- Groups (``subscribe(..., group=...)``): a Redis consumer group. Each event goes to one member;
  an event is acknowledged when its consumer asks for the next one, so a consumer that dies
  mid-event gets it again on restart (its own pending entries first), and entries left pending
  by a consumer that never comes back are claimed by the others after ``claim_idle`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from xueliang.bus import BusEvent, EventBus, Subscription, matches
from xueliang.cluster import cancelled

log = logging.getLogger("xueliang.cluster")

Entry = tuple[bytes, dict[bytes, bytes]]


def entries_of(res: Any) -> list[Entry]:
    """The entries of an XREAD / XREADGROUP answer for our one stream (RESP2: a list of
    [stream, entries]; RESP3: a mapping)."""
    if not res:
        return []
    rows = next(iter(res.values())) if isinstance(res, dict) else res[0][1]
    if rows and isinstance(rows[0], list) and rows[0] and isinstance(rows[0][0], list):
        rows = rows[0]  # RESP3 wraps the entries once more
    return [(bytes(i), dict(f) if f else {}) for i, f in rows]


def encode(ev: BusEvent, node: str) -> dict[str, str]:
    return {"k": ev.kind, "s": ev.subject, "d": json.dumps(ev.data, default=str, ensure_ascii=False),
            "t": repr(ev.at), "n": node}


def decode(fields: dict[bytes, bytes]) -> tuple[str, BusEvent] | None:
    """(origin node, event), or None for an entry that is not one of ours."""
    try:
        data = json.loads(fields[b"d"])
        if not isinstance(data, dict):
            return None
        return fields[b"n"].decode(), BusEvent(fields[b"k"].decode(), fields[b"s"].decode(), data,
                                               float(fields[b"t"]))
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


class RedisBus:
    def __init__(self, url: str, node: str, *, stream: str = "xueliang:events", maxlen: int = 1_000_000,
                 buffer: int = 100_000, claim_idle: float = 30.0) -> None:
        self.node = node
        self.stream = stream
        self.maxlen = maxlen
        self.claim_idle = claim_idle
        self.redis = Redis.from_url(url)
        #: blocking reads get connections of their own
        self._url = url
        self._local = EventBus()
        self._out: deque[BusEvent] = deque(maxlen=buffer)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._groups: list[GroupConsumer] = []
        self._last: bytes | str = "$"
        #: redis-py can swallow a cancellation that lands in a blocking read: loops also stop on this
        self._closing = False
        self.sent = 0
        self.received = 0
        #: events dropped from a full buffer while Redis was away
        self.dropped = 0

    # ---- the Bus interface
    def publish(self, kind: str, subject: str, **data: Any) -> BusEvent:
        ev = BusEvent(kind, subject, data)
        self._local.deliver(ev)
        if len(self._out) == self._out.maxlen:
            self.dropped += 1
        self._out.append(ev)
        self._wake.set()
        return ev

    def subscribe(self, *kinds: str, maxsize: int = 10_000, group: str | None = None) -> Subscription | GroupConsumer:
        if group is None:
            return self._local.subscribe(*kinds, maxsize=maxsize)
        c = GroupConsumer(self, group, frozenset(kinds) if kinds else None)
        self._groups.append(c)
        # The group exists from now on, so that nothing published from here is missed.
        c.ready = asyncio.create_task(c.create(), name=f"bus-group-{group}")
        return c

    def listen(self, fn: Any, *kinds: str) -> None:
        self._local.listen(fn, *kinds)

    async def start(self) -> None:
        # A process sees what happens while it runs: the fan-out starts at the stream's end.
        try:
            info = await self.redis.xinfo_stream(self.stream)
            self._last = info["last-generated-id"]
        except ResponseError:  # no stream yet: everything it will hold is new
            self._last = "0-0"
        except (RedisError, OSError) as exc:
            log.warning("event stream unavailable at start (%s)", exc)
        self._tasks = [asyncio.create_task(self._writer(), name="bus-writer"),
                       asyncio.create_task(self._reader(), name="bus-reader")]

    async def stop(self) -> None:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(5.0):
                await self.flush()
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for g in self._groups:
            await g.aclose()
        await self.redis.aclose()

    # ---- writing
    async def flush(self) -> None:
        """Append everything buffered to the stream now."""
        # A group exists before anything published after its subscribe() is written.
        for g in self._groups:
            if g.ready is not None and not g.ready.done():
                with contextlib.suppress(RedisError, OSError):
                    await asyncio.shield(g.ready)
        while self._out:
            batch = [self._out.popleft() for _ in range(min(len(self._out), 500))]
            try:
                pipe = self.redis.pipeline(transaction=False)
                for ev in batch:
                    pipe.xadd(self.stream, encode(ev, self.node), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
                await pipe.execute()
            except BaseException:
                self._out.extendleft(reversed(batch))  # not lost: tried again
                raise
            self.sent += len(batch)

    async def _writer(self) -> None:
        delay = 0.2
        while not cancelled():
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                delay = 0.2
            except (RedisError, OSError) as exc:
                log.warning("event stream unavailable (%s); %d events wait", exc, len(self._out))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._wake.set()

    # ---- fan-out reading
    async def _reader(self) -> None:
        r = Redis.from_url(self._url)
        delay = 0.2
        try:
            while not self._closing and not cancelled():
                try:
                    res = await r.xread({self.stream: self._last}, count=1000, block=1000)
                    delay = 0.2
                except (RedisError, OSError):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                for entry_id, fields in entries_of(res):
                    self._last = entry_id
                    got = decode(fields)
                    if got is not None and got[0] != self.node:
                        self.received += 1
                        self._local.deliver(got[1])
        finally:
            await r.aclose()


class GroupConsumer:
    """One member of a durable consumer group (see the module's docstring)."""

    def __init__(self, bus: RedisBus, group: str, kinds: frozenset[str] | None) -> None:
        self.bus = bus
        self.group = group
        self.kinds = kinds
        self.dropped = 0  # never: a group loses nothing (the interface's counter)
        self._redis: Redis = Redis.from_url(bus._url)
        self.ready: asyncio.Task[None] | None = None
        self._buf: deque[tuple[bytes, BusEvent]] = deque()
        self._done: list[bytes] = []
        self._recovering = True
        self._next_claim = 0.0
        self._closed = False

    async def get(self) -> BusEvent:
        """The next event of the group for this member; asking for it acknowledges the last."""
        delay = 0.2
        while not cancelled():
            try:
                if self.ready is not None and not self.ready.done():
                    await asyncio.shield(self.ready)
                await self._ack()
                while not self._buf and not cancelled():
                    await self._fill()
                if not self._buf:
                    break
                entry_id, ev = self._buf.popleft()
                self._done.append(entry_id)
                return ev
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The group vanished (Redis restarted empty): the stream is new too, so the
                # group starts from its beginning and misses nothing written since.
                await self.create(start="0")
            except (RedisError, OSError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise asyncio.CancelledError

    def close(self) -> None:
        self._closed = True
        if self in self.bus._groups:
            self.bus._groups.remove(self)

    async def aclose(self) -> None:
        if self.ready is not None:
            self.ready.cancel()
        with contextlib.suppress(RedisError, OSError):
            await self._ack()
        await self._redis.aclose()

    async def create(self, start: str = "$") -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self._redis.xgroup_create(self.bus.stream, self.group, id=start, mkstream=True)
        self._recovering = True

    async def _ack(self) -> None:
        if self._done:
            await self._redis.xack(self.bus.stream, self.group, *self._done)
            self._done.clear()

    async def _fill(self) -> None:
        r = self._redis
        entries: list[Entry] = []
        if self._recovering:
            # what this member was given before a restart and never acknowledged
            entries = entries_of(await r.xreadgroup(self.group, self.bus.node, {self.bus.stream: "0"}, count=200))
            if not entries:
                self._recovering = False
        else:
            if time.monotonic() >= self._next_claim:
                self._next_claim = time.monotonic() + max(1.0, self.bus.claim_idle / 3)
                claimed = await r.xautoclaim(self.bus.stream, self.group, self.bus.node,
                                             min_idle_time=int(self.bus.claim_idle * 1000), count=200)
                entries = entries_of([[self.bus.stream, claimed[1]]])
            if not entries:
                entries = entries_of(await r.xreadgroup(self.group, self.bus.node, {self.bus.stream: ">"},
                                                        count=200, block=1000))
        for entry_id, fields in entries:
            got = decode(fields) if fields else None
            if got is None or not matches(self.kinds, got[1].kind):
                self._done.append(entry_id)  # not for this group: acknowledged unread
            else:
                self._buf.append((entry_id, got[1]))
