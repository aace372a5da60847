"""The ISO BMFF boxes of recorded segments (fragmented MP4), read back: one parser for the
index (where a torn file ends), playback (samples back into frames), download and export
(fragments cut at a time and re-timed).

Sans-IO: bytes in, values out. :func:`boxes` walks a level of boxes and stops quietly at a torn
or malformed one (a segment being written ends that way); :func:`parse_traf`,
:func:`parse_moof` and :func:`parse_init` read one structure and raise :class:`Mp4Error`
when it is malformed, never anything else (tests/fuzz: target ``mp4``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

_HDR = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")

# tfhd flags
BASE_DATA_OFFSET = 0x1
SAMPLE_DESCRIPTION = 0x2
DEFAULT_DURATION = 0x8
DEFAULT_SIZE = 0x10
DEFAULT_FLAGS = 0x20
# trun flags
DATA_OFFSET = 0x1
FIRST_SAMPLE_FLAGS = 0x4
SAMPLE_DURATION = 0x100
SAMPLE_SIZE = 0x200
SAMPLE_FLAGS = 0x400
SAMPLE_CTS = 0x800
#: sample_is_non_sync_sample
NON_SYNC = 0x10000
#: Samples one trun may hold (a fragment of a few seconds holds hundreds).
MAX_SAMPLES = 100_000


class Mp4Error(ValueError):
    """A box that is torn or malformed."""


def boxes(data: bytes | memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(kind, payload start, box end) of the complete boxes in data[start:end], in order; stops
    at the first box that is torn or malformed."""
    end = len(data) if end is None else min(end, len(data))
    pos = start
    while pos + 8 <= end:
        size, kind = _HDR.unpack_from(data, pos)
        head = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = _U64.unpack_from(data, pos + 8)[0]
            head = 16
        if size < head or pos + size > end:
            return
        yield bytes(kind), pos + head, pos + size
        pos += size


