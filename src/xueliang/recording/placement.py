"""Which media node records a channel, in a cluster: the one that holds its ``live/{channel}``
stream, or would take it by placement (cluster/placement.py, the rule that sends viewers there).

So each planned channel is recorded once, the camera is asked for one stream (the recorder and
the viewers share it), and channels move when media nodes die or join: a stream held by a live
node stays there; one whose holder died (its announcement gone) is placed by rendezvous hashing
over the live media nodes, so only the dead node's channels move. The recorder asks again at
each plan pass (every third of the node TTL in a cluster) and starts or stops channels.

A single process has no placement: its recorder records every planned channel.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from xueliang.cluster.placement import MediaPlacement, media_nodes, rendezvous

log = logging.getLogger("xueliang.recording")


class RecordingPlacement:
    """``mine(channels)``: those of ``channels`` this media node should record."""

    def __init__(self, placement: MediaPlacement, node: str) -> None:
        self.placement = placement
        self.node = node
        #: what the last pass decided (kept when Redis cannot be read)
        self.last: set[str] = set()

    async def mine(self, channel_ids: list[str]) -> set[str]:
        try:
            live = media_nodes(await self.placement.presence.nodes())
            if self.node not in {n.id for n in live}:  # not announced yet (or cut off): record nothing
                self.last = set()
                return set()
            ids = {n.id for n in live}
            names = [f"live/{c}" for c in channel_ids]
            holders = await self.placement.redis.mget([self.placement._key(n) for n in names]) if names else []
        except (RedisError, OSError) as exc:  # keep recording what this node recorded
            log.warning("recording placement: Redis unavailable (%s); keeping the channels recorded here", exc)
            return self.last & set(channel_ids)
        room = [n for n in live if n.load.get("streams", 0.0) < n.load.get("capacity", float("inf"))]
        out: set[str] = set()
        for cid, name, raw in zip(channel_ids, names, holders, strict=True):
            holder = raw.decode() if isinstance(raw, bytes) else (str(raw) if raw is not None else None)
            if holder is not None and holder in ids:
                chosen: str | None = holder
            elif room:
                node = rendezvous(name, room)
                chosen = node.id if node is not None else None
            else:
                chosen = min(live, key=lambda n: (n.load.get("streams", 0.0), n.id)).id
            if chosen == self.node:
                out.add(cid)
        self.last = out
        return out
