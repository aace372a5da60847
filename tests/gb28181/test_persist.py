"""The signalling writer hands plain tuples to the driver (no SQLAlchemy type processing on its
hot statements), so these tests read every column back through the ORM on each backend."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Device, Event
from xueliang.gb28181.persist import SignallingWriter, _Batch
from xueliang.gb28181.registrar import DeviceSession


def _aware(d: datetime | None) -> datetime | None:
    return None if d is None else (d if d.tzinfo else d.replace(tzinfo=UTC))


def _close(a: datetime | None, wall: float) -> bool:
    return a is not None and abs(_aware(a).timestamp() - wall) < 1e-3  # type: ignore[union-attr]


def _session(device_id: str, wall: float, *, online: bool = True) -> DeviceSession:
    s = DeviceSession(device_id, admission="accepted", online=online, registered=True, addr=("10.1.2.3", 5062),
                      transport="tcp", contact=f"<sip:{device_id}@10.1.2.3:5062>", call_id="c1", gb_version="2.0")
    s.registered_wall = wall
    s.last_seen = time.monotonic() - 2.0  # spoke two seconds ago
    return s


async def test_new_devices_state_keepalives_and_events_round_trip(sessions: async_sessionmaker[AsyncSession]) -> None:
    w = SignallingWriter(sessions)
    wall = 1_790_000_000.123456
    a, b = _session("34020000001320000001", wall), _session("34020000001320000002", wall + 1)
    w.device_new(a)
    w.device_state(a)
    w.device_new(b)
    w.event("device.online", a.device_id, wall, {"reason": "registered", "名": "东门"})
    before = time.time()
    await w.flush()

    async with sessions() as s:
        rows = {d.id: d for d in (await s.scalars(select(Device))).all()}
        assert set(rows) == {a.device_id, b.device_id}
        d = rows[a.device_id]
        assert (d.name, d.type_code, d.online, d.remote_host, d.remote_port, d.transport) == (
            a.device_id, "132", True, "10.1.2.3", 5062, "tcp")
        assert d.contact == a.contact and d.gb_version == "2.0" and d.admission == "accepted"
        assert d.channel_count == 0
        assert _close(d.registered_at, wall)
        assert d.last_keepalive is not None and abs(_aware(d.last_keepalive).timestamp() - (before - 2.0)) < 0.5  # type: ignore[union-attr]
        assert d.created_at is not None and abs(_aware(d.created_at).timestamp() - before) < 5  # type: ignore[union-attr]
        ev = (await s.scalars(select(Event))).one()
        assert (ev.kind, ev.subject, ev.data) == ("device.online", a.device_id, {"reason": "registered", "名": "东门"})
        assert _close(ev.at, wall)

    # A refresh from a new address, then offline, then the 5-minute keepalive flush.
    a.addr, a.online = ("10.9.9.9", 5070), False
    w.device_state(a)
    w.device_offline(a.device_id)
    async with sessions() as s, s.begin():
        s.add(Channel(id="34020000001310000001", name="c", device_id=a.device_id, status="ON"))
    w.keepalive(b.device_id, wall + 60)
    await w.flush(all_keepalives=True)
    async with sessions() as s:
        d = await s.get(Device, a.device_id)
        assert d is not None and (d.online, d.remote_host, d.remote_port) == (False, "10.9.9.9", 5070)
        assert (await s.get(Channel, "34020000001310000001")).status == "OFF"  # type: ignore[union-attr]
        d2 = await s.get(Device, b.device_id)
        assert d2 is not None and _close(d2.last_keepalive, wall + 60) and d2.online is True


async def test_a_failed_flush_keeps_everything_for_the_next(sessions: async_sessionmaker[AsyncSession]) -> None:
    w = SignallingWriter(sessions)
    a = _session("34020000001320000003", time.time())
    w.device_new(a)
    w.event("device.online", a.device_id, time.time(), {"reason": "registered"})

    def database_down() -> AsyncSession:
        raise ConnectionRefusedError("the database is restarting")

    w.sessions = database_down  # type: ignore[assignment]
    with pytest.raises(ConnectionRefusedError):
        await w.flush()
    assert a.device_id in w.unwritten.new and len(w.unwritten.events) == 1
    w.sessions = sessions
    await w.flush()
    async with sessions() as s:
        assert (await s.get(Device, a.device_id)) is not None
        assert len((await s.scalars(select(Event))).all()) == 1


def test_a_raw_insert_must_give_every_defaulted_column() -> None:
    from sqlalchemy.dialects import sqlite

    with pytest.raises(ValueError, match="created_at"):
        _Batch(sqlite.dialect(), Device.__table__, ("id", "name"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no column"):
        _Batch(sqlite.dialect(), Device.__table__, ("id", "nope"), where="id")  # type: ignore[arg-type]


class _SlowDatabase:
    """The real sessions, each write reaching the database a moment late (a busy server)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], delay: float) -> None:
        self.sessions = sessions
        self.delay = delay
        self.entered = asyncio.Event()

    def __call__(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        @contextlib.asynccontextmanager
        async def session() -> AsyncIterator[AsyncSession]:
            self.entered.set()
            await asyncio.sleep(self.delay)
            async with self.sessions() as s:
                yield s

        return session()


async def test_stop_finishes_the_flush_under_way(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Shutdown while a batch is being written: the batch still lands (it used to be cancelled
    half-way and lost, having already been taken out of the queue)."""
    slow = _SlowDatabase(sessions, 0.3)
    w = SignallingWriter(slow, interval=0.05)  # type: ignore[arg-type]
    await w.start()
    wall = 1_790_000_100.0
    a = _session("34020000001320000031", wall)
    w.device_new(a)
    w.event("device.online", a.device_id, wall, {"reason": "registered"})
    await asyncio.wait_for(slow.entered.wait(), 5)  # the periodic flush has taken the batch
    await w.stop()
    async with sessions() as s:
        assert await s.get(Device, a.device_id) is not None
        kinds = (await s.scalars(select(Event.kind).where(Event.subject == a.device_id))).all()
    assert list(kinds) == ["device.online"]


async def test_stop_writes_what_is_queued_and_the_writer_stays_usable(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    w = SignallingWriter(sessions, interval=3600)
    await w.start()
    a = _session("34020000001320000032", 1_790_000_200.0)
    w.device_new(a)
    w.keepalive(a.device_id, 1_790_000_201.0)
    await w.stop()
    async with sessions() as s:
        d = await s.get(Device, a.device_id)
    assert d is not None and _close(d.last_keepalive, 1_790_000_201.0)


async def test_a_new_device_whose_row_is_there_gets_its_state_and_the_batch_goes_through(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """A pending device asks again after its first row was written (the registrar calls it new
    each time), or an administrator adds a device while it registers: its INSERT must not fail
    the batch — which, retried forever, would stop every write of signalling."""
    w = SignallingWriter(sessions)
    wall = 1_790_000_000.0
    pending = _session("34020000001320000007", wall)
    pending.admission, pending.online, pending.contact = "pending", False, ""
    w.device_new(pending)
    await w.flush()
    async with sessions() as s, s.begin():  # meanwhile an administrator registers another one
        s.add(Device(id="34020000001320000008", name="东门", admission="accepted"))
    again = _session("34020000001320000007", wall + 5)
    again.admission, again.online = "pending", False
    other = _session("34020000001320000008", wall + 6)
    fresh = _session("34020000001320000009", wall + 7)
    for d in (again, other, fresh):
        w.device_new(d)
    w.event("device.pending", again.device_id, wall + 5, {})
    await w.flush()
    async with sessions() as s:
        rows = {d.id: d for d in (await s.scalars(select(Device))).all()}
        assert set(rows) == {"34020000001320000007", "34020000001320000008", "34020000001320000009"}
        assert rows["34020000001320000007"].contact == again.contact  # its state, updated
        assert rows["34020000001320000008"].name == "东门" and rows["34020000001320000008"].online is True
        assert _close(rows["34020000001320000009"].registered_at, wall + 7)
        assert [e.kind for e in (await s.scalars(select(Event))).all()] == ["device.pending"]


# ---- the SQLite timestamp text, formatted a second at a time ------------------------------

def _reference_ts(wall: float) -> str:
    """What SQLAlchemy's DateTime stores on SQLite, and what the writer wrote before."""
    return datetime.fromtimestamp(wall, UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_encoding() -> object:
    from xueliang.gb28181.rows import Encoding

    return Encoding(sqlite=True)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=4_102_444_800.0, allow_nan=False), min_size=1, max_size=20))
