"""The state history: intervals from bus events, idempotent, episodes, restarts (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from xueliang.bus import EventBus
from xueliang.db.tables import Channel, SchedulerJob, StateInterval
from xueliang.gb28181.manscdp import CatalogItem
from xueliang.health.history import HEARTBEAT, HistoryRecorder, timeline
from xueliang.registry.catalog_store import store_catalog


async def intervals(sessions: Any, subject: str) -> list[tuple[str, Any, Any, Any]]:
    async with sessions() as s:
        rows = (await s.execute(select(StateInterval.state, StateInterval.start, StateInterval.end,
                                       StateInterval.since).where(StateInterval.subject == subject)
                                .order_by(StateInterval.start))).all()
    return [tuple(r) for r in rows]


async def recorder(sessions: Any, bus: EventBus, **kw: Any) -> HistoryRecorder:
    r = HistoryRecorder(sessions, bus, heartbeat_seconds=3600, batch_seconds=0.05, **kw)
    await r.start()
    return r


async def test_device_events_give_device_and_channel_intervals(sessions, city) -> None:
    bus = EventBus()
    rec = await recorder(sessions, bus)
    dev = city["devices"][0]
    chs = city["by_device"][dev]
    t0 = time.time() - 100
    bus.publish("device.online", dev)
    await rec.drained()
    bus.publish("device.offline", dev, reason="keepalive timeout")
    await rec.drained()
    await rec.stop()
    d = await intervals(sessions, dev)
    assert [x[0] for x in d] == ["online", "offline"]
    assert d[0][2] == d[1][1] and d[1][2] is None  # the online interval ends where offline starts
    for ch in chs:
        c = await intervals(sessions, ch)
        assert [x[0] for x in c] == ["online", "offline"]
        assert c[0][1].timestamp() > t0
    # The other device's cameras know nothing: no interval, unknown.
    assert await intervals(sessions, city["by_device"][city["devices"][1]][0]) == []


async def test_a_transition_delivered_twice_or_late_is_stored_once(sessions, city) -> None:
    from xueliang.bus import BusEvent

    bus = EventBus()
    rec = await recorder(sessions, bus)
    dev = city["devices"][0]
    t = time.time() - 50
    on, off = BusEvent("device.online", dev, {}, t), BusEvent("device.offline", dev, {}, t + 10)
    await rec._handle([on, off, on, off])  # at least once: duplicates
    await rec._handle([BusEvent("device.online", dev, {}, t + 5)])  # older than what is known: ignored
    # Another member of the group (a second process) gets the same events again: stored once.
    other = HistoryRecorder(sessions, bus)
    await other.load_channels()
    await other._handle([on, off])
    await rec.stop()
    assert [x[0] for x in await intervals(sessions, dev)] == ["online", "offline"]


async def test_catalog_status_changes_are_published_and_recorded(sessions, city) -> None:
    bus = EventBus()
    rec = await recorder(sessions, bus)
    dev = city["devices"][0]
    ch = city["by_device"][dev][0]
    published: list[Any] = []
    bus.listen(lambda ev: published.append(ev) if ev.kind == "channel.status" else None)

    def sink(changes: list[tuple[str, str, str]]) -> None:  # what app.py wires
        for cid, status, d in changes:
            bus.publish("channel.status", cid, status=status, device=d)

    bus.publish("device.online", dev)
    await rec.drained()
    await store_catalog(sessions, dev, [CatalogItem(device_id=ch, name="cam", status="VLOST")], on_status=sink)
    await rec.drained()
    # Unchanged status: nothing published again.
    await store_catalog(sessions, dev, [CatalogItem(device_id=ch, name="cam", status="VLOST")], on_status=sink)
    await store_catalog(sessions, dev, [CatalogItem(device_id=ch, name="cam", status="ON")], on_status=sink)
    await rec.drained()
    await rec.stop()
    assert [(e.subject, e.data["status"]) for e in published] == [(ch, "VLOST"), (ch, "ON")]
    got = await intervals(sessions, ch)
    assert [x[0] for x in got] == ["online", "fault", "online"]


async def test_a_flapping_point_is_one_episode(sessions, city) -> None:
    from xueliang.bus import BusEvent

    bus = EventBus()
    rec = await recorder(sessions, bus, episode_gap=300)
    dev = city["devices"][0]
    ch = city["by_device"][dev][0]
    t = float(int(time.time()) - 1000)
    evs = [BusEvent("device.online", dev, {}, t)]
    for i in range(20):  # offline 5 s, online 5 s, twenty times
        evs += [BusEvent("device.offline", dev, {}, t + 10 + 10 * i), BusEvent("device.online", dev, {}, t + 15 + 10 * i)]
    evs.append(BusEvent("device.offline", dev, {}, t + 500))
    await rec._handle(evs)
    # Good for longer than the gap, then bad: a new episode.
    await rec._handle([BusEvent("device.online", dev, {}, t + 510), BusEvent("device.offline", dev, {}, t + 900)])
    await rec.stop()
    bad = [x for x in await intervals(sessions, ch) if x[0] == "offline"]
    assert len(bad) == 22
    assert {x[3].timestamp() for x in bad[:21]} == {t + 10}  # one episode since the first failure
    assert abs(bad[21][3].timestamp() - (t + 900)) < 1e-3


async def test_restart_closes_open_intervals_at_the_heartbeat_and_the_gap_is_unknown(sessions, city) -> None:
    bus = EventBus()
    rec = await recorder(sessions, bus)
    dev = city["devices"][0]
    ch = city["by_device"][dev][0]
    bus.publish("device.online", dev)
    await rec.drained()
    rec._task.cancel()  # type: ignore[union-attr]  # a crash: nothing closed
    rec._heartbeat_task.cancel()  # type: ignore[union-attr]
    await asyncio.sleep(0.5)
    hb = datetime.now(UTC) - timedelta(seconds=0.2)
    async with sessions() as s, s.begin():
        await s.execute(update(SchedulerJob).where(SchedulerJob.name == HEARTBEAT).values(last_run_at=hb))
    # The next run: the device does not come back within the grace.
    rec2 = HistoryRecorder(sessions, bus, restart_grace=0.3, heartbeat_seconds=3600, batch_seconds=0.05)
    await rec2.start()
    got = await intervals(sessions, ch)
    assert got[0][2] is not None and abs(got[0][2].timestamp() - hb.timestamp()) < 1e-3
    await rec2._grace_task  # type: ignore[misc]
    await rec2.drained()
    await rec2.stop()
    got = await intervals(sessions, ch)
    assert [x[0] for x in got] == ["online", "offline"]
    assert got[1][1] > got[0][2]  # a gap between: unknown
    tl = await timeline(sessions, ch, got[0][1] - timedelta(seconds=5), datetime.now(UTC))
    assert [x["state"] for x in tl] == ["unknown", "online", "unknown", "offline"]


@pytest.mark.serial
async def test_a_power_cut_of_10000_devices_is_written_in_batches(sessions) -> None:
    from tests.health.conftest import make_city

    c = await make_city(sessions, devices=10_000, per_device=1)
    bus = EventBus()
    rec = await recorder(sessions, bus)
    for d in c["devices"]:
        bus.publish("device.online", d)
    await rec.drained(timeout=300)
    t0 = time.perf_counter()
    for d in c["devices"]:  # publishing is all signalling does: it must stay cheap
        bus.publish("device.offline", d, reason="power")
    publish_s = time.perf_counter() - t0
    await rec.drained(timeout=300)
    await rec.stop()
    assert publish_s < 1.0
    async with sessions() as s:
        open_off = (await s.execute(select(StateInterval.subject).where(
            StateInterval.end.is_(None), StateInterval.state == "offline",
            StateInterval.subject_kind == "channel"))).all()
        assert len(open_off) == 10_000
        assert (await s.scalar(select(Channel.id).limit(1))) is not None


async def test_a_consumer_without_a_local_queue_is_read_in_batches_too(sessions, city) -> None:
    """The cluster's bus hands out consumers that only have get(): events are still gathered
    for a batch, none lost."""
    bus = EventBus()

    class OnlyGet:  # what a consumer of another bus offers: get, close, dropped
        dropped = 0

        def __init__(self) -> None:
            self.inner = bus.subscribe("device.online", "device.offline")

        async def get(self) -> Any:
            return await self.inner.get()

        def close(self) -> None:
            self.inner.close()

    class OtherBus:  # another bus: the same events, consumers with get() only, no subscribe_batch
        def publish(self, kind: str, subject: str, **data: Any) -> Any:
            return bus.publish(kind, subject, **data)

        def subscribe(self, *kinds: str, maxsize: int = 10_000, group: str | None = None) -> OnlyGet:
            return OnlyGet()

        def listen(self, fn: Any) -> None:
            bus.listen(fn)

        async def start(self) -> None:
            return None

        async def stop(self) -> None:
            return None

    rec = HistoryRecorder(sessions, OtherBus(), heartbeat_seconds=3600, batch_seconds=0.3)
    rec.exclusive = True  # still one process: the recorder is the only consumer
    await rec.start()
    assert isinstance(rec._sub, OnlyGet)
    batches: list[int] = []
    handle = rec._handle

    async def counting(batch: list[Any]) -> None:
        batches.append(len(batch))
        await handle(batch)

    rec._handle = counting  # type: ignore[method-assign]
    for d in city["devices"]:
        bus.publish("device.online", d)
    await asyncio.sleep(0.6)
    await rec.stop()
    assert batches == [len(city["devices"])]
    for d in city["devices"]:
        assert [x[0] for x in await intervals(sessions, d)] == ["online"]


async def test_a_video_loss_alarm_is_a_fault_until_the_camera_gives_a_picture(sessions, city) -> None:
    """VLOST and DEFECT from alarms (GB/T 28181: device alarm 2/1 video loss, video alarm 5/11
    video abnormality); other alarms, and alarms a device raises about itself, change nothing."""
    bus = EventBus()
    rec = await recorder(sessions, bus)
    dev = city["devices"][0]
    ch, other = city["by_device"][dev][0], city["by_device"][dev][1]
    bus.publish("device.online", dev)
    await rec.drained()
    bus.publish("alarm", ch, device=dev, method=5, alarm_type=2)  # motion: no fault
    bus.publish("alarm", dev, device=dev, method=2, alarm_type=1)  # names no camera
    bus.publish("alarm", ch, device=dev, method=2, alarm_type=1)
    bus.publish("alarm", other, device=dev, method=5, alarm_type=11)
    await rec.drained()
    bus.publish("stream.attempt", "live/x", channel_id=other, ok=False)  # no picture: still faulty
    bus.publish("stream.attempt", "live/y", channel_id=ch, ok=True)
    await rec.drained()
    await rec.stop()
    got = [(x[0]) for x in await intervals(sessions, ch)]
    assert got == ["online", "fault", "online"], got
    async with sessions() as s:
        details = (await s.execute(select(StateInterval.state, StateInterval.detail)
                                   .where(StateInterval.subject == other).order_by(StateInterval.start))).all()
    assert [tuple(d) for d in details] == [("online", None), ("fault", "defect (alarm)")]
    assert [x[0] for x in await intervals(sessions, dev)] == ["online"]


async def test_an_alarm_fault_taken_over_by_the_next_writer_still_ends_with_a_picture(sessions, city) -> None:
    bus = EventBus()
    rec = await recorder(sessions, bus)
    dev = city["devices"][0]
    ch = city["by_device"][dev][0]
    bus.publish("device.online", dev)
    bus.publish("alarm", ch, device=dev, method=2, alarm_type=1)
    await rec.drained()
    await rec.stop()
    nxt = HistoryRecorder(sessions, bus, heartbeat_seconds=3600, batch_seconds=0.05)
    nxt.exclusive = False  # as in a cluster: the next writer takes the open intervals over
    await nxt.start()
    bus.publish("stream.attempt", "live/y", channel_id=ch, ok=True)
    await nxt.drained()
    await nxt.stop()
    assert [x[0] for x in await intervals(sessions, ch)] == ["online", "fault", "online"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=946_684_800, max_value=4_102_444_800, allow_nan=False), min_size=1, max_size=20))
def test_the_fast_sqlite_time_text_is_the_text_sqlalchemy_stores(times: list[float]) -> None:
    """The recorder writes SQLite times as text itself (a storm's cost); they must compare with
    what SQLAlchemy writes elsewhere (reconcile, rollups), to the microsecond."""
    from sqlalchemy import DateTime
    from sqlalchemy.dialects import sqlite

    from xueliang.health.history import _RawSql

    d = sqlite.dialect()
    raw = _RawSql(d)
    bind = DateTime().dialect_impl(d).bind_processor(d)
    assert bind is not None
    for t in times + [t + 0.5 for t in times]:  # the same second again: the cached prefix
        assert raw.ts(t) == bind(datetime.fromtimestamp(t, UTC).replace(tzinfo=None)), t


async def test_one_batch_of_every_shape_of_row_keeps_every_interval_as_given(sessions, city) -> None:
    """On SQLite the recorder spells a missing detail or episode start as NULL in the statement
    (a row shape each) instead of binding None: one batch with all four shapes, and a second
    episode within the gap (an episode start that is not the interval's), stores each value."""
    from xueliang.bus import BusEvent

    bus = EventBus()
    rec = HistoryRecorder(sessions, bus, heartbeat_seconds=3600, batch_seconds=0.05, episode_gap=300)
    await rec.start()
    d0, d1 = city["devices"][0], city["devices"][1]
    ch = city["by_device"][d1][0]
    t = time.time() - 50
    await rec._handle([
        BusEvent("device.online", d0, {}, t),  # no detail, no episode start
        BusEvent("device.offline", d1, {"reason": "keepalive timeout"}, t),  # both
        BusEvent("device.offline", "34020000001110000099", {}, t),  # an episode start, no detail
    ])
    await rec._handle([
        BusEvent("device.offline", d0, {"reason": "power"}, t + 1),
        BusEvent("device.online", d1, {}, t + 2),  # good for less than the gap ...
    ])
    await rec._handle([BusEvent("device.offline", d1, {}, t + 3)])  # ... so the same episode
    await rec.stop()

    async def rows(subject: str) -> list[tuple[Any, ...]]:
        async with sessions() as s:
            return [tuple(r) for r in (await s.execute(
                select(StateInterval.state, StateInterval.detail, StateInterval.start, StateInterval.end,
                       StateInterval.since).where(StateInterval.subject == subject)
                .order_by(StateInterval.start))).all()]

    def at(x: float) -> datetime:
        return datetime.fromtimestamp(x, UTC)

    def close(a: Any, b: datetime) -> bool:
        return a is not None and abs((a - b).total_seconds()) < 1e-5

    r0 = await rows(d0)
    assert [(x[0], x[1]) for x in r0] == [("online", None), ("offline", "power")]
    assert r0[0][4] is None and close(r0[0][3], at(t + 1)) and close(r0[1][4], at(t + 1))
    r1 = await rows(d1)
    assert [(x[0], x[1]) for x in r1] == [("offline", "keepalive timeout"), ("online", None), ("offline", None)]
    assert close(r1[0][4], at(t)) and r1[1][4] is None
    assert close(r1[2][2], at(t + 3)) and close(r1[2][4], at(t)) and r1[2][3] is None  # the episode's start
    assert [(x[0], x[1]) for x in await rows("34020000001110000099")] == [("offline", None)]
    assert close((await rows("34020000001110000099"))[0][4], at(t))
    # the camera follows its device: offline with the device's detail, then online, then offline
    assert [x[0] for x in await rows(ch)] == ["offline", "online", "offline"]
