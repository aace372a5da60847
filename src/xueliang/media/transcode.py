"""Opt-in H.265 → H.264 transcoding with PyAV, for clients that cannot play H.265.

The only video transcoding in xueliang, and never implicit: a viewer asks for it
(``?transcode=h264``). A transcode is itself a stream of the hub, ``transcode/h264/<source>``,
opened on demand by :class:`TranscodeProvider` and shared by every viewer who asked for it.
It reads the source's frames through an ordinary (bounded) reader — so it keeps the source
alive and cannot slow it — decodes and re-encodes in a worker thread (libx264, ``ultrafast``,
``zerolatency``: no B-frames, one key frame every ``gop`` frames), and publishes the H.264
frames; audio passes through. At most ``media.max_transcodes`` run at once; one more is
refused (503) rather than starving the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from xueliang.errors import Unavailable
from xueliang.media.frame import Codec, Frame

if TYPE_CHECKING:
    from xueliang.media.hub import MediaHub
    from xueliang.media.outputs import Reader
    from xueliang.media.source import SourceHandle
    from xueliang.media.stream import Stream

__all__ = ["PREFIX", "TranscodeProvider", "Transcoder", "transcode_name"]

log = logging.getLogger("xueliang.media")

PREFIX = "transcode/h264/"
_DECODERS = {Codec.H264: "h264", Codec.H265: "hevc"}


def transcode_name(source: str) -> str:
    return PREFIX + source


class Transcoder:
    """One running transcode: source reader → thread (decode, encode) → target stream."""

    def __init__(
        self,
        provider: TranscodeProvider,
        source: Stream,
        target: Stream,
        *,
        gop: int = 50,
        bit_rate: int = 2_000_000,
        preset: str = "ultrafast",
    ) -> None:
        self.provider = provider
        self.source = source
        self.target = target
        self.gop = gop
        self.bit_rate = bit_rate
        self.preset = preset
        self.loop = asyncio.get_running_loop()
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0
        self.error: str | None = None
        self._reader: Reader[Frame] = source.reader("frames", limit=8 * 1024 * 1024)
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=100)
        self._skipping = False
        self._closed = False
        self._thread = threading.Thread(
            target=self._work, name=f"transcode {source.name}", daemon=True
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._thread.start()
        self._task = asyncio.create_task(self._pump(), name=f"transcode pump {self.source.name}")

    async def _pump(self) -> None:
        while True:
            frames = await self._reader.get()
            if not frames:
                break
            for f in frames:
                if not f.codec.is_video:
                    self.target.push_frame(f)  # audio passes through
                    continue
                if self._skipping and not f.keyframe:
                    self.dropped += 1
                    continue
                try:
                    self._queue.put_nowait(f)
                    self._skipping = False
                except queue.Full:
                    self._skipping = True  # the encoder is behind: skip to a key frame
                    self.dropped += 1
        if not self._closed:
            self.target.end(f"source ended ({self.source.end_reason or 'closed'})")

    def _work(self) -> None:
        import av

        decoder: Any = None
        encoder: Any = None
        codec: Codec | None = None
        try:
            while True:
                frame = self._queue.get()
                if frame is None:
                    return
                self.frames_in += 1
                if frame.codec is not codec:
                    name = _DECODERS.get(frame.codec)
                    if name is None:
                        raise ValueError(f"cannot decode {frame.codec}")
                    decoder = av.CodecContext.create(name, "r")
                    codec = frame.codec
                    if frame.keyframe:
                        ps = self.source.parameter_sets
                        prefix = b"".join(
                            b"\x00\x00\x00\x01" + n for n in (ps.vps, ps.sps, ps.pps) if n
                        )
                        frame = Frame(frame.codec, frame.pts, frame.dts, prefix + frame.data, True)
                packet = av.Packet(frame.data)
                packet.pts = frame.pts
                packet.dts = frame.dts
                packet.time_base = Fraction(1, 90000)
                try:
                    pictures = decoder.decode(packet)
                except av.error.FFmpegError:
                    continue  # a damaged frame: the next ones recover
                for picture in pictures:
                    if encoder is None:
                        encoder = self._encoder(picture.width, picture.height)
                    pts = picture.pts if picture.pts is not None else frame.pts
                    if picture.format.name != "yuv420p":
                        picture = picture.reformat(format="yuv420p")
                    picture.pts = pts
                    picture.time_base = Fraction(1, 90000)
                    for out in encoder.encode(picture):
                        self._emit(out)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("transcode %s failed: %s", self.source.name, self.error)
            if not self._closed:
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(self.target.end, f"transcode: {self.error}")

    def _encoder(self, width: int, height: int) -> Any:
        import av

        enc: Any = av.CodecContext.create("libx264", "w")
        enc.width, enc.height = width, height
        enc.pix_fmt = "yuv420p"
        enc.time_base = Fraction(1, 90000)
        enc.framerate = Fraction(25, 1)
        enc.gop_size = self.gop
        enc.bit_rate = self.bit_rate
        enc.options = {
            "preset": self.preset,
            "tune": "zerolatency",
            "x264-params": f"keyint={self.gop}:min-keyint={self.gop}:scenecut=0:repeat-headers=1",
        }
        enc.open()
        return enc

    def _emit(self, packet: Any) -> None:
        data = bytes(packet)
        if not data or packet.pts is None:
            return
        dts = packet.dts if packet.dts is not None else packet.pts
        frame = Frame(Codec.H264, int(packet.pts), int(dts), data, bool(packet.is_keyframe))
        self.frames_out += 1
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.target.push_frame, frame)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.provider.active.discard(self)
        self._reader.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 10)


class TranscodeProvider:
    """Provider for ``transcode/h264/<source stream>``; the source must be running."""

    def __init__(self, max_transcodes: int) -> None:
        self.max_transcodes = max_transcodes
        self.active: set[Transcoder] = set()

    async def open(self, hub: MediaHub, name: str, params: dict[str, Any]) -> SourceHandle:
        if len(self.active) >= self.max_transcodes:
            raise Unavailable(
                f"transcoding limit reached ({self.max_transcodes} at a time, "
                "media.max_transcodes): play the original stream or try later"
            )
        source_name = name[len(PREFIX) :]
        source = hub.stream(source_name)
        if source is None or not source.ready:
            raise Unavailable(f"{name}: source stream {source_name} is not running")
        meta: dict[str, Any] = {"source": source_name}
        if "channel_id" in source.meta:
            meta["channel_id"] = source.meta["channel_id"]
        target = hub.publish(name, kind="transcode", meta=meta)
        t = Transcoder(self, source, target)
        self.active.add(t)
        t.start()
        return t
