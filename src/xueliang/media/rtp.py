"""RTP (RFC 3550) and RTP over TCP (RFC 4571), sans-IO.

Bytes and the arrival time ``now`` (seconds, any monotonic origin) go in; packets come out.
Nothing here opens a socket or reads a clock.

* :func:`parse_rtp` / :func:`build_rtp`: one datagram ⇄ :class:`RtpPacket`.
* :class:`RtpPacketizer`: one payload (the PS chunk of one frame) → RTP packets sharing a
  timestamp, marker on the last (GB/T 28181 §RTP and PS).
* :class:`Rfc4571Deframer` / :func:`frame_rfc4571`: RTP over TCP, 2-byte length prefix, also
  the 4-byte ``$``-interleaved prefix some devices send; resynchronises on garbage.
* :class:`RtpReceiver`: per-SSRC reordering (丢包/乱序), duplicate removal, loss and
  interarrival-jitter statistics, 16-bit sequence and 32-bit timestamp unwrapping.
"""

from __future__ import annotations

import re
import struct

__all__ = [
    "Rfc4571Deframer",
    "RtpError",
    "RtpPacket",
    "RtpPacketizer",
    "RtpReceiver",
    "TimestampUnwrapper",
    "be32",
    "build_rtp",
    "frame_rfc4571",
    "parse_rtp",
]

_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")
_LEN = struct.Struct("!H")


class RtpError(ValueError):
    """A datagram that is not a valid RTP packet."""


class RtpPacket:
    """One RTP packet. ``payload`` is a slice of the parsed buffer (bytes in → bytes out).

    ``ext_sequence`` / ``ext_timestamp`` are filled by :class:`RtpReceiver` on delivery:
    the sequence number and timestamp unwrapped to monotonic integers (-1 until then).

    A plain class rather than a dataclass: compiled with mypyc (src/xueliang/_native.py), a
    dataclass keeps the ``__init__`` that ``dataclasses`` generates in Python, and building one
    per packet cost more than the rest of :func:`parse_rtp`. Same fields, order, equality, repr.
    """

    __slots__ = (
        "csrc_count", "csrcs", "ext_sequence", "ext_timestamp", "extension", "extension_data",
        "extension_profile", "marker", "padding", "payload", "payload_type", "sequence", "ssrc",
        "timestamp", "version",
    )
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (as the dataclass was)

    def __init__(
        self,
        version: int,
        padding: bool,
        extension: bool,
        marker: bool,
        payload_type: int,
        sequence: int,
        timestamp: int,
        ssrc: int,
        csrc_count: int,
        payload: bytes | memoryview,
        csrcs: tuple[int, ...] = (),
        extension_profile: int = 0,
        extension_data: bytes = b"",
        ext_sequence: int = -1,
        ext_timestamp: int = -1,
    ) -> None:
        self.version = version
        self.padding = padding
        self.extension = extension
        self.marker = marker
        self.payload_type = payload_type
        self.sequence = sequence
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrc_count = csrc_count
        self.payload = payload
        self.csrcs = csrcs
        self.extension_profile = extension_profile
        self.extension_data = extension_data
        self.ext_sequence = ext_sequence
        self.ext_timestamp = ext_timestamp

    def _fields(self) -> tuple[object, ...]:
        return (
            self.version, self.padding, self.extension, self.marker, self.payload_type,
            self.sequence, self.timestamp, self.ssrc, self.csrc_count, self.payload, self.csrcs,
            self.extension_profile, self.extension_data, self.ext_sequence, self.ext_timestamp,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, RtpPacket)
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        names = (
            "version", "padding", "extension", "marker", "payload_type", "sequence", "timestamp",
            "ssrc", "csrc_count", "payload", "csrcs", "extension_profile", "extension_data",
            "ext_sequence", "ext_timestamp",
        )
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields(), strict=True))
        return f"RtpPacket({inner})"


