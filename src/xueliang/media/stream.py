"""A stream path of the media hub: one source, many readers (DESIGN principle 2).

A :class:`Stream` is fed either with RTP (:meth:`Stream.feed_rtp`: PsRtpInput's parse,
RtpReceiver reordering, loss and jitter → PsDemuxer → frames), by an RTP binding of the shared
:class:`~xueliang.media.rtp_server.RtpServer`, or directly with frames
(:meth:`Stream.push_frame`, e.g. the RTSP source or the transcoder).

What it keeps for readers: the video codec, the current parameter sets (learnt from key
frames, or from the PS demuxer), the picture size, the audio track as the outputs carry it,
the latest key frame (snapshots) and the frames since it (the GOP cache that primes a new
output). Outputs (:mod:`xueliang.media.outputs`) are created on the first reader of a format
and dropped with the last, so a stream nobody watches costs only its demultiplexing.

Audio: AAC passes through; G.711 becomes AAC (one shared :class:`G711ToAac`, only while
an output exists) or is dropped, per ``media.g711``. Audio frames before the first video key
frame are dropped (the outputs start at a key frame).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from xueliang.media.audio import AudioConfig, G711ToAac
from xueliang.media.frame import STREAM_TYPES, Codec, Frame, ParameterSets
from xueliang.media.nal import (
    NalError,
    inspect_access_unit,
    nal_type_h264,
    nal_type_h265,
    parse_sps,
)
from xueliang.media.outputs import (
    READER_LIMIT,
    FlvOutput,
    Fmp4Output,
    FramesOutput,
    HlsOutput,
    Output,
    Reader,
)
from xueliang.media.ps import PsDemuxer
from xueliang.media.ps_rtp_in import PsRtpInput
from xueliang.media.ps_rtp_out import PsOutput
from xueliang.media.rtp import RtpReceiver

if TYPE_CHECKING:
    from xueliang.config import MediaConfig
    from xueliang.media.rtp_server import RtpBinding
    from xueliang.media.source import SourceHandle

__all__ = ["Stream", "StreamEnded", "StreamStats"]

log = logging.getLogger("xueliang.media")

#: Largest GOP kept to prime new outputs, bytes and frames.
GOP_LIMIT_BYTES = 24 * 1024 * 1024
GOP_LIMIT_FRAMES = 3000

_FORMATS: dict[str, type[Output[Any]]] = {
    "fmp4": Fmp4Output,
    "flv": FlvOutput,
    "frames": FramesOutput,
    #: PS for GB/T 28181 peers (upper platforms): muxed once, each reader its own RTP
    "ps": PsOutput,
}


class StreamEnded(Exception):
    """The stream ended before it became ready."""


@dataclass(slots=True, frozen=True)
class StreamStats:
    bytes_in: int
    bitrate: float  # bit/s over the last measurement window
    fps: float
    frames: int
    video_frames: int
    key_frames: int
    packets: int
    lost: int
    loss: float  # fraction of expected packets lost
    jitter: float  # seconds (RFC 3550 interarrival jitter)
    readers: int
    started_at: float  # wall clock (time.time())
    last_frame_at: float | None  # monotonic


class StreamHost(Protocol):
    """What a stream needs of the hub that holds it (media/hub.py's MediaHub): its settings,
    and to be told when the stream has video and when it ended."""

    config: MediaConfig

    def _stream_ready(self, s: Stream) -> None: ...

    def _stream_ended(self, s: Stream) -> None: ...


class Stream:
    """One path: a source publishes frames, outputs mux them once, readers read."""

    def __init__(self, hub: StreamHost, name: str, kind: str, meta: dict[str, Any]) -> None:
        self.hub = hub
        self.name = name
        self.kind = kind
        self.meta: dict[str, Any] = meta
        self.codec: Codec | None = None
        self.audio_codec: Codec | None = None
        self.audio_config: AudioConfig | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.parameter_sets = ParameterSets()
        self.keyframe: Frame | None = None
        self.handle: SourceHandle | None = None
        self.bindings: list[RtpBinding] = []
        #: Opened on demand by a provider: stopped ``idle_stop_seconds`` after the last reader.
        self.on_demand = False
        #: Playback paused by the viewer: the dead-source timeout is suspended.
        self.paused = False
        self.ended = False
        self.end_reason = ""
        self.ready_event = asyncio.Event()
        # statistics
        self.started_at = time.time()
        self.created = time.monotonic()
        self.ready_at: float | None = None
        self.bytes_in = 0
        self.frames = 0
        self.video_frames = 0
        self.audio_frames = 0
        self.key_frames = 0
        self.packets = 0
        self.last_frame_at: float | None = None
        self.last_input_at: float | None = None
        self.bitrate = 0.0
        self.fps = 0.0
        self._left_bytes_out = 0
        self._left_cuts = 0
        self._rate_at = self.created
        self._rate_bytes = 0
        self._rate_frames = 0
        self._idle_since: float | None = None
        # internals
        self._input: PsRtpInput | None = None
        self._gop: list[Frame] = []
        self._gop_bytes = 0
        self._outputs: dict[str, Output[Any]] = {}
        self._hls: HlsOutput | None = None
        self._g711: G711ToAac | None = None
        self._ps_key: tuple[bytes | None, ...] = ()
        self._waiters: list[asyncio.Future[None]] = []

    # ---------------------------------------------------------------------------- state

    @property
    def ready(self) -> bool:
        """A video key frame with complete parameter sets has arrived: outputs can start."""
        return self.ready_event.is_set()

    @property
    def readers(self) -> int:
        n = sum(len(o.readers) for o in self._outputs.values())
        if self._hls is not None and self._hls.active(time.monotonic()):
            n += 1
        return n

    def reader_list(self) -> list[Reader[Any]]:
        return [r for o in self._outputs.values() for r in o.readers]

    @property
    def lost(self) -> int:
        return self._input.receiver.lost if self._input is not None else 0

    @property
    def jitter(self) -> float:
        return self._input.receiver.jitter_seconds if self._input is not None else 0.0

    @property
    def loss(self) -> float:
        return self._input.receiver.loss_fraction if self._input is not None else 0.0

    @property
    def receiver(self) -> RtpReceiver | None:
        return self._input.receiver if self._input is not None else None

    @property
    def demuxer(self) -> PsDemuxer | None:
        return self._input.demuxer if self._input is not None else None

    @property
    def stats(self) -> StreamStats:
        return StreamStats(
            bytes_in=self.bytes_in,
            bitrate=self.bitrate,
            fps=self.fps,
            frames=self.frames,
            video_frames=self.video_frames,
            key_frames=self.key_frames,
            packets=self.packets,
            lost=self.lost,
            loss=self.loss,
            jitter=self.jitter,
            readers=self.readers,
            started_at=self.started_at,
            last_frame_at=self.last_frame_at,
        )

    def gop_frames(self) -> list[Frame]:
        """The frames since the latest video key frame (empty when not cached)."""
        return list(self._gop)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until the first key frame: :class:`StreamEnded` if the stream ends first,
        ``TimeoutError`` after ``timeout`` seconds."""
        if self.ready:
            return
        if self.ended:
            raise StreamEnded(self.end_reason)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout(timeout):
                await fut
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)
        if not self.ready:
            raise StreamEnded(self.end_reason)

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    # ---------------------------------------------------------------------------- input

    def feed_rtp(self, data: bytes, now: float) -> bool:
        """One datagram of PS over RTP (from a binding): parse, reorder, demux, publish.
        False if it is not RTP (the binding counts it)."""
        if self.ended:
            return True
        inp = self._input
        if inp is None:
            inp = self._input = PsRtpInput()
        frames = inp.feed(data, now)
        if frames is None:
            return False
        self.packets += 1
        self.bytes_in += len(data)
        self.last_input_at = now
        for f in frames:
            self._frame(f, now)
        return True

    def poll(self, now: float) -> None:
        """Timer: give up on RTP gaps waiting longer than the reorder delay."""
        inp = self._input
        if inp is None:
            return
        for f in inp.poll(now):
            self._frame(f, now)

    def push_frame(self, frame: Frame, now: float | None = None) -> None:
        """One frame from a source that is not PS over RTP (RTSP, transcoder, tests)."""
        if self.ended:
            return
        if now is None:
            now = time.monotonic()
        self.bytes_in += len(frame.data)
        self.last_input_at = now
        self._frame(frame, now)

    def _frame(self, frame: Frame, now: float) -> None:
        codec = frame.codec
        self.frames += 1
        if codec.is_video:
            if codec is not self.codec:
                self._codec_changed(codec)
            if frame.keyframe:
                if not self._keyframe(frame, now):
                    self._gop = []  # cannot start here: wait for a usable key frame
                    self._gop_bytes = 0
                    return
                self._gop = [frame]
                self._gop_bytes = len(frame.data)
            elif not self._gop:
                return  # no key frame yet (or GOP cache overflowed): nothing can use it
            else:
                self._add_to_gop(frame)
            self.video_frames += 1
            self.last_frame_at = now
        else:
            self.audio_frames += 1
            if codec in (Codec.G711A, Codec.G711U):
                self._g711_frame(frame)
                return
            if codec is not Codec.AAC:
                return  # G.722.1, G.729…: no output carries them
            if self.audio_config is None:
                try:
                    self.audio_config = AudioConfig.from_adts(frame.data)
                    self.audio_codec = codec
                except ValueError:
                    return
            if not self._gop:
                return
            self._add_to_gop(frame)
        self._publish(frame)

    def _publish(self, frame: Frame) -> None:
        for out in self._outputs.values():
            out.on_frame(frame)
        if self._hls is not None:
            self._hls.on_frame(frame)

    def _add_to_gop(self, frame: Frame) -> None:
        size = len(frame.data)
        if self._gop_bytes + size > GOP_LIMIT_BYTES or len(self._gop) >= GOP_LIMIT_FRAMES:
            self._gop = []  # bounded: new outputs wait for the next key frame
            self._gop_bytes = 0
            return
        self._gop.append(frame)
        self._gop_bytes += size

    def declare_audio(self, codec: Codec, config: AudioConfig | None = None) -> None:
        """A source that knows its audio track before the first audio frame says so here, so
        that outputs created at the first key frame already carry it (an init segment cannot
        gain a track later). AAC needs its ``config``; G.711 becomes AAC 8 kHz mono (or
        nothing, per ``media.g711``)."""
        if self.audio_config is not None:
            return
        if codec is Codec.AAC and config is not None:
            self.audio_config = config
            self.audio_codec = Codec.AAC
        elif codec in (Codec.G711A, Codec.G711U) and self.hub.config.g711 == "aac":
            self.audio_config = AudioConfig(Codec.AAC, 8000, 1, 2)
            self.audio_codec = Codec.AAC

    def _g711_frame(self, frame: Frame) -> None:
        if self.hub.config.g711 != "aac":
            return
        if self._g711 is None or self._g711.codec is not frame.codec:
            self._g711 = G711ToAac(frame.codec)
            if self.audio_config is None:
                self.audio_config = self._g711.config
                self.audio_codec = Codec.AAC
        if not self._outputs and self._hls is None:
            return  # transcode only while somebody reads
        for aac in self._g711.feed(frame):
            if self._gop:
                self._add_to_gop(aac)
                self._publish(aac)

    def _codec_changed(self, codec: Codec) -> None:
        if self.codec is not None:
            log.info("stream %s: video codec %s → %s", self.name, self.codec, codec)
            for out in list(self._outputs.values()):
                out.end()  # readers reconnect and get the new codec's init
            self._outputs.clear()
            if self._hls is not None:
                self._hls.end()
                self._hls = None
            self.parameter_sets = ParameterSets()
            self._ps_key = ()
            self.width = self.height = None
        self.codec = codec
        self._gop = []
        self._gop_bytes = 0

    def _keyframe(self, frame: Frame, now: float) -> bool:
        """Learn parameter sets from a key frame; False if it cannot start decoding."""
        codec = frame.codec
        if codec not in (Codec.H264, Codec.H265):
            return False  # MPEG-4 / SVAC: no output can carry them
        _, params = inspect_access_unit(codec, frame.data)
        ps = self.parameter_sets
        if not params and self._input is not None:
            known = self._input.demuxer.parameter_sets
            params = [p for p in (known.vps, known.sps, known.pps) if p]
        new_sps: bytes | None = None
        for nal in params:
            if codec is Codec.H265:
                t = nal_type_h265(nal)
                slot = {32: "vps", 33: "sps", 34: "pps"}.get(t)
            else:
                t = nal_type_h264(nal)
                slot = {7: "sps", 8: "pps"}.get(t)
            if slot is None or getattr(ps, slot) == nal:
                continue
            setattr(ps, slot, nal)
            if slot == "sps":
                new_sps = nal
        if new_sps is not None:
            try:
                info = parse_sps(codec, new_sps)
                self.width, self.height = info.width, info.height
            except NalError:
                log.warning("stream %s: unparsable SPS", self.name)
        if not ps.complete(codec):
            return False
        key = (ps.vps, ps.sps, ps.pps)
        if key != self._ps_key:
            first = not self._ps_key
            self._ps_key = key
            if not first:
                for out in list(self._outputs.values()):
                    out.on_parameter_sets()
                if self._hls is not None:
                    self._hls.on_parameter_sets()
        self.keyframe = frame
        self.key_frames += 1
        if not self.ready and self._input is not None:
            for stream_type in self._input.demuxer.stream_types.values():
                declared = STREAM_TYPES.get(stream_type)
                if declared is not None and not declared.is_video:
                    self.declare_audio(declared)  # the PSM announces audio to come
        if not self.ready:
            self.ready_at = now
            self.ready_event.set()
            self._wake_waiters()
            self.hub._stream_ready(self)
        return True

    # --------------------------------------------------------------------------- readers

    def output(self, fmt: str) -> Output[Any]:
        """The shared output of a format (created, and primed with the GOP, on first use)."""
        out = self._outputs.get(fmt)
        if out is not None:
            return out
        if self.ended:
            raise StreamEnded(self.end_reason)
        if not self.ready:
            raise RuntimeError(f"stream {self.name} has no key frame yet")
        cls = _FORMATS.get(fmt)
        if cls is None:
            raise ValueError(f"unknown output format {fmt!r}")
        out = cls(self)
        out.prime(self._gop)
        self._outputs[fmt] = out
        return out

    def reader(
        self, fmt: str, *, limit: int = READER_LIMIT, info: dict[str, Any] | None = None
    ) -> Reader[Any]:
        """A new reader of ``fmt`` (``fmp4``, ``flv``, ``frames``), starting at a key frame."""
        return self.output(fmt).add_reader(limit, info)

    def hls(self) -> HlsOutput:
        """The HLS packager (created on first use), its lease renewed."""
        if self._hls is None:
            if self.ended:
                raise StreamEnded(self.end_reason)
            if not self.ready:
                raise RuntimeError(f"stream {self.name} has no key frame yet")
            self._hls = HlsOutput(self)
            self._hls.prime(self._gop)
        self._hls.touch()
        self._readers_changed()
        return self._hls

    @property
    def hls_output(self) -> HlsOutput | None:
        return self._hls

    def fmp4_mime(self) -> str:
        """The MSE type of the fMP4 output as it would be created now."""
        out = self._outputs.get("fmp4")
        if isinstance(out, Fmp4Output):
            return out.mime_type()
        if self.codec is None or not self.ready:
            return ""
        from xueliang.media._bitstream import codec_string

        codecs = [codec_string(self.codec, self.parameter_sets)]
        if self.audio_config is not None:
            codecs.append(self.audio_config.codec_string())
        return f'video/mp4; codecs="{",".join(codecs)}"'

    def codec_string(self) -> str:
        if self.codec is None or not self.ready:
            return ""
        from xueliang.media._bitstream import codec_string

        return codec_string(self.codec, self.parameter_sets)

    def _readers_changed(self) -> None:
        for fmt, out in list(self._outputs.items()):
            if not out.readers:
                out.end()
                del self._outputs[fmt]
        if self._g711 is not None and not self._outputs and self._hls is None:
            self._g711 = None  # restarted (re-anchored) when a reader comes back
        if self.readers == 0:
            if self._idle_since is None:
                self._idle_since = time.monotonic()
        else:
            self._idle_since = None

    def _reader_left(self, reader: Reader[Any]) -> None:
        self._left_bytes_out += reader.bytes_out
        self._left_cuts += reader.cuts

    @property
    def bytes_out(self) -> int:
        """Bytes handed to readers so far (those gone included)."""
        return self._left_bytes_out + sum(r.bytes_out for r in self.reader_list())

    @property
    def cuts(self) -> int:
        """Times a slow reader was skipped forward to a key frame."""
        return self._left_cuts + sum(r.cuts for r in self.reader_list())

    @property
    def idle_since(self) -> float | None:
        return self._idle_since

    # ------------------------------------------------------------------------ lifecycle

    def tick(self, now: float) -> None:
        """Timer (about twice a second): rates, HLS lease, reorder give-up."""
        self.poll(now)
        dt = now - self._rate_at
        if dt >= 1.0:
            self.bitrate = (self.bytes_in - self._rate_bytes) * 8 / dt
            self.fps = (self.video_frames - self._rate_frames) / dt
            self._rate_at = now
            self._rate_bytes = self.bytes_in
            self._rate_frames = self.video_frames
        hls = self._hls
        if hls is not None and not hls.active(now):
            hls.end()
            self._hls = None
            self._readers_changed()

    def end(self, reason: str) -> None:
        """The source is gone: readers get end of stream, event ``stream.down``. Idempotent."""
        if self.ended:
            return
        self.ended = True
        self.end_reason = reason
        for out in self._outputs.values():
            out.end()
        self._outputs.clear()
        if self._hls is not None:
            self._hls.end()
            self._hls = None
        for b in list(self.bindings):
            b.close()
        self.bindings.clear()
        self._gop = []
        self._gop_bytes = 0
        self._g711 = None
        self._wake_waiters()
        self.hub._stream_ended(self)

    def describe(self) -> dict[str, Any]:
        """What the API lists."""
        now = time.monotonic()
        readers = self.reader_list()
        by_format: dict[str, int] = {}
        for r in readers:
            by_format[r.fmt] = by_format.get(r.fmt, 0) + 1
        if self._hls is not None and self._hls.active(now):
            by_format["hls"] = 1
        return {
            "name": self.name,
            "kind": self.kind,
            "ready": self.ready,
            "codec": self.codec.value if self.codec else None,
            "codec_string": self.codec_string() or None,
            "audio": self.audio_config.codec.value if self.audio_config else None,
            "width": self.width,
            "height": self.height,
            "readers": self.readers,
            "readers_by_format": by_format,
            "viewers": [r.describe() for r in readers if r.fmt != "frames"],
            "bitrate": round(self.bitrate),
            "fps": round(self.fps, 2),
            "frames": self.frames,
            "key_frames": self.key_frames,
            "bytes_in": self.bytes_in,
            "packets": self.packets,
            "lost": self.lost,
            "loss": round(self.loss, 6),
            "jitter_ms": round(self.jitter * 1000, 3),
            "uptime": round(now - self.created, 3),
            "started_at": self.started_at,
            "on_demand": self.on_demand,
            "paused": self.paused,
            "meta": self.meta,
        }
