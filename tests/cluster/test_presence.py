"""The presence contract on both implementations, and what only shared presence does: a device
seen from every node, a dead node's devices counted offline, presence rebuilt after Redis comes
back empty."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from tests.cluster.redis_server import RedisServer
from xueliang.cluster.redis_presence import RedisPresence
from xueliang.presence import MemoryPresence, NodeInfo, Presence

D1, D2 = "34020000001110000001", "34020000001110000002"


async def _settled(p: Presence) -> None:
    if isinstance(p, RedisPresence):
        await p.flush()


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Presence]]:
    made: list[Presence] = []
    prefix = f"t{uuid.uuid4().hex[:8]}"

    def mk(node: str = "sig-1", **kw: float) -> Presence:
        if request.param == "memory":
            p: Presence = MemoryPresence(node)
        else:
            server: RedisServer = request.getfixturevalue("redis_server")
            p = RedisPresence(server.url, node, prefix=prefix, **kw)
        made.append(p)
        return p

    yield mk
    for p in made:
        await p.stop()


async def test_online_seen_offline(make: Callable[..., Presence]) -> None:
    p = make()
    p.announce(NodeInfo("sig-1", ("signalling",), 1.0, {"sip": "10.0.0.1:5060"}))
    await p.start()
    p.online(D1, 100.0)
    p.online(D2, 101.0)
    p.seen(D1, 160.0)
    await _settled(p)
    s = await p.get(D1)
    assert s is not None and (s.node, s.since, s.seen) == ("sig-1", 100.0, 160.0)
    assert await p.online_count() == 2
    p.offline(D2)
    await _settled(p)
    assert await p.get(D2) is None
    assert await p.online_count() == 1
    assert [(n.id, n.roles, n.addresses) for n in await p.nodes()] == [
        ("sig-1", ("signalling",), {"sip": "10.0.0.1:5060"})]


async def test_seen_does_not_bring_an_offline_device_online(make: Callable[..., Presence]) -> None:
    p = make()
    await p.start()
    p.seen(D1, 5.0)
    await _settled(p)
    assert await p.get(D1) is None


# ---- shared presence ---------------------------------------------------------------------------
async def test_every_node_sees_where_a_device_is_and_a_move_is_not_undone(redis_server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    a = RedisPresence(redis_server.url, "sig-a", prefix=prefix)
    b = RedisPresence(redis_server.url, "sig-b", prefix=prefix)
    api = RedisPresence(redis_server.url, "api-1", prefix=prefix)
    for p in (a, b, api):
        await p.start()
    try:
        a.online(D1, 10.0)
        await a.flush()
        s = await api.get(D1)
        assert s is not None and s.node == "sig-a"
        # The device re-registers on b (a's network failed); then a notices its keepalives stopped.
        b.online(D1, 20.0)
        await b.flush()
        a.offline(D1)
        await a.flush()
        s = await api.get(D1)
        assert s is not None and s.node == "sig-b"  # a's late offline did not remove b's device
        assert {n.id for n in await api.nodes()} == {"sig-a", "sig-b", "api-1"}
    finally:
        for p in (a, b, api):
            await p.stop()


async def test_a_dead_nodes_devices_count_offline(redis_server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    dying = RedisPresence(redis_server.url, "sig-dies", prefix=prefix, node_ttl=2.0)
    api = RedisPresence(redis_server.url, "api-1", prefix=prefix)
    await dying.start()
    await api.start()
    try:
        dying.online(D1, 10.0)
        await dying.flush()
        assert (await api.get(D1)) is not None
        assert dying._task is not None
        dying._task.cancel()  # the process is killed: no clean stop, its announcement runs out
        for _ in range(50):
            if await api.get(D1) is None:
                break
            await asyncio.sleep(0.1)
        assert await api.get(D1) is None
        assert await api.online_count() == 0
        assert "sig-dies" not in {n.id for n in await api.nodes()}
    finally:
        await api.stop()
        await dying.redis.aclose()


async def test_presence_rebuilds_after_redis_restarts_empty(own_redis: RedisServer) -> None:
    node = RedisPresence(own_redis.url, "sig-1", node_ttl=3.0, flush_every=0.05)
    await node.start()
    try:
        for i in range(100):
            node.online(f"3402000000111{i:07d}", float(i))
        await node.flush()
        own_redis.restart()  # empty: no persistence
        reader = RedisPresence(own_redis.url, "api-1")
        try:
            for _ in range(100):
                if await reader.online_count() == 100:
                    break
                await asyncio.sleep(0.1)
            assert await reader.online_count() == 100
            s = await reader.get("34020000001110000042")
            assert s is not None and (s.node, s.since) == ("sig-1", 42.0)
            assert node.rebuilds == 1
        finally:
            await reader.redis.aclose()
    finally:
        await node.stop()