def be32(buf: bytes, i: int) -> int:
    """The big-endian 32-bit word at ``i`` of ``buf`` (the caller checks the length): an RTP
    timestamp or SSRC. Compiled, native arithmetic, where ``int.from_bytes`` of a slice or
    ``struct`` is a generic call and an object per packet."""
    return buf[i] << 24 | buf[i + 1] << 16 | buf[i + 2] << 8 | buf[i + 3]


def parse_rtp(data: bytes | bytearray | memoryview) -> RtpPacket:
    """Parse one RTP packet. Raises :class:`RtpError` (and only that) on malformed input.

    The payload is a slice of ``data``: ``bytes`` for ``bytes``/``bytearray`` input, a
    ``memoryview`` (no copy) for ``memoryview`` input.
    """
    if isinstance(data, bytes):
        return _parse(data, None)
    # The header is read from a copy; a memoryview's payload is still a view of its buffer.
    return _parse(bytes(data), data if isinstance(data, memoryview) else None)


def _parse(buf: bytes, view: memoryview | None) -> RtpPacket:
    """:func:`parse_rtp` on ``bytes`` (every datagram and TCP frame the server reads): indexed
    byte by byte, which compiled is native arithmetic, where ``struct`` was a generic call
    and a tuple of boxed ints per packet."""
    n = len(buf)
    if n < 12:
        raise RtpError(f"packet too short ({n} bytes)")
    b0 = buf[0]
    if b0 & 0xC0 != 0x80:
        raise RtpError(f"bad RTP version {b0 >> 6}")
    b1 = buf[1]
    cc = b0 & 0x0F
    off = 12
    csrcs: tuple[int, ...] = ()
    if cc:
        off += cc << 2
        if off > n:
            raise RtpError("CSRC list overflows the packet")
        csrcs = struct.unpack_from(f"!{cc}I", buf, 12)
    profile = 0
    ext_data = b""
    if b0 & 0x10:
        if off + 4 > n:
            raise RtpError("extension header overflows the packet")
        profile = buf[off] << 8 | buf[off + 1]
        start = off + 4
        off = start + ((buf[off + 2] << 8 | buf[off + 3]) << 2)
        if off > n:
            raise RtpError("extension overflows the packet")
        ext_data = buf[start:off]
    end = n
    if b0 & 0x20:
        pad = buf[n - 1]
        if pad == 0 or off + pad > n:
            raise RtpError("bad padding length")
        end = n - pad
    return RtpPacket(
        2,
        bool(b0 & 0x20),
        bool(b0 & 0x10),
        bool(b1 & 0x80),
        b1 & 0x7F,
        buf[2] << 8 | buf[3],
        be32(buf, 4),
        be32(buf, 8),
        cc,
        buf[off:end] if view is None else view[off:end],
        csrcs,
        profile,
        ext_data,
    )


