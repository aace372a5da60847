"""A time range of a channel's recording as one MP4 file: a remux, never a transcode.

The file is fragmented MP4: the first segment's init (``ftyp`` + ``moov``), then the fragments
(``moof`` + ``mdat``) of every segment in the range, in order, straight from the segment files.
Each fragment's decode times are moved so that the file's timeline runs from 0 with the
recording's real time between its parts (a gap in the recording stays a gap in time), and its
sequence number is set; both are written in place, so every box keeps its size and the file's
length is known before a byte is read (:attr:`Mp4Plan.size`: Content-Length, ranges).

The cut is at fragment boundaries (a fragment holds at most ``recording.fragment_seconds`` of
video): the file starts at the last fragment at or before ``start`` that begins with a key
frame (so that the first picture decodes) and ends with the fragment that holds ``end``.

A range whose segments do not share one encoding (a new init: the camera's codec, resolution
or parameter sets changed) cannot be one file under one init: :class:`EncodingChanged` (409)
says where it changes, and the range is asked again in parts (an export makes one file per
part by itself).

Planning reads box headers and the moofs of the first and last segments only; streaming reads
at most :data:`CHUNK` bytes at a time: hours of video never sit in memory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Recording
from xueliang.errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from xueliang.objects import ObjectStore
from xueliang.recording.index import PART
from xueliang.recording.mp4 import Init, Mp4Error, parse_init, parse_moof, retimed_moof

T = TypeVar("T")

CHUNK = 1 << 20
_HEAD = 16


class RangeNotSatisfiable(DomainError):
    status = 416
    title = "Range not satisfiable"


class EncodingChanged(Conflict):
    """The range spans segments with different init segments."""


@dataclass(frozen=True, slots=True)
class Where:
    """Where a segment's bytes are: a local file, or an object (recording/tiers.py moved it)."""

    path: Path | None = None
    key: str | None = None

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else f"object {self.key}"


class Blob(Protocol):
    """A segment opened for reading at offsets."""

    def size(self) -> int: ...

    def pread(self, n: int, offset: int) -> bytes: ...

    def close(self) -> None: ...


class _FileBlob:
    def __init__(self, path: Path) -> None:
        if not path.exists() and path.name.endswith(PART):
            path = path.with_name(path.name.removesuffix(PART))  # the open segment closed meanwhile
        self._fd = os.open(path, os.O_RDONLY)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def pread(self, n: int, offset: int) -> bytes:
        return os.pread(self._fd, n, offset)

    def close(self) -> None:
        os.close(self._fd)


class _ObjectBlob:
    """An object read by ranges from a worker thread, through the event loop the store lives
    on; small reads (box headers, moofs) come from a window of :data:`CHUNK` read ahead."""

    def __init__(self, objects: ObjectStore, key: str, loop: asyncio.AbstractEventLoop) -> None:
        self.objects, self.key, self.loop = objects, key, loop
        self._size: int | None = None
        self._window = (0, b"")

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=300)

    def size(self) -> int:
        if self._size is None:
            info = self._call(self.objects.stat(self.key))
            if info is None:
                raise NotFound(f"segment object {self.key} is missing")
            self._size = info.size
        return self._size

    async def _range(self, start: int, end: int) -> bytes:
        return b"".join([c async for c in await self.objects.open(self.key, start, end)])

    def pread(self, n: int, offset: int) -> bytes:
        end = min(offset + n, self.size())
        if offset >= end:
            return b""
        at, data = self._window
        if not (at <= offset and end <= at + len(data)):
            if n > CHUNK:
                return self._call(self._range(offset, end))
            data = self._call(self._range(offset, min(offset + CHUNK, self.size())))
            self._window = at, data = offset, data
        return data[offset - at:end - at]

    def close(self) -> None:
        self._window = (0, b"")


