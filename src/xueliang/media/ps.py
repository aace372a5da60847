"""MPEG-2 program stream (PS) demultiplexing for GB/T 28181, sans-IO.

RTP payloads go in, in sequence order, with their RTP timestamp and marker bit; access units
(:class:`~xueliang.media.frame.Frame`) come out.

How it stays cheap: the parser only ever looks at headers. A PES packet's length says how many
payload bytes follow, so the payload of the packets in between is taken whole (no copy, no
search) and one ``b"".join`` per frame assembles the access unit. Searching happens only to
resynchronise after garbage or loss, with ``bytes.find``.

Frame boundaries, in the order they are trusted:

* a video PES carrying a PTS different from the frame being assembled starts a new frame
  (several PES with the same PTS, or without PTS, continue it);
* the RTP marker bit ends the frame, unless a PES is still incomplete (some senders set the
  marker on every packet);
* a change of RTP timestamp ends the frame (senders that never set the marker); an
  incomplete PES at that point means the frame was truncated and it is dropped;
* a pack header followed by a video PES without PTS starts a new frame.

Devices vary (see the spec's "Devices vary"): the PSM may be missing or name the wrong codec,
so H.264 and H.265 are told apart from the NAL headers; audio (0xC0) without PSM is G.711A
unless it carries ADTS (AAC); MPEG-1 pack headers are tolerated; padding (0xBE) and private
streams (0xBD, 0xBF) are skipped. Garbage or a sequence gap drops the frame in progress and
resynchronises at the next pack header (00 00 01 BA). Memory is bounded: a frame larger than
``max_frame_size`` is dropped, and at most one PES header is ever buffered.
"""

from __future__ import annotations

import re

from xueliang.media.frame import STREAM_TYPES, Codec, Frame, ParameterSets
from xueliang.media.nal import (
    H264Sps,
    H265Sps,
    NalError,
    guess_video_codec,
    inspect_access_unit,
    nal_type_h264,
    nal_type_h265,
    parse_sps,
)
from xueliang.media.rtp import RtpPacket, TimestampUnwrapper

__all__ = ["PsDemuxer", "parse_pes_timestamp"]

_PACK_START = b"\x00\x00\x01\xba"
#: A start code that can follow an unbounded (length 0) PES: pack, system, PSM, PES ids.
_PS_START = re.compile(rb"\x00\x00\x01[\xba-\xbf\xc0-\xef]")

_SKIP = 0
_VIDEO = 1
_AUDIO = 2
_UNBOUNDED = -1

#: Largest PSM (or other header-like unit) buffered whole; bigger ones are skipped.
_MAX_PSM = 1024
_MAX_AUDIO_FRAME = 1 << 20


def parse_pes_timestamp(data: bytes | bytearray, pos: int) -> int:
    """The 33-bit PTS/DTS encoded in the 5 bytes at ``pos``."""
    return (
        ((data[pos] >> 1) & 0x07) << 30
        | data[pos + 1] << 22
        | (data[pos + 2] >> 1) << 15
        | data[pos + 3] << 7
        | data[pos + 4] >> 1
    )


