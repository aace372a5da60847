"""The bus contract: the in-process bus and the Redis Streams bus pass the same tests, and the
Redis bus does what one process cannot: carry events between processes, share a group's work,
lose nothing while a consumer restarts or Redis restarts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from tests.cluster.redis_server import RedisServer
from xueliang.bus import Bus, BusEvent, EventBus
from xueliang.cluster.redis_bus import RedisBus

BusFactory = Callable[..., Bus]


@pytest.fixture(params=["memory", "redis"])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """Buses of one kind; Redis ones share a stream of the test's own."""
    made: list[Bus] = []
    stream = f"test:{uuid.uuid4().hex}"

    def make(node: str = "a", **kw: object) -> Bus:
        if request.param == "memory":
            b: Bus = EventBus()
        else:
            server: RedisServer = request.getfixturevalue("redis_server")
            b = RedisBus(server.url, node, stream=stream, **kw)  # type: ignore[arg-type]
        made.append(b)
        return b

    yield make
    for b in made:
        await b.stop()


async def _get(consumer: object, timeout: float = 5.0) -> BusEvent:
    return await asyncio.wait_for(consumer.get(), timeout)  # type: ignore[attr-defined]


async def test_a_subscriber_gets_the_kinds_it_asked_for(make_bus: BusFactory) -> None:
    bus = make_bus()
    await bus.start()
    devices = bus.subscribe("device")
    online = bus.subscribe("device.online")
    bus.publish("alarm", "34020000001320000001", level=1)
    bus.publish("device.offline", "34020000001110000001")
    bus.publish("device.online", "34020000001110000001", reason="register")
    assert [(e.kind, e.subject) for e in [await _get(devices), await _get(devices)]] == [
        ("device.offline", "34020000001110000001"), ("device.online", "34020000001110000001")]
    ev = await _get(online)
    assert (ev.kind, ev.data) == ("device.online", {"reason": "register"})
    with pytest.raises(TimeoutError):
        await _get(online, 0.3)


async def test_a_listener_is_called_inline(make_bus: BusFactory) -> None:
    bus = make_bus()
    await bus.start()
    seen: list[str] = []
    bus.listen(lambda ev: seen.append(ev.kind))
    bus.publish("stream.up", "live/1")
    assert seen == ["stream.up"]  # before publish returned


async def test_a_listener_of_kinds_hears_those_and_their_prefixes_only(make_bus: BusFactory) -> None:
    bus = make_bus()
    await bus.start()
    exact: list[str] = []
    prefix: list[str] = []
    every: list[str] = []
    bus.listen(lambda ev: exact.append(ev.kind), "device.online", "alarm")
    bus.listen(lambda ev: prefix.append(ev.kind), "stream")
    bus.listen(lambda ev: every.append(ev.kind))
    kinds = ["device.online", "device.offline", "alarm", "alarm.cleared", "stream.up", "streams.x", "stream"]
    for kind in kinds * 2:  # the second time through routes already worked out
        bus.publish(kind, "s")
    assert exact == ["device.online", "alarm", "alarm.cleared"] * 2  # a kind is also its first part's prefix
    assert prefix == ["stream.up", "stream"] * 2
    assert every == kinds * 2


async def test_who_takes_a_kind_follows_subscriptions_and_listeners_coming_and_going(make_bus: BusFactory) -> None:
    """A kind once delivered is routed from memory: a subscription or listener added later takes
    the next event of it, and one closed takes no more."""
    bus = make_bus()
    await bus.start()
    first = bus.subscribe("device")
    bus.publish("device.online", "d1")
    second = bus.subscribe("device.online")
    heard: list[str] = []
    bus.listen(lambda ev: heard.append(ev.subject), "device")
    bus.publish("device.online", "d2")
    first.close()
    bus.publish("device.online", "d3")
    assert [(await _get(first)).subject, (await _get(first)).subject] == ["d1", "d2"]
    with pytest.raises(TimeoutError):
        await _get(first, 0.3)
    assert [(await _get(second)).subject, (await _get(second)).subject] == ["d2", "d3"]
    assert heard == ["d2", "d3"]


