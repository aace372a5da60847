"""Batched persistence of signalling state (principle 5: hot paths stay off the database).

The registrar changes memory; this writer flushes what changed every second (registrations,
online/offline, events) and keepalive times every 5 minutes (the live value is in memory;
the column is for reports), in a few statements over many rows each (db/many.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.many import Many
from xueliang.db.tables import Channel, Device, Event
from xueliang.gb28181.registrar import DeviceSession
from xueliang.gb28181.rows import (
    INFO,
    STATE,
    Encoding,
    Unwritten,
    event_rows,
    info_rows,
    keepalive_rows,
    new_device_rows,
    state_rows,
)
from xueliang.tasks import woken

log = logging.getLogger("xueliang.signalling")

_DEV: Table = Device.__table__  # type: ignore[assignment]
_EVT: Table = Event.__table__  # type: ignore[assignment]
_CHN: Table = Channel.__table__  # type: ignore[assignment]


class _Batch:
    """One statement over plain tuples (db/many.py: multi-row on SQLite, executemany elsewhere).

    A storm writes thousands of rows a second; SQLAlchemy's per-row parameter processing
    (defaults, type processors, dicts) cost more CPU than the database did. So these few
    statements are spelled for the dialect once, and their values are encoded in
    rows.py (compiled); tests read the rows back through the ORM on SQLite and PostgreSQL.
    """

    def __init__(self, dialect: Dialect, table: Table, columns: Sequence[str], where: str | None = None, *,
                 on_conflict: tuple[str, Sequence[str]] | None = None, keep: Sequence[str] = ()) -> None:
        names = [c.name for c in table.columns]
        for c in columns:
            if c not in names:
                raise ValueError(f"{table.name} has no column {c}")
        q = dialect.identifier_preparer.quote
        if where is None:
            left_out = [c for c in table.columns if c.name not in columns and not c.primary_key
                        and (c.default is not None or not c.nullable)]
            if left_out:  # a raw INSERT would skip their defaults
                raise ValueError(f"insert into {table.name} must give {', '.join(c.name for c in left_out)}")
            tail = ""
            if on_conflict is not None:  # a row already there gets these columns (PostgreSQL and SQLite alike)
                key, update = on_conflict
                sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in update)
                tail = f" ON CONFLICT ({q(key)}) DO UPDATE SET {sets}"
            self.many = Many.insert(dialect, table.name, columns, tail=tail)
        else:
            # a column in ``keep`` keeps its value where the row's is NULL
            self.many = Many.update(dialect, table.name, columns, (where,), keep=keep)
        self.sql = self.many.sql

    async def run(self, s: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            await self.many.run(await s.connection(), rows)


class _Statements:
    def __init__(self, dialect: Dialect) -> None:
        self.enc = Encoding(dialect.name == "sqlite")
        self.new_device = _Batch(dialect, _DEV, ("id", "name", "type_code", *STATE, "channel_count", "created_at",
                                                 "updated_at"), on_conflict=("id", (*STATE, "updated_at")))
        self.device_state = _Batch(dialect, _DEV, (*STATE, "updated_at"), where="id")
        self.keepalive = _Batch(dialect, _DEV, ("last_keepalive", "updated_at"), where="id")
        self.info = _Batch(dialect, _DEV, (*INFO, "updated_at"), where="id", keep=INFO)
        self.event = _Batch(dialect, _EVT, ("at", "kind", "subject", "data"))


#: Events kept for the database while it is away; beyond, the oldest go (the rows of the devices
#: themselves are one per device and always kept). Two days of a 100,000-device city's ordinary
#: transitions, or a few mass outages.
MAX_PENDING_EVENTS = 1_000_000


class SignallingWriter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval: float = 1.0,
                 keepalive_interval: float = 300.0, max_events: int = MAX_PENDING_EVENTS) -> None:
        self.sessions = sessions
        self.interval = interval
        self.keepalive_interval = keepalive_interval
        #: What the next flush writes (rows.py, compiled: answers.py puts a registration's there).
        self.unwritten = Unwritten(max_events)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_keepalive_flush = time.monotonic()
        self._lock = asyncio.Lock()
        self._statements: _Statements | None = None

    @property
    def max_events(self) -> int:
        return self.unwritten.max_events

    @property
    def events_dropped(self) -> int:
        """Events dropped, oldest first, because the database was away longer than ``max_events`` lasts."""
        return self.unwritten.events_dropped

    def device_new(self, s: DeviceSession) -> None:
        self.unwritten.device_new(s)

    def device_state(self, s: DeviceSession) -> None:
        self.unwritten.device_state(s)

    def keepalive(self, device_id: str, wall: float) -> None:
        self.unwritten.keepalive(device_id, wall)

    def device_info(self, device_id: str, name: str | None, manufacturer: str | None, model: str | None,
                    firmware: str | None) -> None:
        """What a device said of itself (DeviceInfo); an empty field keeps the stored value."""
        self.unwritten.device_info(device_id, name, manufacturer, model, firmware)

    def device_offline(self, device_id: str) -> None:
        self.unwritten.device_offline(device_id)

    def event(self, kind: str, subject: str, wall: float, data: dict[str, Any]) -> None:
        self.unwritten.event(kind, subject, wall, data)

    def backlog(self) -> int:
        """Events waiting for the database."""
        return len(self.unwritten.events)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="signalling-writer")

    async def stop(self) -> None:
        """Write everything: a flush under way finishes (cancelling it would lose the batch it
        holds), then what is left goes in one last flush."""
        if self._task:
            self._stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush(all_keepalives=True)

    async def _run(self) -> None:
        while not await woken(self._stopping, self.interval):
            try:
                due = time.monotonic() - self._last_keepalive_flush >= self.keepalive_interval
                await self.flush(all_keepalives=due)
            except Exception:
                log.exception("signalling flush failed; will retry")

    async def flush(self, all_keepalives: bool = False) -> None:
        async with self._lock:
            u = self.unwritten
            new, u.new = u.new, {}
            state, u.state = u.state, {}
            events, u.events = u.events, []
            offline, u.offline_channels = u.offline_channels, set()
            info, u.info = u.info, {}
            kas: dict[str, float] = {}
            if all_keepalives:
                kas, u.keepalives = u.keepalives, {}
                self._last_keepalive_flush = time.monotonic()
            if not (new or state or events or offline or kas or info):
                return
            try:
                async with self.sessions() as s, s.begin():
                    await self._write(s, new, state, kas, offline, events, info)
            except Exception:
                # Put back what was not written, so nothing committed is lost on a transient failure.
                u.new.update({k: v for k, v in new.items() if k not in u.new})
                u.state.update({k: v for k, v in state.items() if k not in u.state})
                u.events[:0] = events
                u.trim_events()
                u.offline_channels |= offline
                u.info.update({k: v for k, v in info.items() if k not in u.info})
                for k, v in kas.items():
                    u.keepalives.setdefault(k, v)
                raise

    async def _write(self, s: AsyncSession, new: dict[str, DeviceSession], state: dict[str, DeviceSession],
                     kas: dict[str, float], offline: set[str], events: list[tuple[float, str, str, dict[str, Any]]],
                     info: dict[str, tuple[str | None, ...]]) -> None:
        st = self._statements
        if st is None:
            st = self._statements = _Statements((await s.connection()).dialect)
        enc = st.enc
        wall = time.time()
        now = enc.ts(wall)
        offset = wall - time.monotonic()  # registrar times are monotonic
        # A new device's registration goes into its INSERT: one statement, not two. "New" is the
        # registrar's view; the row may be there already (a pending device asking again after
        # its first row was written, an administrator or another node adding it meanwhile): then
        # the INSERT updates its state instead, and never fails the batch.
        await st.new_device.run(s, new_device_rows(new, enc, offset, now))
        await st.device_state.run(s, state_rows(state, new, enc, offset, now))
        await st.keepalive.run(s, keepalive_rows(kas, enc, now))
        await st.info.run(s, info_rows(info, now))  # after the rows of new devices
        if offline:
            await s.execute(update(_CHN).where(_CHN.c.device_id.in_(list(offline))).values(status="OFF"))
        await st.event.run(s, event_rows(events, enc))
