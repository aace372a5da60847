"""One worker of a cluster writes the state history at a time: the lease (in Redis, and the
single process's), the runner that starts and stops the work with it, and the history taken
over by the next writer without a false outage."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.cluster.redis_server import RedisServer
from xueliang.cluster.redis_bus import RedisBus
from xueliang.cluster.redis_lease import RedisLease
from xueliang.db.tables import Device, SchedulerJob, StateInterval
from xueliang.health.history import HEARTBEAT, HistoryRecorder
from xueliang.leadership import Lease, Led, SoleLease


@pytest.fixture
def leases(redis_server: RedisServer) -> Callable[[str, float], RedisLease]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    return lambda node, ttl=5.0: RedisLease(redis_server.url, name, node, ttl=ttl)


async def test_one_holder_at_a_time_and_only_the_holder_renews_or_releases(
        leases: Callable[[str, float], RedisLease]) -> None:
    a, b = leases("worker-a", 5.0), leases("worker-b", 5.0)
    assert await a.acquire() and await a.holder() == "worker-a"
    assert not await b.acquire() and not await b.renew()
    await b.release()  # not b's to release
    assert await a.holder() == "worker-a" and await a.renew() and await a.acquire()
    await a.release()
    assert await b.acquire() and await b.holder() == "worker-b"
    assert not await a.renew()  # a stalled holder cannot take it back by renewing


async def test_a_holder_that_stops_renewing_loses_the_lease_after_its_ttl(
        leases: Callable[[str, float], RedisLease]) -> None:
    a, b = leases("worker-a", 0.4), leases("worker-b", 0.4)
    assert await a.acquire()
    assert not await b.acquire()
    await asyncio.sleep(0.6)
    assert await b.acquire() and not await a.renew()


async def test_the_single_process_always_leads() -> None:
    sole: Lease = SoleLease("one")
    assert await sole.acquire() and await sole.renew() and await sole.holder() == "one"


class Work:
    def __init__(self, running: list[str], name: str, fail: bool = False) -> None:
        self.running, self.name, self.fail = running, name, fail
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        if self.fail:
            raise RuntimeError("cannot start")
        self.running.append(self.name)

    async def stop(self) -> None:
        self.running.remove(self.name)


async def test_the_work_runs_on_one_node_and_moves_when_its_node_dies(
        leases: Callable[[str, float], RedisLease]) -> None:
    running: list[str] = []
    wa, wb = Work(running, "a"), Work(running, "b")
    a = Led("history", leases("worker-a", 0.6), wa.start, wa.stop, every=0.1)
    b = Led("history", leases("worker-b", 0.6), wb.start, wb.stop, every=0.1)
    await a.start()
    await b.start()
    samples: list[list[str]] = []
    try:
        for _ in range(5):
            samples.append(list(running))
            await asyncio.sleep(0.1)
        assert running == ["a"] and a.leading and not b.leading
        # a's process stalls (killed, or frozen): its loop stops, nothing is released
        assert a._task is not None
        a._task.cancel()
        t0 = time.monotonic()
        while "b" not in running and time.monotonic() - t0 < 5:
            samples.append(list(running))
            await asyncio.sleep(0.05)
        took = time.monotonic() - t0
        assert "b" in running and took < 2.0, took
        # a wakes up: its next renewal fails and it stops its work
        a._task = asyncio.create_task(a._run())
        for _ in range(10):
            await asyncio.sleep(0.05)
            samples.append(list(running))
        assert running == ["b"] and not a.leading and b.leading
        # between a stall and its detection both may run (at most one renewal period);
        # never once the renewal is due
        assert all(len(s) <= 1 for s in samples[:5]) and samples[-1] == ["b"]
    finally:
        await a.stop()
        await b.stop()
    assert running == []


async def test_a_clean_stop_hands_over_at_once_and_a_failed_start_gives_the_lead_up(
        leases: Callable[[str, float], RedisLease]) -> None:
    running: list[str] = []
    broken, wb = Work(running, "a", fail=True), Work(running, "b")
    a = Led("history", leases("worker-a", 30.0), broken.start, broken.stop, every=0.1)
    b = Led("history", leases("worker-b", 30.0), wb.start, wb.stop, every=0.1)
    await a.start()  # takes the lease, fails to start, releases it
    await b.start()
    try:
        assert broken.starts >= 1 and not a.leading and b.leading and running == ["b"]
        await b.stop()  # released: a (still failing) or nobody; not after a 30 s TTL
        await asyncio.sleep(0.3)
        assert broken.starts >= 2 and running == []
    finally:
        await a.stop()


# ---- the state history across writers -------------------------------------------------------

D_ON, D_OFF, E = "34020000001320000001", "34020000001320000002", "34020000001320000003"


@pytest.fixture
async def stream(redis_server: RedisServer) -> AsyncIterator[tuple[str, RedisBus]]:
    name = f"t-{uuid.uuid4().hex[:8]}:events"
    pub = RedisBus(redis_server.url, "signalling-1", stream=name)
    await pub.start()
    yield name, pub
    await pub.stop()


async def _recorder(url: str, stream: str, node: str, sessions: async_sessionmaker[AsyncSession],
                    grace: float) -> tuple[RedisBus, HistoryRecorder]:
    bus = RedisBus(url, node, stream=stream, claim_idle=0.5)
    await bus.start()
    rec = HistoryRecorder(sessions, bus, restart_grace=grace, batch_seconds=0.05, heartbeat_seconds=0.2)
    await rec.start()
    return bus, rec


async def _kill(bus: RedisBus, rec: HistoryRecorder) -> None:
    """What SIGKILL leaves: the tasks gone, nothing flushed, released or written at stop."""
    for t in (rec._task, rec._heartbeat_task, rec._grace_task):
        if t is not None:
            t.cancel()
    await asyncio.sleep(0.05)
    await bus.stop()


async def _intervals(sessions: async_sessionmaker[AsyncSession], subject: str) -> list[tuple[str, bool]]:
    async with sessions() as s:
        rows = (await s.execute(select(StateInterval.state, StateInterval.end).where(StateInterval.subject == subject)
                                .order_by(StateInterval.start))).all()
    return [(st, end is None) for st, end in rows]


async def _until(fn: Callable[[], object], timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        got = fn()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_a_writer_taking_over_a_moment_later_keeps_the_states_and_the_meantime(
        redis_server: RedisServer, stream: tuple[str, RedisBus], sessions: async_sessionmaker[AsyncSession]) -> None:
    name, pub = stream
    async with sessions() as s, s.begin():
        s.add_all([Device(id=d, name=d, online=True, admission="accepted") for d in (D_ON, E)])
    bus1, rec1 = await _recorder(redis_server.url, name, "worker-a", sessions, grace=1.0)
    pub.publish("device.online", D_ON)
    pub.publish("device.online", E)
    await pub.flush()
    await _until(lambda: rec1.state_of(D_ON) is not None and rec1.state_of(E) is not None)
    await _until(lambda: rec1.written >= 2)
    await _kill(bus1, rec1)
    # While no writer runs, a device goes offline: the event waits in the group.
    pub.publish("device.offline", E, reason="keepalive")
    await pub.flush()
    bus2, rec2 = await _recorder(redis_server.url, name, "worker-b", sessions, grace=1.0)
    try:
        await _until(lambda: (rec2.state_of(E) or (None,))[0] == "offline")
        await asyncio.sleep(1.5)  # past the grace: the silent, still online device stays online
        assert rec2.state_of(D_ON) is not None and rec2.state_of(D_ON).state == "online"  # type: ignore[union-attr]
        assert await _intervals(sessions, D_ON) == [("online", True)]
        assert await _intervals(sessions, E) == [("online", False), ("offline", True)]
    finally:
        await rec2.stop()
        await bus2.stop()


async def test_after_a_long_gap_the_gap_is_unknown_and_the_registry_says_who_is_still_online(
        redis_server: RedisServer, stream: tuple[str, RedisBus], sessions: async_sessionmaker[AsyncSession]) -> None:
    name, pub = stream
    async with sessions() as s, s.begin():
        s.add_all([Device(id=D_ON, name="on", online=True, admission="accepted"),
                   Device(id=D_OFF, name="off", online=True, admission="accepted")])
    bus1, rec1 = await _recorder(redis_server.url, name, "worker-a", sessions, grace=0.8)
    pub.publish("device.online", D_ON)
    pub.publish("device.online", D_OFF)
    await pub.flush()
    await _until(lambda: rec1.written >= 2)
    await _kill(bus1, rec1)
    # An hour without a writer; meanwhile one device went offline in the registry (its node
    # wrote it so) and its event is gone (Redis lost the stream, say).
    async with sessions() as s, s.begin():
        await s.execute(update(SchedulerJob).where(SchedulerJob.name == HEARTBEAT)
                        .values(last_run_at=datetime.now(UTC) - timedelta(hours=1)))
        await s.execute(update(Device).where(Device.id == D_OFF).values(online=False))
    bus2, rec2 = await _recorder(redis_server.url, name, "worker-b", sessions, grace=0.8)
    try:
        await _until(lambda: rec2.state_of(D_ON) is not None and rec2.state_of(D_OFF) is not None, 5)
        await _until(lambda: rec2.written >= 2, 5)
        assert rec2.state_of(D_ON).state == "online"  # type: ignore[union-attr]
        assert rec2.state_of(D_OFF).state == "offline"  # type: ignore[union-attr]
        # the hour is a gap (unknown) between the closed interval and the new one
        assert await _intervals(sessions, D_ON) == [("online", False), ("online", True)]
        assert await _intervals(sessions, D_OFF) == [("online", False), ("offline", True)]
        async with sessions() as s:
            (_, end1), (start2, _) = (await s.execute(
                select(StateInterval.start, StateInterval.end).where(StateInterval.subject == D_ON)
                .order_by(StateInterval.start))).all()
        # closed at the last heartbeat (an hour ago; the interval is younger: at its start), and
        # online again from the end of the grace: what lies between is unknown
        assert (start2 - end1).total_seconds() >= 0.8
    finally:
        await rec2.stop()
        await bus2.stop()