async def test_a_slow_subscriber_drops_its_oldest_and_counts_them(make_bus: BusFactory) -> None:
    bus = make_bus()
    await bus.start()
    sub = bus.subscribe("x", maxsize=3)
    for i in range(5):
        bus.publish("x.n", str(i))
    assert sub.dropped == 2
    assert [(await _get(sub)).subject for _ in range(3)] == ["2", "3", "4"]


async def test_a_group_member_gets_the_events_in_order(make_bus: BusFactory) -> None:
    bus = make_bus()
    await bus.start()
    group = bus.subscribe("device", group="history")
    await asyncio.sleep(0.1)
    for i in range(20):
        bus.publish("device.online" if i % 2 else "device.offline", f"d{i}", n=i)
    bus.publish("alarm", "other")
    got = [await _get(group) for _ in range(20)]
    assert [e.data["n"] for e in got] == list(range(20))
    with pytest.raises(TimeoutError):  # not the alarm: the group asked for devices only
        await _get(group, 0.5)


# ---- what only the Redis bus does ---------------------------------------------------------------
@pytest.fixture
def stream() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_events_cross_processes_once(redis_server: RedisServer, stream: str) -> None:
    a, b = RedisBus(redis_server.url, "a", stream=stream), RedisBus(redis_server.url, "b", stream=stream)
    await a.start()
    await b.start()
    try:
        on_a, on_b = a.subscribe("registry"), b.subscribe("registry")
        heard_on_b: list[BusEvent] = []
        b.listen(heard_on_b.append)
        a.publish("registry.device.changed", "34020000001110000001", admission="accepted")
        ev = await _get(on_b)
        assert (ev.kind, ev.subject, ev.data) == ("registry.device.changed", "34020000001110000001",
                                                  {"admission": "accepted"})
        assert [e.subject for e in heard_on_b] == ["34020000001110000001"]
        assert (await _get(on_a)).subject == "34020000001110000001"
        with pytest.raises(TimeoutError):  # its own event comes back to a once, not twice
            await _get(on_a, 1.0)
    finally:
        await a.stop()
        await b.stop()


async def test_a_group_shares_its_work_across_nodes_each_event_once(redis_server: RedisServer,
                                                                     stream: str) -> None:
    buses = [RedisBus(redis_server.url, n, stream=stream) for n in ("p", "m1", "m2")]
    for b in buses:
        await b.start()
    try:
        members = [buses[1].subscribe("device", group="tickets"), buses[2].subscribe("device", group="tickets")]
        await asyncio.sleep(0.2)
        for i in range(60):
            buses[0].publish("device.offline", f"d{i}")
        got: list[list[str]] = [[], []]

        async def drain(i: int) -> None:
            while True:
                got[i].append((await members[i].get()).subject)

        tasks = [asyncio.create_task(drain(i)) for i in range(2)]
        for _ in range(100):
            if len(got[0]) + len(got[1]) >= 60:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # and no more than that
        for t in tasks:
            t.cancel()
        assert sorted(got[0] + got[1]) == sorted(f"d{i}" for i in range(60))
    finally:
        for b in buses:
            await b.stop()