def build_rtp(
    payload: bytes | bytearray | memoryview,
    *,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload_type: int = 96,
    marker: bool = False,
    csrcs: tuple[int, ...] | list[int] = (),
    extension: tuple[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    """Serialise one RTP packet. ``extension`` is (profile, data), data a multiple of 4 bytes;
    ``padding`` is the number of padding bytes to append (0–255)."""
    if len(csrcs) > 15:
        raise ValueError("at most 15 CSRCs")
    if not 0 <= padding <= 255:
        raise ValueError("padding must be 0..255")
    b0 = 0x80 | len(csrcs)
    if padding:
        b0 |= 0x20
    if extension is not None:
        b0 |= 0x10
    parts: list[bytes | bytearray | memoryview] = [
        _HEADER.pack(
            b0,
            (payload_type & 0x7F) | (0x80 if marker else 0),
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc & 0xFFFFFFFF,
        )
    ]
    if csrcs:
        parts.append(struct.pack(f"!{len(csrcs)}I", *csrcs))
    if extension is not None:
        profile, data = extension
        if len(data) % 4:
            raise ValueError("extension data must be a multiple of 4 bytes")
        parts.append(_EXT_HEADER.pack(profile & 0xFFFF, len(data) >> 2))
        parts.append(data)
    parts.append(payload)
    if padding:
        parts.append(bytes(padding - 1) + bytes((padding,)))
    return b"".join(parts)


def frame_rfc4571(packet: bytes | bytearray | memoryview) -> bytes:
    """Prefix one RTP packet with its 2-byte big-endian length (RFC 4571)."""
    n = len(packet)
    if n > 0xFFFF:
        raise ValueError("packet too long for RFC 4571 framing")
    return _LEN.pack(n) + packet


class RtpPacketizer:
    """Split one payload (the PS chunk of one frame) into RTP packets.

    All packets share ``timestamp``; the marker is set on the last one (unless
    ``marker=False``). ``mtu`` bounds the whole RTP packet (12-byte header + payload).
    With ``rfc4571=True`` every packet comes already prefixed with its 2-byte length, ready
    for a TCP stream. Sequence numbers continue across calls and wrap at 65535.

    For a simulator streaming one clip from many cameras: keep one packetizer per camera,
    precompute the PS chunks once (see ``ps_mux.PsTemplate``) and only call
    :meth:`packetize` per frame — a header ``struct.pack`` and one copy per packet.
    """

    __slots__ = ("_chunk", "_framed", "_pt", "mtu", "sequence", "ssrc")

    def __init__(
        self,
        ssrc: int,
        payload_type: int = 96,
        mtu: int = 1400,
        *,
        sequence: int = 0,
        rfc4571: bool = False,
    ) -> None:
        if mtu < 13:
            raise ValueError("mtu must leave room for a payload")
        self.ssrc = ssrc & 0xFFFFFFFF
        self._pt = payload_type & 0x7F
        self.mtu = mtu
        self._chunk = mtu - 12
        self.sequence = sequence & 0xFFFF
        self._framed = rfc4571

    def packetize(
        self, payload: bytes | bytearray | memoryview, timestamp: int, marker: bool = True
    ) -> list[bytes]:
        view = memoryview(payload)
        n = len(view)
        chunk = self._chunk
        pack = _HEADER.pack
        pt = self._pt
        ts = timestamp & 0xFFFFFFFF
        ssrc = self.ssrc
        seq = self.sequence
        framed = self._framed
        out: list[bytes] = []
        off = 0
        while True:
            end = off + chunk
            last = end >= n
            if last:
                end = n
            m = pt | 0x80 if last and marker else pt
            if framed:
                header = _LEN.pack(12 + end - off) + pack(0x80, m, seq, ts, ssrc)
            else:
                header = pack(0x80, m, seq, ts, ssrc)
            out.append(header + view[off:end])
            seq = (seq + 1) & 0xFFFF
            off = end
            if last:
                break
        self.sequence = seq
        return out


# ---------------------------------------------------------------------------------------
# RFC 4571 deframing

#: A byte whose top two bits are 10 (RTP version 2), for the resync scan.
_V2_SCAN = re.compile(rb"[\x80-\xbf]")


class Rfc4571Deframer:
    """RTP over TCP: feed stream bytes, get whole RTP packets (as ``bytes``).

    Each packet is preceded by a 2-byte big-endian length (RFC 4571) or by the 4-byte
    ``$``, channel, length prefix of RTSP interleaving; the form is detected per packet. On
    an implausible header (not RTP version 2, length < 12 or > ``max_packet``) the deframer
    scans forward for a plausible one — by the stream's SSRC once two packets in a row have
    shown it, else by the version bits, confirmed by the header that follows — counting
    ``resyncs`` and ``discarded`` bytes. Once the SSRC is known, a frame carrying another
    one is treated as garbage too (a new SSRC is picked up by the version-bit scan, which
    wants two frames in a row with the same SSRC). It never holds more than ``max_packet + 20`` bytes,
    whatever it is fed.
    """

    __slots__ = (
        "_buf",
        "_need",
        "_resyncing",
        "_seen_ssrc",
        "_ssrc",
        "_ssrc_value",
        "discarded",
        "max_packet",
        "packets",
        "resyncs",
    )

    def __init__(self, *, max_packet: int = 0xFFFF) -> None:
        self.max_packet = min(max(max_packet, 12), 0xFFFF)
        self._buf = bytearray()
        #: Bytes the buffered remainder must reach before a scan can give anything (0: any).
        self._need = 0
        self._ssrc: bytes | None = None
        self._ssrc_value = -1  # the same as an int, compared per frame
        self._seen_ssrc = b""
        self._resyncing = False
        self.packets = 0
        self.resyncs = 0
        self.discarded = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        buf = self._buf
        view: bytes
        if buf:
            buf += data
            if len(buf) < self._need:
                return []  # still short of the frame it waits for: no rescan of what it holds
            # Scanned as bytes (compiled, native indexing and slicing); a copy of a small
            # remainder and what was read with it, once per read.
            view = bytes(buf)
            buf.clear()
        elif isinstance(data, bytes):
            view = data
        else:
            view = bytes(data)
        out: list[bytes] = []
        n = len(view)
        pos = 0
        need = 5
        max_packet = self.max_packet
        while n - pos >= 5:
            b0 = view[pos]
            if b0 == 0x24 and view[pos + 4] & 0xC0 == 0x80:
                hl = 4
                length = view[pos + 2] << 8 | view[pos + 3]
            else:
                hl = 2
                length = b0 << 8 | view[pos + 1]
                if view[pos + 2] & 0xC0 != 0x80:
                    length = 0
            if length < 12 or length > max_packet or self._resyncing:
                found, confirmed = self._resync(view, pos, n, pos)
                self.discarded += found - pos
                pos = found
                if not confirmed:
                    need = 0
                    break
                continue
            ssrc = self._ssrc_value
            if ssrc >= 0:
                # Once the stream's SSRC is known, a frame must carry it: garbage that merely
                # looks like a header must not swallow the packets behind it.
                s = pos + hl
                if n - s < 12:
                    need = hl + 12
                    break
                # RTCP (interleaved channel 1) carries its SSRC elsewhere: let it through.
                if be32(view, s + 8) != ssrc and not 192 <= view[s + 1] <= 223:
                    found, confirmed = self._resync(view, pos, n, pos + 1)
                    self.discarded += found - pos
                    pos = found
                    if not confirmed:
                        need = 0
                        break
                    continue
            end = pos + hl + length
            if end > n:
                need = hl + length
                break
            out.append(view[pos + hl : end])
            pos = end
        if out:
            self.packets += len(out)
            self._learn_ssrc(out)
        if pos < n:
            buf += memoryview(view)[pos:]
            self._need = need
        return out

    def _known(self, ssrc: bytes) -> None:
        self._ssrc = ssrc
        self._ssrc_value = be32(ssrc, 0)

    def _learn_ssrc(self, packets: list[bytes]) -> None:
        """Remember the SSRC once two packets in a row carry it (a lone bogus one won't)."""
        for packet in packets[-2:]:
            if 192 <= packet[1] <= 223:
                continue  # RTCP: its SSRC sits elsewhere
            ssrc = packet[8:12]
            if ssrc == self._seen_ssrc and len(ssrc) == 4 and ssrc != self._ssrc:
                self._known(ssrc)
            self._seen_ssrc = ssrc

    def _header(self, view: bytes, pos: int, n: int) -> tuple[int, int]:
        """(prefix length 2 or 4, packet length) of a plausible frame at pos; (0, 0) if not
        plausible, (-1, 0) if too few bytes to tell."""
        if n - pos < 5:
            return -1, 0
        b0 = view[pos]
        if b0 == 0x24 and view[pos + 4] & 0xC0 == 0x80:
            length = view[pos + 2] << 8 | view[pos + 3]
            hl = 4
        elif view[pos + 2] & 0xC0 == 0x80:
            length = b0 << 8 | view[pos + 1]
            hl = 2
        else:
            return 0, 0
        if length < 12 or length > self.max_packet:
            return 0, 0
        return hl, length

    def _resync(
        self, view: bytes, pos: int, n: int, min_start: int
    ) -> tuple[int, bool]:
        """Where to continue from (≥ min_start), and whether a confirmed frame starts there
        (False: wait for more data, keeping the bytes from there on)."""
        if not self._resyncing:
            self._resyncing = True
            self.resyncs += 1
        ssrc = self._ssrc
        if ssrc is not None:
            # The SSRC sits 8 bytes into the RTP header: find it, check the prefix before it.
            i = view.find(ssrc, min_start + 10)
            while i >= 0:
                for hl in (2, 4):
                    start = i - 8 - hl
                    if start >= min_start and self._header(view, start, n)[0] == hl:
                        self._resyncing = False
                        return start, True
                i = view.find(ssrc, i + 1)
        # Candidates are bytes with the RTP version bits, confirmed by a following frame
        # header that carries the same SSRC; when that is not buffered yet, wait there.
        search = _V2_SCAN.search
        m = search(view, min_start + 2)
        while m is not None:
            j = m.start()
            for hl in (2, 4):
                start = j - hl
                if start < min_start:
                    continue
                got, length = self._header(view, start, n)
                if got != hl:
                    continue
                nxt = start + hl + length
                after = self._header(view, nxt, n)[0]
                if after == 0:
                    continue
                if after < 0 or n < nxt + after + 12:
                    return start, False
                candidate = bytes(view[start + hl + 8 : start + hl + 12])
                if candidate == view[nxt + after + 8 : nxt + after + 12]:
                    self._known(candidate)
                    self._resyncing = False
                    return start, True
            m = search(view, j + 1)
        # Nothing here; a header may still straddle the end of what we have.
        return max(min_start, n - 19), False


# ---------------------------------------------------------------------------------------
# Receiving: reordering, loss, jitter


class TimestampUnwrapper:
    """Unwrap an N-bit wrapping counter to a monotonic Python int.

    Each value is placed nearest to the previous one (signed difference), so wraparound
    forwards and small steps backwards (B-frames, reordering) both come out right.
    """

    __slots__ = ("_half", "_last", "_last_raw", "_mask")

    def __init__(self, bits: int = 32) -> None:
        self._mask = (1 << bits) - 1
        self._half = 1 << (bits - 1)
        self._last_raw = -1
        self._last = 0

    def unwrap(self, raw: int) -> int:
        if self._last_raw < 0:
            raw &= self._mask
            self._last_raw = raw
            self._last = raw
            return raw
        half = self._half
        delta = ((raw - self._last_raw + half) & self._mask) - half
        self._last_raw = raw & self._mask
        self._last += delta
        return self._last

    @property
    def last(self) -> int:
        return self._last


class RtpReceiver:
    """Per-SSRC RTP reception: packets in, packets in sequence order out.

    * reorders within ``window`` packets or ``max_delay`` seconds, whichever comes first;
      then gives up on the gap (those sequence numbers count as ``lost``);
    * drops duplicates (``duplicates``) and packets arriving after their gap was given up
      (``late``);
    * unwraps the 16-bit sequence and the 32-bit timestamp onto each delivered packet
      (``ext_sequence``, ``ext_timestamp``);
    * a jump of more than ``max_dropout`` sequence numbers is taken as a sender restart once
      the next packet confirms it (RFC 3550 A.1 probation), counted in ``restarts``;
    * ``jitter`` is the RFC 3550 interarrival jitter in timestamp units (``jitter_seconds``);
    * ``ssrc=None`` follows the sender: a new SSRC restarts the sequence state
      (``ssrc_changes``); with a fixed ``ssrc`` other sources are dropped (``foreign``).

    Call :meth:`poll` from a timer so a gap before a stalled stream still gets given up,
    and :meth:`flush` at the end of a stream. ``last_packet_at`` (the ``now`` of the last
    packet, None before any) is for dead-stream timeouts.
    """

    __slots__ = (
        "_arrival",
        "_base",
        "_buf",
        "_expected_prior",
        "_fixed_ssrc",
        "_highest",
        "_last_arrival",
        "_last_ts",
        "_next",
        "_probation",
        "_skipped",
        "_ts",
        "clock_rate",
        "duplicates",
        "foreign",
        "jitter",
        "last_packet_at",
        "late",
        "lost",
        "max_delay",
        "max_dropout",
        "received",
        "reordered",
        "restarts",
        "ssrc",
        "ssrc_changes",
        "window",
    )

    def __init__(
        self,
        *,
        clock_rate: int = 90000,
        window: int = 32,
        max_delay: float = 0.1,
        ssrc: int | None = None,
        max_dropout: int = 3000,
    ) -> None:
        self.clock_rate = clock_rate
        self.window = max(1, window)
        self.max_delay = max_delay
        self.max_dropout = max(max_dropout, self.window + 1)
        self._fixed_ssrc = ssrc is not None
        self.ssrc = ssrc
        self.received = 0
        self.duplicates = 0
        self.reordered = 0
        self.lost = 0
        self.late = 0
        self.restarts = 0
        self.foreign = 0
        self.ssrc_changes = 0
        self.jitter = 0.0
        self.last_packet_at: float | None = None
        self._last_arrival = -1.0
        self._last_ts = 0
        self._ts = TimestampUnwrapper(32)
        self._expected_prior = 0
        self._reset_sequence()

    def _reset_sequence(self) -> None:
        self._next = -1  # next extended sequence number to deliver; -1 before the first
        self._base = 0
        self._highest = -1
        self._buf: dict[int, RtpPacket] = {}
        self._arrival: dict[int, float] = {}
        self._skipped: set[int] = set()
        self._probation: RtpPacket | None = None

    # -- statistics ---------------------------------------------------------------------

    @property
    def expected(self) -> int:
        """Packets the sender sent so far, by sequence numbers (RFC 3550 A.3)."""
        current = self._highest - self._base + 1 if self._next >= 0 else 0
        return self._expected_prior + current

    @property
    def loss_fraction(self) -> float:
        expected = self.expected
        return self.lost / expected if expected > 0 else 0.0

    @property
    def jitter_seconds(self) -> float:
        return self.jitter / self.clock_rate

    @property
    def buffered(self) -> int:
        return len(self._buf)

    # -- input --------------------------------------------------------------------------

    def push(self, packet: RtpPacket, now: float) -> list[RtpPacket]:
        """Take one received packet; return the packets now deliverable, in order."""
        ssrc = packet.ssrc
        if ssrc != self.ssrc:
            if self._fixed_ssrc:
                self.foreign += 1
                return []
            flushed = self._source_changed() if self.ssrc is not None else []
            self.ssrc = ssrc
            return flushed + self.push(packet, now)
        self.received += 1
        self.last_packet_at = now
        # RFC 3550 A.8 interarrival jitter, on arrival order.
        ts = packet.timestamp
        if self._last_arrival >= 0.0:
            d = (now - self._last_arrival) * self.clock_rate - (
                ((ts - self._last_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            )
            if d < 0:
                d = -d
            self.jitter += (d - self.jitter) / 16.0
        self._last_arrival = now
        self._last_ts = ts

        nxt = self._next
        if nxt < 0:
            ext = packet.sequence
            self._base = ext
            self._highest = ext
            self._next = ext + 1
            packet.ext_sequence = ext
            packet.ext_timestamp = self._ts.unwrap(ts)
            return [packet]
        delta = ((packet.sequence - nxt + 0x8000) & 0xFFFF) - 0x8000
        if delta == 0 and not self._buf:
            # Fast path: the expected packet, nothing waiting.
            self._next = nxt + 1
            if nxt > self._highest:
                self._highest = nxt
            else:
                self.reordered += 1
            packet.ext_sequence = nxt
            packet.ext_timestamp = self._ts.unwrap(ts)
            self._probation = None
            return [packet]
        ext = nxt + delta
        if delta > self.max_dropout or delta < -self.max_dropout:
            return self._jump(packet)
        self._probation = None
        if delta < 0:
            if ext in self._skipped:
                self.late += 1
            else:
                self.duplicates += 1
            return []
        if ext in self._buf:
            self.duplicates += 1
            return []
        if ext < self._highest:
            self.reordered += 1
        else:
            self._highest = ext
        out: list[RtpPacket] = []
        if delta == 0:
            self._deliver(packet, ext, out)
            self._drain(out)
        else:
            self._buf[ext] = packet
            self._arrival[ext] = now
        self._give_up(now, out)
        return out

    def poll(self, now: float) -> list[RtpPacket]:
        """Give up on gaps that have waited longer than ``max_delay``; return what follows."""
        out: list[RtpPacket] = []
        if self._buf:
            self._give_up(now, out)
        return out

    def flush(self) -> list[RtpPacket]:
        """Deliver everything buffered, counting the remaining gaps as lost."""
        out: list[RtpPacket] = []
        while self._buf:
            self._skip_to(min(self._buf))
            self._drain(out)
        return out

    # -- internals ----------------------------------------------------------------------

    def _deliver(self, packet: RtpPacket, ext: int, out: list[RtpPacket]) -> None:
        packet.ext_sequence = ext
        packet.ext_timestamp = self._ts.unwrap(packet.timestamp)
        out.append(packet)
        self._next = ext + 1

    def _drain(self, out: list[RtpPacket]) -> None:
        buf = self._buf
        nxt = self._next
        while nxt in buf:
            packet = buf.pop(nxt)
            del self._arrival[nxt]
            self._deliver(packet, nxt, out)
            nxt += 1

    def _skip_to(self, ext: int) -> None:
        nxt = self._next
        if ext <= nxt:
            return
        self.lost += ext - nxt
        skipped = self._skipped
        skipped.update(range(max(nxt, ext - 4 * self.window), ext))
        if len(skipped) > 8 * self.window:
            floor = ext - 4 * self.window
            self._skipped = {s for s in skipped if s >= floor}
        self._next = ext

    def _give_up(self, now: float, out: list[RtpPacket]) -> None:
        buf = self._buf
        window = self.window
        while buf:
            first = min(buf)
            if self._highest - self._next >= window or now - self._arrival[first] >= (
                self.max_delay
            ):
                self._skip_to(first)
                self._drain(out)
            else:
                break

    def _jump(self, packet: RtpPacket) -> list[RtpPacket]:
        """A sequence jump beyond max_dropout: restart if the next packet follows it."""
        probation = self._probation
        if probation is not None and packet.sequence == (probation.sequence + 1) & 0xFFFF:
            first = probation
            out = self.flush()
            self._expected_prior += self._highest - self._base + 1
            self._reset_sequence()
            self.restarts += 1
            base = first.sequence
            self._base = base
            self._highest = base + 1
            self._next = base + 2
            first.ext_sequence = base
            first.ext_timestamp = self._ts.unwrap(first.timestamp)
            packet.ext_sequence = base + 1
            packet.ext_timestamp = self._ts.unwrap(packet.timestamp)
            out.append(first)
            out.append(packet)
            return out
        self._probation = packet
        return []

    def _source_changed(self) -> list[RtpPacket]:
        out = self.flush()
        if self._next >= 0:
            self._expected_prior += self._highest - self._base + 1
        self._reset_sequence()
        self._ts = TimestampUnwrapper(32)
        self._last_arrival = -1.0
        self.ssrc_changes += 1
        return out