class Segments:
    """How segments are reached: the local tier's root, and the object store with the event
    loop it runs on (reads come from worker threads)."""

    def __init__(self, root: Path, objects: ObjectStore | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.root, self.objects, self.loop = root, objects, loop

    def where(self, row: Recording) -> Where:
        if row.tier == "object" and row.object_key:
            if self.objects is None or self.loop is None:
                raise Unavailable(f"segment {row.path} is in the object store, which is not configured here")
            return Where(key=row.object_key)
        if row.tier != "local":
            raise Unavailable(f"segment {row.path} is on the {row.tier} tier, which cannot be read here")
        return Where(path=self.root / row.path)

    def open(self, where: Where) -> Blob:
        if where.path is not None:
            return _FileBlob(where.path)
        assert where.key is not None and self.objects is not None and self.loop is not None
        return _ObjectBlob(self.objects, where.key, self.loop)


@dataclass(frozen=True, slots=True)
class Piece:
    """Bytes of the output: a literal, a whole moof to re-time, or a slice of a segment."""

    length: int
    data: bytes | None = None
    where: Where | None = None
    offset: int = 0
    #: For a moof: ticks to add per track, and the sequence number to give it.
    shift: dict[int, int] | None = None
    sequence: int = 0


@dataclass(slots=True)
class Mp4Plan:
    init: Init
    segments_at: Segments
    pieces: list[Piece] = field(default_factory=list)
    #: Wall time of the first and the end of the last fragment in the file.
    start: datetime | None = None
    end: datetime | None = None
    fragments: int = 0
    segments: int = 0

    @property
    def size(self) -> int:
        return sum(p.length for p in self.pieces)

    def read(self, first: int = 0, last: int | None = None) -> Iterator[bytes]:
        """The file's bytes [first, last] (inclusive), in chunks of at most :data:`CHUNK`
        (blocking I/O: from a worker thread)."""
        last = self.size - 1 if last is None else last
        at = 0
        blob: tuple[Where, Blob] | None = None  # the segment open now: a moof and its mdat share it
        try:
            for piece in self.pieces:
                lo, hi = at, at + piece.length  # [lo, hi)
                at = hi
                if hi <= first:
                    continue
                if lo > last:
                    return
                a, b = max(first, lo) - lo, min(last + 1, hi) - lo
                if piece.data is not None:
                    yield piece.data[a:b]
                    continue
                assert piece.where is not None
                if blob is None or blob[0] != piece.where:
                    if blob is not None:
                        blob[1].close()
                        blob = None
                    blob = piece.where, self.segments_at.open(piece.where)
                yield from _piece_bytes(blob[1], piece, a, b)
        finally:
            if blob is not None:
                blob[1].close()


def _piece_bytes(f: Blob, piece: Piece, a: int, b: int) -> Iterator[bytes]:
    if piece.shift is not None:  # a moof: small, re-timed whole
        moof = f.pread(piece.length, piece.offset)
        if len(moof) != piece.length:
            raise OSError(f"{piece.where} is shorter than when it was planned")
        yield retimed_moof(moof, piece.shift, piece.sequence)[a:b]
        return
    pos, end = piece.offset + a, piece.offset + b
    while pos < end:
        chunk = f.pread(min(CHUNK, end - pos), pos)
        if not chunk:
            raise OSError(f"{piece.where} is shorter than when it was planned")
        yield chunk
        pos += len(chunk)


@dataclass(frozen=True, slots=True)
class _Fragment:
    moof_at: int
    moof_size: int
    mdat_at: int
    mdat_size: int


def _scan(f: Blob, size: int) -> tuple[int, list[_Fragment]]:
    """(end of the moov, complete moof+mdat pairs) of a segment, from box headers only."""
    pos, moov_end = 0, 0
    frags: list[_Fragment] = []
    moof: tuple[int, int] | None = None
    while pos + 8 <= size:
        head = f.pread(_HEAD, pos)
        if len(head) < 8:
            break
        box, kind = int.from_bytes(head[:4], "big"), head[4:8]
        if box == 1:
            if len(head) < 16:
                break
            box = int.from_bytes(head[8:16], "big")
        if box < 8 or pos + box > size:
            break  # torn (an open segment) or malformed: what came before stands
        if kind == b"moov":
            moov_end = pos + box
        elif kind == b"moof":
            moof = (pos, box)
        elif kind == b"mdat" and moof is not None:
            frags.append(_Fragment(moof[0], moof[1], pos, box))
            moof = None
        pos += box
    return moov_end, frags


def plan(segments: Segments, rows: Sequence[Recording], start: datetime, end: datetime) -> Mp4Plan:
    """The file of [start, end) from the channel's segments ``rows`` (oldest first; blocking
    I/O: run it in a thread). NotFound when nothing recorded lies in the range."""
    out: Mp4Plan | None = None
    origin: datetime | None = None  # the wall time of the file's 0
    sequence = 0
    for row in rows:
        where = segments.where(row)
        try:
            f = segments.open(where)
        except OSError:
            continue  # deleted meanwhile (retention): a gap
        try:
            try:
                size = f.size()
            except NotFound:
                continue  # likewise, in the object store
            moov_end, frags = _scan(f, size)
            if not moov_end or not frags:
                continue
            try:
                init = parse_init(f.pread(moov_end, 0))
            except Mp4Error:
                continue
            video = init.video
            if video is None or video.timescale <= 0:
                continue
            seg_end = row.end or (row.start + timedelta(days=1))
            if row.start < start or seg_end > end:
                frags = _cut(f, frags, video.track_id, video.timescale, row.start, start, end)
                if not frags:
                    continue
            first_dt = _decode_time(f, frags[0], video.track_id)
            if out is None:
                out = Mp4Plan(init, segments, [Piece(moov_end, data=f.pread(moov_end, 0))])
                origin = row.start + timedelta(seconds=first_dt / video.timescale)
                out.start = origin
            elif not init.same_encoding(out.init):
                raise EncodingChanged(
                    f"the recording's encoding changes at {row.start.isoformat()} (a new init segment): "
                    f"download up to it and from it separately", changes_at=row.start.isoformat())
            assert origin is not None
            offset = (row.start - origin).total_seconds()
            shift = {t.track_id: round(offset * t.timescale) for t in init.tracks}
            for fr in frags:
                sequence += 1
                out.pieces.append(Piece(fr.moof_size, where=where, offset=fr.moof_at, shift=shift, sequence=sequence))
                out.pieces.append(Piece(fr.mdat_size, where=where, offset=fr.mdat_at))
            out.fragments += len(frags)
            out.segments += 1
            last = _fragment_span(f, frags[-1], video.track_id)
            if last is not None:
                out.end = row.start + timedelta(seconds=last[1] / video.timescale)
        finally:
            f.close()
    if out is None:
        raise NotFound(f"nothing recorded between {start.isoformat()} and {end.isoformat()}")
    return out


def _fragment_span(f: Blob, fr: _Fragment, track_id: int) -> tuple[int, int, bool] | None:
    """(decode time, end, starts with a key frame) of the video in a fragment."""
    data = f.pread(fr.moof_size, fr.moof_at)
    try:
        traf = parse_moof(data, 8, len(data)).traf(track_id)
    except Mp4Error:
        return None
    if traf is None or traf.decode_time is None:
        return None
    first = next((s for r in traf.runs for s in r.samples), None)
    return traf.decode_time, traf.end, first is not None and first.sync


def _decode_time(f: Blob, fr: _Fragment, track_id: int) -> int:
    span = _fragment_span(f, fr, track_id)
    return span[0] if span is not None else 0


def _cut(f: Blob, frags: list[_Fragment], track_id: int, timescale: int, seg_start: datetime,
         start: datetime, end: datetime) -> list[_Fragment]:
    """The fragments of one segment from the last key-frame fragment at or before ``start`` to
    the one holding ``end``."""
    spans: list[tuple[bool, bool]] = []  # (in range, starts with a key frame)
    for fr in frags:
        span = _fragment_span(f, fr, track_id)
        if span is None:
            break  # malformed: what came before stands
        a = seg_start + timedelta(seconds=span[0] / timescale)
        if a >= end:
            break
        b = seg_start + timedelta(seconds=span[1] / timescale)
        spans.append((b > start, span[2]))
    inside = [i for i, (ok, _) in enumerate(spans) if ok]
    if not inside:
        return []
    first = inside[0]
    while first > 0 and not spans[first][1]:
        first -= 1
    return frags[first:inside[-1] + 1]


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One byte range of an HTTP ``Range`` header (``bytes=a-b``, ``a-``, ``-n``) as [first,
    last]; None for the whole file (no header, or several ranges: the whole is a valid answer).
    ValueError when it cannot be satisfied (416)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    a, sep, b = spec.strip().partition("-")
    if not sep:
        raise ValueError(f"bad range {header!r}")
    try:
        if a == "":
            n = int(b)
            if n <= 0:
                raise ValueError("empty suffix range")
            return max(0, size - n), size - 1
        first = int(a)
        last = int(b) if b else size - 1
    except ValueError as exc:
        raise ValueError(f"bad range {header!r}") from exc
    if first < 0 or first >= size or last < first:
        raise ValueError(f"range {header!r} outside the file's {size} bytes")
    return first, min(last, size - 1)


#: The longest range one download covers (1,440 one-minute segments).
MAX_HOURS = 24


async def recorded_range(sessions: async_sessionmaker[AsyncSession], root: Path, channel_id: str,
                         start: datetime, end: datetime, objects: ObjectStore | None = None) -> Mp4Plan:
    """The MP4 of a channel's recording in [start, end): validated, planned (in a thread)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("start and end need a time zone (…Z or +08:00)")
    if end <= start:
        raise Invalid("end must be after start")
    if end - start > timedelta(hours=MAX_HOURS):
        raise Invalid(f"a download covers at most {MAX_HOURS} hours")
    async with sessions() as s:
        rows = list((await s.scalars(
            select(Recording).where(Recording.channel_id == channel_id, Recording.start < end,
                                    or_(Recording.end.is_(None), Recording.end > start))
            .order_by(Recording.start))).all())
    segments = Segments(root, objects, asyncio.get_running_loop())
    return await asyncio.to_thread(plan, segments, rows, start, end)
