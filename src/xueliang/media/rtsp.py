"""RTSP cameras (and any FFmpeg-readable URL) as sources of the media hub.

PyAV demultiplexes packets — no decoding — in a worker thread; :class:`PacketConverter`
turns each into an Annex B :class:`~xueliang.media.frame.Frame` on the 90 kHz clock:

* H.264/H.265 in MP4-style length-prefixed form (``avcC``/``hvcC`` extradata: files, some
  RTSP servers) is converted to Annex B with the NAL length size from the record;
  Annex B input (FFmpeg's RTSP depacketiser) passes through;
* key frames without in-band parameter sets get the ones from the extradata prepended, so
  every key frame can start a decoder (snapshots, new readers);
* AAC gets ADTS headers (from the AudioSpecificConfig); A-law/µ-law become G.711 frames
  (the stream transcodes or drops them per ``media.g711``).

Frames are handed to the event loop with ``call_soon_threadsafe``; the stream ends when the
source ends or fails (``rtsp: <reason>``), and :meth:`RtspSource.close` stops the thread
(within one packet, or within the read timeout when the camera is silent).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from xueliang.errors import Unavailable
from xueliang.media.audio import AudioConfig, adts_header
from xueliang.media.frame import Codec, Frame
from xueliang.media.nal import NalError, iter_nal_spans, length_prefixed_to_annexb

if TYPE_CHECKING:
    from xueliang.media.hub import MediaHub
    from xueliang.media.source import SourceHandle
    from xueliang.media.stream import Stream

__all__ = [
    "AudioPacketConverter",
    "PacketConverter",
    "RtspProvider",
    "RtspSource",
    "parse_decoder_record",
    "redact_url",
]

log = logging.getLogger("xueliang.media.rtsp")

_VIDEO = {"h264": Codec.H264, "hevc": Codec.H265}
_START4 = b"\x00\x00\x00\x01"


def redact_url(url: str) -> str:
    """The URL without its password (for logs, events and the API)."""
    return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)


def _sized_nals(record: bytes, pos: int, count: int, into: list[bytes]) -> int:
    """Read ``count`` NAL units, each after its 16-bit size, from ``pos``; the position after."""
    for _ in range(count):
        size = int.from_bytes(record[pos : pos + 2], "big")
        pos += 2
        into.append(record[pos : pos + size])
        pos += size
    return pos


def parse_decoder_record(codec: Codec, record: bytes) -> tuple[int, list[bytes]]:
    """(NAL length size, parameter-set NAL units) of an avcC/hvcC record."""
    nals: list[bytes] = []
    if codec is Codec.H264:
        if len(record) < 7:
            raise NalError("avcC too short")
        length_size = (record[4] & 3) + 1
        pos = 5
        for count_mask in (0x1F, 0xFF):  # the SPS, then the PPS
            if pos >= len(record):
                break
            pos = _sized_nals(record, pos + 1, record[pos] & count_mask, nals)
        return length_size, nals
    if len(record) < 23:
        raise NalError("hvcC too short")
    length_size = (record[21] & 3) + 1
    arrays = record[22]
    pos = 23
    for _ in range(arrays):
        if pos + 3 > len(record):
            raise NalError("hvcC truncated")
        pos = _sized_nals(record, pos + 3, int.from_bytes(record[pos + 1 : pos + 3], "big"), nals)
    return length_size, nals


def _is_parameter_set(codec: Codec, nal_header: int) -> bool:
    if codec is Codec.H265:
        return 32 <= (nal_header >> 1) & 0x3F <= 34
    return nal_header & 0x1F in (7, 8)


class PacketConverter:
    """Demuxed video packets (bytes, pts/dts in ``time_base``) → Annex B frames, 90 kHz."""

    def __init__(self, codec_name: str, extradata: bytes | None, time_base: Fraction) -> None:
        codec = _VIDEO.get(codec_name)
        if codec is None:
            raise ValueError(f"unsupported video codec {codec_name!r} (H.264 or H.265 only)")
        self.codec = codec
        self.time_base = time_base
        self.length_size = 0  # 0: Annex B input
        self.parameter_sets: list[bytes] = []
        extradata = extradata or b""
        if extradata and extradata[0] == 1 and not extradata.startswith(b"\x00\x00"):
            self.length_size, self.parameter_sets = parse_decoder_record(codec, extradata)
        elif extradata:
            self.parameter_sets = [
                extradata[s:e]
                for s, e in iter_nal_spans(extradata)
                if e > s and _is_parameter_set(codec, extradata[s])
            ]
        self._prefix = b"".join(_START4 + n for n in self.parameter_sets)
        self._last_pts: int | None = None

    def ticks(self, t: int) -> int:
        tb = self.time_base
        return t * 90000 * tb.numerator // tb.denominator

    def convert(
        self, data: bytes, pts: int | None, dts: int | None, keyframe: bool
    ) -> Frame | None:
        if not data:
            return None
        if self.length_size:
            try:
                data = length_prefixed_to_annexb(data, self.length_size)
            except NalError:
                return None
        if pts is None and dts is None:
            if self._last_pts is None:
                return None
            pts = dts = self._last_pts  # FFmpeg could not time it: keep the previous time
        elif pts is None:
            pts = dts
        elif dts is None:
            dts = pts
        assert pts is not None and dts is not None
        p, d = self.ticks(pts), self.ticks(dts)
        self._last_pts = pts
        if keyframe and self._prefix and not self._has_parameter_sets(data):
            data = self._prefix + data
        return Frame(self.codec, p, d, data, keyframe)

    def _has_parameter_sets(self, data: bytes) -> bool:
        for s, e in iter_nal_spans(data):
            if e > s and _is_parameter_set(self.codec, data[s]):
                return True
            if e > s:
                t = (data[s] >> 1) & 0x3F if self.codec is Codec.H265 else data[s] & 0x1F
                if (self.codec is Codec.H265 and t < 32) or (self.codec is Codec.H264 and t <= 5):
                    return False  # reached a slice
        return False


class AudioPacketConverter:
    """AAC (raw, with an AudioSpecificConfig) → ADTS frames; A-law/µ-law → G.711 frames."""

    def __init__(
        self, codec_name: str, sample_rate: int, channels: int, time_base: Fraction
    ) -> None:
        self.time_base = time_base
        self.config: AudioConfig | None
        if codec_name == "aac":
            self.codec = Codec.AAC
            self.config = AudioConfig(Codec.AAC, sample_rate, max(channels, 1), 2)
        elif codec_name == "pcm_alaw":
            self.codec, self.config = Codec.G711A, None
        elif codec_name == "pcm_mulaw":
            self.codec, self.config = Codec.G711U, None
        else:
            raise ValueError(f"unsupported audio codec {codec_name!r}")

    def convert(self, data: bytes, pts: int | None) -> Frame | None:
        if not data or pts is None:
            return None
        tb = self.time_base
        t = pts * 90000 * tb.numerator // tb.denominator
        if self.config is not None:
            if not (len(data) > 1 and data[0] == 0xFF and data[1] & 0xF0 == 0xF0):
                data = adts_header(self.config, len(data)) + data
        return Frame(self.codec, t, t, data, True)


class RtspSource:
    """One RTSP (or file/URL) source feeding one stream from a worker thread."""

    def __init__(
        self,
        url: str,
        stream: Stream,
        *,
        transport: str = "tcp",
        timeout: float = 10.0,
        loop: asyncio.AbstractEventLoop | None = None,
        realtime: bool = False,
    ) -> None:
        self.url = url
        self.stream = stream
        self.transport = transport
        self.timeout = timeout
        self.realtime = realtime  # pace by timestamps (files); RTSP paces itself
        self.loop = loop or asyncio.get_running_loop()
        self.frames = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rtsp {stream.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, self.timeout + 2)

    def _open(self) -> Any:
        import av

        options = {}
        if self.url.startswith(("rtsp://", "rtsps://")):
            options = {
                "rtsp_transport": self.transport,
                "timeout": str(int(self.timeout * 1_000_000)),
            }
        return av.open(self.url, options=options, timeout=(self.timeout, self.timeout))

    def _run(self) -> None:
        reason = "rtsp: end of stream"
        try:
            container = self._open()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("%s: cannot open %s: %s", self.stream.name, redact_url(self.url), exc)
            self._call(self.stream.end, f"rtsp: cannot open ({self.error})")
            return
        try:
            reason = self._pump(container)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            reason = f"rtsp: {self.error}"
            log.warning("%s: %s", self.stream.name, reason)
        finally:
            container.close()
        if not self._stop.is_set():
            self._call(self.stream.end, reason)

    def _pump(self, container: Any) -> str:
        vs = container.streams.video[0] if container.streams.video else None
        if vs is None:
            return "rtsp: no video stream"
        video = PacketConverter(vs.codec_context.name, vs.codec_context.extradata, vs.time_base)
        streams = [vs]
        audio: AudioPacketConverter | None = None
        if container.streams.audio:
            a = container.streams.audio[0]
            try:
                audio = AudioPacketConverter(
                    a.codec_context.name,
                    a.codec_context.sample_rate,
                    a.codec_context.channels,
                    a.time_base,
                )
                streams.append(a)
            except ValueError:
                audio = None
        t0: float | None = None
        first: int | None = None
        for packet in container.demux(*streams):
            if self._stop.is_set():
                return "closed"
            data = bytes(packet)
            if not data:
                continue
            frame: Frame | None
            if packet.stream is vs:
                frame = video.convert(data, packet.pts, packet.dts, bool(packet.is_keyframe))
            elif audio is not None:
                frame = audio.convert(data, packet.pts)
            else:
                continue
            if frame is None:
                continue
            if self.realtime:
                now = time.monotonic()
                if t0 is None or first is None:
                    t0, first = now, frame.dts
                delay = t0 + (frame.dts - first) / 90000 - now
                if delay > 0 and self._stop.wait(delay):
                    return "closed"
            self.frames += 1
            self._call(self.stream.push_frame, frame)
        return "rtsp: end of stream"

    def _call(self, fn: Any, *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            self._stop.set()  # the loop is closed


class RtspProvider:
    """Opens :class:`RtspSource` s; ``params["url"]`` (or ``rtsp_url``) names the camera."""

    def __init__(self, *, transport: str = "tcp", timeout: float = 10.0) -> None:
        self.transport = transport
        self.timeout = timeout

    async def open(self, hub: MediaHub, name: str, params: dict[str, Any]) -> SourceHandle:
        url = params.get("url") or params.get("rtsp_url")
        if not url:
            raise Unavailable(f"{name}: no RTSP URL")
        meta = {"url": redact_url(str(url))}
        if params.get("channel_id"):
            meta["channel_id"] = str(params["channel_id"])
        stream = hub.publish(name, kind="rtsp", meta=meta)
        given = params.get("transport")
        transport = "udp" if given == "udp" else "tcp" if given else self.transport
        source = RtspSource(
            str(url),
            stream,
            transport=transport,
            timeout=self.timeout,
            realtime=bool(params.get("realtime", False)),
        )
        source.start()
        return source
