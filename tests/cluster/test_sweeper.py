"""Devices a dead signalling node left online are written offline once, whoever sweeps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import EventBus
from xueliang.cluster.sweeper import OrphanSweeper
from xueliang.db.tables import Channel, Device, Event
from xueliang.presence import MemoryPresence

SERVED, ORPHAN, FRESH, OFF = (f"3402000000111000000{i}" for i in range(1, 5))


async def test_orphans_are_written_offline_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    fresh = datetime.now(UTC) + timedelta(seconds=5)  # registered within the grace
    async with sessions() as s, s.begin():
        for d, online, at in [(SERVED, True, long_ago), (ORPHAN, True, long_ago),
                              (FRESH, True, fresh), (OFF, False, long_ago)]:
            s.add(Device(id=d, name=d, online=online, registered_at=at, admission="accepted"))
        await s.flush()
        s.add(Channel(id="34020000001310000002", name="c", device_id=ORPHAN, status="ON"))
    presence = MemoryPresence("sig-1")
    presence.online(SERVED, 1.0)
    bus = EventBus()
    heard = bus.subscribe("device")
    a = OrphanSweeper(sessions, presence, bus, grace=0.3)
    b = OrphanSweeper(sessions, presence, bus, grace=0.3)  # a second worker
    assert await a.sweep() == [] and await b.sweep() == []  # missing once: not yet
    await asyncio.sleep(0.35)
    assert await a.sweep() == [ORPHAN]
    assert await b.sweep() == []
    async with sessions() as s:
        online = {d.id: d.online for d in (await s.scalars(select(Device))).all()}
        assert online == {SERVED: True, ORPHAN: False, FRESH: True, OFF: False}
        assert (await s.get(Channel, "34020000001310000002")).status == "OFF"  # type: ignore[union-attr]
        events = [(e.kind, e.subject, e.data) for e in (await s.scalars(select(Event))).all()]
        assert events == [("device.offline", ORPHAN, {"reason": "node_lost"})]
    ev = heard.queue.get_nowait()
    assert (ev.kind, ev.subject, ev.data) == ("device.offline", ORPHAN, {"reason": "node_lost"})
    assert heard.queue.empty()


async def test_a_node_missing_for_a_moment_loses_no_device(sessions: async_sessionmaker[AsyncSession]) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    async with sessions() as s, s.begin():
        s.add(Device(id=SERVED, name=SERVED, online=True, registered_at=long_ago, admission="accepted"))
    presence = MemoryPresence("sig-1")
    sweeper = OrphanSweeper(sessions, presence, EventBus(), grace=0.3)
    assert await sweeper.sweep() == []  # its node's announcement lapsed: missing once
    presence.online(SERVED, 1.0)  # and it is back
    await asyncio.sleep(0.35)
    assert await sweeper.sweep() == []
    presence.offline(SERVED)
    assert await sweeper.sweep() == []  # missing again: the clock starts again
    async with sessions() as s:
        assert (await s.get(Device, SERVED)).online is True  # type: ignore[union-attr]
