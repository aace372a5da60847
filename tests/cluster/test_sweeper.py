"""Devices a dead signalling node left online are written offline once, whoever sweeps."""

from __future__ import annotations

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
    async with sessions() as s, s.begin():
        for d, online, at in [(SERVED, True, long_ago), (ORPHAN, True, long_ago),
                              (FRESH, True, datetime.now(UTC)), (OFF, False, long_ago)]:
            s.add(Device(id=d, name=d, online=online, registered_at=at, admission="accepted"))
        await s.flush()
        s.add(Channel(id="34020000001310000002", name="c", device_id=ORPHAN, status="ON"))
    presence = MemoryPresence("sig-1")
    presence.online(SERVED, 1.0)
    bus = EventBus()
    heard = bus.subscribe("device")
    a = OrphanSweeper(sessions, presence, bus, grace=30)
    b = OrphanSweeper(sessions, presence, bus, grace=30)  # a second worker
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
