"""Batched persistence of signalling state (principle 5: hot paths stay off the database).

The registrar changes memory; this writer flushes what changed every second (registrations,
online/offline, events) and keepalive times every 5 minutes (the live value is in memory;
the column is for reports), in a few executemany statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Device, Event
from xueliang.gb28181.registrar import DeviceSession

log = logging.getLogger("xueliang.signalling")


# Core tables, not the ORM: batches of thousands of rows, and the ORM's bulk path is several
# times slower for them.
_DEV: Table = Device.__table__  # type: ignore[assignment]
_EVT: Table = Event.__table__  # type: ignore[assignment]
_CHN: Table = Channel.__table__  # type: ignore[assignment]


def _ts(wall: float) -> datetime:
    return datetime.fromtimestamp(wall, UTC)


def _state_columns(d: DeviceSession) -> dict[str, Any]:
    return {
        "online": d.online, "remote_host": d.addr[0] if d.addr else None, "remote_port": d.addr[1] if d.addr else None,
        "transport": d.transport, "contact": d.contact[:400],
        "registered_at": _ts(d.registered_wall) if d.registered_wall else None,
        "gb_version": d.gb_version[:8] or None, "admission": d.admission or "accepted",
        "last_keepalive": _ts(time.time() - (time.monotonic() - d.last_seen)) if d.last_seen else None,
    }


class SignallingWriter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval: float = 1.0,
                 keepalive_interval: float = 300.0) -> None:
        self.sessions = sessions
        self.interval = interval
        self.keepalive_interval = keepalive_interval
        self._new: dict[str, DeviceSession] = {}
        self._state: dict[str, DeviceSession] = {}
        self._keepalive: dict[str, float] = {}
        self._offline_channels: set[str] = set()
        self._events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._last_keepalive_flush = time.monotonic()
        self._lock = asyncio.Lock()

    def device_new(self, s: DeviceSession) -> None:
        self._new[s.device_id] = s

    def device_state(self, s: DeviceSession) -> None:
        self._state[s.device_id] = s

    def keepalive(self, device_id: str, wall: float) -> None:
        self._keepalive[device_id] = wall

    def device_offline(self, device_id: str) -> None:
        self._offline_channels.add(device_id)

    def event(self, kind: str, subject: str, wall: float, data: dict[str, Any]) -> None:
        self._events.append({"at": _ts(wall), "kind": kind, "subject": subject, "data": data})

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="signalling-writer")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush(all_keepalives=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                due = time.monotonic() - self._last_keepalive_flush >= self.keepalive_interval
                await self.flush(all_keepalives=due)
            except Exception:
                log.exception("signalling flush failed; will retry")

    async def flush(self, all_keepalives: bool = False) -> None:
        async with self._lock:
            new, self._new = self._new, {}
            state, self._state = self._state, {}
            events, self._events = self._events, []
            offline, self._offline_channels = self._offline_channels, set()
            kas: dict[str, float] = {}
            if all_keepalives:
                kas, self._keepalive = self._keepalive, {}
                self._last_keepalive_flush = time.monotonic()
            if not (new or state or events or offline or kas):
                return
            try:
                async with self.sessions() as s, s.begin():
                    if new:
                        # A new device's registration goes into its INSERT: one statement, not two.
                        await s.execute(insert(_DEV), [
                            {"id": d.device_id, "name": d.device_id, "type_code": d.device_id[10:13],
                             **_state_columns(d)} for d in new.values()])
                        state = {k: v for k, v in state.items() if k not in new}
                    if state:
                        await s.execute(
                            update(_DEV).where(_DEV.c.id == bindparam("b_id")).values(
                                online=bindparam("b_online"), remote_host=bindparam("b_host"),
                                remote_port=bindparam("b_port"), transport=bindparam("b_transport"),
                                contact=bindparam("b_contact"), registered_at=bindparam("b_reg"),
                                gb_version=bindparam("b_ver"), admission=bindparam("b_adm"),
                                last_keepalive=bindparam("b_ka")),
                            [{"b_id": d.device_id, "b_online": d.online, "b_host": d.addr[0] if d.addr else None,
                              "b_port": d.addr[1] if d.addr else None, "b_transport": d.transport,
                              "b_contact": d.contact[:400], "b_reg": _ts(d.registered_wall) if d.registered_wall else None,
                              "b_ver": d.gb_version[:8] or None, "b_adm": d.admission or "accepted",
                              "b_ka": _ts(time.time() - (time.monotonic() - d.last_seen)) if d.last_seen else None}
                             for d in state.values()],
                        )
                    if kas:
                        await s.execute(
                            update(_DEV).where(_DEV.c.id == bindparam("b_id")).values(last_keepalive=bindparam("b_ka")),
                            [{"b_id": k, "b_ka": _ts(v)} for k, v in kas.items()],
                        )
                    if offline:
                        await s.execute(update(_CHN).where(_CHN.c.device_id.in_(list(offline))).values(status="OFF"))
                    if events:
                        await s.execute(insert(_EVT), events)
            except Exception:
                # Put back what was not written, so nothing committed is lost on a transient failure.
                self._new.update({k: v for k, v in new.items() if k not in self._new})
                self._state.update({k: v for k, v in state.items() if k not in self._state})
                self._events[:0] = events
                self._offline_channels |= offline
                for k, v in kas.items():
                    self._keepalive.setdefault(k, v)
                raise
