"""The writer: channels' video from the media hub into segment files, without transcoding.

A channel's video is read from the hub's ``live/{channel_id}`` stream as frames: a stream
someone watches is reused (the camera is not asked for a second one); otherwise the hub opens
it, and keeps it open while the recorder reads. Segments of ``recording.segment_seconds`` are
cut at the first key frame after that length and written as fragmented MP4 (the platform's own
muxer, the same bytes the browser gets) under
``<var>/recordings/<channel_id>/<YYYYMMDD>/<start-epoch-ms>.mp4``.

The open segment is ``….mp4.part``, written a fragment (at most ``fragment_seconds`` of video)
at a time straight to the file (no user-space buffer): a SIGKILL loses at most the fragment
being gathered, and the next start (:func:`xueliang.recording.index.reconcile`) cuts the torn
tail and closes it. A closed segment is renamed to ``.mp4`` and its index row closed.

What each channel does follows its plan (plans.py, channel_plans.py): continuous channels
record all the time; scheduled ones while their timetable is on (the recorder wakes at the next
edge of any timetable); event channels keep the stream open and their last seconds in memory
(event_buffer.py), written when a trigger comes: a device alarm about the channel or its device,
an analytics event about it, or an operator (``recording.trigger``). Plan changes on the bus
(``recording.plan``) are applied at once. A full disk (``ENOSPC``) stops the channel's segment,
not the recorder; the disk guard (disk.py) suspends the least important channels before that.
In a cluster, each media node records only the channels whose stream it holds or would take
(placement.py), so a channel is recorded once and moves when a node dies or joins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import Bus, BusEvent, Consumer
from xueliang.config import RecordingConfig
from xueliang.db.tables import Recording
from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Codec, Frame
from xueliang.media.hub import MediaHub
from xueliang.media.outputs import Reader
from xueliang.media.stream import Stream
from xueliang.recording.channel_plans import PLAN_CHANGED, TRIGGER, Camera, ChannelPlans
from xueliang.recording.event_buffer import EventGate
from xueliang.recording.index import PART, ReconcileReport, reconcile, segment_path
from xueliang.recording.plans import Plan, Policy
from xueliang.tasks import woken

log = logging.getLogger("xueliang.recording")

TICKS = 90000  # frames' clock (90 kHz)
READER_LIMIT = 64 * 1024 * 1024
RETRY_SECONDS = 5.0
#: Days of segments the start-up reconcile looks at (besides every open one).
RECONCILE_DAYS = 2
#: A segment's start from the stream's clock further than this from the wall clock: re-anchor.
REANCHOR_SECONDS = 30.0


@dataclass(slots=True)
class Segment:
    """The open segment of one channel."""

    channel_id: str
    rel: str
    start: datetime
    first_dts: int
    muxer: Fmp4Muxer
    fd: int
    row_id: int | None = None
    size: int = 0
    end_dts: int = 0
    pending: list[Frame] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.size += len(data)


def _muxer(stream: Stream, first_dts: int) -> Fmp4Muxer:
    assert stream.codec is not None
    audio = stream.audio_config if stream.audio_config is not None and stream.audio_config.codec is Codec.AAC else None
    return Fmp4Muxer(stream.codec, stream.parameter_sets, audio=audio, base_dts=first_dts)


#: What a channel's task does: ("continuous",) or ("event", pre, post).
Doing = tuple[object, ...]


class Recorder:
    """Records channels from the media hub as their plans say; one task per channel."""

    def __init__(self, cfg: RecordingConfig, sessions: async_sessionmaker[AsyncSession], hub: MediaHub,
                 root: Path, *, bus: Bus | None = None, utc_offset_hours: float = 8.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.policy = Policy.from_config(cfg)
        self.plans = ChannelPlans(self.policy, sessions, bus)
        self.sessions = sessions
        self.hub = hub
        self.root = root
        self.bus = bus
        #: The platform's time zone, for timetables.
        self.tz = timezone(timedelta(hours=utc_offset_hours))
        self.clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._doing: dict[str, Doing] = {}
        self.gates: dict[str, EventGate] = {}
        #: Every camera and its plan, as last applied.
        self.current: dict[str, tuple[Camera, Plan]] = {}
        #: Channels the disk guard stopped (disk.py): not recorded until resumed.
        self.suspended: set[str] = set()
        #: The next edge of any scheduled plan's timetable (UTC).
        self.next_change: datetime | None = None
        self.segments_closed = 0
        self.bytes_written = 0
        self.triggers = 0
        self.write_errors = 0
        self.reconciled: ReconcileReport | None = None
        self._plans: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._sub: Consumer | None = None
        self._wake: asyncio.Event | None = None
        #: In a cluster (recording/placement.py): of the channels planned, those this node
        #: records; None (a single process): all of them.
        self.owns: Callable[[list[str]], Awaitable[set[str]]] | None = None
        #: In a cluster: apply the plans at least this often, seconds (channels handed over
        #: when media nodes die or join).
        self.owns_every: float | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Reconcile the index with the disk (before anything is written)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.reconciled = await reconcile(self.sessions, self.root, recent_days=RECONCILE_DAYS)

    async def start_plans(self) -> None:
        """Reconcile, then apply the plans: every ``plan_seconds``, at the edges of timetables,
        and at once when a plan changes (the platform's component)."""
        await self.start()
        self._wake = asyncio.Event()
        if self.bus is not None:
            self._sub = self.bus.subscribe("recording", "alarm", "analytics")
            self._listener = asyncio.create_task(self._listen(self._sub), name="recording triggers")
        self._plans = asyncio.create_task(self._plan_loop(), name="recording plans")

    async def _plan_loop(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                await self.apply_plans()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording plans not applied")
            wait = self.cfg.plan_seconds
            if self.owns_every is not None:
                wait = min(wait, self.owns_every)
            if self.next_change is not None:
                wait = min(wait, max(0.05, (self.next_change - datetime.fromtimestamp(self.clock(), UTC))
                                     .total_seconds() + 0.05))
            await woken(self._wake, wait)

    def replan(self) -> None:
        """Apply the plans again now (a plan changed, a channel was suspended or resumed)."""
        if self._wake is not None:
            self._wake.set()

    async def _listen(self, sub: Consumer) -> None:
        while True:
            ev = await sub.get()
            try:
                self.on_event(ev)
            except Exception:
                log.exception("recording: event %s not handled", ev.kind)

    def on_event(self, ev: BusEvent) -> None:
        """A plan changed, or something that triggers event recording happened."""
        if ev.kind == PLAN_CHANGED:
            self.replan()
        elif ev.kind in (TRIGGER, "alarm") or ev.kind.startswith("analytics"):
            hit = self.trigger(ev.subject)
            if not hit and ev.kind == "alarm":  # an alarm of the device itself: its channels
                for cid in [c for c, (cam, _) in self.current.items() if cam.device_id == ev.subject]:
                    self.trigger(cid)

    def trigger(self, channel_id: str) -> bool:
        """Trigger the event recording of a channel (False: it does not record on event here)."""
        gate = self.gates.get(channel_id)
        if gate is None:
            return False
        gate.trigger()
        self.triggers += 1
        return True

    async def stop(self) -> None:
        for attr in ("_plans", "_listener"):
            t = getattr(self, attr)
            if t is not None:
                setattr(self, attr, None)
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._doing.clear()
        self.gates.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    @property
    def recording(self) -> list[str]:
        return sorted(self._tasks)

    def doing(self, channel_id: str) -> Doing | None:
        return self._doing.get(channel_id)

    def record(self, channel_id: str, *, event: tuple[float, float] | None = None) -> None:
        """Start recording a channel (no-op when it records already): continuously, or with
        ``event`` = (pre, post) seconds on event."""
        t = self._tasks.get(channel_id)
        if t is None or t.done():
            gate = EventGate(*event) if event is not None else None
            if gate is not None:
                self.gates[channel_id] = gate
            else:
                self.gates.pop(channel_id, None)
            self._doing[channel_id] = ("event", *event) if event is not None else ("continuous",)
            self._tasks[channel_id] = asyncio.create_task(self._run(channel_id, gate), name=f"record {channel_id}")

    async def stop_recording(self, channel_id: str) -> None:
        t = self._tasks.pop(channel_id, None)
        self._doing.pop(channel_id, None)
        self.gates.pop(channel_id, None)
        if t is not None:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def wanted(self, now: datetime) -> dict[str, Doing]:
        """What each channel should do at ``now`` by the plans last loaded (sans suspended)."""
        local = now.astimezone(self.tz)
        out: dict[str, Doing] = {}
        for cid, (_, plan) in self.current.items():
            if cid in self.suspended:
                continue
            if plan.records_at(local):
                out[cid] = ("continuous",)
            elif plan.mode == "event":
                out[cid] = ("event", plan.pre_seconds, plan.post_seconds)
        return out

    async def apply_plans(self, done: str | None = None, *, now: datetime | None = None) -> str | None:
        """Record what the plans say at ``now``, stop the rest; note the next timetable edge."""
        now = now or datetime.fromtimestamp(self.clock(), UTC)
        self.current = {c.id: (c, p) for c, p in await self.plans.every_camera()}
        local = now.astimezone(self.tz)
        edges = [e for _, p in self.current.values() if p.mode == "scheduled"
                 for e in [p.timetable.next_change(local)] if e is not None]
        self.next_change = min(edges).astimezone(UTC) if edges else None
        want = self.wanted(now)
        if self.owns is not None:  # a cluster: only the channels placed on this node
            mine = await self.owns(sorted(want))
            want = {c: how for c, how in want.items() if c in mine}
        for cid in [c for c in self._tasks if want.get(c) != self._doing.get(c)]:
            await self.stop_recording(cid)
        for cid in sorted(want):
            how = want[cid]
            self.record(cid, event=(float(how[1]), float(how[2])) if how[0] == "event" else None)  # type: ignore[arg-type]
        return done

    # ---- one channel -------------------------------------------------------------------------
    async def _run(self, channel_id: str, gate: EventGate | None = None) -> None:
        name = f"live/{channel_id}"
        while True:
            try:
                stream = await self.hub.acquire(name, params={"channel_id": channel_id}, timeout=8.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("recording %s: no stream (%s); retrying", channel_id, exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if stream.codec not in (Codec.H264, Codec.H265):
                log.warning("recording %s: %s cannot be recorded without transcoding", channel_id, stream.codec)
                await asyncio.sleep(60.0)
                continue
            reader = stream.reader("frames", limit=READER_LIMIT, info={"purpose": "recording"})
            seg: Segment | None = None
            try:
                seg = await self._record_stream(channel_id, stream, reader, gate)
            except OSError as exc:  # the disk is full (or gone): this segment ends, not the recorder
                self.write_errors += 1
                log.error("recording %s: writing failed (%s); retrying", channel_id, exc)
                await asyncio.sleep(RETRY_SECONDS)
            finally:
                reader.close()
                if seg is not None:
                    with contextlib.suppress(OSError):
                        await asyncio.shield(self._close(seg, None))
            await asyncio.sleep(0.5)  # the stream ended: open it again

    async def _record_stream(self, channel_id: str, stream: Stream, reader: Reader[Frame],
                             gate: EventGate | None = None) -> Segment | None:
        seg: Segment | None = None
        anchor: list[float] | None = None  # [dts, wall seconds] of the newest frame first seen
        seg_ticks = int(self.cfg.segment_seconds * TICKS)
        frag_ticks = int(self.cfg.fragment_seconds * TICKS)
        newest = 0
        try:
            while True:
                chunk: list[Frame] = await reader.get()
                if not chunk:
                    return seg
                if anchor is None:
                    anchor = [max(f.dts for f in chunk), time.time()]
                for frame in chunk:
                    if frame.codec is stream.codec:
                        newest = max(newest, frame.dts)
                    if gate is None:
                        out: list[Frame] | tuple[Frame] = (frame,)
                    else:  # event recording: the gate says what is written
                        out = gate.push(frame, frame.codec is stream.codec)
                        if seg is not None and not gate.recording:  # the event is over
                            old, seg = seg, None
                            await self._close(old, frame.dts)
                    for f in out:
                        video = f.codec is stream.codec
                        if seg is None:
                            if not (video and f.keyframe):
                                continue
                            seg = await self._open(channel_id, stream, f, anchor, newest)
                        elif video and f.keyframe and (f.dts - seg.first_dts >= seg_ticks
                                                       or seg.muxer.needs_new_init(stream.parameter_sets)):
                            old, seg = seg, None
                            await self._close(old, f.dts)
                            seg = await self._open(channel_id, stream, f, anchor, newest)
                        elif video and seg.pending and f.dts - seg.pending[0].dts >= frag_ticks:
                            self._flush(seg, f.dts)
                        seg.pending.append(f)
        except BaseException:
            if seg is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._close(seg, None))
            raise

    def _flush(self, seg: Segment, end_dts: int | None) -> None:
        if not seg.pending:
            return
        data = seg.muxer.fragment(seg.pending, end_dts=end_dts)
        video = [f.dts for f in seg.pending if f.codec is seg.muxer.video_codec]
        if video:
            seg.end_dts = end_dts if end_dts is not None else max(video) + (
                (max(video) - min(video)) // max(1, len(video) - 1) if len(video) > 1 else 3600)
        seg.pending = []
        if data:
            seg.write(data)
            self.bytes_written += len(data)

    async def _open(self, channel_id: str, stream: Stream, first: Frame, anchor: list[float],
                    newest: int | None = None) -> Segment:
        wall = anchor[1] + (first.dts - anchor[0]) / TICKS
        # an event's segment starts with the buffered seconds from before the trigger
        lag = max(0.0, ((newest or first.dts) - first.dts) / TICKS)
        now = time.time()
        if abs(wall + lag - now) > REANCHOR_SECONDS:  # the camera's clock jumped: take the wall clock's
            log.info("recording %s: stream clock off by %.1f s, re-anchored", channel_id, wall + lag - now)
            anchor[0], anchor[1], wall = first.dts, now - lag, now - lag
        start = datetime.fromtimestamp(round(wall * 1000) / 1000, UTC)
        rel = segment_path(channel_id, start)
        path = self.root / (rel + PART)
        path.parent.mkdir(parents=True, exist_ok=True)
        muxer = _muxer(stream, first.dts)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        seg = Segment(channel_id, rel, start, first.dts, muxer, fd)
        try:
            seg.write(muxer.init_segment())
            async with self.sessions() as s, s.begin():
                row = Recording(channel_id=channel_id, start=start, end=None, size=seg.size, path=rel + PART,
                                tier="local", state="open")
                s.add(row)
                await s.flush()
                seg.row_id = row.id
        except BaseException:
            # The disk refused the init, or the recorder was stopped (or the database refused)
            # before the caller holds the segment, which so cannot close it: it has nothing but
            # its init, no recording (as _close judges), so its file goes, and its row if one was
            # made. Left, the .part had no row to find it.
            os.close(fd)
            path.unlink(missing_ok=True)
            if seg.row_id is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._forget_row(seg.row_id))
            raise
        return seg

    async def _forget_row(self, row_id: int) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(delete(Recording).where(Recording.id == row_id))

    async def _close(self, seg: Segment, end_dts: int | None) -> None:
        """Write what is pending, close the file, rename it and close its index row."""
        if seg.fd < 0:
            return
        try:
            self._flush(seg, end_dts)
        finally:
            os.close(seg.fd)
            seg.fd = -1
        part = self.root / (seg.rel + PART)
        if seg.end_dts <= seg.first_dts:  # nothing but the init segment: not a recording
            part.unlink(missing_ok=True)
            if seg.row_id is not None:
                await self._forget_row(seg.row_id)
            return
        os.replace(part, self.root / seg.rel)
        end = seg.start + timedelta(seconds=(seg.end_dts - seg.first_dts) / TICKS)
        async with self.sessions() as s, s.begin():
            await s.execute(update(Recording).where(Recording.id == seg.row_id)
                            .values(path=seg.rel, end=end, size=seg.size, state="closed"))
        self.segments_closed += 1
