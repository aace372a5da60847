"""Playback of the platform's own recordings through the media hub.

A stream ``record/<channel_id>/<token>`` is opened by :class:`RecordedProvider`: its source
reads the channel's segments (closed, and the complete part of an open one) from the index for
[start, end], demuxes our own fragmented MP4 back into the hub's :class:`Frame`\\ s (Annex B,
parameter sets from ``avcC``/``hvcC`` put in front of every key frame) and publishes them paced
in real time times a speed. Gaps between segments are skipped. It starts at the key frame at
or before ``start`` (so that the first picture decodes) and ends at ``end``. The hub's outputs
(FLV, fMP4, HLS, WebSocket) and the access checks of owned playback streams apply as to a
device's playback; :meth:`RecordedSource.control` takes pause, resume, seek and speed.

Video only: the audio track of a segment is not played back (yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Recording
from xueliang.errors import Invalid, NotFound, Unavailable
from xueliang.media.frame import Codec, Frame
from xueliang.media.hub import MediaHub
from xueliang.objects import ObjectStore
from xueliang.objects.store import CHUNK
from xueliang.recording.index import PART
from xueliang.recording.mp4 import Mp4Error, parse_traf
from xueliang.recording.mp4 import boxes as _boxes
from xueliang.recording.mp4 import child as _child
from xueliang.tasks import woken

log = logging.getLogger("xueliang.recording")

TICKS = 90000
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_START = b"\x00\x00\x00\x01"
#: A jump between consecutive frames longer than this is a gap (or a seek): it is skipped.
GAP_SECONDS = 1.0
DEFAULT_DURATION = 3600  # 25 fps
MIN_SPEED, MAX_SPEED = 0.25, 16.0
#: Segments one query of a playback reads at most (it asks again after them).
MAX_SEGMENTS = 5000


# ---------------------------------------------------------------------------- the demuxer
@dataclass(frozen=True, slots=True)
class Track:
    track_id: int
    codec: Codec
    timescale: int
    #: VPS/SPS/PPS in Annex B order, without start codes.
    parameter_sets: tuple[bytes, ...]
    length_size: int


def _avcc(rec: bytes) -> tuple[tuple[bytes, ...], int]:
    if len(rec) < 7:
        raise ValueError("short avcC")
    length_size = (rec[4] & 0x3) + 1
    out: list[bytes] = []
    pos = 5
    for mask in (0x1F, 0xFF):  # SPS (count in 5 bits), then PPS
        n = rec[pos] & mask
        pos += 1
        for _ in range(n):
            size = _U16.unpack_from(rec, pos)[0]
            out.append(rec[pos + 2:pos + 2 + size])
            pos += 2 + size
    return tuple(out), length_size


def _hvcc(rec: bytes) -> tuple[tuple[bytes, ...], int]:
    if len(rec) < 23:
        raise ValueError("short hvcC")
    length_size = (rec[21] & 0x3) + 1
    arrays = rec[22]
    pos = 23
    found: dict[int, list[bytes]] = {}
    for _ in range(arrays):
        t = rec[pos] & 0x3F
        n = _U16.unpack_from(rec, pos + 1)[0]
        pos += 3
        for _ in range(n):
            size = _U16.unpack_from(rec, pos)[0]
            found.setdefault(t, []).append(rec[pos + 2:pos + 2 + size])
            pos += 2 + size
    return tuple(nal for t in (32, 33, 34) for nal in found.get(t, [])), length_size


def video_track(data: bytes) -> Track | None:
    """The video track of a segment's init (``moov``), or None."""
    moov = next(((p, e) for k, p, e in _boxes(data) if k == b"moov"), None)
    if moov is None:
        return None
    for kind, tp, te in _boxes(data, *moov):
        if kind != b"trak":
            continue
        tkhd, mdia = _child(data, tp, te, b"tkhd"), _child(data, tp, te, b"mdia")
        if tkhd is None or mdia is None:
            continue
        track_id = _U32.unpack_from(data, tkhd[0] + (20 if data[tkhd[0]] == 1 else 12))[0]
        hdlr, mdhd = _child(data, *mdia, b"hdlr"), _child(data, *mdia, b"mdhd")
        minf = _child(data, *mdia, b"minf")
        if hdlr is None or mdhd is None or minf is None or data[hdlr[0] + 8:hdlr[0] + 12] != b"vide":
            continue
        timescale = _U32.unpack_from(data, mdhd[0] + (20 if data[mdhd[0]] == 1 else 12))[0]
        stbl = _child(data, *minf, b"stbl")
        stsd = _child(data, *stbl, b"stsd") if stbl is not None else None
        if stsd is None:
            continue
        for entry, ep, ee in _boxes(data, stsd[0] + 8, stsd[1]):
            codec = {b"avc1": Codec.H264, b"avc3": Codec.H264, b"hvc1": Codec.H265, b"hev1": Codec.H265}.get(entry)
            if codec is None:
                continue
            conf = _child(data, ep + 78, ee, b"avcC" if codec is Codec.H264 else b"hvcC")
            if conf is None:
                continue
            rec = data[conf[0]:conf[1]]
            params, length_size = _avcc(rec) if codec is Codec.H264 else _hvcc(rec)
            return Track(track_id, codec, timescale or TICKS, params, length_size)
    return None