def child(data: bytes | memoryview, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(payload start, end) of the first ``kind`` box in data[start:end], or None."""
    for k, p, e in boxes(data, start, end):
        if k == kind:
            return p, e
    return None


def _u32(data: bytes | memoryview, at: int, end: int) -> int:
    if at + 4 > end:
        raise Mp4Error("box too short")
    return int(_U32.unpack_from(data, at)[0])


@dataclass(frozen=True, slots=True)
class Sample:
    duration: int
    size: int
    flags: int
    #: Composition time offset (signed in a version 1 trun).
    cts: int

    @property
    def sync(self) -> bool:
        return not self.flags & NON_SYNC


@dataclass(frozen=True, slots=True)
class Trun:
    version: int
    flags: int
    #: Relative to the base data offset (the moof's start with default-base-is-moof); None: absent.
    data_offset: int | None
    samples: tuple[Sample, ...]


@dataclass(frozen=True, slots=True)
class Traf:
    """One track's run of samples in a fragment."""

    track_id: int
    flags: int
    base_data_offset: int | None
    #: Decode time of the first sample (tfdt), in the track's timescale; None without a tfdt.
    decode_time: int | None
    #: Where the tfdt box starts in the data (to re-time a fragment in place), and its version.
    tfdt_at: int | None
    tfdt_version: int
    runs: tuple[Trun, ...]

    @property
    def duration(self) -> int:
        return sum(s.duration for r in self.runs for s in r.samples)

    @property
    def end(self) -> int:
        """Decode time at the end of its last sample."""
        return (self.decode_time or 0) + self.duration


def parse_traf(data: bytes | memoryview, start: int, end: int) -> Traf:
    """The ``traf`` whose payload is data[start:end]."""
    tfhd = child(data, start, end, b"tfhd")
    if tfhd is None:
        raise Mp4Error("traf without tfhd")
    p, e = tfhd
    flags = _u32(data, p, e) & 0xFFFFFF
    track_id = _u32(data, p + 4, e)
    q = p + 8
    base: int | None = None
    if flags & BASE_DATA_OFFSET:
        if q + 8 > e:
            raise Mp4Error("tfhd too short")
        base = int(_U64.unpack_from(data, q)[0])
        q += 8
    if flags & SAMPLE_DESCRIPTION:
        q += 4
    d_duration = d_size = d_flags = 0
    if flags & DEFAULT_DURATION:
        d_duration = _u32(data, q, e)
        q += 4
    if flags & DEFAULT_SIZE:
        d_size = _u32(data, q, e)
        q += 4
    if flags & DEFAULT_FLAGS:
        d_flags = _u32(data, q, e)
    decode_time = tfdt_at = None
    tfdt_version = 0
    runs: list[Trun] = []
    for kind, bp, be in boxes(data, start, end):
        if kind == b"tfdt":
            if be - bp < 8:
                raise Mp4Error("tfdt too short")
            tfdt_version = data[bp]
            if tfdt_version == 1:
                if be - bp < 12:
                    raise Mp4Error("tfdt too short")
                decode_time = int(_U64.unpack_from(data, bp + 4)[0])
            else:
                decode_time = _u32(data, bp + 4, be)
            tfdt_at = bp - 8
        elif kind == b"trun":
            runs.append(_trun(data, bp, be, d_duration, d_size, d_flags))
    return Traf(track_id, flags, base, decode_time, tfdt_at, tfdt_version, tuple(runs))


def _trun(data: bytes | memoryview, p: int, e: int, d_duration: int, d_size: int, d_flags: int) -> Trun:
    head = _u32(data, p, e)
    version, flags = head >> 24, head & 0xFFFFFF
    count = _u32(data, p + 4, e)
    q = p + 8
    offset: int | None = None
    if flags & DATA_OFFSET:
        if q + 4 > e:
            raise Mp4Error("trun too short")
        offset = int(_I32.unpack_from(data, q)[0])
        q += 4
    first: int | None = None
    if flags & FIRST_SAMPLE_FLAGS:
        first = _u32(data, q, e)
        q += 4
    per = 4 * sum(1 for bit in (SAMPLE_DURATION, SAMPLE_SIZE, SAMPLE_FLAGS, SAMPLE_CTS) if flags & bit)
    if q + per * count > e:
        raise Mp4Error(f"trun of {count} samples longer than its box")
    if count > MAX_SAMPLES:  # with every field a default, the box's size does not bound the count
        raise Mp4Error(f"trun of {count} samples: more than a fragment holds")
    samples: list[Sample] = []
    for i in range(count):
        duration, size, sflags, cts = d_duration, d_size, d_flags, 0
        if flags & SAMPLE_DURATION:
            duration = int(_U32.unpack_from(data, q)[0])
            q += 4
        if flags & SAMPLE_SIZE:
            size = int(_U32.unpack_from(data, q)[0])
            q += 4
        if flags & SAMPLE_FLAGS:
            sflags = int(_U32.unpack_from(data, q)[0])
            q += 4
        elif i == 0 and first is not None:
            sflags = first
        if flags & SAMPLE_CTS:
            cts = int((_I32 if version == 1 else _U32).unpack_from(data, q)[0])
            q += 4
        samples.append(Sample(duration, size, sflags, cts))
    return Trun(version, flags, offset, tuple(samples))


@dataclass(frozen=True, slots=True)
class Moof:
    sequence: int
    #: Where the mfhd box starts in the data.
    mfhd_at: int | None
    trafs: tuple[Traf, ...]

    def traf(self, track_id: int) -> Traf | None:
        return next((t for t in self.trafs if t.track_id == track_id), None)


def parse_moof(data: bytes | memoryview, start: int, end: int) -> Moof:
    """The ``moof`` whose payload is data[start:end]."""
    sequence, mfhd_at = 0, None
    trafs: list[Traf] = []
    for kind, p, e in boxes(data, start, end):
        if kind == b"mfhd":
            sequence, mfhd_at = _u32(data, p + 4, e), p - 8
        elif kind == b"traf":
            trafs.append(parse_traf(data, p, e))
    if not trafs:
        raise Mp4Error("moof without traf")
    return Moof(sequence, mfhd_at, tuple(trafs))


@dataclass(frozen=True, slots=True)
class TrackInfo:
    track_id: int
    #: vide, soun, …
    handler: bytes
    timescale: int
    #: The sample description (``stsd``) payload: what decoding needs besides the samples.
    sample_description: bytes


@dataclass(frozen=True, slots=True)
class Init:
    """A segment's init (``ftyp`` + ``moov``)."""

    #: Bytes from the start of the file to the end of the moov.
    size: int
    tracks: tuple[TrackInfo, ...]

    def track(self, track_id: int) -> TrackInfo | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)

    @property
    def video(self) -> TrackInfo | None:
        return next((t for t in self.tracks if t.handler == b"vide"), None)

    def same_encoding(self, other: Init) -> bool:
        """Fragments of one and the other go in one file under one init."""
        return self._key() == other._key()

    def _key(self) -> list[tuple[int, bytes, int, bytes]]:
        return sorted((t.track_id, t.handler, t.timescale, t.sample_description) for t in self.tracks)


