"""Presence in Redis: the same `Presence` as the single process's, shared by every node.

Keys (under ``<prefix>:``):
- ``presence:<device>``: a hash {node, since, seen} while the device is online;
- ``node:<id>``: a node's announcement (JSON), with a TTL of ``node_ttl`` that the node refreshes
  every third of it. A device whose node's announcement is gone counts as offline: its node died.

Writes are synchronous and coalesced: the last write of each device waits in a map that a task
sends in one pipeline every ``flush_every`` seconds, so a storm of keepalives costs one round
trip. Each node also keeps its own devices, so that when Redis restarts empty (its announcement
gone at the next refresh) the node writes them all again: presence rebuilds by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from xueliang.presence import NodeInfo, Seen

log = logging.getLogger("xueliang.cluster")

_OFFLINE = None


class RedisPresence:
    def __init__(self, url: str, node: str, *, prefix: str = "xueliang", node_ttl: float = 15.0,
                 flush_every: float = 0.2) -> None:
        self.node = node
        self.prefix = prefix
        self.node_ttl = node_ttl
        self.flush_every = flush_every
        self.redis = Redis.from_url(url)
        #: this node's online devices: the truth it writes again after Redis lost it
        self._mine: dict[str, Seen] = {}
        #: writes not yet sent: device → its presence, or None (offline)
        self._dirty: dict[str, Seen | None] = {}
        self._info: NodeInfo | None = None
        self._task: asyncio.Task[None] | None = None
        self.rebuilds = 0

    def _key(self, device_id: str) -> str:
        return f"{self.prefix}:presence:{device_id}"

    def _node_key(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    # ---- writes (synchronous, coalesced)
    def online(self, device_id: str, at: float) -> None:
        s = Seen(device_id, self.node, at, at)
        self._mine[device_id] = s
        self._dirty[device_id] = s

    def seen(self, device_id: str, at: float) -> None:
        s = self._mine.get(device_id)
        if s is not None:
            s = Seen(device_id, self.node, s.since, at)
            self._mine[device_id] = s
            self._dirty[device_id] = s

    def offline(self, device_id: str) -> None:
        if self._mine.pop(device_id, None) is not None:
            self._dirty[device_id] = _OFFLINE

    def announce(self, info: NodeInfo) -> None:
        self._info = info

    # ---- reads
    async def get(self, device_id: str) -> Seen | None:
        h = await self.redis.hgetall(self._key(device_id))
        if not h:
            return None
        node = _text(h[b"node"])
        if node != self.node and not await self.redis.exists(self._node_key(node)):
            return None  # its node is dead: the device comes back when it re-registers elsewhere
        return Seen(device_id, node, float(h[b"since"]), float(h[b"seen"]))

    async def get_many(self, device_ids: list[str]) -> dict[str, Seen]:
        if not device_ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for d in device_ids:
            pipe.hgetall(self._key(d))
        rows = await pipe.execute()
        alive = {n.id for n in await self.nodes()} | {self.node}
        out: dict[str, Seen] = {}
        for d, h in zip(device_ids, rows, strict=True):
            if h and _text(h[b"node"]) in alive:
                out[d] = Seen(d, _text(h[b"node"]), float(h[b"since"]), float(h[b"seen"]))
        return out

    async def online_count(self) -> int:
        alive = {n.id for n in await self.nodes()}
        n = 0
        async for key in self.redis.scan_iter(match=f"{self.prefix}:presence:*", count=1000):
            node = await self.redis.hget(key, "node")
            if node is not None and _text(node) in alive:
                n += 1
        return n

    async def nodes(self) -> list[NodeInfo]:
        out: list[NodeInfo] = []
        keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}:node:*", count=1000)]
        for raw in await self.redis.mget(keys) if keys else []:
            if raw is None:
                continue
            d = json.loads(raw)
            out.append(NodeInfo(d["id"], tuple(d["roles"]), d["started"], d.get("addresses", {}), d.get("load", {})))
        return sorted(out, key=lambda n: n.id)

    # ---- life
    async def start(self) -> None:
        await self._refresh_node()
        self._task = asyncio.create_task(self._run(), name="presence")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            # a node that stops cleanly leaves at once; its devices are then offline here
            for device_id in list(self._mine):
                self._dirty[device_id] = _OFFLINE
            self._mine.clear()
            await self.flush()
            await self.redis.delete(self._node_key(self.node))
        await self.redis.aclose()

    async def flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        try:
            pipe = self.redis.pipeline(transaction=False)
            for device_id, s in dirty.items():
                key = self._key(device_id)
                if s is None:
                    # only if still ours: the device may already be online on another node
                    pipe.eval(_DEL_IF_MINE, 1, key, self.node)
                else:
                    pipe.hset(key, mapping={"node": s.node, "since": repr(s.since), "seen": repr(s.seen)})
            await pipe.execute()
        except BaseException:
            for device_id, s in dirty.items():
                self._dirty.setdefault(device_id, s)
            raise

    async def _refresh_node(self) -> bool:
        """Announce this node; True when its announcement had vanished (Redis restarted empty,
        or this node was cut off longer than its TTL)."""
        info = self._info or NodeInfo(self.node, (), 0.0)
        body = json.dumps(info.as_dict())
        existed = await self.redis.set(self._node_key(self.node), body, px=int(self.node_ttl * 1000), xx=True)
        if existed:
            return False
        await self.redis.set(self._node_key(self.node), body, px=int(self.node_ttl * 1000))
        return True

    async def _run(self) -> None:
        refresh_every = self.node_ttl / 3
        next_refresh = 0.0
        loop = asyncio.get_running_loop()
        delay = self.flush_every
        while True:
            await asyncio.sleep(delay)
            try:
                if loop.time() >= next_refresh:
                    next_refresh = loop.time() + refresh_every
                    if await self._refresh_node() and self._mine:
                        self.rebuilds += 1
                        log.warning("presence: announcement was gone (Redis restarted?); writing %d devices again",
                                    len(self._mine))
                        self._dirty.update(self._mine)
                await self.flush()
                delay = self.flush_every
            except (RedisError, OSError) as exc:
                log.warning("presence: Redis unavailable (%s)", exc)
                delay = min(max(delay * 2, 0.5), 5.0)
                next_refresh = 0.0


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


_DEL_IF_MINE = """
if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