def test_sqlite_timestamp_text_is_datetimes_own(walls: list[float]) -> None:
    enc = _sqlite_encoding()
    for wall in sorted(walls) + walls:  # in order (the cached second reused) and out of order
        assert enc.ts(wall) == _reference_ts(wall)  # type: ignore[attr-defined]


def test_sqlite_timestamp_text_of_many_seconds_stays_right_and_the_remembered_seconds_bounded() -> None:
    """A keepalive flush's times span five minutes in no order: every second's text is kept
    (not re-made each time the second changes), up to a bound, and stays right past it."""
    from xueliang.db import stamps

    enc = _sqlite_encoding()
    walls = [1764900000.25 + (k * 7919) % 5000 for k in range(5000)]  # 5,000 seconds, shuffled
    for wall in walls + walls[:300]:
        assert enc.ts(wall) == _reference_ts(wall)  # type: ignore[attr-defined]
        assert len(enc._prefixes) <= stamps._PREFIXES_MAX  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=63), st.integers(min_value=0, max_value=2**31))
def test_sqlite_timestamp_text_rounds_exact_half_microseconds_to_even(j: int, second: int) -> None:
    """(2j+1)/128 of a second is exactly (2j+1) × 7812.5 µs, a tie, exact in a double: rounded
    half to even as datetime rounds it (7812.5 down to 7812, 23437.5 up to 23438)."""
    enc = _sqlite_encoding()
    wall = second + (2 * j + 1) / 128
    assert enc.ts(wall) == _reference_ts(wall)  # type: ignore[attr-defined]