async def test_a_group_loses_nothing_while_its_consumer_restarts(redis_server: RedisServer, stream: str) -> None:
    pub = RedisBus(redis_server.url, "pub", stream=stream)
    await pub.start()
    first = RedisBus(redis_server.url, "worker-1", stream=stream)
    await first.start()
    try:
        g = first.subscribe("device", group="history")
        await asyncio.sleep(0.2)
        for i in range(3):
            pub.publish("device.online", f"before-{i}")
        assert [(await _get(g)).subject for _ in range(3)] == ["before-0", "before-1", "before-2"]
        # The process dies while handling before-2: asking for the next acknowledged 0 and 1 only.
        first._closing = True  # (its loops end; a killed process's would simply be gone)
        for t in first._tasks:
            t.cancel()
        for i in range(5):
            pub.publish("device.offline", f"while-down-{i}")
        await pub.flush()
        again = RedisBus(redis_server.url, "worker-1", stream=stream)
        await again.start()
        g2 = again.subscribe("device", group="history")
        got = [(await _get(g2)).subject for _ in range(6)]
        assert got == ["before-2"] + [f"while-down-{i}" for i in range(5)]
        with pytest.raises(TimeoutError):
            await _get(g2, 1.0)
        await again.stop()
    finally:
        await pub.stop()


async def test_what_a_dead_member_held_goes_to_another(redis_server: RedisServer, stream: str) -> None:
    pub = RedisBus(redis_server.url, "pub", stream=stream)
    dead = RedisBus(redis_server.url, "dead", stream=stream)
    alive = RedisBus(redis_server.url, "alive", stream=stream, claim_idle=1.0)
    for b in (pub, dead, alive):
        await b.start()
    try:
        gd = dead.subscribe("device", group="tickets")
        await asyncio.sleep(0.2)
        pub.publish("device.offline", "held")
        assert (await _get(gd)).subject == "held"  # and then "dead" never comes back
        ga = alive.subscribe("device", group="tickets")
        assert (await _get(ga, 10.0)).subject == "held"
    finally:
        for b in (pub, alive):
            await b.stop()


async def test_events_wait_out_a_redis_restart(own_redis: RedisServer) -> None:
    stream = "test:restart"
    a, b = RedisBus(own_redis.url, "a", stream=stream), RedisBus(own_redis.url, "b", stream=stream)
    await a.start()
    await b.start()
    try:
        fan = b.subscribe("alarm")
        group = b.subscribe("alarm", group="history")
        await asyncio.sleep(0.3)  # another process: its group is made before a publishes
        a.publish("alarm", "before")
        assert (await _get(fan)).subject == "before"
        assert (await _get(group)).subject == "before"
        own_redis.stop()
        for i in range(10):
            a.publish("alarm", f"during-{i}")  # Redis is down: buffered, not lost, not blocking
        await asyncio.sleep(0.5)
        assert a.sent == 1
        own_redis.start()  # empty: no persistence
        got = [(await _get(fan, 15.0)).subject for _ in range(10)]
        assert got == [f"during-{i}" for i in range(10)]
        assert [(await _get(group, 15.0)).subject for _ in range(10)] == got
        assert a.dropped == 0
    finally:
        await a.stop()
        await b.stop()


async def test_while_redis_is_away_the_buffer_is_bounded_and_counts_what_it_drops(own_redis: RedisServer) -> None:
    bus = RedisBus(own_redis.url, "a", stream="test:bounded", buffer=5)
    await bus.start()
    own_redis.stop()
    try:
        for i in range(8):
            bus.publish("alarm", str(i))  # never blocks
        assert bus.dropped == 3
        own_redis.start()
        for _ in range(100):  # the writer retries by itself
            if bus.sent == 5:
                break
            await asyncio.sleep(0.1)
        assert bus.sent == 5
        entries = await bus.redis.xrange("test:bounded")
        assert [f[b"s"] for _, f in entries] == [b"3", b"4", b"5", b"6", b"7"]  # the newest kept
    finally:
        await bus.stop()


def test_a_cluster_node_needs_redis_and_all_stands_alone() -> None:
    from xueliang.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="set redis_url"):
        load_settings(cluster={"roles": ["signalling"]})
    with pytest.raises(ConfigError, match="'all' is every role"):
        load_settings(cluster={"roles": ["all", "api"], "redis_url": "redis://x"})
    s = load_settings(cluster={"roles": ["api", "worker"], "redis_url": "redis://x"})
    assert s.cluster.runs("worker") and not s.cluster.runs("signalling")
    assert load_settings().cluster.runs("media")
