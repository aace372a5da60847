"""Devices left online in the registry by a signalling node that died.

A node that stops cleanly writes its devices offline; one killed cannot. Its devices keep
``online`` in the database until they register with another node, and a device that never comes
back would show online for ever. The sweeper (on worker nodes) compares the registry with
presence every ``every`` seconds and writes offline, with a ``device.offline`` event, each device
the database calls online that no live node has served for ``grace`` seconds (found so at two
sweeps that far apart: a node's announcement that lapses for a moment costs no device).

Several workers may sweep at once: the update is conditional (``AND online``) and returns the
rows it changed, so each device gets one offline event however many sweep.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import Bus
from xueliang.db.tables import Channel, Device, Event
from xueliang.presence import Presence
from xueliang.tasks import Every

log = logging.getLogger("xueliang.cluster")


class OrphanSweeper:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], presence: Presence, bus: Bus, *,
                 every: float = 10.0, grace: float = 30.0) -> None:
        self.sessions = sessions
        self.presence = presence
        self.bus = bus
        self.every = every
        #: a device online for less than this may not have reached presence yet
        self.grace = grace
        self.swept = 0
        #: devices found served by no live node, and since when (monotonic)
        self._missing_since: dict[str, float] = {}
        self._every = Every("orphan-sweeper", every, self.sweep)

    async def start(self) -> None:
        await self._every.start()

    async def stop(self) -> None:
        await self._every.stop()

    async def sweep(self) -> list[str]:
        """One pass; the devices written offline."""
        async with self.sessions() as s:
            online = list((await s.scalars(select(Device.id).where(Device.online))).all())
        missing: list[str] = []
        for i in range(0, len(online), 1000):
            chunk = online[i:i + 1000]
            served = await self.presence.get_many(chunk)
            missing += [d for d in chunk if d not in served]
        # Served by no live node at two sweeps at least ``grace`` apart: a node whose
        # announcement lapsed for a moment (a loaded machine, a slow Redis) loses no device.
        now = time.monotonic()
        first = {d: self._missing_since.get(d, now) for d in missing}
        self._missing_since = first
        orphans = [d for d, since in first.items() if now - since >= self.grace]
        if not orphans:
            return []
        # a device that registered a moment ago may not have reached presence yet
        cutoff = datetime.fromtimestamp(time.time() - self.grace, UTC)
        done: list[str] = []
        async with self.sessions() as s, s.begin():
            for i in range(0, len(orphans), 500):
                rows = await s.execute(
                    update(Device)
                    .where(Device.id.in_(orphans[i:i + 500]), Device.online,
                           or_(Device.registered_at.is_(None), Device.registered_at < cutoff))
                    .values(online=False).returning(Device.id)
                )
                done += list(rows.scalars())
            if done:
                await s.execute(update(Channel).where(Channel.device_id.in_(done)).values(status="OFF"))
                at = datetime.now(UTC)
                s.add_all(Event(at=at, kind="device.offline", subject=d, data={"reason": "node_lost"}) for d in done)
        for device_id in done:
            self.bus.publish("device.offline", device_id, reason="node_lost")
        if done:
            self.swept += len(done)
            log.warning("%d devices online in the registry are served by no live node: written offline", len(done))
        return done

