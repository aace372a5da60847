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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.config import RecordingConfig
from xueliang.db.tables import Channel, Recording
from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Codec, Frame
from xueliang.media.hub import MediaHub
from xueliang.media.outputs import Reader
from xueliang.media.stream import Stream
from xueliang.recording.index import PART, ReconcileReport, reconcile, segment_path
from xueliang.recording.plans import Policy

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


class Recorder:
    """Records channels from the media hub; one task per channel."""

    def __init__(self, cfg: RecordingConfig, sessions: async_sessionmaker[AsyncSession], hub: MediaHub,
                 root: Path) -> None:
        self.cfg = cfg
        self.policy = Policy(cfg.retention_days, cfg.key_site_retention_days, cfg.continuous)
        self.sessions = sessions
        self.hub = hub
        self.root = root
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.segments_closed = 0
        self.reconciled: ReconcileReport | None = None
        self._plans: asyncio.Task[None] | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Reconcile the index with the disk (before anything is written)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.reconciled = await reconcile(self.sessions, self.root, recent_days=RECONCILE_DAYS)

    async def start_plans(self) -> None:
        """Reconcile, then apply the plans every ``plan_seconds`` (the platform's component)."""
        await self.start()
        self._plans = asyncio.create_task(self._plan_loop(), name="recording plans")

    async def _plan_loop(self) -> None:
        while True:
            try:
                await self.apply_plans()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording plans not applied")
            await asyncio.sleep(self.cfg.plan_seconds)

    async def stop(self) -> None:
        if self._plans is not None:
            plans, self._plans = self._plans, None
            plans.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await plans
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    @property
    def recording(self) -> list[str]:
        return sorted(self._tasks)

    def record(self, channel_id: str) -> None:
        """Start recording a channel (no-op when it records already)."""
        t = self._tasks.get(channel_id)
        if t is None or t.done():
            self._tasks[channel_id] = asyncio.create_task(self._run(channel_id), name=f"record {channel_id}")

    async def stop_recording(self, channel_id: str) -> None:
        t = self._tasks.pop(channel_id, None)
        if t is not None:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def apply_plans(self, done: str | None = None) -> str | None:
        """Scheduler job: record the channels whose plan is continuous, stop the others."""
        async with self.sessions() as s:
            rows = (await s.execute(select(Channel.id, Channel.point_class, Channel.key_site)
                                    .where(Channel.kind == "camera"))).all()
        want = {cid for cid, pc, ks in rows if self.policy.plan(cid, pc, bool(ks)).continuous}
        for cid in sorted(want):
            self.record(cid)
        for cid in [c for c in self._tasks if c not in want]:
            await self.stop_recording(cid)
        return done

    # ---- one channel -------------------------------------------------------------------------
    async def _run(self, channel_id: str) -> None:
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
                seg = await self._record_stream(channel_id, stream, reader)
            finally:
                reader.close()
                if seg is not None:
                    await asyncio.shield(self._close(seg, None))
            await asyncio.sleep(0.5)  # the stream ended: open it again

    async def _record_stream(self, channel_id: str, stream: Stream, reader: Reader[Frame]) -> Segment | None:
        seg: Segment | None = None
        anchor: list[float] | None = None  # [dts, wall seconds] of the newest frame first seen
        seg_ticks = int(self.cfg.segment_seconds * TICKS)
        frag_ticks = int(self.cfg.fragment_seconds * TICKS)
        try:
            while True:
                chunk: list[Frame] = await reader.get()
                if not chunk:
                    return seg
                if anchor is None:
                    anchor = [max(f.dts for f in chunk), time.time()]
                for f in chunk:
                    video = f.codec is stream.codec
                    if seg is None:
                        if not (video and f.keyframe):
                            continue
                        seg = await self._open(channel_id, stream, f, anchor)
                    elif video and f.keyframe and (f.dts - seg.first_dts >= seg_ticks
                                                   or seg.muxer.needs_new_init(stream.parameter_sets)):
                        old, seg = seg, None
                        await self._close(old, f.dts)
                        seg = await self._open(channel_id, stream, f, anchor)
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

    async def _open(self, channel_id: str, stream: Stream, first: Frame, anchor: list[float]) -> Segment:
        wall = anchor[1] + (first.dts - anchor[0]) / TICKS
        now = time.time()
        if abs(wall - now) > REANCHOR_SECONDS:  # the camera's clock jumped: take the wall clock's
            log.info("recording %s: stream clock off by %.1f s, re-anchored", channel_id, wall - now)
            anchor[0], anchor[1], wall = first.dts, now, now
        start = datetime.fromtimestamp(round(wall * 1000) / 1000, UTC)
        rel = segment_path(channel_id, start)
        path = self.root / (rel + PART)
        path.parent.mkdir(parents=True, exist_ok=True)
        muxer = _muxer(stream, first.dts)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        seg = Segment(channel_id, rel, start, first.dts, muxer, fd)
        seg.write(muxer.init_segment())
        async with self.sessions() as s, s.begin():
            row = Recording(channel_id=channel_id, start=start, end=None, size=seg.size, path=rel + PART,
                            tier="local", state="open")
            s.add(row)
            await s.flush()
            seg.row_id = row.id
        return seg

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
            async with self.sessions() as s, s.begin():
                await s.execute(delete(Recording).where(Recording.id == seg.row_id))
            return
        os.replace(part, self.root / seg.rel)
        end = seg.start + timedelta(seconds=(seg.end_dts - seg.first_dts) / TICKS)
        async with self.sessions() as s, s.begin():
            await s.execute(update(Recording).where(Recording.id == seg.row_id)
                            .values(path=seg.rel, end=end, size=seg.size, state="closed"))
        self.segments_closed += 1