@pytest.mark.parametrize("wall", [
    1764900000.0, 1764900000.9999995, 1764900000.9999996, 1764900000.0000005, 1764900000.0000015,
    1764899999.9999999, 1764900000.5, 0.0, 0.9999999, 1.0000005, 1.5, 2.0 - 2**-40,
    -1.0, -0.5, -0.0000005, -1764900000.9999995,
])
def test_sqlite_timestamp_text_at_the_edges_of_a_second(wall: float) -> None:
    enc = _sqlite_encoding()
    enc.ts(wall - 1.0)  # a cached second before
    assert enc.ts(wall) == _reference_ts(wall)  # type: ignore[attr-defined]
    assert enc.ts(wall) == _reference_ts(wall)  # type: ignore[attr-defined]


async def test_device_info_goes_with_the_batch_and_an_empty_field_keeps_the_stored_one(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """What a device says of itself (DeviceInfo) after registering: written with the writer's
    next flush, after the row of a device new in the same batch; a field it leaves empty keeps
    what was stored; a device with no row is nothing to write."""
    w = SignallingWriter(sessions)
    wall = time.time()
    a = _session("34020000001320000031", wall)
    w.device_new(a)
    w.device_info(a.device_id, "东门 IPC", "Hik", "DS-2CD", "V5.7")
    w.device_info("34020000001320000099", "nobody", "x", "y", "z")
    await w.flush()
    async with sessions() as s:
        d = await s.get(Device, a.device_id)
        assert d is not None and (d.name, d.manufacturer, d.model, d.firmware) == ("东门 IPC", "Hik", "DS-2CD", "V5.7")
        assert await s.get(Device, "34020000001320000099") is None
    w.device_info(a.device_id, "", None, "DS-2CD-2", "V" * 300)
    await w.flush()
    async with sessions() as s:
        d = await s.get(Device, a.device_id)
        assert d is not None and (d.name, d.manufacturer, d.model, d.firmware) == ("东门 IPC", "Hik", "DS-2CD-2", "V" * 200)


async def test_events_kept_while_the_database_is_away_are_bounded_newest_kept(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    w = SignallingWriter(sessions, max_events=10)

    def database_down() -> AsyncSession:
        raise ConnectionRefusedError("the database is away")

    w.sessions = database_down  # type: ignore[assignment]
    wall = time.time()
    for i in range(8):
        w.event("device.online", f"3402000000132000{i:04d}", wall + i, {"n": i})
    with pytest.raises(ConnectionRefusedError):
        await w.flush()
    assert w.backlog() == 8 and w.events_dropped == 0  # under the bound: all kept
    for i in range(8, 25):
        w.event("device.online", f"3402000000132000{i:04d}", wall + i, {"n": i})
    with pytest.raises(ConnectionRefusedError):
        await w.flush()
    assert w.backlog() == 10 and w.events_dropped == 15
    w.sessions = sessions
    await w.flush()
    async with sessions() as s:
        kept = sorted(e.data["n"] for e in (await s.scalars(select(Event))).all())
    assert kept == list(range(15, 25))  # the newest ten
    assert w.backlog() == 0


# ---- the events' data as JSON, remembered when all strings ----------------------------------

_JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False),
                         st.text(max_size=4), st.lists(st.integers(0, 2), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=3), _JSON_VALUES, max_size=3), min_size=1, max_size=30))
def test_event_data_json_is_json_dumps_whatever_came_before(datas: list[dict[str, object]]) -> None:
    """Remembered encodings never answer for other data: True is not 1, "1" is not 1."""
    import json

    from xueliang.gb28181.rows import Encoding

    enc = Encoding(sqlite=True)
    for data in datas + datas[::-1]:
        assert enc.json(data) == json.dumps(data)


def test_event_data_json_remembered_is_bounded_and_stays_right() -> None:
    import json

    from xueliang.gb28181.rows import Encoding

    enc = Encoding(sqlite=False)
    for i in range(3000):
        data = {"reason": f"r{i % 1500}"}
        assert enc.json(data) == json.dumps(data)
    assert enc.json({"ok": True}) == '{"ok": true}' and enc.json({"ok": 1}) == '{"ok": 1}'
    assert enc.json({"ok": "1"}) == '{"ok": "1"}'
    assert len(enc._json) <= 1024
