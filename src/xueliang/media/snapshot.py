"""Snapshots: the latest key frame of a stream decoded with PyAV and encoded as JPEG.

Decoding happens in a worker thread (PyAV releases the GIL), once per key frame however many
callers ask at the same time. The latest snapshot of each stream (and of each channel) is
kept in memory and written to ``<var>/snapshots/<channel id or stream name>.jpg`` for
later image-quality diagnosis (视频质量诊断).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xueliang.errors import Unavailable
from xueliang.media.frame import Codec, Frame, ParameterSets

if TYPE_CHECKING:
    from xueliang.media.stream import Stream

__all__ = ["Snapshot", "Snapshots", "decode_keyframe", "keyframe_to_bgr", "keyframe_to_jpeg"]

log = logging.getLogger("xueliang.media")

_DECODERS = {Codec.H264: "h264", Codec.H265: "hevc"}
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(slots=True, frozen=True)
class Snapshot:
    jpeg: bytes
    width: int
    height: int
    taken_at: float  # wall clock
    stream: str
    channel_id: str | None
    frame_pts: int  # 90 kHz pts of the key frame


def _annexb(nal: bytes) -> bytes:
    return (
        nal if nal.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")) else b"\x00\x00\x00\x01" + nal
    )


def decode_keyframe(codec: Codec, parameter_sets: ParameterSets, frame: Frame) -> Any:
    """Decode one key frame (Annex B; parameter sets prepended) → a PyAV VideoFrame. Raises
    ValueError when it does not decode."""
    import av

    name = _DECODERS.get(codec)
    if name is None:
        raise ValueError(f"cannot decode {codec}")
    prefix = b"".join(
        _annexb(n) for n in (parameter_sets.vps, parameter_sets.sps, parameter_sets.pps) if n
    )
    dec: Any = av.CodecContext.create(name, "r")
    dec.thread_count = 1
    packet = av.Packet(prefix + frame.data)
    pictures: list[Any] = []
    try:
        pictures += dec.decode(packet)
        pictures += dec.decode(None)
    except av.error.FFmpegError as exc:
        raise ValueError(f"key frame does not decode: {exc}") from exc
    if not pictures:
        raise ValueError("key frame does not decode")
    return pictures[0]


def keyframe_to_bgr(codec: Codec, parameter_sets: ParameterSets, frame: Frame) -> Any:
    """One key frame as a BGR array (height × width × 3), for picture diagnosis."""
    return decode_keyframe(codec, parameter_sets, frame).to_ndarray(format="bgr24")


def keyframe_to_jpeg(
    codec: Codec, parameter_sets: ParameterSets, frame: Frame, *, quality: int = 3
) -> tuple[bytes, int, int]:
    """Decode one key frame → (JPEG, width, height).

    ``quality`` is the MJPEG quantiser scale (2 best … 31 worst). Raises ValueError when the
    frame does not decode.
    """
    import av

    picture = decode_keyframe(codec, parameter_sets, frame)
    width, height = int(picture.width), int(picture.height)
    enc: Any = av.CodecContext.create("mjpeg", "w")
    enc.width, enc.height = width, height
    enc.pix_fmt = "yuvj420p"
    enc.time_base = Fraction(1, 25)
    enc.flags |= av.codec.context.Flags.qscale
    enc.global_quality = quality * 118  # FF_QP2LAMBDA
    enc.options = {"qmin": str(quality), "qmax": str(quality)}
    picture = picture.reformat(format="yuvj420p")
    picture.pts = 0
    packets = list(enc.encode(picture)) + list(enc.encode(None))
    jpeg = b"".join(bytes(p) for p in packets)
    if not jpeg:
        raise ValueError("JPEG encoder produced nothing")
    return jpeg, width, height


class Snapshots:
    """Latest snapshot per stream and per channel; files under ``directory`` (if given)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._by_stream: dict[str, Snapshot] = {}
        self._by_channel: dict[str, Snapshot] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.decoded = 0

    def latest(self, channel_id: str) -> Snapshot | None:
        """The latest snapshot taken of a channel (for diagnosis), if any."""
        return self._by_channel.get(channel_id)

    def path_for(self, channel_id: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{_SAFE.sub('_', channel_id)}.jpg"

    async def take(self, stream: Stream) -> Snapshot:
        """A JPEG of the stream's latest key frame (cached while that key frame is current)."""
        lock = self._locks.setdefault(stream.name, asyncio.Lock())
        async with lock:
            kf = stream.keyframe
            if kf is None or stream.codec is None:
                raise Unavailable(f"stream {stream.name} has no key frame yet")
            cached = self._by_stream.get(stream.name)
            if cached is not None and cached.frame_pts == kf.pts:
                return cached
            ps = ParameterSets(
                stream.parameter_sets.vps, stream.parameter_sets.sps, stream.parameter_sets.pps
            )
            channel_id = stream.meta.get("channel_id")
            target = self.path_for(str(channel_id) if channel_id else stream.name)
            try:
                jpeg, width, height = await asyncio.to_thread(
                    _decode_and_store, stream.codec, ps, kf, target
                )
            except ValueError as exc:
                raise Unavailable(f"stream {stream.name}: {exc}") from exc
            self.decoded += 1
            snap = Snapshot(jpeg, width, height, time.time(), stream.name, channel_id, kf.pts)
            self._by_stream[stream.name] = snap
            if channel_id:
                self._by_channel[str(channel_id)] = snap
            return snap

    def forget(self, stream_name: str) -> None:
        self._by_stream.pop(stream_name, None)
        self._locks.pop(stream_name, None)


def _decode_and_store(
    codec: Codec, ps: ParameterSets, frame: Frame, target: Path | None
) -> tuple[bytes, int, int]:
    jpeg, width, height = keyframe_to_jpeg(codec, ps, frame)
    if target is not None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(jpeg)
            tmp.replace(target)
        except OSError as exc:
            log.warning("cannot keep snapshot %s: %s", target, exc)
    return jpeg, width, height