def _version_skip(data: bytes | memoryview, p: int, e: int, v0: int, v1: int) -> int:
    if p >= e:
        raise Mp4Error("full box too short")
    return p + (v1 if data[p] == 1 else v0)


def parse_init(data: bytes | memoryview) -> Init:
    """The init of a segment file's first bytes (``ftyp`` then ``moov``)."""
    for kind, p, e in boxes(data):
        if kind == b"moov":
            return Init(e, tuple(_tracks(data, p, e)))
        if kind not in (b"ftyp", b"free", b"styp"):
            break
    raise Mp4Error("no moov at the start")


def _tracks(data: bytes | memoryview, start: int, end: int) -> Iterator[TrackInfo]:
    for kind, tp, te in boxes(data, start, end):
        if kind != b"trak":
            continue
        tkhd, mdia = child(data, tp, te, b"tkhd"), child(data, tp, te, b"mdia")
        if tkhd is None or mdia is None:
            raise Mp4Error("trak without tkhd or mdia")
        track_id = _u32(data, _version_skip(data, tkhd[0], tkhd[1], 12, 20), tkhd[1])
        hdlr, mdhd, minf = (child(data, *mdia, k) for k in (b"hdlr", b"mdhd", b"minf"))
        if hdlr is None or mdhd is None or minf is None:
            raise Mp4Error("mdia without hdlr, mdhd or minf")
        if hdlr[0] + 12 > hdlr[1]:
            raise Mp4Error("hdlr too short")
        handler = bytes(data[hdlr[0] + 8:hdlr[0] + 12])
        timescale = _u32(data, _version_skip(data, mdhd[0], mdhd[1], 12, 20), mdhd[1])
        stbl = child(data, *minf, b"stbl")
        stsd = child(data, *stbl, b"stsd") if stbl is not None else None
        if stsd is None:
            raise Mp4Error("track without stsd")
        yield TrackInfo(track_id, handler, timescale, bytes(data[stsd[0]:stsd[1]]))


# ---------------------------------------------------------------------------- writing back
def retimed_moof(moof: bytes, shift: dict[int, int], sequence: int) -> bytes:
    """A ``moof`` box (whole, header included) with each traf's decode time moved by
    ``shift[track_id]`` ticks of its track and the fragment's sequence number set: the same
    size, so data offsets stand. A shift that does not fit a version 0 tfdt raises."""
    out = bytearray(moof)
    found = False
    for kind, p, e in boxes(moof, 0, len(moof)):
        if kind != b"moof":
            raise Mp4Error(f"not a moof: {kind!r}")
        parsed = parse_moof(moof, p, e)
        found = True
        if parsed.mfhd_at is not None:
            _U32.pack_into(out, parsed.mfhd_at + 12, sequence & 0xFFFFFFFF)
        for t in parsed.trafs:
            if t.tfdt_at is None or t.decode_time is None:
                raise Mp4Error(f"traf of track {t.track_id} without tfdt")
            value = t.decode_time + shift.get(t.track_id, 0)
            if value < 0 or value >= (1 << (64 if t.tfdt_version == 1 else 32)):
                raise Mp4Error(f"decode time {value} does not fit the tfdt of track {t.track_id}")
            (_U64 if t.tfdt_version == 1 else _U32).pack_into(out, t.tfdt_at + 12, value)
        break
    if not found:
        raise Mp4Error("not a moof")
    return bytes(out)
