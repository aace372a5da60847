"""The simulator's video: a short synthetic clip, encoded once, streamed by many cameras.

How it stays cheap enough for hundreds of simulated cameras (the choice, documented):

1. **Encode once.** At start the simulator encodes one *base clip* with PyAV (libx264, or
   libx265 on request): ``seconds`` (default 4) at 25 fps, one IDR every ``gop`` frames
   (default 25), no B-frames, so PTS = DTS and every loop starts on an IDR; parameter sets
   are repeated before every IDR. The scene moves (a drifting colour gradient, a bouncing
   square, a progress bar, sensor-like grain so the bit rate is that of a real camera:
   about 0.47 Mbit/s at the default 640×360, 2 Mbit/s at 1280×720 when asked) and carries
   burnt-in text drawn with a tiny built-in 5×7 bitmap font (numpy only, no font files):
   ``XUELIANG SIM``, the resolution, and a clock ``MM:SS.FF`` counting the time *within the
   loop* (a wall clock cannot be burnt into a looped clip).
2. **Per-channel labels, lazily and bounded.** The channel's identity is burnt in by
   encoding a *labelled clip* (``CH <channel ID>``, the name when it is ASCII — the host has
   no CJK font, so Chinese names are not drawn — and ``PLAYBACK``/``DOWNLOAD`` for history
   sessions) the first time it is needed, in a worker thread (about 0.8 s of one core at
   640×360), keeping at most ``max_labelled`` of them (LRU). The stream starts at once with
   the base clip and switches to the labelled clip at the next loop boundary (an IDR; same
   encoder settings, so the same SPS/PPS). ``labels=False`` (benchmarks) never encodes more
   than the base clip.
3. **Mux and packetize once.** Each frame of a clip is muxed to MPEG-2 PS once
   (:class:`~xueliang.media.ps_mux.PsMuxer`) and cut into RTP packets once, into two wire
   templates: datagrams for UDP and an RFC 4571 (2-byte length) byte string for TCP. The
   positions of the PS SCR/PTS fields and of the RTP headers are remembered.
4. **Per send, patch only.** :class:`RtpStream` copies a template (one memcpy), writes
   sequence number, timestamp and SSRC into each 12-byte RTP header and the running
   timestamp into the few PS SCR/PTS fields, and hands the bytes to the socket. Timestamps
   continue across loops (one running 90 kHz counter per stream), so receivers see an
   endless, monotonic stream. One :class:`MediaPump` task paces every stream (10 ms tick)
   and sends UDP from one shared non-blocking socket. Measured on the 2-core development
   machine: 300 streams of 1280×720 at 2 Mbit/s cost about 22 % of one core.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from xueliang.media.frame import Codec, Frame
from xueliang.media.ps_mux import PsMuxer, encode_pes_timestamp

#: A label line starting with this names a picture fault to show (render_picture), not text.
FAULT_MARK = "~"

__all__ = [
    "FAULT_MARK",
    "Clip",
    "ClipLibrary",
    "RtpStream",
    "WireFrame",
    "encode_clip",
    "has_encoder",
    "render_picture",
]

log = logging.getLogger("xueliang.sim.video")

_MASK33 = (1 << 33) - 1
_RTP_HEADER = struct.Struct("!BBHII")
_RTP_PATCH = struct.Struct("!BHII")  # bytes 1..11 of the header: M|PT, seq, ts, ssrc
_LEN = struct.Struct("!H")

_ENCODERS = {Codec.H264: "libx264", Codec.H265: "libx265"}

# --------------------------------------------------------------------------------------------
# text: a 5×7 bitmap font
# --------------------------------------------------------------------------------------------

_GLYPHS: dict[str, tuple[str, ...]] = {
    "0": (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    "3": ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    "4": ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    "5": ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    "6": ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    "8": (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    "9": (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
    "A": (" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "B": ("#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "),
    "C": (" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "),
    "D": ("#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "),
    "E": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"),
    "F": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "),
    "G": (" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"),
    "H": ("#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "I": (" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "J": ("  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "),
    "K": ("#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"),
    "L": ("#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"),
    "M": ("#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"),
    "N": ("#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"),
    "O": (" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "P": ("#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "),
    "Q": (" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"),
    "R": ("#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"),
    "S": (" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "),
    "T": ("#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "),
    "U": ("#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "V": ("#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "),
    "W": ("#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "),
    "X": ("#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"),
    "Y": ("#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "),
    "Z": ("#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"),
    ":": ("     ", "  #  ", "  #  ", "     ", "  #  ", "  #  ", "     "),
    ".": ("     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "),
    "-": ("     ", "     ", "     ", "#####", "     ", "     ", "     "),
    "+": ("     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "),
    "/": ("    #", "    #", "   # ", "  #  ", " #   ", "#    ", "#    "),
    "_": ("     ", "     ", "     ", "     ", "     ", "     ", "#####"),
    " ": ("     ",) * 7,
    "?": (" ### ", "#   #", "    #", "   # ", "  #  ", "     ", "  #  "),
}
_GLYPH_ARRAYS: dict[str, np.ndarray[Any, np.dtype[np.bool_]]] = {
    ch: np.array([[c == "#" for c in row] for row in rows], dtype=np.bool_)
    for ch, rows in _GLYPHS.items()
}


def _text_mask(text: str, scale: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """A boolean mask of ``text`` (upper-cased; unknown characters as ``?``), 1 px spacing."""
    cols: list[np.ndarray[Any, np.dtype[np.bool_]]] = []
    gap = np.zeros((7, 1), dtype=np.bool_)
    for ch in text.upper():
        cols.append(_GLYPH_ARRAYS.get(ch, _GLYPH_ARRAYS["?"]))
        cols.append(gap)
    if not cols:
        return np.zeros((7 * scale, 0), dtype=np.bool_)
    mask = np.hstack(cols)
    return np.kron(mask, np.ones((scale, scale), dtype=np.bool_)).astype(np.bool_)


def _draw_text(img: np.ndarray[Any, Any], text: str, x: int, y: int, scale: int) -> None:
    """White text on a black box at (x, y), clipped to the picture."""
    mask = _text_mask(text, scale)
    h, w = mask.shape
    pad = scale
    H, W = img.shape[:2]
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(W, x + w + pad), min(H, y + h + pad)
    if x1 <= x0 or y1 <= y0:
        return
    img[y0:y1, x0:x1] = 0
    mh, mw = min(h, H - y), min(w, W - x)
    if mh <= 0 or mw <= 0:
        return
    region = img[y : y + mh, x : x + mw]
    region[mask[:mh, :mw]] = 255


def render_picture(
    index: int,
    width: int,
    height: int,
    *,
    fps: int = 25,
    frames: int = 100,
    label: Sequence[str] = (),
    noise: int = 12,
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Picture ``index`` of the synthetic scene as an RGB array (height × width × 3), with
    ``noise`` levels of random grain (0: none). A label line ``~covered``, ``~black``,
    ``~frozen`` or ``~turned`` (:data:`FAULT_MARK`) is not drawn: the picture shows that fault
    instead."""
    faults = {t[len(FAULT_MARK):] for t in label if t.startswith(FAULT_MARK)}
    label = [t for t in label if not t.startswith(FAULT_MARK)]
    if "black" in faults:
        return np.zeros((height, width, 3), dtype=np.uint8)
    if "frozen" in faults:
        index = 0
    y = np.arange(height, dtype=np.int32)[:, None]
    x = np.arange(width, dtype=np.int32)[None, :]
    img = np.empty((height, width, 3), dtype=np.uint8)
    shift = index * max(1, width // 160)
    img[..., 0] = ((x + shift) * 255 // max(1, width)) % 256
    img[..., 1] = ((y + shift // 2) * 255 // max(1, height)) % 256
    img[..., 2] = (((x + y) // 4 + index * 3) % 256).astype(np.uint8)
    if noise:
        # Sensor-like grain, so the encoder spends bits as on a real camera's picture.
        grain = np.random.default_rng(index).integers(
            0, noise, size=(height, width), dtype=np.uint8
        )
        np.minimum(img, 255 - noise, out=img)
        img += grain[..., None]
    # A bouncing square.
    side = max(8, height // 6)
    span_x, span_y = max(1, width - side), max(1, height - side)
    px = (index * max(2, width // 100)) % (2 * span_x)
    py = (index * max(2, height // 80)) % (2 * span_y)
    px = px if px < span_x else 2 * span_x - px
    py = py if py < span_y else 2 * span_y - py
    img[py : py + side, px : px + side] = (255, 210, 0)
    # A progress bar along the bottom: one sweep per loop.
    bar_h = max(2, height // 90)
    done = (index % max(1, frames) + 1) * width // max(1, frames)
    img[height - bar_h :, :done] = (0, 200, 255)
    img[height - bar_h :, done:] = 40
    scale = max(1, height // 120)
    line = 9 * scale
    lines = list(label) or ["XUELIANG SIM"]
    for k, text in enumerate(lines):
        _draw_text(img, text, 2 * scale, 2 * scale + k * line, scale)
    seconds, ff = divmod(index % max(1, frames), fps)
    clock = f"{seconds // 60:02d}:{seconds % 60:02d}.{ff:02d}"
    _draw_text(img, clock, 2 * scale, height - bar_h - line - scale, scale)
    res = f"{width}X{height}"
    rw = len(res) * 6 * scale
    _draw_text(img, res, width - rw - 2 * scale, 2 * scale, scale)
    if "turned" in faults:
        # the camera turned away from its home: another part of the scene (mirrored), with a
        # brick wall filling the left of the picture
        img = np.ascontiguousarray(np.roll(img[:, ::-1], width // 3, axis=1))
        brick = max(4, height // 24)
        yy, xx = np.ogrid[:height, : width * 3 // 5]
        offset = (yy // brick) % 2 * brick
        mortar = (yy % brick == 0) | ((xx + offset) % (2 * brick) == 0)
        wall = img[:, : width * 3 // 5]
        wall[...] = (150, 70, 50)
        wall[mortar] = (200, 200, 190)
    if "covered" in faults:
        # a hand over the lens from the bottom right: two thirds of the picture, dark and flat
        yy, xx = np.ogrid[:height, :width]
        inside = ((xx - width) / (width * 0.95)) ** 2 + ((yy - height) / (height * 0.95)) ** 2 <= 1.0
        img[inside] = (28, 24, 22)
    return img


# --------------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------------


def has_encoder(codec: Codec) -> bool:
    """True when PyAV has the encoder for ``codec`` (libx264 / libx265)."""
    import av

    name = _ENCODERS.get(codec)
    if name is None:
        return False
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


def encode_clip(
    *,
    codec: Codec = Codec.H264,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    seconds: float = 4.0,
    gop: int = 25,
    bit_rate: int | None = None,
    label: Sequence[str] = (),
    preset: str = "veryfast",
) -> list[tuple[bytes, bool]]:
    """Encode the synthetic scene; returns the access units (Annex B, key frame flag).

    The number of frames is rounded up to a whole number of GOPs so that a loop restarts on
    an IDR. Every IDR carries its parameter sets in band (repeat-headers).
    """
    import av

    if codec not in _ENCODERS:
        raise ValueError(f"cannot encode {codec}")
    width -= width % 2
    height -= height % 2
    frames = max(gop, round(seconds * fps))
    frames = -(-frames // gop) * gop
    cc: Any = av.CodecContext.create(_ENCODERS[codec], "w")
    cc.width, cc.height = width, height
    cc.pix_fmt = "yuv420p"
    cc.time_base = Fraction(1, fps)
    cc.framerate = Fraction(fps, 1)
    cc.gop_size = gop
    cc.bit_rate = bit_rate or max(200_000, width * height * 2)
    common = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1"
    if codec is Codec.H265:
        cc.options = {"preset": preset, "x265-params": f"log-level=error:{common}"}
    else:
        cc.options = {"preset": preset, "x264-params": common}
    packets: list[Any] = []
    for i in range(frames):
        picture = render_picture(i, width, height, fps=fps, frames=frames, label=label)
        vf = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        vf.pts = i
        packets += cc.encode(vf)
    packets += cc.encode(None)
    out = [(bytes(p), bool(p.is_keyframe)) for p in packets]
    if len(out) != frames or not out[0][1]:
        raise RuntimeError(f"encoder gave {len(out)} packets for {frames} frames")
    return out


# --------------------------------------------------------------------------------------------
# wire templates
# --------------------------------------------------------------------------------------------


def _ps_timestamp_sites(chunk: bytes) -> list[tuple[int, int]]:
    """(offset, kind) of every SCR (kind 0, offset of the 5 SCR bytes) and PES PTS/DTS field
    (kind = its 4-bit prefix: 2 PTS only, 3 PTS of PTS+DTS, 1 DTS) in a PS chunk."""
    sites: list[tuple[int, int]] = []
    pos, n = 0, len(chunk)
    while pos + 4 <= n:
        if chunk[pos : pos + 3] != b"\x00\x00\x01":
            raise ValueError(f"no start code at {pos}")
        sid = chunk[pos + 3]
        if sid == 0xBA:
            sites.append((pos + 4, 0))
            pos += 14 + (chunk[pos + 13] & 7)
            continue
        length = chunk[pos + 4] << 8 | chunk[pos + 5]
        if 0xC0 <= sid <= 0xEF and pos + 9 <= n:
            flags = chunk[pos + 7] >> 6
            if flags & 2:
                sites.append((pos + 9, chunk[pos + 9] >> 4))
                if flags == 3:
                    sites.append((pos + 14, chunk[pos + 14] >> 4))
        pos += 6 + length
    return sites


def _scr_bytes(scr: int) -> bytes:
    """Bytes 4..8 of a pack header carrying ``scr`` (extension 0)."""
    scr &= _MASK33
    return bytes(
        (
            0x44 | ((scr >> 27) & 0x38) | ((scr >> 28) & 0x03),
            (scr >> 20) & 0xFF,
            ((scr >> 12) & 0xF8) | 0x04 | ((scr >> 13) & 0x03),
            (scr >> 5) & 0xFF,
            ((scr << 3) & 0xF8) | 0x04,
        )
    )


@dataclass(slots=True)
class _Template:
    data: bytes
    #: offset of each RTP header in ``data``, and the end of each packet.
    headers: list[int]
    ends: list[int]
    #: (kind, first byte offset, offsets of the 5 bytes or None when contiguous)
    sites: list[tuple[int, int, tuple[int, ...] | None]]


def _build_template(chunk: bytes, sites: list[tuple[int, int]], mtu: int, tcp: bool) -> _Template:
    step = mtu - 12
    n = len(chunk)
    count = max(1, -(-n // step))
    parts: list[bytes] = []
    headers: list[int] = []
    ends: list[int] = []
    size = 0
    for i in range(count):
        payload = chunk[i * step : (i + 1) * step]
        if tcp:
            parts.append(_LEN.pack(12 + len(payload)))
            size += 2
        headers.append(size)
        marker = 0x80 if i == count - 1 else 0
        parts.append(_RTP_HEADER.pack(0x80, 96 | marker, 0, 0, 0))
        parts.append(payload)
        size += 12 + len(payload)
        ends.append(size)

    def where(c: int) -> int:
        return headers[c // step] + 12 + c % step

    mapped: list[tuple[int, int, tuple[int, ...] | None]] = []
    for off, kind in sites:
        offs = tuple(where(off + k) for k in range(5))
        contiguous = offs[4] - offs[0] == 4
        mapped.append((kind, offs[0], None if contiguous else offs))
    return _Template(b"".join(parts), headers, ends, mapped)


@dataclass(slots=True)
class WireFrame:
    """One frame of a clip, muxed to PS and cut into RTP packets once (UDP and TCP forms)."""

    keyframe: bool
    size: int
    udp: _Template
    tcp: _Template


@dataclass(slots=True)
class Clip:
    """An encoded, pre-muxed, pre-packetized loop. ``frames[0]`` is an IDR."""

    codec: Codec
    width: int
    height: int
    fps: int
    gop: int
    frames: list[WireFrame]
    label: tuple[str, ...] = ()
    bit_rate: int = 0
    #: Access units as encoded (Annex B), for tests and snapshots.
    access_units: list[bytes] = field(default_factory=list, repr=False)

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps

    @property
    def tick(self) -> int:
        """90 kHz ticks per frame."""
        return 90000 // self.fps

    def keyframe_at_or_before(self, index: int) -> int:
        index %= len(self.frames)
        while index > 0 and not self.frames[index].keyframe:
            index -= 1
        return index

    @classmethod
    def build(
        cls,
        access_units: Sequence[tuple[bytes, bool]],
        *,
        codec: Codec,
        width: int,
        height: int,
        fps: int,
        gop: int,
        mtu: int = 1400,
        label: Sequence[str] = (),
    ) -> Clip:
        muxer = PsMuxer(video=codec)
        frames: list[WireFrame] = []
        total = 0
        for data, key in access_units:
            chunk = muxer.mux(Frame(codec, 0, 0, data, key))
            sites = _ps_timestamp_sites(chunk)
            frames.append(
                WireFrame(
                    key,
                    len(chunk),
                    _build_template(chunk, sites, mtu, False),
                    _build_template(chunk, sites, mtu, True),
                )
            )
            total += len(data)
        rate = int(total * 8 * fps / max(1, len(access_units)))
        return cls(
            codec,
            width,
            height,
            fps,
            gop,
            frames,
            tuple(label),
            rate,
            [d for d, _ in access_units],
        )


class RtpStream:
    """One outgoing RTP stream (one camera session): running sequence, timestamp, SSRC.

    ``render_udp(frame)`` gives the datagrams of a frame, ``render_tcp(frame)`` its RFC 4571
    byte string; both patch a copy of the frame's template (see the module docstring).
    """

    __slots__ = ("frames_sent", "payload_type", "sequence", "ssrc", "ticks")

    def __init__(
        self, ssrc: int, payload_type: int = 96, *, rng: random.Random | None = None
    ) -> None:
        r = rng or random.Random()
        self.ssrc = ssrc & 0xFFFFFFFF
        self.payload_type = payload_type & 0x7F
        self.sequence = r.randrange(0, 0x10000)
        #: the running 90 kHz clock of the stream (RTP timestamp = low 32 bits, PS = low 33).
        self.ticks = r.randrange(0, 1 << 31)
        self.frames_sent = 0

    def _patch(self, t: _Template) -> bytearray:
        buf = bytearray(t.data)
        seq = self.sequence
        ts = self.ticks & 0xFFFFFFFF
        ssrc = self.ssrc
        pt = self.payload_type
        headers = t.headers
        last = len(headers) - 1
        pack_into = _RTP_PATCH.pack_into
        for i, off in enumerate(headers):
            pack_into(buf, off + 1, pt | 0x80 if i == last else pt, seq, ts, ssrc)
            seq = (seq + 1) & 0xFFFF
        self.sequence = seq
        ps_ts = self.ticks & _MASK33
        scr = _scr_bytes(ps_ts) if t.sites else b""
        for kind, start, offs in t.sites:
            field5 = scr if kind == 0 else encode_pes_timestamp(kind, ps_ts)
            if offs is None:
                buf[start : start + 5] = field5
            else:
                for k in range(5):
                    buf[offs[k]] = field5[k]
        return buf

    def render_udp(self, frame: WireFrame, tick: int) -> list[memoryview]:
        t = frame.udp
        view = memoryview(self._patch(t))
        out = [view[start:end] for start, end in zip(t.headers, t.ends, strict=True)]
        self.ticks += tick
        self.frames_sent += 1
        return out

    def render_tcp(self, frame: WireFrame, tick: int) -> bytearray:
        buf = self._patch(frame.tcp)
        self.ticks += tick
        self.frames_sent += 1
        return buf


# --------------------------------------------------------------------------------------------
# the library: base clip + lazily encoded labelled clips
# --------------------------------------------------------------------------------------------


class ClipLibrary:
    """The base clip (encoded by :meth:`prepare`) and per-label clips encoded on demand."""

    def __init__(
        self,
        *,
        codec: Codec = Codec.H264,
        width: int = 640,
        height: int = 360,
        fps: int = 25,
        seconds: float = 4.0,
        gop: int = 25,
        bit_rate: int | None = None,
        labels: bool = True,
        max_labelled: int = 32,
        mtu: int = 1400,
    ) -> None:
        if codec is Codec.H265 and not has_encoder(Codec.H265):
            log.warning("libx265 is not available; the simulator streams H.264")
            codec = Codec.H264
        self.codec = codec
        self.width = width - width % 2
        self.height = height - height % 2
        self.fps = fps
        self.seconds = seconds
        self.gop = gop
        self.bit_rate = bit_rate
        self.labels = labels
        self.max_labelled = max_labelled
        self.mtu = mtu
        self._base: Clip | None = None
        self._labelled: OrderedDict[tuple[str, ...], Clip] = OrderedDict()
        self._pending: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()
        self.encode_seconds = 0.0

    def _encode(self, label: tuple[str, ...]) -> Clip:
        t0 = time.perf_counter()
        aus = encode_clip(
            codec=self.codec,
            width=self.width,
            height=self.height,
            fps=self.fps,
            seconds=self.seconds,
            gop=self.gop,
            bit_rate=self.bit_rate,
            label=label,
        )
        clip = Clip.build(
            aus,
            codec=self.codec,
            width=self.width,
            height=self.height,
            fps=self.fps,
            gop=self.gop,
            mtu=self.mtu,
            label=label,
        )
        self.encode_seconds += time.perf_counter() - t0
        return clip

    def prepare_sync(self) -> Clip:
        if self._base is None:
            self._base = self._encode(())
            log.info(
                "simulator clip: %s %dx%d, %d frames, %.0f kbit/s, encoded in %.2f s",
                self.codec.value,
                self.width,
                self.height,
                len(self._base.frames),
                self._base.bit_rate / 1000,
                self.encode_seconds,
            )
        return self._base

    async def prepare(self) -> Clip:
        """Encode the base clip (in a worker thread) if not done yet."""
        if self._base is None:
            await asyncio.to_thread(self.prepare_sync)
        assert self._base is not None
        return self._base

    @property
    def base(self) -> Clip:
        return self.prepare_sync()

    def clip_for(self, label: Sequence[str]) -> Clip:
        """The labelled clip if it is ready, else the base clip (and start encoding it)."""
        base = self.base
        key = tuple(label)
        if not self.labels or not key:
            return base
        with self._lock:
            clip = self._labelled.get(key)
            if clip is not None:
                self._labelled.move_to_end(key)
                return clip
            if key in self._pending:
                return base
            self._pending.add(key)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._encode_labelled(key)
            return self._labelled.get(key, base)
        loop.run_in_executor(None, self._encode_labelled, key)
        return base

    def _encode_labelled(self, key: tuple[str, ...]) -> None:
        try:
            clip = self._encode(key)
        except Exception:
            log.exception("encoding the labelled clip %s failed", key)
            with self._lock:
                self._pending.discard(key)
            return
        with self._lock:
            self._labelled[key] = clip
            self._pending.discard(key)
            while len(self._labelled) > self.max_labelled:
                self._labelled.popitem(last=False)


# --------------------------------------------------------------------------------------------
# sending: media sessions and the pump that paces them
# --------------------------------------------------------------------------------------------

Address = tuple[str, int]

#: A TCP stream whose socket buffer holds more than this skips frames up to the next IDR.
TCP_BACKLOG_LIMIT = 4 * 1024 * 1024


class MediaSession:
    """One outgoing stream of a simulated channel: live (Play), Playback or Download.

    ``transport``: ``udp``; ``tcp-active`` (the device connects to the platform, which
    offered ``a=setup:passive``); ``tcp-passive`` (the device listens, the platform offered
    ``a=setup:active``). For Playback/Download ``duration`` is the length of the asked range
    in seconds; ``position`` advances by one frame time per frame sent, ``rate`` times as fast
    as real time (MANSRTSP Scale, or ``a=downloadspeed``). At the end ``on_end`` is called
    once; ``on_failed`` when the TCP connection cannot be made or breaks.
    """

    def __init__(
        self,
        *,
        call_id: str,
        channel_id: str,
        kind: str,
        ssrc: int,
        transport: str,
        remote: Address,
        label: Sequence[str] = (),
        payload_type: int = 96,
        duration: float | None = None,
        rate: float = 1.0,
    ) -> None:
        self.call_id = call_id
        self.channel_id = channel_id
        self.kind = kind
        self.ssrc = ssrc
        self.transport = transport
        self.remote = remote
        self.label = tuple(label)
        self.stream = RtpStream(ssrc, payload_type)
        self.duration = duration
        self.rate = rate
        self.position = 0.0
        self.paused = False
        #: new → streaming → ended (playback reached its end) / closed
        self.state = "new"
        self.acked = False
        self.local_port = 0
        self.index = 0
        self.clip: Clip | None = None
        self.next_due = 0.0
        self.need_key = False
        self.tcp: asyncio.Transport | None = None
        self.on_end: Any = None
        self.on_failed: Any = None
        self.started_at: float | None = None
        self.packets_sent = 0
        self.bytes_sent = 0
        self.frames_sent = 0
        self.frames_skipped = 0
        self.send_errors = 0
        self._sock: Any = None
        self._server: asyncio.AbstractServer | None = None

    @property
    def streaming(self) -> bool:
        return self.state == "streaming"

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.next_due = time.monotonic()

    def seek(self, seconds: float) -> None:
        """Jump to ``seconds`` into the range (restarting at the key frame at or before it)."""
        self.position = max(0.0, seconds)
        if self.duration is not None and self.position >= self.duration:
            self.position = self.duration
        if self.clip is not None:
            self.index = self.clip.keyframe_at_or_before(int(self.position * self.clip.fps))
        self.paused = False
        self.next_due = time.monotonic()

    def set_rate(self, rate: float) -> None:
        self.rate = min(16.0, max(0.0625, abs(rate)))

    def force_keyframe(self) -> None:
        """IFrameCmd: jump to the next IDR of the clip."""
        clip = self.clip
        if clip is None:
            return
        n = len(clip.frames)
        i = self.index % n
        while i < n and not clip.frames[i].keyframe:
            i += 1
        self.index = i % n


class _MediaConn(asyncio.Protocol):
    def __init__(self, pump: MediaPump, session: MediaSession) -> None:
        self.pump = pump
        self.session = session

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        s = self.session
        if s.tcp is not None or s.state == "closed":
            transport.close()
            return
        s.tcp = transport
        if s._server is not None:
            s._server.close()
            s._server = None
        if s.acked:
            self.pump._begin(s)

    def data_received(self, data: bytes) -> None:  # RTCP or nothing: ignored
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        s = self.session
        if s.state == "streaming":
            s.state = "closed"
            self.pump.sessions.discard(s)
            if s.on_failed is not None:
                s.on_failed(s, "media connection lost")


class MediaPump:
    """Paces every active :class:`MediaSession` from one task; UDP from one shared socket."""

    def __init__(
        self, library: ClipLibrary, host: str = "127.0.0.1", *, tick: float = 0.01
    ) -> None:
        self.library = library
        self.host = host
        self.tick = tick
        self.sessions: set[MediaSession] = set()
        self.udp_port = 0
        self._sock: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        import socket

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        except OSError:
            pass
        sock.bind((self.host, 0))
        sock.setblocking(False)
        self._sock = sock
        self.udp_port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._run(), name="sim-media-pump")

    async def stop(self) -> None:
        for s in list(self.sessions):
            self.close(s)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- session life ----------------------------------------------------------------------

    async def prepare(self, session: MediaSession) -> int:
        """Allocate the local media port put in the SDP answer."""
        import socket

        if session.transport == "udp":
            session.local_port = self.udp_port
        elif session.transport == "tcp-active":
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, 0))
            session._sock = sock
            session.local_port = sock.getsockname()[1]
        else:
            loop = asyncio.get_running_loop()
            server = await loop.create_server(lambda: _MediaConn(self, session), self.host, 0)
            session._server = server
            session.local_port = server.sockets[0].getsockname()[1]
        return session.local_port

    async def activate(self, session: MediaSession) -> None:
        """The ACK arrived: connect (tcp-active) or wait for the platform (tcp-passive), then stream."""
        session.acked = True
        if session.state != "new":
            return
        if session.transport == "udp":
            self._begin(session)
        elif session.transport == "tcp-active":
            loop = asyncio.get_running_loop()
            sock = session._sock
            session._sock = None
            try:
                sock.setblocking(False)
                async with asyncio.timeout(5.0):
                    await loop.sock_connect(sock, session.remote)
                await loop.create_connection(lambda: _MediaConn(self, session), sock=sock)
            except (OSError, TimeoutError) as exc:
                sock.close()
                session.state = "closed"
                if session.on_failed is not None:
                    session.on_failed(session, f"cannot connect to {session.remote}: {exc}")
        elif session.tcp is not None:
            self._begin(session)

    def _begin(self, session: MediaSession) -> None:
        if session.state != "new":
            return
        session.clip = self.library.clip_for(session.label)
        if session.position:
            session.index = session.clip.keyframe_at_or_before(
                int(session.position * session.clip.fps)
            )
        session.state = "streaming"
        session.started_at = time.monotonic()
        session.next_due = session.started_at
        self.sessions.add(session)
        self._wake.set()

    def close(self, session: MediaSession) -> None:
        session.state = "closed"
        self.sessions.discard(session)
        if session.tcp is not None:
            session.tcp.close()
            session.tcp = None
        if session._server is not None:
            session._server.close()
            session._server = None
        if session._sock is not None:
            session._sock.close()
            session._sock = None

    # -- pacing ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self.sessions:
                self._wake.clear()
                await self._wake.wait()
            now = time.monotonic()
            for s in list(self.sessions):
                try:
                    self._service(s, now)
                except Exception:
                    log.exception("media session %s failed", s.call_id)
                    self.close(s)
            await asyncio.sleep(self.tick)

    def _service(self, s: MediaSession, now: float) -> None:
        if s.state != "streaming" or s.paused:
            return
        clip = s.clip
        assert clip is not None
        interval = 1.0 / (clip.fps * s.rate)
        sent = 0
        while s.next_due <= now and sent < 16:
            self._send_frame(s)
            if s.state != "streaming":
                return
            s.next_due += interval
            sent += 1
        if now - s.next_due > 1.0:
            s.next_due = now

    def _send_frame(self, s: MediaSession) -> None:
        clip = s.clip
        assert clip is not None
        if s.index >= len(clip.frames):
            s.index = 0
        if s.index == 0:
            clip = s.clip = self.library.clip_for(s.label)
        frame = clip.frames[s.index]
        s.index += 1
        tick = clip.tick
        if s.need_key and not frame.keyframe:
            s.stream.ticks += tick
            s.frames_skipped += 1
        elif s.transport == "udp":
            s.need_key = False
            sock = self._sock
            remote = s.remote
            for d in s.stream.render_udp(frame, tick):
                try:
                    sock.sendto(d, remote)
                except BlockingIOError:
                    s.send_errors += 1
                    s.need_key = True
                    break
                except OSError:
                    s.send_errors += 1
                    break
                s.packets_sent += 1
                s.bytes_sent += len(d)
            s.frames_sent += 1
        else:
            tcp = s.tcp
            if tcp is None or tcp.is_closing():
                return
            if tcp.get_write_buffer_size() > TCP_BACKLOG_LIMIT:
                s.need_key = True
                s.stream.ticks += tick
                s.frames_skipped += 1
            else:
                s.need_key = False
                data = s.stream.render_tcp(frame, tick)
                tcp.write(data)
                s.packets_sent += len(frame.tcp.headers)
                s.bytes_sent += len(data)
                s.frames_sent += 1
        if s.duration is not None:
            s.position += 1.0 / clip.fps
            if s.position >= s.duration:
                s.state = "ended"
                self.sessions.discard(s)
                if s.on_end is not None:
                    s.on_end(s)
