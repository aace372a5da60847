"""Which media node holds a stream, and which should take a new one.

A stream lives on one media node. ``<prefix>:stream:<name>`` names the node holding it, with a
TTL that the holder refreshes while the stream runs (every third of ``ttl``) and deletes when it
ends. A stream not held by a live node is placed by rendezvous hashing over the live media
nodes: every API node picks the same node for the same name without writing anything, new
names spread evenly, and when a media node dies only its streams move. A stream opened on a
node (a playback, a download) is held from the moment it is up, so the next request for it,
through any API node, finds it there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from xueliang.presence import NodeInfo, Presence
from xueliang.tasks import Every

log = logging.getLogger("xueliang.cluster")


def media_nodes(nodes: list[NodeInfo]) -> list[NodeInfo]:
    return [n for n in nodes if ("media" in n.roles or "all" in n.roles) and "http" in n.addresses]


def rendezvous(name: str, nodes: list[NodeInfo]) -> NodeInfo | None:
    """The node with the highest hash of (name, node): stable, even, and minimal moves."""
    if not nodes:
        return None
    return max(nodes, key=lambda n: hashlib.blake2b(f"{n.id}\0{name}".encode(), digest_size=8).digest())


class MediaPlacement:
    def __init__(self, url: str, node: str, presence: Presence, *, prefix: str = "xueliang",
                 ttl: float = 15.0) -> None:
        self.node = node
        self.presence = presence
        self.prefix = prefix
        self.ttl = ttl
        self.redis = Redis.from_url(url)
        #: on a media node: the names of the streams it holds now (the hub's)
        self.held: Callable[[], list[str]] | None = None
        #: on a media node: told the number of streams at each refresh (for its announcement)
        self.on_load: Callable[[int], None] | None = None
        self._mine: set[str] = set()
        self._every = Every("media-placement", ttl / 3, self.refresh)

    def _key(self, name: str) -> str:
        return f"{self.prefix}:stream:{name}"

    # ---- any node: where a stream is, where a new one goes
    async def where(self, name: str, exclude: frozenset[str] = frozenset()) -> NodeInfo | None:
        """The live node holding ``name``, if any (and not in ``exclude``)."""
        raw = await self.redis.get(self._key(name))
        if raw is None:
            return None
        holder = raw.decode() if isinstance(raw, bytes) else str(raw)
        return next((n for n in await self._live(exclude) if n.id == holder), None)

    async def _live(self, exclude: frozenset[str]) -> list[NodeInfo]:
        return [n for n in media_nodes(await self.presence.nodes()) if n.id not in exclude]

    async def node_for(self, name: str, exclude: frozenset[str] = frozenset()) -> NodeInfo | None:
        """Where ``name`` is or would be placed: its holder, else the rendezvous choice among the
        nodes below their capacity (all full: the least loaded)."""
        if (holder := await self.where(name, exclude)) is not None:
            return holder
        live = await self._live(exclude)
        room = [n for n in live if n.load.get("streams", 0.0) < n.load.get("capacity", float("inf"))]
        if room:
            return rendezvous(name, room)
        return min(live, key=lambda n: (n.load.get("streams", 0.0), n.id)) if live else None

    async def least_loaded(self, exclude: frozenset[str] = frozenset()) -> NodeInfo | None:
        """For a stream whose name the media node makes (a playback, a download)."""
        nodes = await self._live(exclude)
        return min(nodes, key=lambda n: (n.load.get("streams", 0.0), n.id)) if nodes else None

    # ---- a media node: hold what it runs
    def hold_now(self, name: str) -> None:
        """A stream just came up here: say so at once, not at the next refresh."""
        self._mine.add(name)
        asyncio.get_running_loop().create_task(self._set([name]))

    async def _set(self, names: list[str]) -> None:
        with contextlib.suppress(RedisError, OSError):
            pipe = self.redis.pipeline(transaction=False)
            for n in names:
                pipe.set(self._key(n), self.node, px=int(self.ttl * 1000))
            await pipe.execute()

    async def refresh(self) -> None:
        """Hold what runs here, let go of what ended, and announce the load."""
        try:
            await self._refresh()
        except (RedisError, OSError) as exc:
            log.warning("media placement: Redis unavailable (%s)", exc)

    async def _refresh(self) -> None:
        if self.held is None:
            return
        now = set(self.held())
        gone, self._mine = self._mine - now, now
        if self.on_load is not None:
            self.on_load(len(now))
        await self._set(sorted(now))
        if gone:
            pipe = self.redis.pipeline(transaction=False)
            for n in gone:
                pipe.eval(_DEL_IF_MINE, 1, self._key(n), self.node)
            await pipe.execute()

    async def start(self) -> None:
        await self._every.start()

    async def stop(self) -> None:
        await self._every.stop()
        with contextlib.suppress(RedisError, OSError):
            if self._mine:  # a clean stop lets go at once
                pipe = self.redis.pipeline(transaction=False)
                for n in self._mine:
                    pipe.eval(_DEL_IF_MINE, 1, self._key(n), self.node)
                await pipe.execute()
        await self.redis.aclose()


_DEL_IF_MINE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
