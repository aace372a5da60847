"""A stream's outputs: each format muxed once, shared by every reader (DESIGN principle 2).

An :class:`Output` turns the stream's frames into chunks **once** (an fMP4 fragment, an FLV
tag, or the frame itself for in-process consumers) and offers each chunk to every
:class:`Reader`. Readers never slow the stream or each other:

* each reader has a bounded queue (``limit`` bytes). When a chunk would overflow it, the
  queue is emptied and the reader *skips forward*: it drops everything up to the next key
  frame and resumes there (``cuts``, ``dropped`` count what it lost). Memory per reader is
  bounded by ``limit`` plus one chunk; the stream never waits for anyone.
* a new reader gets the output's header (fMP4 init segment, FLV header) and the chunks
  cached since the latest key frame (the GOP cache), so it can start decoding at once.
  If the cache is unusable (a GOP too large to cache) the reader waits for the next key frame.
* parameter-set changes are sent in-band (a new init segment, an FLV sequence-header tag);
  a reader that was cut gets the current configuration again before its next key frame
  when the configuration changed since it joined (``config_version``).

HLS is different: no persistent readers, segments are fetched. :class:`HlsOutput` wraps the
sans-IO :class:`~xueliang.media.hls.HlsPackager` and keeps itself alive through a lease
that each playlist or segment request renews.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from mypy_extensions import mypyc_attr

from xueliang.media.flv import FlvMuxer
from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Frame
from xueliang.media.hls import HlsPackager

if TYPE_CHECKING:
    from xueliang.media.audio import AudioConfig
    from xueliang.media.frame import Codec, ParameterSets


class OutputSource(Protocol):
    """What an output needs of its stream (media/stream.py's Stream is one): the codec and
    parameter sets to mux with, and to be told when readers come and go."""

    codec: Codec | None
    audio_config: AudioConfig | None
    parameter_sets: ParameterSets

    def _readers_changed(self) -> None: ...

    def _reader_left(self, reader: Reader[Any]) -> None: ...

__all__ = [
    "CACHE_LIMIT",
    "READER_LIMIT",
    "FlvOutput",
    "Fmp4Output",
    "FramesOutput",
    "HlsOutput",
    "Output",
    "Reader",
]

#: Default per-reader queue bound, bytes (about 16 s of a 2 Mbit/s stream).
READER_LIMIT = 4 * 1024 * 1024
#: Largest GOP an output caches for joining readers, bytes.
CACHE_LIMIT = 16 * 1024 * 1024
#: Largest number of chunks in the GOP cache (e.g. 60 s at 25 fps with audio).
CACHE_CHUNKS = 3000

T = TypeVar("T")


# Compiled (src/xueliang/_native.py) yet subclassed by interpreted code (ps_rtp_out's PsReader).
@mypyc_attr(allow_interpreted_subclasses=True)
class Reader(Generic[T]):
    """One consumer of an output: a bounded queue of chunks, read with :meth:`get`."""

    __slots__ = (
        "_bytes",
        "_queue",
        "_waiter",
        "bytes_out",
        "chunks_out",
        "closed",
        "cuts",
        "dropped",
        "eof",
        "info",
        "join_version",
        "joined_at",
        "limit",
        "output",
        "sink",
        "skipping",
    )

    def __init__(self, output: Output[T], limit: int, info: dict[str, Any] | None = None) -> None:
        self.output = output
        self.limit = limit
        self.info: dict[str, Any] = info or {}
        self._queue: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        #: Set by a consumer that can take a chunk at once, without being woken (a live HTTP
        #: response: api/live_send.py): called with each chunk while nothing is queued; False
        #: means "not now", and the chunk is queued for :meth:`get` as without it.
        self.sink: Callable[[T], bool] | None = None
        self.skipping = False
        self.closed = False
        self.eof = False
        self.cuts = 0
        self.dropped = 0
        self.chunks_out = 0
        self.bytes_out = 0
        self.joined_at = time.time()
        self.join_version = output.config_version

    @property
    def buffered(self) -> int:
        """Bytes waiting in this reader's queue."""
        return self._bytes

    @property
    def fmt(self) -> str:
        return self.output.fmt

    # -- fed by the output (synchronous, on the event loop) --------------------------------

    def _push(self, chunk: T, size: int) -> None:
        sink = self.sink
        if sink is not None and not self._queue and sink(chunk):
            self.chunks_out += 1
            self.bytes_out += size
            return
        self._queue.append((chunk, size))
        self._bytes += size
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    def _resume(self) -> None:
        """Resuming at a key frame after a cut: resend the configuration if it changed."""
        out = self.output
        if out.config_version > self.join_version:
            header = out.resync_header()
            if header is not None:
                self._push(header, out.size(header))

    def _offer(self, chunk: T, size: int, key: bool) -> None:
        if self.skipping:
            if not key:
                self.dropped += 1
                return
            self.skipping = False
            self._resume()
        elif self._bytes + size > self.limit and self._queue:
            # Too far behind: drop what is queued and skip to the next key frame.
            self.cuts += 1
            self.dropped += len(self._queue)
            self._queue.clear()
            self._bytes = 0
            if not key:
                self.skipping = True
                self.dropped += 1
                return
            self._resume()
        self._push(chunk, size)

    def _offer_config(self, chunk: T, size: int) -> None:
        if not self.skipping:  # a skipping reader gets it on resuming (see _resume)
            self._push(chunk, size)

    def _end(self) -> None:
        self.eof = True
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    # -- consumer side ---------------------------------------------------------------------

    async def get(self) -> list[T]:
        """Everything queued (waiting for at least one chunk); ``[]`` at the end of stream."""
        queue = self._queue
        while not queue:
            if self.eof or self.closed:
                return []
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiter = fut
            await fut
        items = [c for c, _ in queue]
        self.chunks_out += len(items)
        self.bytes_out += self._bytes
        queue.clear()
        self._bytes = 0
        return items

    def get_nowait(self) -> list[T]:
        """Everything queued now, without waiting (may be empty)."""
        items = [c for c, _ in self._queue]
        self.chunks_out += len(items)
        self.bytes_out += self._bytes
        self._queue.clear()
        self._bytes = 0
        return items

    def close(self) -> None:
        """The consumer leaves; idempotent."""
        if self.closed:
            return
        self.closed = True
        self.sink = None  # nothing more reaches the consumer, queued or not
        self._queue.clear()
        self._bytes = 0
        self._end()
        self.output.remove_reader(self)

    def describe(self) -> dict[str, Any]:
        return {
            "format": self.output.fmt,
            "since": self.joined_at,
            "bytes": self.bytes_out,
            "buffered": self._bytes,
            "cuts": self.cuts,
            "dropped": self.dropped,
            **self.info,
        }


# Compiled, and subclassed by interpreted code (ps_rtp_out's PsOutput, tests' outputs).
@mypyc_attr(allow_interpreted_subclasses=True)
class Output(Generic[T]):
    """One format of one stream. Subclasses implement :meth:`mux` (and the headers)."""

    fmt: ClassVar[str] = "?"

    def __init__(self, stream: OutputSource) -> None:
        self.stream = stream
        self.readers: list[Reader[T]] = []
        self._cache: list[tuple[T, int]] = []
        self._cache_bytes = 0
        self._cache_ok = False
        self.config_version = 0
        self.chunks = 0
        self.bytes = 0
        self.closed = False

    # -- format-specific -------------------------------------------------------------------

    def header(self) -> T | None:
        """What a new reader gets first (init segment, FLV header), or None."""
        return None

    def resync_header(self) -> T | None:
        """What a reader resuming after a cut needs when the configuration changed."""
        return self.header()

    def mux(self, frame: Frame) -> T | None:
        raise NotImplementedError

    def reconfigure(self) -> T | None:
        """The stream's parameter sets changed (before a key frame): the in-band chunk, if any."""
        return None

    def size(self, chunk: T) -> int:
        return len(chunk)  # type: ignore[arg-type]

    # -- driven by the stream --------------------------------------------------------------

    def prime(self, frames: list[Frame]) -> None:
        """Mux the stream's cached GOP (first frame a key frame) into the output's cache."""
        for frame in frames:
            self.on_frame(frame)

    def on_frame(self, frame: Frame) -> None:
        chunk = self.mux(frame)
        if chunk is None:
            return
        size = self.size(chunk)
        self.chunks += 1
        self.bytes += size
        key = frame.keyframe and frame.codec.is_video
        if key:
            self._cache = [(chunk, size)]
            self._cache_bytes = size
            self._cache_ok = True
        elif self._cache_ok:
            if self._cache_bytes + size > CACHE_LIMIT or len(self._cache) >= CACHE_CHUNKS:
                self._cache = []
                self._cache_bytes = 0
                self._cache_ok = False
            else:
                self._cache.append((chunk, size))
                self._cache_bytes += size
        for r in self.readers:
            r._offer(chunk, size, key)

    def on_parameter_sets(self) -> None:
        chunk = self.reconfigure()
        if chunk is None:
            return
        self.config_version += 1
        size = self.size(chunk)
        for r in self.readers:
            r._offer_config(chunk, size)

    @property
    def cache_bytes(self) -> int:
        return self._cache_bytes

    def _new_reader(self, limit: int, info: dict[str, Any] | None) -> Reader[T]:
        """The kind of reader this output hands out (a format may want its own)."""
        return Reader(self, limit, info)

    def add_reader(
        self, limit: int = READER_LIMIT, info: dict[str, Any] | None = None
    ) -> Reader[T]:
        if self.closed:
            raise RuntimeError("output closed")
        # Room for the GOP it starts with and as much again: a big GOP (4K, long key frame
        # interval) must not get a new reader cut before it has played its first frame.
        limit = max(limit, 2 * self._cache_bytes)
        r = self._new_reader(limit, info)
        header = self.header()
        if header is not None:
            r._push(header, self.size(header))
        if self._cache_ok:
            for chunk, size in self._cache:
                r._push(chunk, size)
        else:
            r.skipping = True
        self.readers.append(r)
        self.stream._readers_changed()
        return r

    def remove_reader(self, reader: Reader[T]) -> None:
        try:
            self.readers.remove(reader)
        except ValueError:
            return
        self.stream._reader_left(reader)
        self.stream._readers_changed()

    def end(self) -> None:
        """The stream ended (or this output is dropped): every reader gets end of stream."""
        self.closed = True
        for r in self.readers:
            r._end()
            self.stream._reader_left(r)
        self.readers = []
        self._cache = []
        self._cache_bytes = 0


class FramesOutput(Output[Frame]):
    """The frames themselves, for in-process consumers (transcoder, recorder, analytics)."""

    fmt = "frames"

    def mux(self, frame: Frame) -> Frame | None:
        return frame

    def size(self, chunk: Frame) -> int:
        return len(chunk.data)


class Fmp4Output(Output[bytes]):
    """Fragmented MP4, one fragment per frame (lowest latency); for HTTP and WebSocket."""

    fmt = "fmp4"

    def __init__(self, stream: OutputSource) -> None:
        super().__init__(stream)
        assert stream.codec is not None
        self.muxer = Fmp4Muxer(stream.codec, stream.parameter_sets, audio=stream.audio_config)

    def header(self) -> bytes:
        return self.muxer.init_segment()

    def mux(self, frame: Frame) -> bytes | None:
        return self.muxer.fragment((frame,)) or None

    def reconfigure(self) -> bytes | None:
        ps = self.stream.parameter_sets
        if not self.muxer.needs_new_init(ps):
            return None
        self.muxer.set_parameter_sets(ps)
        return self.muxer.init_segment()

    def mime_type(self) -> str:
        return self.muxer.mime_type()


class FlvOutput(Output[bytes]):
    """HTTP-FLV: FLV header + sequence headers, then one tag per frame."""

    fmt = "flv"

    def __init__(self, stream: OutputSource) -> None:
        super().__init__(stream)
        assert stream.codec is not None
        self.muxer = FlvMuxer(stream.codec, stream.parameter_sets, audio=stream.audio_config)
        self._sequence_tag: bytes | None = None

    def header(self) -> bytes:
        return self.muxer.header()

    def resync_header(self) -> bytes | None:
        return self._sequence_tag

    def mux(self, frame: Frame) -> bytes | None:
        return self.muxer.tag(frame) or None

    def reconfigure(self) -> bytes | None:
        ps = self.stream.parameter_sets
        if not self.muxer.needs_new_header(ps):
            return None
        self._sequence_tag = self.muxer.set_parameter_sets(ps)
        return self._sequence_tag


class HlsOutput:
    """Low-latency-ish HLS (fMP4 segments) kept alive by a lease renewed on each request."""

    fmt = "hls"

    def __init__(
        self,
        stream: OutputSource,
        *,
        target_duration: float = 2.0,
        window: int = 6,
        lease: float | None = None,
    ) -> None:
        assert stream.codec is not None
        self.stream = stream
        muxer = Fmp4Muxer(stream.codec, stream.parameter_sets, audio=stream.audio_config)
        self.packager = HlsPackager(muxer, target_duration=target_duration, window=window)
        self.lease = lease if lease is not None else max(10.0, 4 * target_duration)
        self.last_access = time.monotonic()
        self.requests = 0
        self.closed = False
        self._segment_waiters: list[asyncio.Future[None]] = []

    def touch(self, now: float | None = None) -> None:
        self.last_access = time.monotonic() if now is None else now
        self.requests += 1

    def active(self, now: float) -> bool:
        return not self.closed and now - self.last_access < self.lease

    def prime(self, frames: list[Frame]) -> None:
        for frame in frames:
            self.on_frame(frame)

    def on_frame(self, frame: Frame) -> None:
        if self.packager.add(frame) is not None:
            self._wake()

    def on_parameter_sets(self) -> None:
        if self.packager.set_parameter_sets(self.stream.parameter_sets) is not None:
            self._wake()

    def _wake(self) -> None:
        waiters, self._segment_waiters = self._segment_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def wait_for_segments(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until the playlist lists ``count`` segments (or the stream ends)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.packager.segments) < count and not self.closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            self._segment_waiters.append(fut)
            try:
                async with asyncio.timeout(remaining):
                    await fut
            except TimeoutError:
                return False
        return len(self.packager.segments) >= count

    def playlist(self, uri_prefix: str, uri_query: str) -> str:
        return self.packager.playlist(uri_prefix=uri_prefix, uri_query=uri_query)

    def resource(self, name: str) -> bytes | None:
        return self.packager.resource(name)

    def end(self) -> None:
        if not self.closed:
            self.closed = True
            self.packager.finish()
            self._wake()
