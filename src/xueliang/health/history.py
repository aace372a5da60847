"""State history (在线历史): every transition of every channel and device, kept as intervals.

Fed by the bus, never by polling: ``device.online`` / ``device.offline`` from signalling,
``channel.status`` from the catalog (ON, OFF, VLOST, DEFECT), ``stream.attempt`` from the media
hub (picture attempts, for the picture rate). The recorder is a durable consumer group
("history"): in a cluster each event reaches one member, at least once. So a transition is
keyed by (subject, start) — written twice, stored once — and an event older than the state it
would change is ignored.

Events are taken in batches (what queues up within ``batch_seconds`` of the first, up to
``batch_max``) and written in one transaction with executemany, as plain tuples: a power cut
that takes 10,000 devices offline is a few batches, and signalling, which only publishes,
never waits for it.

On start, intervals left open by the last run are closed at the last heartbeat (written every
``heartbeat_seconds``): the time the platform was down has no interval, and so counts as
unknown. Devices that do not come back within ``restart_grace_seconds`` are then offline.
In a cluster (one writer at a time: leadership.py), a writer taking over from one whose last
heartbeat is younger than the grace takes its open intervals over instead (the points' states
went on, and the events of the meantime wait in the consumer group); after a longer gap it
closes them as above, and a device the registry still calls online is online again after the
grace, not offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import Batch, Bus, BusEvent, Consumer, EventBus
from xueliang.db.many import Many
from xueliang.db.stamps import Stamps
from xueliang.db.tables import Channel, DailyHealth, Device, SchedulerJob, StateInterval
from xueliang.db.upsert import insert_for
from xueliang.health.states import BAD, FAULT, OFFLINE, UNKNOWN, channel_state
from xueliang.health.transitions import (
    Current,
    States,
    Transition,
    closing_rows,
    insert_rows,
    rounds,
    shaped_rows,
)

log = logging.getLogger("xueliang.health")

_IV: Table = StateInterval.__table__  # type: ignore[assignment]
_DAY: Table = DailyHealth.__table__  # type: ignore[assignment]
HEARTBEAT = "history.heartbeat"
KINDS = ("device.online", "device.offline", "channel.status", "stream.attempt", "alarm", "picture.fault",
         "picture.ok")
#: The detail of a fault that picture diagnosis confirmed (diagnosis/inspection.py).
PICTURE = "picture: "

#: Alarms that say a camera's picture is bad (GB/T 28181 Annex: AlarmMethod, AlarmType): a device
#: alarm of video loss (2, 1) and a video alarm of video abnormality (5, 11). Such a fault lasts
#: until the camera gives a picture again or its catalog says otherwise; devices send no "cleared".
ALARM_STATUS: dict[tuple[int, int], str] = {(2, 1): "VLOST", (5, 11): "DEFECT"}
#: How an alarm's fault is told from the catalog's, in the interval's detail.
FROM_ALARM = " (alarm)"


def ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class _RawSql:
    """The two statements of a transition, spelled for the dialect's driver, and times as it
    takes them (SQLite: naive UTC text as SQLAlchemy stores it; others: aware datetimes)."""

    def __init__(self, dialect: Any) -> None:
        q = dialect.identifier_preparer.quote
        end, start = q("end"), q("start")
        #: end, subject, start: the open interval of the subject that started before, closed.
        self.close = Many.update(dialect, "health_intervals", ("end",), ("subject", "start <"),
                                 extra=f"{{t}}{end} IS NULL")
        self.sqlite = dialect.name == "sqlite"
        columns = ("subject", "subject_kind", "state", "detail", "start", "end", "since")
        tail = f" ON CONFLICT (subject, {start}) DO NOTHING"

        def insert(detail: bool, since: bool) -> Many:
            values = ["?", "?", "?", "?" if detail else "NULL", "?", "NULL", "?" if since else "NULL"]
            return Many.insert(dialect, "health_intervals", columns, values, tail)

        #: The insert with every value a parameter; for SQLite also with the detail, the episode
        #: start or both spelled NULL (keyed by which are given): Python's sqlite3 module binds a
        #: None through its adapter lookup, which raises and formats an AttributeError each time
        #: (a quarter of the cost of writing a storm's rows, where both are None).
        self.insert = insert(True, True)
        self.inserts = {(d, e): insert(d, e) for d in (True, False) for e in (True, False)}

        self.times = Stamps(self.sqlite)
        self.ts = self.times.ts


class HistoryRecorder:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], bus: Bus, *, episode_gap: float = 300.0,
        restart_grace: float = 200.0, utc_offset_hours: float = 8.0, batch_max: int = 20_000,
        heartbeat_seconds: float = 30.0, batch_seconds: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        #: The only consumer of the history events (the in-process bus: one process): what
        #: it does not hold open is closed in the database too.
        self.exclusive = isinstance(bus, EventBus)
        self.restart_grace = restart_grace
        self.offset = timedelta(hours=utc_offset_hours)
        self.batch_max = batch_max
        #: After the first event of a batch, wait this long for more: a storm becomes a few
        #: transactions, not one per handful of events (history needs no sub-second latency).
        self.batch_seconds = batch_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.states = States(episode_gap)
        self.current = self.states.current
        #: The last bad episode of a subject that is good now: (episode start, when it ended).
        self.last_bad = self.states.last_bad
        self._to = self.states.to
        self.device_online: dict[str, bool] = {}
        #: Catalog status of channels, and the channels of each device (filled as needed).
        #: Catalog status of every camera and the cameras of every device, read once at start
        #: and kept by the channel.status events (no query per device event: a storm of
        #: 10,000 registrations costs no lookups).
        self.status: dict[str, str] = {}
        self.channels_of: dict[str, set[str]] = {}
        self.device_of: dict[str, str] = {}
        #: Cameras whose fault an alarm raised: the next picture ends it.
        self.from_alarm: set[str] = set()
        #: Cameras with picture faults confirmed by diagnosis → their detail.
        self.picture: dict[str, str] = {}
        self._sub: Consumer | Batch | None = None
        self._sql: _RawSql | None = None
        self._task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._grace_task: asyncio.Task[None] | None = None
        #: Subjects whose interval was closed by the restart (devices: offline after the grace).
        self._interrupted: set[str] = set()
        self.processed = 0
        self.written = 0
        #: Set when the queue is empty and everything taken is written (tests, the bench).
        self.idle = asyncio.Event()

    # ---- life ------------------------------------------------------------------------------
    async def start(self) -> None:
        # What a previous term of this recorder knew is stale (another may have led since).
        for known in (self.current, self.last_bad, self.device_online, self.status, self.channels_of, self.device_of, self.picture):
            known.clear()
        self._interrupted.clear()
        self.from_alarm.clear()
        # Subscribe first: what happens while we reconcile is queued, not lost. In one process,
        # as a batch subscription: the events of a storm are appended to a list and taken a
        # second's worth at a time, with no queue put and get each.
        batch = getattr(self.bus, "subscribe_batch", None)  # the in-process bus's (bus.py)
        if batch is not None:
            self._sub = batch(*KINDS, maxsize=1_000_000)
        else:
            self._sub = self.bus.subscribe(*KINDS, group="history", maxsize=1_000_000)
        hb = await self._last_heartbeat()
        if not self.exclusive and hb is not None and time.time() - hb.timestamp() <= self.restart_grace:
            # A cluster's writer taking over from one that was writing a moment ago (a worker
            # killed, or restarted): the points' states went on, and what happened meanwhile
            # waits in the consumer group. Its open intervals are ours now.
            await self.adopt()
        else:
            await self.reconcile()
        await self.load_channels()
        self._task = asyncio.create_task(self._run(), name="health-history")
        self._heartbeat_task = asyncio.create_task(self._beat(), name="health-heartbeat")
        if self._interrupted:
            self._grace_task = asyncio.create_task(self._after_grace(time.time()), name="health-restart-grace")

    async def stop(self) -> None:
        for t in (self._task, self._heartbeat_task, self._grace_task):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        # What was taken from the queue is written; what is queued is the bus's (at least once).
        if self._sub is not None:
            batch = self._drain()
            if batch:
                with contextlib.suppress(Exception):
                    await self._handle(batch)
            self._sub.close()
        with contextlib.suppress(Exception):
            await self.heartbeat()

    async def _last_heartbeat(self) -> datetime | None:
        async with self.sessions() as s:
            hb: datetime | None = await s.scalar(select(SchedulerJob.last_run_at).where(SchedulerJob.name == HEARTBEAT))
        return hb

    async def adopt(self) -> None:
        """Take the open intervals as the current states (the previous writer's memory)."""
        n = 0
        async with self.sessions() as s:
            result = await s.stream(select(_IV.c.subject, _IV.c.subject_kind, _IV.c.state, _IV.c.detail,
                                           _IV.c.start, _IV.c.since).where(_IV.c.end.is_(None))
                                    .execution_options(yield_per=20_000))
            async for subject, kind, state, detail, start, since in result:
                self.current[subject] = Current(state, detail, start.timestamp(),
                                                since.timestamp() if since is not None else None)
                if kind == "device":
                    self.device_online[subject] = state == "online"
                elif detail and detail.endswith(FROM_ALARM):
                    self.from_alarm.add(subject)
                elif detail and detail.startswith(PICTURE):
                    self.picture[subject] = detail
                n += 1
        log.info("state history: took over %d open intervals from the previous writer", n)

    async def reconcile(self) -> None:
        """Close what the last run left open at its last heartbeat (the gap is unknown)."""
        async with self.sessions() as s, s.begin():
            hb = await s.scalar(select(SchedulerJob.last_run_at).where(SchedulerJob.name == HEARTBEAT))
            rows = (await s.execute(select(_IV.c.id, _IV.c.subject, _IV.c.subject_kind, _IV.c.start)
                                    .where(_IV.c.end.is_(None)))).all()
            if not rows:
                return
            ends = []
            for rid, subject, kind, start in rows:
                end = max(start, hb) if hb is not None else start
                ends.append({"rid": rid, "e": end})
                if kind == "device":
                    self._interrupted.add(subject)
            await s.execute(update(_IV).where(_IV.c.id == bindparam("rid")).values(end=bindparam("e")),
                            ends)
        log.info("state history: closed %d intervals left open by the last run at its last heartbeat %s",
                 len(rows), hb)

    async def heartbeat(self) -> None:
        async with self.sessions() as s, s.begin():
            ins = insert_for(s, SchedulerJob.__table__)  # type: ignore[arg-type]
            now = datetime.now(UTC)
            await s.execute(ins.values(name=HEARTBEAT, last_run_at=now, runs=0)
                            .on_conflict_do_update(index_elements=["name"], set_={"last_run_at": now}))

    async def _beat(self) -> None:
        while True:
            try:
                await self.heartbeat()
            except Exception:
                log.exception("history heartbeat failed")
            await asyncio.sleep(self.heartbeat_seconds)

    async def _after_grace(self, started: float) -> None:
        await asyncio.sleep(self.restart_grace)
        at = started + self.restart_grace
        missing = [d for d in self._interrupted if d not in self.current]
        self._interrupted.clear()
        events = []
        if missing and not self.exclusive:
            # In a cluster the signalling nodes may have run on while no writer did: a device
            # they kept online says nothing new. The registry says what they wrote.
            async with self.sessions() as s:
                still = set((await s.scalars(select(Device.id).where(Device.id.in_(missing), Device.online))).all())
            events = [BusEvent("device.online", d, {}, at) for d in missing if d in still]
            missing = [d for d in missing if d not in still]
        events += [BusEvent("device.offline", d, {"reason": "not back after restart"}, at) for d in missing]
        if events:
            await self._handle(events)

    # ---- consuming -------------------------------------------------------------------------
    def _drain(self) -> list[BusEvent]:
        assert self._sub is not None
        if isinstance(self._sub, Batch):
            return self._sub.take(self.batch_max)
        out: list[BusEvent] = []
        q = getattr(self._sub, "queue", None)
        while q is not None and not q.empty() and len(out) < self.batch_max:
            out.append(q.get_nowait())
        return out

    async def _gather(self) -> list[BusEvent]:
        """What else arrives within ``batch_seconds``: an in-process queue is drained after the
        wait; another bus's consumer (the cluster's) is read until the time is up."""
        assert self._sub is not None
        if isinstance(self._sub, Batch) or getattr(self._sub, "queue", None) is not None or self.batch_seconds <= 0:
            if self.batch_seconds > 0:
                await asyncio.sleep(self.batch_seconds)
            return self._drain()
        out: list[BusEvent] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.batch_seconds
        while len(out) < self.batch_max:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                async with asyncio.timeout(left):
                    out.append(await self._sub.get())
            except TimeoutError:
                break
        return out

    async def _run(self) -> None:
        assert self._sub is not None
        while True:
            self.idle.set()
            ev = await self._sub.get()
            self.idle.clear()
            batch = [ev, *await self._gather()]
            for attempt in range(5):
                try:
                    await self._handle(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("state history: writing %d events failed (attempt %d)", len(batch), attempt + 1)
                    await asyncio.sleep(min(30.0, 2.0**attempt))

    async def drained(self, timeout: float = 30.0) -> None:
        """Wait until every event published so far is written (tests and the bench)."""
        deadline = time.monotonic() + timeout
        await asyncio.sleep(0)
        while True:
            q = self._sub if isinstance(self._sub, Batch) else getattr(self._sub, "queue", None)
            if self.idle.is_set() and (q is None or q.empty()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("state history did not catch up")
            await asyncio.sleep(0.02)

    async def _handle(self, batch: list[BusEvent]) -> None:
        # Devices whose channels we do not know yet: one query for the batch.
        out: list[Transition] = []
        pictures: dict[tuple[date, str], list[int]] = {}
        for ev in batch:
            self.processed += 1
            if ev.kind in ("device.online", "device.offline"):
                online = ev.kind == "device.online"
                self.device_online[ev.subject] = online
                self._interrupted.discard(ev.subject)
                self._to(out, ev.subject, "device", "online" if online else OFFLINE,
                         None if online else str(ev.data.get("reason") or "") or None, ev.at)
                for ch in self.channels_of.get(ev.subject, ()):
                    st, detail = channel_state(online, self.status.get(ch), self.picture.get(ch))
                    self._to(out, ch, "channel", st, detail, ev.at)
            elif ev.kind == "channel.status":
                self.from_alarm.discard(ev.subject)
                self._status(out, ev.subject, ev.data.get("device"), str(ev.data.get("status") or ""), ev.at)
            elif ev.kind == "alarm":
                device = str(ev.data.get("device") or "")
                status = ALARM_STATUS.get((ev.data.get("method"), ev.data.get("alarm_type")))  # type: ignore[arg-type]
                # an alarm the device raises about itself names no camera
                if status is None or not device or ev.subject == device:
                    continue
                self.from_alarm.add(ev.subject)
                self._status(out, ev.subject, device, status, ev.at, FROM_ALARM)
            elif ev.kind in ("picture.fault", "picture.ok"):
                faults = ev.data.get("faults") or []
                if ev.kind == "picture.fault" and faults:
                    self.picture[ev.subject] = PICTURE + ", ".join(str(f) for f in faults)
                else:
                    self.picture.pop(ev.subject, None)
                owner = ev.data.get("device") or self.device_of.get(ev.subject)
                self._status(out, ev.subject, owner, self.status.get(ev.subject, ""), ev.at)
            elif ev.kind == "stream.attempt":
                cam = ev.data.get("channel_id")
                if not cam or not str(ev.subject).startswith("live/"):
                    continue
                if ev.data.get("ok") and cam in self.from_alarm:  # a picture again: the alarm is over
                    self.from_alarm.discard(cam)
                    self._status(out, cam, self.device_of.get(cam), "ON", ev.at)
                day = (ts(ev.at) + self.offset).date()
                c = pictures.setdefault((day, str(cam)), [0, 0])
                c[0] += 1
                c[1] += 1 if ev.data.get("ok") else 0
        if out or pictures:
            async with self.sessions() as s, s.begin():
                await self._write(s, out)
                await self._count_pictures(s, pictures)
            self.written += len(out)

    async def load_channels(self) -> None:
        """Every camera's device and catalog status (once, at start)."""
        async with self.sessions() as s:
            result = await s.stream(select(Channel.id, Channel.device_id, Channel.status)
                                    .where(Channel.kind == "camera", Channel.device_id.is_not(None))
                                    .execution_options(yield_per=20_000))
            async for cid, dev, status in result:
                if dev is not None:
                    self._own(cid, dev)
                self.status.setdefault(cid, status or "")

    def _status(self, out: list[Transition], channel_id: str, device: Any, status: str, at: float,
                suffix: str = "") -> None:
        """A channel's status (catalog ON, OFF, VLOST, DEFECT, or one an alarm implies)."""
        self.status[channel_id] = status
        if device:
            self._own(channel_id, str(device))
        st, detail = channel_state(self.device_online.get(str(device)) if device else None, status,
                                   self.picture.get(channel_id))
        if suffix and detail and st == FAULT and not detail.startswith(PICTURE):
            detail += suffix
        self._to(out, channel_id, "channel", st, detail, at)

    def _own(self, channel_id: str, device_id: str) -> None:
        old = self.device_of.get(channel_id)
        if old == device_id:
            return
        if old is not None:
            self.channels_of.get(old, set()).discard(channel_id)
        self.device_of[channel_id] = device_id
        self.channels_of.setdefault(device_id, set()).add(channel_id)

    async def _write(self, s: AsyncSession, out: list[Transition]) -> None:
        if not out:
            return
        # Close the open interval of each subject (only one that started before), then open the
        # new one; (subject, start) unique: a transition written twice is stored once. The rows
        # are built in transitions.py (compiled) and go to the driver as plain tuples: a power
        # cut is tens of thousands of rows, and SQLAlchemy's per-row processing cost more than
        # the database.
        conn = await s.connection()
        sql = self._sql or _RawSql(conn.dialect)
        self._sql = sql
        ts_ = sql.ts
        for r in rounds(out):
            at = [ts_(t.at) for t in r]
            closing = closing_rows(r, at, self.exclusive)
            if closing:
                await sql.close.run(conn, closing)
            if not sql.sqlite:
                await sql.insert.run(conn, insert_rows(r, at, sql.times))
                continue
            # SQLite: no None among the parameters (_RawSql.inserts), one statement per shape
            for key, params in shaped_rows(r, at, sql.times).items():
                await sql.inserts[key].run(conn, params)

    async def _count_pictures(self, s: AsyncSession, counts: dict[tuple[date, str], list[int]]) -> None:
        if not counts:
            return
        ins = insert_for(s, _DAY)
        stmt = ins.on_conflict_do_update(
            index_elements=["day", "channel_id"],
            set_={"attempts": _DAY.c.attempts + ins.excluded.attempts,
                  "pictures": _DAY.c.pictures + ins.excluded.pictures},
        )
        await s.execute(stmt, [
            {"day": d, "channel_id": ch, "attempts": a, "pictures": p, "division_code": "", "online_s": 0,
             "fault_s": 0, "offline_s": 0, "unknown_s": 86400, "rolled": False}
            for (d, ch), (a, p) in counts.items()
        ])

    # ---- reading ---------------------------------------------------------------------------
    def state_of(self, subject: str) -> Current | None:
        return self.current.get(subject)

    def bad_since(self) -> Iterable[tuple[str, Current]]:
        return ((k, c) for k, c in self.current.items() if c.state in BAD)


async def timeline(sessions: async_sessionmaker[AsyncSession], subject: str, start: datetime,
                   end: datetime) -> list[dict[str, Any]]:
    """The intervals of ``subject`` overlapping [start, end), clipped to it; gaps are unknown."""
    async with sessions() as s:
        rows = (await s.execute(
            select(_IV.c.state, _IV.c.detail, _IV.c.start, _IV.c.end)
            .where(_IV.c.subject == subject, _IV.c.start < end, (_IV.c.end.is_(None)) | (_IV.c.end > start))
            .order_by(_IV.c.start)
        )).all()
    out: list[dict[str, Any]] = []
    cursor = start
    now = datetime.now(UTC)
    for state, detail, a, b in rows:
        a = max(a, start)
        b = min(b if b is not None else now, end)
        if b <= a:
            continue
        if a > cursor:
            out.append({"state": UNKNOWN, "detail": None, "start": cursor, "end": a})
        out.append({"state": state, "detail": detail, "start": a, "end": b})
        cursor = max(cursor, b)
    stop = min(end, now)
    if cursor < stop:
        out.append({"state": UNKNOWN, "detail": None, "start": cursor, "end": stop})
    return out
