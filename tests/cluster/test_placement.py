"""Where a stream goes: its holder while that node lives; else the same node whichever API node
asks (rendezvous), among the nodes with room; a full cluster takes it on the least loaded."""

from __future__ import annotations

import uuid

from tests.cluster.redis_server import RedisServer
from xueliang.cluster.placement import MediaPlacement, rendezvous
from xueliang.presence import MemoryPresence, NodeInfo


class Nodes(MemoryPresence):
    """Presence whose live nodes the test sets."""

    def __init__(self, nodes: list[NodeInfo]) -> None:
        super().__init__("api-1")
        self.live = nodes

    async def nodes(self) -> list[NodeInfo]:
        return list(self.live)


def media(i: int, streams: float = 0, capacity: float = 300) -> NodeInfo:
    return NodeInfo(f"m{i}", ("media",), 0.0, {"http": f"http://10.0.0.{i}:8000"},
                    {"streams": streams, "capacity": capacity})


def test_rendezvous_spreads_evenly_and_moves_only_a_dead_nodes_streams() -> None:
    nodes = [media(i) for i in range(4)]
    names = [f"live/3402000000131{i:07d}" for i in range(4000)]
    before = {n: rendezvous(n, nodes).id for n in names}  # type: ignore[union-attr]
    counts = {m.id: list(before.values()).count(m.id) for m in nodes}
    assert all(800 < c < 1200 for c in counts.values()), counts
    after = {n: rendezvous(n, nodes[1:]).id for n in names}  # type: ignore[union-attr]  # m0 died
    moved = [n for n in names if before[n] != after[n]]
    assert set(moved) == {n for n in names if before[n] == "m0"}


async def test_holder_first_then_room_then_least_loaded(redis_server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    presence = Nodes([media(1), media(2, streams=300), media(3, streams=10)])
    api = MediaPlacement(redis_server.url, "api-1", presence, prefix=prefix)
    holder = MediaPlacement(redis_server.url, "m2", presence, prefix=prefix)
    try:
        # a new stream never goes to m2, which is full
        for i in range(50):
            got = await api.node_for(f"live/{i}")
            assert got is not None and got.id in ("m1", "m3")
        # m2 holds live/7 (it started it before it filled up): it stays there
        holder.held = lambda: ["live/7"]
        await holder.refresh()
        assert (await api.node_for("live/7")).id == "m2"  # type: ignore[union-attr]
        assert (await api.where("live/7")).id == "m2"  # type: ignore[union-attr]
        # m2 dies: its stream is placed again, on a node with room
        presence.live = [media(1), media(3, streams=10)]
        assert await api.where("live/7") is None
        assert (await api.node_for("live/7")).id in ("m1", "m3")  # type: ignore[union-attr]
        # everything full: the least loaded
        presence.live = [media(1, streams=305), media(3, streams=301)]
        assert (await api.node_for("live/99")).id == "m3"  # type: ignore[union-attr]
        assert (await api.least_loaded()).id == "m3"  # type: ignore[union-attr]
        # passed over (did not answer): the next
        assert (await api.node_for("live/99", frozenset({"m3"}))).id == "m1"  # type: ignore[union-attr]
        # the holder's stream ends: it lets go
        holder.held = lambda: []
        await holder.refresh()
        presence.live = [media(2)]
        assert await api.where("live/7") is None
    finally:
        await api.redis.aclose()
        await holder.redis.aclose()