def _annex_b(sample: bytes, length_size: int) -> list[bytes]:
    out: list[bytes] = []
    pos, n = 0, len(sample)
    while pos + length_size <= n:
        size = int.from_bytes(sample[pos:pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > n:
            break
        out.append(sample[pos:pos + size])
        pos += size
    return out


def frames(data: bytes, track: Track) -> Iterator[Frame]:
    """The video samples of a segment's complete fragments as frames; dts/pts in 90 kHz ticks
    from the segment's start (what the index's start and end count from)."""
    moof: tuple[int, int, int] | None = None  # (box start, payload start, end)
    for kind, p, e in _boxes(data):
        if kind == b"moof":
            moof = (p - 8, p, e)
            continue
        if kind != b"mdat" or moof is None:
            continue
        mstart, mp, me = moof
        moof = None
        for k, tp, te in _boxes(data, mp, me):
            if k != b"traf":
                continue
            yield from _traf(data, tp, te, mstart, e, track)


def _traf(data: bytes, tp: int, te: int, moof_start: int, mdat_end: int, track: Track) -> Iterator[Frame]:
    try:
        traf = parse_traf(data, tp, te)
    except Mp4Error:
        return  # malformed: stop rather than read garbage
    if traf.track_id != track.track_id:
        return
    base = moof_start if traf.base_data_offset is None else traf.base_data_offset
    t = traf.decode_time or 0
    scale = track.timescale
    for run in traf.runs:
        offset = base + (run.data_offset or 0)
        for sample in run.samples:
            if offset < 0 or offset + sample.size > mdat_end:
                return  # malformed: stop rather than read garbage
            nals = _annex_b(data[offset:offset + sample.size], track.length_size)
            offset += sample.size
            if nals:
                if sample.sync:
                    nals = [*track.parameter_sets, *nals]
                dts = t * TICKS // scale
                yield Frame(track.codec, dts + sample.cts * TICKS // scale, dts, b"".join(_START + n for n in nals),
                            sample.sync)
            t += sample.duration


# ---------------------------------------------------------------------------- reading a segment
async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk
    finally:
        f.close()


async def segment_chunks(row: Recording, root: Path, objects: ObjectStore | None) -> AsyncIterator[bytes] | None:
    """A segment's bytes as chunks, wherever it lives (the local tier, or the object store after
    recording/tiers.py moved it); None when it cannot be read (gone, or the store is down)."""
    if row.tier == "object" and row.object_key:
        if objects is None:
            log.warning("segment %s is in the object store, which is not configured here", row.path)
            return None
        try:
            return await objects.open(row.object_key)
        except (NotFound, Unavailable) as e:
            log.warning("segment %s: %s", row.path, e)
            return None
    if row.tier != "local":
        return None
    path = root / row.path
    if not path.is_file() and row.path.endswith(PART):
        path = root / row.path.removesuffix(PART)  # closed meanwhile
    if not path.is_file():
        return None
    return _file_chunks(path)


async def top_boxes(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[bytes, bytes]]:
    """(kind, whole box) of the complete top-level boxes of a stream of chunks; a torn tail (a
    segment still being written) is left out. One box in memory at a time, not the segment."""
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        pos = 0
        while len(buf) - pos >= 8:
            size = int.from_bytes(buf[pos:pos + 4], "big")
            if size == 1:
                if len(buf) - pos < 16:
                    break
                size = int.from_bytes(buf[pos + 8:pos + 16], "big")
                if size < 16:
                    return  # malformed: nothing after it can be trusted
            elif size < 8:
                return
            if len(buf) - pos < size:
                break
            yield bytes(buf[pos + 4:pos + 8]), bytes(buf[pos:pos + size])
            pos += size
        del buf[:pos]


async def segment_frames(chunks: AsyncIterator[bytes]) -> AsyncIterator[Frame]:
    """The video frames of a segment read as a stream, fragment by fragment (dts from the
    segment's start, as :func:`frames` gives them)."""
    track: Track | None = None
    moof: bytes | None = None
    async for kind, box in top_boxes(chunks):
        if kind == b"moov":
            try:
                track = video_track(box)
            except (ValueError, IndexError, struct.error) as e:  # a damaged init: no frames
                log.warning("segment with an unreadable moov: %s", e)
                track = None
        elif kind == b"moof":
            moof = box
        elif kind == b"mdat" and moof is not None and track is not None:
            for f in frames(moof + box, track):
                yield f
            moof = None


# ---------------------------------------------------------------------------- the source
async def segments(sessions: async_sessionmaker[AsyncSession], channel_id: str, start: datetime, end: datetime,
                   ) -> list[Recording]:
    """The channel's segments overlapping [start, end), oldest first (an open one included)."""
    async with sessions() as s:
        return list((await s.scalars(
            select(Recording).where(Recording.channel_id == channel_id, Recording.start < end,
                                    or_(Recording.end.is_(None), Recording.end > start))
            .order_by(Recording.start).limit(MAX_SEGMENTS))).all())


class RecordedSource:
    """One playback of platform recordings: a task publishing frames into its stream."""

    def __init__(self, hub: MediaHub, name: str, sessions: async_sessionmaker[AsyncSession], root: Path,
                 channel_id: str, start: datetime, end: datetime, speed: float = 1.0,
                 objects: ObjectStore | None = None) -> None:
        self.hub, self.name, self.sessions, self.root = hub, name, sessions, root
        self.objects = objects
        #: Frames to publish while paused (frame step).
        self._steps = 0
        self.channel_id, self.start, self.end = channel_id, start, end
        self.speed = speed
        self.paused = False
        self.closed = False
        self.position: datetime = start
        self._resume = asyncio.Event()
        self._resume.set()
        self._seek: datetime | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # the pacing clock: output time (s) at a monotonic instant, at self.speed
        self._anchor = (time.monotonic(), 0.0)
        self._out_dts = 0
        self._out_seconds = 0.0

    def start_task(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"playback {self.name}")

    async def close(self) -> None:
        self.closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def control(self, action: str, value: float | None = None) -> dict[str, Any]:
        if self.closed:
            raise Unavailable("the playback has ended")
        if action == "pause":
            self.paused = True
            self._resume.clear()
        elif action == "resume":
            if self.paused:
                self.paused = False
                self._steps = 0
                self._reanchor()
                self._resume.set()
                self._wake.set()
        elif action == "step":
            # one frame forward, paused after it (a paused playback stays paused)
            count = 1 if value is None else int(value)
            if not 1 <= count <= 250:
                raise Invalid("step takes 1 to 250 frames")
            self.paused = True
            self._resume.clear()
            self._steps += count
            self._wake.set()
        elif action == "seek":
            length = (self.end - self.start).total_seconds()
            if value is None or not 0 <= value < length:
                raise Invalid(f"seek needs a position in seconds from the start (0 to {length:g})")
            self._seek = self.start + timedelta(seconds=value)
            if self.paused:  # paused, a seek still shows the picture it lands on
                self._steps = 1
            self._wake.set()
        elif action == "speed":
            if value is None or not MIN_SPEED <= value <= MAX_SPEED:
                raise Invalid(f"speed must be between {MIN_SPEED:g} and {MAX_SPEED:g} (no reverse)")
            self._reanchor()
            self.speed = value
            self._wake.set()
        else:
            raise Invalid(f"unknown playback action {action!r}")
        return {"ok": True, "action": action, "value": value,
                "position": round((self.position - self.start).total_seconds(), 3)}

    def _reanchor(self) -> None:
        self._anchor = (time.monotonic(), self._out_seconds)

    async def _frames_of(self, row: Recording) -> AsyncIterator[Frame]:
        """A segment's frames, wherever it lives (read as a stream, not whole)."""
        chunks = await segment_chunks(row, self.root, self.objects)
        if chunks is None:
            return
        try:
            async for f in segment_frames(chunks):
                yield f
        except (OSError, NotFound, Unavailable) as e:  # gone or cut off midway: on to the next
            log.warning("playback %s: segment %s: %s", self.name, row.path, e)

    async def _run(self) -> None:
        try:
            at = self.start
            while not self.closed:
                restart = await self._play_from(at)
                if restart is None:
                    break
                at = restart
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("playback %s failed", self.name)
        if not self.closed:
            s = self.hub.stream(self.name)
            if s is not None:
                await asyncio.sleep(0.5)  # the last frames reach the outputs' readers
                s.end("end of recording")

    async def _play_from(self, at: datetime) -> datetime | None:
        """Publish from ``at`` to the end; a seek target when interrupted by one, else None."""
        done: set[int] = set()
        first = True
        while True:
            rows = [r for r in await segments(self.sessions, self.channel_id, at, self.end) if r.id not in done]
            if not rows:
                return None
            for row in rows:
                done.add(row.id)
                begin = (at - row.start).total_seconds() * TICKS if first else 0
                # from the key frame at or before ``at``: the frames since the last key frame
                # wait here until one is past ``at`` (a GOP at most in memory)
                gop: list[Frame] = []
                started = False
                async for f in self._frames_of(row):
                    if not started:
                        if f.keyframe:
                            gop = [f]
                        elif gop:
                            gop.append(f)
                        if f.dts <= begin or not gop:
                            continue
                        started = True
                    for g in gop if gop else [f]:
                        wall = row.start + timedelta(seconds=g.dts / TICKS)
                        if wall >= self.end:
                            return None
                        target = await self._publish(g, wall)
                        if target is not None:
                            return target
                    gop = []
                first = False
            at = max(at, rows[-1].start + timedelta(microseconds=1))

    async def _publish(self, f: Frame, wall: datetime) -> datetime | None:
        """Wait for the frame's time, then publish it; a seek target when one came."""
        delta = (wall - self.position).total_seconds()
        if self._out_dts and (delta <= 0 or delta > GAP_SECONDS):
            delta = DEFAULT_DURATION / TICKS  # a gap or a seek: on at once
        if self._out_dts == 0 and self._out_seconds == 0.0:
            delta = 0.0
        self._out_seconds += delta
        self._out_dts = round(self._out_seconds * TICKS) + 1
        while True:
            if self._seek is not None:
                target, self._seek = self._seek, None
                self._wake.clear()
                return target
            if self.paused:
                if self._steps:  # frame step: this one frame, now
                    self._steps -= 1
                    self._anchor = (time.monotonic(), self._out_seconds)
                    break
                self._wake.clear()
                await self._wake.wait()
                continue
            mono, out = self._anchor
            wait = mono + (self._out_seconds - out) / self.speed - time.monotonic()
            if wait <= 0:
                break
            self._wake.clear()
            await woken(self._wake, wait)
        s = self.hub.stream(self.name)
        if s is None or s.ended:
            self.closed = True
            return None
        self.position = wall
        s.push_frame(Frame(f.codec, self._out_dts + (f.pts - f.dts), self._out_dts, f.data, f.keyframe))
        return None


class RecordedProvider:
    """The hub's source for ``record/<channel_id>/<token>`` streams."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], root: Path,
                 objects: ObjectStore | None = None) -> None:
        self.sessions = sessions
        self.root = root
        #: Where segments moved by recording/tiers.py are read from.
        self.objects = objects

    async def open(self, hub: MediaHub, name: str, params: dict[str, Any]) -> RecordedSource:
        channel_id = str(params.get("channel_id") or "")
        if not channel_id or name.split("/")[1:2] != [channel_id]:
            raise Invalid(f"stream {name} needs its channel")
        start = datetime.fromtimestamp(float(params["start"]), UTC)
        end = datetime.fromtimestamp(float(params["end"]), UTC)
        if not await segments(self.sessions, channel_id, start, end):
            raise NotFound(f"the platform has no recording of channel {channel_id} "
                           f"between {start.isoformat()} and {end.isoformat()}")
        speed = float(params.get("speed") or 1.0)
        src = RecordedSource(hub, name, self.sessions, self.root, channel_id, start, end,
                             min(max(speed, MIN_SPEED), MAX_SPEED), objects=self.objects)
        hub.publish(name, kind="recording", meta={"channel_id": channel_id, "start": start.isoformat(),
                                                   "end": end.isoformat()}, handle=src)
        src.start_task()
        return src