class PsDemuxer:
    """Program stream → frames. One instance per stream (per SSRC).

    Public state: ``parameter_sets`` (latest VPS/SPS/PPS), ``video_codec``, ``audio_codec``,
    ``width``/``height``/``sps`` (from the SPS), ``stream_types`` (from the PSM). Counters:
    ``frames``, ``video_frames``, ``audio_frames``, ``key_frames``, ``bytes_in``,
    ``bytes_out``, ``errors``, ``resyncs``, ``dropped_frames``, ``codec_mismatches``.
    """

    def __init__(self, *, max_frame_size: int = 4 << 20) -> None:
        self.max_frame_size = max_frame_size
        self.parameter_sets = ParameterSets()
        self.video_codec: Codec | None = None
        self.audio_codec: Codec | None = None
        self.sps: H264Sps | H265Sps | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.stream_types: dict[int, int] = {}
        # counters
        self.frames = 0
        self.video_frames = 0
        self.audio_frames = 0
        self.key_frames = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.errors = 0
        self.resyncs = 0
        self.dropped_frames = 0
        self.codec_mismatches = 0
        # parser state
        self._out: list[Frame] = []
        self._synced = False
        self._tail = b""
        self._remaining = 0
        self._target = _SKIP
        self._seq = -1
        self._rtp_ts = -1
        self._rtp_unwrap = TimestampUnwrapper(32)
        self._rtp_ext = 0
        self._pts_unwrap = TimestampUnwrapper(33)
        self._pack_boundary = False
        self._codec_settled = False
        # video access unit being assembled
        self._au_open = False
        self._au_bad = False
        self._au_parts: list[bytes] = []
        self._au_size = 0
        self._au_pts = 0
        self._au_dts = 0
        self._au_sid = 0xE0
        self._last_video_pts: int | None = None
        self._last_video_rtp = 0
        # audio PES being assembled
        self._audio_parts: list[bytes] = []
        self._audio_size = 0
        self._audio_pts = 0
        self._audio_sid = 0xC0
        self._last_audio_pts: int | None = None
        self._last_audio_rtp = 0

    @property
    def buffered(self) -> int:
        """Bytes held: the frame being assembled, a pending audio PES, a split header."""
        return self._au_size + self._audio_size + len(self._tail)

    # -- input --------------------------------------------------------------------------

    def feed(
        self,
        payload: bytes | bytearray | memoryview,
        timestamp: int,
        marker: bool,
        sequence: int | None = None,
    ) -> list[Frame]:
        """Take one RTP payload (in sequence order); return the frames it completes.

        Pass ``sequence`` (the RTP sequence number) so that a gap left by lost packets drops
        the damaged frame instead of gluing its pieces to the next one. Never raises on any
        input: errors are counted and the parser resynchronises.
        """
        out = self._out = []
        if type(payload) is not bytes:
            payload = bytes(payload)
        self.bytes_in += len(payload)
        if sequence is not None:
            if self._seq >= 0 and sequence != (self._seq + 1) & 0xFFFF:
                self.discontinuity()
            self._seq = sequence
        if timestamp != self._rtp_ts:
            if self._rtp_ts >= 0:
                self._end_chunk(True)
            self._rtp_ts = timestamp
            self._rtp_ext = self._rtp_unwrap.unwrap(timestamp)
        tail = self._tail
        if tail:
            self._tail = b""
            payload = tail + payload
        self._parse(payload)
        if marker:
            self._end_chunk(False)
        return out

    def feed_packet(self, packet: RtpPacket) -> list[Frame]:
        """:meth:`feed` with the payload, timestamp, marker and sequence of a packet."""
        return self.feed(packet.payload, packet.timestamp, packet.marker, packet.sequence)

    def flush(self) -> list[Frame]:
        """End of stream: return the frame still being assembled, if it is complete."""
        out = self._out = []
        if self._rtp_ts >= 0:
            self._end_chunk(True)
        return out

    def discontinuity(self) -> None:
        """Packets were lost: drop the frame in progress and resync at the next pack header."""
        if self._au_open and not self._au_bad:
            self._drop_au()
        self._au_open = False
        if self._target == _AUDIO and self._remaining:
            self.dropped_frames += 1
        self._audio_parts = []
        self._audio_size = 0
        self._remaining = 0
        self._target = _SKIP
        self._tail = b""
        self._synced = False

    # -- parsing ------------------------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        pos = 0
        n = len(data)
        while pos < n:
            rem = self._remaining
            if rem:
                if rem > 0:
                    take = n - pos
                    if take > rem:
                        take = rem
                    self._remaining = rem - take
                    held = b""
                else:  # unbounded PES: up to the next program stream start code
                    m = _PS_START.search(data, pos)
                    held = b""
                    if m is None:
                        # Hold back a start code that may continue in the next payload.
                        keep = 3 if data.endswith(b"\x00\x00\x01") else 0
                        if not keep:
                            keep = 2 if data.endswith(b"\x00\x00") else 1 if data[-1] == 0 else 0
                        take = max(0, n - pos - keep)
                        held = data[pos + take :]
                    else:
                        take = m.start() - pos
                        self._remaining = 0
                target = self._target
                if take:
                    self._append(target, data if take == n else data[pos : pos + take])
                pos += take
                if held:
                    self._tail = held
                    return
                if self._remaining == 0 and target == _AUDIO:
                    self._emit_audio()
                continue
            if not self._synced:
                i = data.find(_PACK_START, pos)
                if i < 0:
                    # A pack start code may straddle into the next payload.
                    self._tail = data[max(pos, n - 3) :]
                    return
                self._synced = True
                pos = i
            avail = n - pos
            if avail < 6:
                self._tail = data[pos:]
                return
            if data[pos] or data[pos + 1] or data[pos + 2] != 1:
                self._lost_sync()
                pos += 1
                continue
            sid = data[pos + 3]
            if sid == 0xBA:
                b4 = data[pos + 4]
                if b4 & 0xC0 == 0x40:  # MPEG-2: 14 bytes + stuffing
                    if avail < 14:
                        self._tail = data[pos:]
                        return
                    size = 14 + (data[pos + 13] & 7)
                elif b4 & 0xF0 == 0x20:  # MPEG-1: 12 bytes
                    size = 12
                else:
                    self._lost_sync()
                    pos += 1
                    continue
                if avail < size:
                    self._tail = data[pos:]
                    return
                self._pack_boundary = True
                pos += size
                continue
            if sid < 0xB9:
                self._lost_sync()
                pos += 1
                continue
            if sid == 0xB9:  # MPEG program end code
                pos += 4
                continue
            length = data[pos + 4] << 8 | data[pos + 5]
            if 0xC0 <= sid <= 0xEF:
                header = self._pes_header(data, pos, avail, length)
                if header is None:  # need more bytes
                    self._tail = data[pos:]
                    return
                hdr_end, pts, dts = header
                if hdr_end < 0:
                    self._lost_sync()
                    pos += 1
                    continue
                if length:
                    payload_len = length + 6 - (hdr_end - pos)
                    if payload_len < 0:
                        self._lost_sync()
                        pos += 1
                        continue
                else:
                    payload_len = _UNBOUNDED
                pos = hdr_end
                if sid >= 0xE0:
                    self._start_video(sid, pts, dts)
                else:
                    self._start_audio(sid, pts)
                    if payload_len == 0:
                        self._emit_audio()
                self._remaining = payload_len
                continue
            if sid == 0xBC and length <= _MAX_PSM:
                if avail < 6 + length:
                    self._tail = data[pos:]
                    return
                self._parse_psm(data, pos + 6, pos + 6 + length)
                pos += 6 + length
                continue
            # system header, padding, private streams, anything else: skip by length
            self._target = _SKIP
            self._remaining = length
            pos += 6

    def _append(self, target: int, chunk: bytes) -> None:
        """Add PES payload bytes to the frame (video) or PES (audio) being assembled."""
        if target == _VIDEO:
            if not self._au_bad:
                self._au_parts.append(chunk)
                self._au_size += len(chunk)
                if self._au_size > self.max_frame_size:
                    self._drop_au()
        elif target == _AUDIO:
            self._audio_parts.append(chunk)
            self._audio_size += len(chunk)
            if self._audio_size > _MAX_AUDIO_FRAME:
                self._error()
                self.dropped_frames += 1
                self._audio_parts = []
                self._audio_size = 0
                self._target = _SKIP

    def _pes_header(
        self, data: bytes, pos: int, avail: int, length: int
    ) -> tuple[int, int | None, int | None] | None:
        """(end of PES header, PTS, DTS); end -1 if malformed; None if more bytes needed."""
        if avail < 9:
            return None
        b6 = data[pos + 6]
        pts: int | None = None
        dts: int | None = None
        if b6 & 0xC0 == 0x80:  # MPEG-2 PES
            hl = data[pos + 8]
            end = pos + 9 + hl
            if avail < 9 + hl:
                return None
            flags = data[pos + 7] >> 6
            if flags & 2:
                if hl < 5:
                    return -1, None, None
                pts = parse_pes_timestamp(data, pos + 9)
                if flags == 3:
                    if hl < 10:
                        return -1, None, None
                    dts = parse_pes_timestamp(data, pos + 14)
            elif flags == 1:
                return -1, None, None
            return end, pts, dts
        # MPEG-1 PES: stuffing, optional STD buffer, optional PTS/DTS
        p = pos + 6
        limit = pos + 6 + min(length, 16 + 2 + 10) if length else pos + 34
        while p < pos + avail and data[p] == 0xFF and p < limit:
            p += 1
        if p >= pos + avail:
            return None
        if data[p] & 0xC0 == 0x40:
            p += 2
            if p >= pos + avail:
                return None
        b = data[p]
        if b & 0xF0 == 0x20:
            need = 5
        elif b & 0xF0 == 0x30:
            need = 10
        elif b == 0x0F:
            need = 1
        else:
            return -1, None, None
        if p + need > pos + avail:
            return None
        if need >= 5:
            pts = parse_pes_timestamp(data, p)
        if need == 10:
            dts = parse_pes_timestamp(data, p + 5)
        return p + need, pts, dts

    def _parse_psm(self, data: bytes, start: int, end: int) -> None:
        # start: current_next/version byte; then marker byte; program_stream_info_length
        if end - start < 6:
            self._error()
            return
        info_len = data[start + 2] << 8 | data[start + 3]
        p = start + 4 + info_len
        if p + 2 > end:
            self._error()
            return
        map_len = data[p] << 8 | data[p + 1]
        p += 2
        map_end = min(p + map_len, end)
        types: dict[int, int] = {}
        while p + 4 <= map_end:
            stream_type = data[p]
            es_id = data[p + 1]
            es_info_len = data[p + 2] << 8 | data[p + 3]
            types[es_id] = stream_type
            p += 4 + es_info_len
        if types != self.stream_types:
            self.stream_types = types
            self._codec_settled = False

    def _lost_sync(self) -> None:
        """Garbage where a start code should be: drop the frame in progress, find a pack."""
        self._error()
        self.resyncs += 1
        if self._au_open and not self._au_bad:
            self._drop_au()
        self._audio_parts = []
        self._audio_size = 0
        self._synced = False

    def _error(self) -> None:
        self.errors += 1

    def _end_chunk(self, timestamp_changed: bool) -> None:
        """The RTP packets of one timestamp (or up to a marker) are all in."""
        rem = self._remaining
        if rem < 0:  # an unbounded PES ends with the frame
            if self._tail:
                self._append(self._target, self._tail)
                self._tail = b""
            self._remaining = 0
            if self._target == _AUDIO:
                self._emit_audio()
        elif rem > 0 or (self._tail and self._synced):
            if not timestamp_changed:
                return  # marker inside a PES: trust the PES length, not the marker
            # The frame's packets ended before its PES did: truncated.
            self._error()
            if self._target == _VIDEO:
                if self._au_open and not self._au_bad:
                    self._drop_au()
            elif self._target == _AUDIO:
                self.dropped_frames += 1
                self._audio_parts = []
                self._audio_size = 0
            self._au_open = False
            self._remaining = 0
            self._target = _SKIP
            self._tail = b""
            return
        if timestamp_changed and not self._synced:
            self._tail = b""
        if self._au_open:
            self._emit_au()

    # -- video --------------------------------------------------------------------------

    def _start_video(self, sid: int, pts: int | None, dts: int | None) -> None:
        self._target = _VIDEO
        if pts is not None:
            unwrap = self._pts_unwrap.unwrap
            pts = unwrap(pts)
            dts = pts if dts is None else unwrap(dts)
            if self._au_open and pts != self._au_pts:
                self._emit_au()
        elif self._au_open and self._pack_boundary:
            self._emit_au()
        self._pack_boundary = False
        if self._au_open:
            return
        if pts is None or dts is None:
            # No PTS: advance the last one by the RTP clock.
            last = self._last_video_pts
            if last is None:
                pts = self._rtp_ext
            else:
                pts = last + self._rtp_ext - self._last_video_rtp
            dts = pts
        self._au_open = True
        self._au_bad = False
        self._au_parts = []
        self._au_size = 0
        self._au_pts = pts
        self._au_dts = dts
        self._au_sid = sid
        self._last_video_pts = pts
        self._last_video_rtp = self._rtp_ext

    def _drop_au(self) -> None:
        self._au_bad = True
        self._au_parts = []
        self._au_size = 0
        self.dropped_frames += 1
        self.errors += 1

    def _emit_au(self) -> None:
        self._au_open = False
        parts = self._au_parts
        if self._au_bad or not parts:
            self._au_parts = []
            return
        self._au_parts = []
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        codec = self.video_codec
        if codec is None or not self._codec_settled:
            codec = self._resolve_video_codec(data)
        key, params = inspect_access_unit(codec, data)
        if params:
            self._update_parameter_sets(codec, params)
        self._out.append(Frame(codec, self._au_pts, self._au_dts, data, key))
        self.frames += 1
        self.video_frames += 1
        self.bytes_out += len(data)
        if key:
            self.key_frames += 1

    def _resolve_video_codec(self, data: bytes) -> Codec:
        stream_type = self.stream_types.get(self._au_sid)
        declared = STREAM_TYPES.get(stream_type) if stream_type is not None else None
        if declared is not None and not declared.is_video:
            declared = None  # an audio stream_type on a video stream id: plainly wrong
        codec: Codec
        if declared is not None and declared not in (Codec.H264, Codec.H265):
            codec = declared  # MPEG-4 / SVAC: trust the PSM
            settled = True
        else:
            guess = guess_video_codec(data)
            if guess is None:
                codec = declared or self.video_codec or Codec.H264
                settled = False
            else:
                codec = guess
                settled = True
                if declared is not None and declared is not guess:
                    self.codec_mismatches += 1
        if codec is not self.video_codec:
            if self.video_codec is not None:
                self.parameter_sets = ParameterSets()
                self.sps = None
                self.width = self.height = None
            self.video_codec = codec
        self._codec_settled = settled
        return codec

    def _update_parameter_sets(self, codec: Codec, params: list[bytes]) -> None:
        ps = self.parameter_sets
        for nal in params:
            if codec is Codec.H265:
                t = nal_type_h265(nal)
                if t == 32:
                    ps.vps = nal
                    continue
                is_sps = t == 33
            else:
                is_sps = nal_type_h264(nal) == 7
            if not is_sps:
                ps.pps = nal
            elif nal != ps.sps:
                ps.sps = nal
                try:
                    sps = parse_sps(codec, nal)
                except NalError:
                    self._error()
                    continue
                self.sps = sps
                self.width = sps.width
                self.height = sps.height

    # -- audio --------------------------------------------------------------------------

    def _start_audio(self, sid: int, pts: int | None) -> None:
        self._target = _AUDIO
        if pts is None:
            last = self._last_audio_pts
            if last is None:
                pts = self._rtp_ext
            else:
                pts = last + self._rtp_ext - self._last_audio_rtp
        else:
            pts = self._pts_unwrap.unwrap(pts)
        self._audio_pts = pts
        self._audio_sid = sid
        self._audio_parts = []
        self._audio_size = 0
        self._last_audio_pts = pts
        self._last_audio_rtp = self._rtp_ext

    def _emit_audio(self) -> None:
        parts = self._audio_parts
        self._audio_parts = []
        self._audio_size = 0
        self._target = _SKIP
        if not parts:
            return
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        stream_type = self.stream_types.get(self._audio_sid)
        codec = STREAM_TYPES.get(stream_type) if stream_type is not None else None
        if codec is None or codec.is_video:
            codec = Codec.AAC if _is_adts(data) else Codec.G711A
        self.audio_codec = codec
        self._out.append(Frame(codec, self._audio_pts, self._audio_pts, data, True))
        self.frames += 1
        self.audio_frames += 1
        self.bytes_out += len(data)


def _is_adts(data: bytes) -> bool:
    """Whether data is a whole number of ADTS frames (sync 0xFFF, layer 0, lengths that add
    up exactly) — a test random G.711 samples practically never pass."""
    n = len(data)
    pos = 0
    for _ in range(64):
        if n - pos < 7 or data[pos] != 0xFF or data[pos + 1] & 0xF6 != 0xF0:
            return False
        frame_length = (data[pos + 3] & 0x03) << 11 | data[pos + 4] << 3 | data[pos + 5] >> 5
        if frame_length < 7:
            return False
        pos += frame_length
        if pos >= n:
            return pos == n
    return False
