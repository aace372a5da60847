"""MPEG-2 program stream (PS) multiplexing for the device simulator, sans-IO.

:class:`PsMuxer` turns one :class:`~xueliang.media.frame.Frame` into one PS chunk, the
payload of one RTP timestamp: a pack header (SCR from the DTS) every frame; a system header
and a program stream map before each video key frame; PES packets (0xE0 video, 0xC0 audio)
with PTS, and DTS when it differs, payloads split at ``max_pes_payload`` (0xFF80) bytes.

Streaming one pre-encoded clip from hundreds of cameras: mux the clip once and re-stamp.
:class:`PsTemplate` finds the SCR/PTS/DTS fields of a chunk once; ``template.restamp(delta)``
copies the chunk and rewrites those few fields (each camera loop adds its own offset)::

    templates = [PsTemplate(muxer.mux(f)) for f in clip]          # once per clip
    packetizer = RtpPacketizer(ssrc, rfc4571=tcp)                  # once per camera
    for loop in itertools.count():                                 # per camera
        delta = start_offset + loop * clip_duration                # 90 kHz ticks
        for frame, template in zip(clip, templates):
            chunk = template.restamp(delta)
            send(packetizer.packetize(chunk, frame.dts + delta))

:func:`restamp` does the same for a chunk seen once (e.g. replaying a captured PS file).
"""

from __future__ import annotations

import struct

from xueliang.media.frame import STREAM_TYPES, Codec, Frame
from xueliang.media.ps import parse_pes_timestamp

__all__ = ["PsMuxer", "PsTemplate", "crc32_mpeg2", "encode_pes_timestamp", "restamp"]

_MASK33 = (1 << 33) - 1
_STREAM_TYPE_OF: dict[Codec, int] = {codec: st for st, codec in STREAM_TYPES.items()}
_VIDEO_ID = 0xE0
_AUDIO_ID = 0xC0


