"""A clip of a camera attached to a case (视频就近, one click): an MP4 of [start, end), at most
:data:`MAX_SECONDS` long, made in a file and then kept in the object store by the service.

Where it comes from (its ``source``):

- ``platform``: the platform's own recording, when it has any in the range: a remux of the
  segments (recording/download.py: :func:`recorded_range`, cut at fragment boundaries, never a
  transcode);
- ``device``: else the device's own recording, fetched through the media hub as a GB/T 28181
  download (``download/<channel>/<token>``, s=Download at ``speed`` times real time, the path of
  POST /channels/{id}/download) and muxed as fragmented MP4 as it arrives, without transcoding,
  until the device says the recording ended (MediaStatus 121) or the range is covered.

Who may make one is the caller's business (the case in scope and a download right on the camera).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.errors import Invalid, NotFound, Unavailable
from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Codec, Frame
from xueliang.objects import ObjectStore
from xueliang.recording.download import recorded_range

#: The longest clip (seconds).
MAX_SECONDS = 600
#: How many times real time a device is asked to send its recording.
DEVICE_SPEED = 4
TICKS = 90000
_FRAGMENT_TICKS = TICKS  # a fragment a second
_READER_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Clip:
    path: Path
    #: platform / device
    source: str
    start: datetime
    end: datetime
    size: int


def check_range(start: datetime, end: datetime, now: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("start and end need a time zone (…Z or +08:00)")
    if end <= start:
        raise Invalid("end must be after start")
    if (end - start).total_seconds() > MAX_SECONDS:
        raise Invalid(f"a clip is at most {MAX_SECONDS // 60} minutes long")
    if start >= now:
        raise Invalid("a clip starts in the past (nothing is recorded yet after now)")


async def make_clip(sessions: async_sessionmaker[AsyncSession], objects: ObjectStore | None, hub: Any,
                    channel: Any, start: datetime, end: datetime, var_dir: Path) -> Clip:
    """The clip of ``channel`` over [start, end) in a new file under ``var_dir`` (the caller
    deletes it): the platform's recording, else the device's."""
    work = var_dir / "tmp" / "clips"
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{channel.id}-{secrets.token_hex(8)}.mp4"
    try:
        try:
            mp4 = await recorded_range(sessions, var_dir / "recordings", channel.id, start, end, objects)
        except NotFound:
            mp4 = None
        if mp4 is not None:
            assert mp4.start is not None
            size = await asyncio.to_thread(_write_all, path, mp4.read())
            return Clip(path, "platform", mp4.start, mp4.end or end, size)
        if not getattr(channel, "device_id", None):
            raise NotFound(f"neither the platform nor a device has a recording of channel {channel.id} "
                           f"between {start.isoformat()} and {end.isoformat()}")
        if hub is None:
            raise Unavailable("the platform has no recording here, and a device's recording is fetched "
                              "where the media hub runs (media.enabled)")
        return await _device_clip(hub, channel, start, end, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _write_all(path: Path, chunks: Any) -> int:
    size = 0
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
            size += len(chunk)
    return size


async def _device_clip(hub: Any, channel: Any, start: datetime, end: datetime, path: Path) -> Clip:
    name = f"download/{channel.id}/{secrets.token_hex(8)}"
    params = {"channel_id": channel.id, "device_id": channel.device_id, "mode": "download", "transport": "udp",
              "start": int(start.timestamp()), "end": int(end.timestamp()), "speed": DEVICE_SPEED}
    stream = await hub.acquire(name, params=params, timeout=15.0)
    try:
        if stream.codec not in (Codec.H264, Codec.H265):
            raise Unavailable(f"the device's recording is {stream.codec}: a clip is H.264 or H.265 without transcoding")
        reader = stream.reader("frames", limit=_READER_LIMIT, info={"purpose": "incident clip"})
        try:
            # the range at the device's speed, and then some: a device that stops sending ends it
            deadline = time.monotonic() + (end - start).total_seconds() / DEVICE_SPEED + 30.0
            fd = await asyncio.to_thread(_open_file, path)
            try:
                span = await _mux(stream, reader, fd, int((end - start).total_seconds() * TICKS), deadline)
            finally:
                os.close(fd)
        finally:
            reader.close()
    finally:
        with contextlib.suppress(Exception):
            await hub.close(name, "clip taken")
    if span <= 0:
        path.unlink(missing_ok=True)
        raise NotFound(f"the device sent no video of channel {channel.id} between {start.isoformat()} "
                       f"and {end.isoformat()}")
    return Clip(path, "device", start, start + timedelta(seconds=span / TICKS), path.stat().st_size)


def _open_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


async def _mux(stream: Any, reader: Any, fd: int, want: int, deadline: float) -> int:
    """Frames to fMP4 in ``fd`` until the stream ends, ``want`` ticks of video are in, or the
    deadline; the ticks of video written."""
    muxer: Fmp4Muxer | None = None
    first = end_dts = 0
    pending: list[Frame] = []

    def flush(upto: int | None) -> None:
        nonlocal end_dts, pending
        if muxer is None or not pending:
            return
        data = muxer.fragment(pending, end_dts=upto)
        video = [f.dts for f in pending if f.codec is muxer.video_codec]
        if video:
            end_dts = upto if upto is not None else max(video) + 3600
        pending = []
        if data:
            _write(fd, data)

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            async with asyncio.timeout(left):
                chunk: list[Frame] = await reader.get()
        except TimeoutError:
            break
        if not chunk:
            break  # the recording ended
        done: int | None = None
        for f in chunk:
            video = f.codec is stream.codec
            if muxer is None:
                if not (video and f.keyframe):
                    continue
                audio = (stream.audio_config if stream.audio_config is not None
                         and stream.audio_config.codec is Codec.AAC else None)
                muxer = Fmp4Muxer(stream.codec, stream.parameter_sets, audio=audio, base_dts=f.dts)
                first = end_dts = f.dts
                _write(fd, muxer.init_segment())
            elif video and f.dts - first >= want:
                done = f.dts
                break
            elif video and f.keyframe and muxer.needs_new_init(stream.parameter_sets):
                done = f.dts  # a new encoding: the clip is what came before (one file, one init)
                break
            elif video and pending and f.dts - pending[0].dts >= _FRAGMENT_TICKS:
                flush(f.dts)
            if muxer is not None and (video or (muxer.audio is not None and f.codec is Codec.AAC)):
                pending.append(f)
        if done is not None:
            flush(done)
            break
    flush(None)
    return end_dts - first if muxer is not None else 0


__all__ = ["MAX_SECONDS", "Clip", "check_range", "make_clip"]