def _crc32_mpeg2_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else c << 1
        table.append(c & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc32_mpeg2_table()


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 (the PSM's CRC_32): polynomial 0x04C11DB7, no reflection, no final xor."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ b) & 0xFF]
    return crc


def encode_pes_timestamp(prefix: int, ts: int) -> bytes:
    """The 5-byte PTS/DTS field: ``prefix`` 2 (PTS only), 3 (PTS of PTS+DTS) or 1 (DTS)."""
    ts &= _MASK33
    return bytes(
        (
            (prefix << 4) | ((ts >> 29) & 0x0E) | 1,
            (ts >> 22) & 0xFF,
            ((ts >> 14) & 0xFE) | 1,
            (ts >> 7) & 0xFF,
            ((ts << 1) & 0xFE) | 1,
        )
    )


def _pack_header(scr: int, mux_rate: int) -> bytes:
    scr &= _MASK33
    return bytes(
        (
            0x00,
            0x00,
            0x01,
            0xBA,
            0x44 | ((scr >> 27) & 0x38) | ((scr >> 28) & 0x03),
            (scr >> 20) & 0xFF,
            ((scr >> 12) & 0xF8) | 0x04 | ((scr >> 13) & 0x03),
            (scr >> 5) & 0xFF,
            ((scr << 3) & 0xF8) | 0x04,  # SCR extension 0
            0x01,
            (mux_rate >> 14) & 0xFF,
            (mux_rate >> 6) & 0xFF,
            ((mux_rate << 2) & 0xFC) | 0x03,
            0xF8,  # reserved, no stuffing
        )
    )


def _decode_scr(data: bytes | bytearray, pos: int) -> int:
    b4, b5, b6, b7, b8 = data[pos + 4 : pos + 9]
    return (
        ((b4 >> 3) & 0x07) << 30
        | (b4 & 0x03) << 28
        | b5 << 20
        | (b6 >> 3) << 15
        | (b6 & 0x03) << 13
        | b7 << 5
        | b8 >> 3
    )


def _patch_scr(buf: bytearray, pos: int, scr: int) -> None:
    scr &= _MASK33
    buf[pos + 4] = (buf[pos + 4] & 0xC4) | ((scr >> 27) & 0x38) | ((scr >> 28) & 0x03)
    buf[pos + 5] = (scr >> 20) & 0xFF
    buf[pos + 6] = ((scr >> 12) & 0xF8) | 0x04 | ((scr >> 13) & 0x03)
    buf[pos + 7] = (scr >> 5) & 0xFF
    buf[pos + 8] = ((scr << 3) & 0xF8) | (buf[pos + 8] & 0x07)


class PsMuxer:
    """Frames → PS chunks (one per frame). See the module docstring for re-stamping.

    ``video``/``audio`` declare the streams up front (else they are learnt from the frames).
    ``psm=False`` leaves out the system header and PSM (as some devices do);
    ``pts_on_every_pes`` repeats the PTS on every PES of a split frame (by default only the
    first carries it). ``stream_types`` overrides the PSM's stream_type per codec (to imitate
    devices that lie).
    """

    def __init__(
        self,
        *,
        video: Codec | None = None,
        audio: Codec | None = None,
        max_pes_payload: int = 0xFF80,
        pts_on_every_pes: bool = False,
        psm: bool = True,
        mux_rate: int = 6106,  # units of 50 bytes/s (≈ 2.4 Mbit/s); informative only
        stream_types: dict[Codec, int] | None = None,
    ) -> None:
        if not 1 <= max_pes_payload <= 0xFFFF - 13:
            raise ValueError("max_pes_payload out of range")
        self.video = video
        self.audio = audio
        self.max_pes_payload = max_pes_payload
        self.pts_on_every_pes = pts_on_every_pes
        self.psm = psm
        self.mux_rate = mux_rate & 0x3FFFFF
        self._stream_types = dict(_STREAM_TYPE_OF)
        if stream_types:
            self._stream_types.update(stream_types)
        self._version = 0
        self._headers: bytes | None = None
        self._frames = 0

    def mux(self, frame: Frame) -> bytes:
        codec = frame.codec
        is_video = codec.is_video
        if is_video:
            if codec is not self.video:
                self.video = codec
                self._headers = None
            sid = _VIDEO_ID
        else:
            if codec is not self.audio:
                self.audio = codec
                self._headers = None
            sid = _AUDIO_ID
        parts: list[bytes | memoryview] = [_pack_header(frame.dts, self.mux_rate)]
        if self.psm and (
            (is_video and frame.keyframe) or (self.video is None and self._frames % 50 == 0)
        ):
            parts.append(self._system_and_psm())
        self._frames += 1
        data = memoryview(frame.data)
        n = len(data)
        step = self.max_pes_payload
        pts = frame.pts
        dts = frame.dts if is_video else pts
        off = 0
        first = True
        while first or off < n:
            end = min(off + step, n)
            size = end - off
            if first or self.pts_on_every_pes:
                if dts != pts:
                    fields = encode_pes_timestamp(3, pts) + encode_pes_timestamp(1, dts)
                    flags = 0xC0
                else:
                    fields = encode_pes_timestamp(2, pts)
                    flags = 0x80
            else:
                fields = b""
                flags = 0
            head = struct.pack(
                ">IHBBB",
                0x100 | sid,
                3 + len(fields) + size,
                0x84 if first else 0x80,  # data_alignment_indicator on the first
                flags,
                len(fields),
            )
            parts.append(head + fields)
            parts.append(data[off:end])
            off = end
            first = False
        return b"".join(parts)

    def _system_and_psm(self) -> bytes:
        if self._headers is None:
            self._headers = self._build_headers()
        return self._headers

    def _build_headers(self) -> bytes:
        streams: list[tuple[int, int]] = []  # (stream id, stream_type)
        if self.video is not None:
            streams.append((_VIDEO_ID, self._stream_types.get(self.video, 0x1B)))
        if self.audio is not None:
            streams.append((_AUDIO_ID, self._stream_types.get(self.audio, 0x90)))
        # System header
        rate = self.mux_rate
        body = bytearray(
            (
                0x80 | ((rate >> 15) & 0x7F),
                (rate >> 7) & 0xFF,
                ((rate << 1) & 0xFE) | 0x01,
                (1 if self.audio is not None else 0) << 2 | 0x00,  # audio_bound, fixed, CSPS
                0xE0 | (1 if self.video is not None else 0),  # locks, marker, video_bound
                0x7F,  # packet_rate_restriction 0, reserved
            )
        )
        for sid, _ in streams:
            if sid == _VIDEO_ID:
                body += bytes((sid, 0xE0 | (400 >> 8), 400 & 0xFF))  # scale 1024, 400 KiB
            else:
                body += bytes((sid, 0xC0 | (32 >> 8), 32 & 0xFF))  # scale 128, 4 KiB
        system = b"\x00\x00\x01\xbb" + struct.pack(">H", len(body)) + bytes(body)
        # Program stream map
        entries = b"".join(struct.pack(">BBH", st, sid, 0) for sid, st in streams)
        self._version = (self._version + 1) & 0x1F
        psm_body = (
            bytes((0x80 | 0x20 | self._version, 0xFF))  # current_next, reserved, version
            + struct.pack(">H", 0)  # program_stream_info_length
            + struct.pack(">H", len(entries))
            + entries
        )
        psm = b"\x00\x00\x01\xbc" + struct.pack(">H", len(psm_body) + 4) + psm_body
        psm += struct.pack(">I", crc32_mpeg2(psm))
        return system + psm


class PsTemplate:
    """A PS chunk with the positions of its SCR/PTS/DTS fields, for cheap re-stamping.

    Walks the chunk once (by PES lengths); :meth:`restamp` then costs one copy of the chunk
    and a few byte writes. Raises ValueError on a chunk it cannot walk.
    """

    __slots__ = ("_fields", "chunk")

    def __init__(self, chunk: bytes) -> None:
        self.chunk = chunk
        #: (offset, kind, original value); kind 0 = SCR (offset of the pack start code),
        #: otherwise a PES timestamp field (offset of its 5 bytes).
        self._fields: list[tuple[int, int, int]] = []
        pos = 0
        n = len(chunk)
        while pos + 4 <= n:
            if chunk[pos : pos + 3] != b"\x00\x00\x01":
                raise ValueError(f"no start code at {pos}")
            sid = chunk[pos + 3]
            if sid == 0xBA:
                if pos + 14 > n:
                    raise ValueError("truncated pack header")
                if chunk[pos + 4] & 0xC0 == 0x40:
                    self._fields.append((pos, 0, _decode_scr(chunk, pos)))
                    pos += 14 + (chunk[pos + 13] & 7)
                else:
                    pos += 12  # MPEG-1 pack: left alone
                continue
            if sid == 0xB9:
                pos += 4
                continue
            if pos + 6 > n:
                raise ValueError("truncated header")
            length = chunk[pos + 4] << 8 | chunk[pos + 5]
            if 0xC0 <= sid <= 0xEF and length and pos + 9 <= n and chunk[pos + 6] & 0xC0 == 0x80:
                flags = chunk[pos + 7] >> 6
                if flags & 2:
                    self._fields.append((pos + 9, 1, parse_pes_timestamp(chunk, pos + 9)))
                    if flags == 3:
                        self._fields.append((pos + 14, 1, parse_pes_timestamp(chunk, pos + 14)))
            if not length:
                raise ValueError("unbounded PES cannot be re-stamped")
            pos += 6 + length
        if pos != n:
            raise ValueError("chunk ends inside a packet")

    def restamp(self, delta: int) -> bytes:
        """The chunk with ``delta`` (90 kHz ticks) added to every SCR, PTS and DTS."""
        if not delta:
            return self.chunk
        buf = bytearray(self.chunk)
        for pos, kind, value in self._fields:
            value = (value + delta) & _MASK33
            if kind == 0:
                _patch_scr(buf, pos, value)
            else:
                prefix = buf[pos] >> 4
                buf[pos : pos + 5] = encode_pes_timestamp(prefix, value)
        return bytes(buf)


def restamp(chunk: bytes, delta: int) -> bytes:
    """Add ``delta`` (90 kHz ticks) to every SCR, PTS and DTS of a PS chunk."""
    return PsTemplate(chunk).restamp(delta)
