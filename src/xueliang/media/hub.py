"""The media hub: stream paths with one source and many readers (MediaMTX's model).

* :meth:`MediaHub.publish` creates (or takes over) a path for a source; sources feed the
  :class:`~xueliang.media.stream.Stream` with RTP (through an :class:`RtpServer` binding)
  or with frames.
* :meth:`MediaHub.acquire` returns a running stream, or asks the :class:`SourceProvider`
  registered for the longest matching name prefix (``"live/"``, ``"playback/"``,
  ``"transcode/h264/"``…) to open it — once, however many callers ask at the same time —
  and waits for its first key frame.
* A stream opened on demand is closed ``media.idle_stop_seconds`` after its last reader
  leaves; any stream whose source stays silent for ``media.rtp_timeout`` seconds is ended
  (event ``stream.timeout``). Every stream raises ``stream.up`` at its first key frame and
  ``stream.down`` when it ends; ending calls its :class:`SourceHandle`'s ``close()`` once.
* A timer (:attr:`MediaHub.tick_interval`) gives up RTP reordering gaps, computes rates and
  keeps the Prometheus gauges current — nothing per packet touches a lock or a clock beyond
  one ``time.monotonic()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

from xueliang.errors import GatewayTimeout, Invalid, NotFound, Unavailable
from xueliang.media.rtp_server import RtpBinding, RtpServer
from xueliang.media.snapshot import Snapshots
from xueliang.media.source import SourceHandle
from xueliang.media.stream import Stream, StreamEnded

if TYPE_CHECKING:
    from xueliang.bus import Bus
    from xueliang.config import MediaConfig

__all__ = ["MediaHub", "SourceHandle", "SourceProvider", "valid_stream_name"]

log = logging.getLogger("xueliang.media")

STREAMS = Gauge("xueliang_media_streams", "Streams in the media hub")
STREAMS_READY = Gauge("xueliang_media_streams_ready", "Streams that have video")
READERS = Gauge("xueliang_media_readers", "Readers of all streams (HLS: one per active stream)")
BYTES_IN = Counter("xueliang_media_bytes_in_total", "Bytes received by media sources")
BYTES_OUT = Counter("xueliang_media_bytes_out_total", "Bytes handed to media readers")
PACKETS_IN = Counter("xueliang_media_rtp_packets_total", "RTP packets received for streams")
PACKETS_LOST = Counter("xueliang_media_rtp_packets_lost_total", "RTP packets lost")
READER_CUTS = Counter("xueliang_media_reader_cuts_total", "Slow readers skipped to a key frame")
STREAM_ENDS = Counter("xueliang_media_stream_ends_total", "Streams ended", ["reason"])
LOOP_LAG = Histogram(
    "xueliang_media_loop_lag_seconds",
    "How late the media timer ran: the event loop was busy (or blocked) that long",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.~:-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.~:-]*)*")


def valid_stream_name(name: str) -> bool:
    """Path-like names: segments of ``[A-Za-z0-9_.~:-]``, no empty or dot-leading segment."""
    return len(name) <= 200 and _NAME.fullmatch(name) is not None


class SourceProvider(Protocol):
    """Opens sources on demand for names under a prefix; the source publishes into
    ``hub.publish(name, ...)`` (before or soon after ``open`` returns)."""

    async def open(self, hub: MediaHub, name: str, params: dict[str, Any]) -> SourceHandle: ...


class MediaHub:
    """All stream paths of one process, the shared RTP ports, the on-demand providers."""

    def __init__(
        self,
        config: MediaConfig,
        bus: Bus | None = None,
        *,
        rtp: RtpServer | None = None,
        tick_interval: float = 0.5,
    ) -> None:
        self.config = config
        self.bus = bus
        self.rtp = rtp or RtpServer(
            config.host,
            config.rtp_port,
            config.rtp_tcp_port,
            config.announce_ip,
            port_range=config.rtp_port_range,
            poll_interval=config.rtp_poll_ms / 1000,
            receive_buffer=config.rtp_receive_buffer_mb << 20,
        )
        self.tick_interval = tick_interval
        #: Latest snapshot per stream/channel (set a directory to keep them on disk).
        self.snapshots = Snapshots()
        #: RTP receivers opened through the API (pushers, cascade, benchmarks), by stream name.
        self.receivers: dict[str, RtpReceiverHandle] = {}
        self._streams: dict[str, Stream] = {}
        self._providers: dict[str, SourceProvider] = {}
        self._opening: dict[str, asyncio.Task[Stream]] = {}
        #: Why a stream ended while its provider was still opening it (a source that fails at
        #: once ends its stream before ``open`` returns: that must not look like "not yet").
        self._ended_opening: dict[str, str] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        #: bytes in, bytes out, packets, lost, reader cuts: of ended streams / last reported.
        self._ended_totals = (0, 0, 0, 0, 0)
        self._last_totals = (0, 0, 0, 0, 0)
        self.started = False
        #: Event-loop health as the timer sees it (worst lateness; times ≥ 50 ms late).
        self.loop_lag_max = 0.0
        self.loop_lags_over_50ms = 0

    # ------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.started:
            return
        await self.rtp.start()
        self._ticker = asyncio.create_task(self._tick_loop(), name="media-hub-tick")
        self.started = True
        log.info(
            "media hub: RTP on udp/%d tcp/%d (announce %s)",
            self.rtp.udp_port,
            self.rtp.tcp_port,
            self.rtp.announce_ip,
        )

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for task in list(self._opening.values()):
            task.cancel()
        for s in list(self._streams.values()):
            s.end("shutdown")
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await self.rtp.stop()
        self.started = False

    # ------------------------------------------------------------------------ contract

    def stream(self, name: str) -> Stream | None:
        return self._streams.get(name)

    def streams(self) -> list[Stream]:
        return list(self._streams.values())

    def publish(
        self,
        name: str,
        *,
        kind: str,
        meta: dict[str, Any] | None = None,
        handle: SourceHandle | None = None,
    ) -> Stream:
        """Create the path ``name`` for a source, or take over the existing one (its readers
        stay; the new source's frames follow on)."""
        if not valid_stream_name(name):
            raise Invalid(f"invalid stream name {name!r}")
        s = self._streams.get(name)
        if s is None or s.ended:
            s = Stream(self, name, kind, dict(meta or {}))
            self._streams[name] = s
            STREAMS.set(len(self._streams))
        else:
            s.kind = kind
            if meta:
                s.meta.update(meta)
        if handle is not None:
            s.handle = handle
        return s

    def set_provider(self, prefix: str, provider: SourceProvider) -> None:
        self._providers[prefix] = provider

    def provider_for(self, name: str) -> SourceProvider | None:
        best: tuple[int, SourceProvider] | None = None
        for prefix, provider in self._providers.items():
            if name.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), provider)
        return best[1] if best else None

    async def acquire(
        self, name: str, *, params: dict[str, Any] | None = None, timeout: float = 8.0
    ) -> Stream:
        """The running stream ``name``, or open it through its provider (one open for all
        concurrent callers) and wait for its first key frame.

        Raises NotFound (no stream, no provider), GatewayTimeout (no key frame in time),
        Unavailable (the stream ended while starting), or what the provider raised.
        """
        s = self._streams.get(name)
        if s is not None and s.ready and not s.ended:
            return s
        task = self._opening.get(name)
        if task is None:
            if s is not None and not s.ended:
                # Published by a source that has not sent a key frame yet.
                await self._wait_ready(s, timeout, close_on_timeout=False)
                return s
            if not valid_stream_name(name):
                raise Invalid(f"invalid stream name {name!r}")
            provider = self.provider_for(name)
            if provider is None:
                raise NotFound(f"no stream {name} and no source that can open it")
            task = asyncio.create_task(
                self._open(name, provider, dict(params or {}), timeout), name=f"open {name}"
            )
            self._opening[name] = task

            channel_id = (params or {}).get("channel_id") or (
                name.removeprefix("live/") if name.startswith("live/") else None)

            def _done(t: asyncio.Task[Stream], name: str = name, channel_id: Any = channel_id) -> None:
                if self._opening.get(name) is t:
                    del self._opening[name]
                    self._ended_opening.pop(name, None)
                exc = None if t.cancelled() else t.exception()  # retrieved: must not stay unread
                if self.bus is not None and not t.cancelled():
                    # One attempt to get a picture, and whether it got one (出图率).
                    self.bus.publish("stream.attempt", name, ok=exc is None, channel_id=channel_id,
                                     reason=None if exc is None else str(exc)[:200])

            task.add_done_callback(_done)
        return await asyncio.shield(task)

    async def close(self, name: str, reason: str) -> None:
        """Stop a stream: readers get end of stream, the source handle is closed."""
        s = self._streams.get(name)
        if s is None:
            return
        s.end(reason)
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    def open_rtp_receiver(
        self,
        name: str,
        ssrc: int,
        *,
        transport: str = "udp",
        latch: bool = False,
        peer: str | None = None,
        meta: dict[str, Any] | None = None,
        dedicated: bool = False,
    ) -> RtpBinding:
        """A binding on the shared RTP ports publishing what arrives as stream ``name``
        (``dedicated``: a UDP port of its own from ``media.rtp_port_range``).

        ``transport`` is informative (``udp`` or ``tcp``: both ports accept the SSRC). The
        stream is not stopped when idle; it ends on ``close(name)``, on
        :meth:`close_rtp_receiver`, or when the sender stays silent for ``rtp_timeout``.
        """
        if transport not in ("udp", "tcp"):
            raise Invalid("transport must be udp or tcp")
        existing = self._streams.get(name)
        if existing is not None and not existing.ended:
            raise Invalid(f"stream {name} already exists")
        handle = RtpReceiverHandle(self, name)
        s = self.publish(
            name,
            kind="rtp",
            meta={"ssrc": ssrc & 0xFFFFFFFF, "transport": transport, **(meta or {})},
            handle=handle,
        )
        try:
            binding = self.rtp.bind(ssrc, s, latch=latch, peer=peer, dedicated=dedicated)
        except Exception:
            s.handle = None
            s.end("bind failed")
            raise
        binding.transport = transport
        handle.binding = binding
        self.receivers[name] = handle
        return binding

    async def close_rtp_receiver(self, name: str) -> None:
        if name not in self.receivers:
            raise NotFound(f"no RTP receiver {name}")
        await self.close(name, "receiver closed")
        self.receivers.pop(name, None)

    # ------------------------------------------------------------------------ internals

    async def _open(
        self, name: str, provider: SourceProvider, params: dict[str, Any], timeout: float
    ) -> Stream:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout(timeout):
                handle = await provider.open(self, name, params)
        except TimeoutError:
            s = self._streams.get(name)
            if s is not None:
                s.end("open timeout")
            raise GatewayTimeout(
                f"{name}: the source did not answer within {timeout:g} s"
            ) from None
        except BaseException:
            s = self._streams.get(name)
            if s is not None and not s.ready:
                s.end("open failed")
            raise
        s = self._streams.get(name)
        ended = self._ended_opening.pop(name, None)
        if s is None or s.ended:
            if (s is not None and s.ended) or ended is not None:
                await _close_handle(handle, name)
                why = s.end_reason if s is not None and s.ended else ended
                raise Unavailable(f"{name}: the source ended while starting ({why})")
            s = self.publish(name, kind="source")
        s.handle = handle
        s.on_demand = True
        await self._wait_ready(s, deadline - loop.time(), close_on_timeout=True)
        s._readers_changed()  # starts the idle clock if nobody reads yet
        return s

    async def _wait_ready(self, s: Stream, timeout: float, *, close_on_timeout: bool) -> None:
        try:
            await s.wait_ready(max(timeout, 0.0))
        except TimeoutError:
            if close_on_timeout:
                s.end("no key frame")
            raise GatewayTimeout(
                f"{s.name}: no video key frame within {timeout:g} s"
                + (f" ({s.packets} RTP packets received)" if s.packets else " (no media received)")
            ) from None
        except StreamEnded as exc:
            raise Unavailable(f"{s.name}: the stream ended while starting ({exc})") from None

    def _stream_ready(self, s: Stream) -> None:
        if self.bus is not None:
            self.bus.publish(
                "stream.up",
                s.name,
                source=s.kind,
                codec=s.codec.value if s.codec else None,
                width=s.width,
                height=s.height,
                channel_id=s.meta.get("channel_id"),
            )

    def _stream_ended(self, s: Stream) -> None:
        if self._streams.get(s.name) is s:
            del self._streams[s.name]
        if s.name in self._opening and not s.ready:
            self._ended_opening[s.name] = s.end_reason
        self.snapshots.forget(s.name)
        STREAMS.set(len(self._streams))
        STREAM_ENDS.labels(s.end_reason.split(":")[0][:32] or "unknown").inc()
        bi, bo, pk, lo, cu = self._ended_totals
        self._ended_totals = (
            bi + s.bytes_in,
            bo + s.bytes_out,
            pk + s.packets,
            lo + s.lost,
            cu + s.cuts,
        )
        if self.bus is not None:
            self.bus.publish(
                "stream.down",
                s.name,
                reason=s.end_reason,
                source=s.kind,
                channel_id=s.meta.get("channel_id"),
                duration=round(time.monotonic() - s.created, 3),
            )
        handle, s.handle = s.handle, None
        if handle is not None:
            try:
                task = asyncio.get_running_loop().create_task(_close_handle(handle, s.name))
            except RuntimeError:
                return  # no loop (interpreter shutdown)
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    # ------------------------------------------------------------------------ timer

    async def _tick_loop(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.tick_interval)
            now = time.monotonic()
            lag = max(now - before - self.tick_interval, 0.0)
            LOOP_LAG.observe(lag)
            self.loop_lag_max = max(self.loop_lag_max, lag)
            if lag >= 0.05:
                self.loop_lags_over_50ms += 1
            try:
                self.tick(now)
            except Exception:  # the timer must survive anything
                log.exception("media hub tick failed")

    def tick(self, now: float) -> None:
        cfg = self.config
        for s in list(self._streams.values()):
            s.tick(now)
            last = s.last_input_at
            # A paused playback sends nothing: the stream or its source handle says so.
            paused = s.paused or getattr(s.handle, "paused", False) is True
            if not paused and last is not None and now - last > cfg.rtp_timeout:
                log.warning("stream %s: no media for %.1f s, ending it", s.name, now - last)
                if self.bus is not None:
                    self.bus.publish(
                        "stream.timeout",
                        s.name,
                        source=s.kind,
                        seconds=round(now - last, 3),
                        channel_id=s.meta.get("channel_id"),
                    )
                s.end("timeout")
                continue
            idle = s.idle_since
            if s.on_demand and s.ready and idle is not None and now - idle >= cfg.idle_stop_seconds:
                if s.readers == 0:
                    log.info("stream %s: no reader for %.1f s, stopping it", s.name, now - idle)
                    s.end("idle")
        self._update_metrics()

    def _update_metrics(self) -> None:
        streams = list(self._streams.values())
        STREAMS.set(len(streams))
        STREAMS_READY.set(sum(1 for s in streams if s.ready))
        READERS.set(sum(s.readers for s in streams))
        ended = self._ended_totals
        totals = (
            ended[0] + sum(s.bytes_in for s in streams),
            ended[1] + sum(s.bytes_out for s in streams),
            ended[2] + sum(s.packets for s in streams),
            ended[3] + sum(s.lost for s in streams),
            ended[4] + sum(s.cuts for s in streams),
        )
        counters = (BYTES_IN, BYTES_OUT, PACKETS_IN, PACKETS_LOST, READER_CUTS)
        for counter, new, old in zip(counters, totals, self._last_totals, strict=True):
            if new > old:
                counter.inc(new - old)
        self._last_totals = totals

    # ------------------------------------------------------------------------ queries

    def status(self) -> dict[str, Any]:
        return {
            "streams": len(self._streams),
            "ready": sum(1 for s in self._streams.values() if s.ready),
            "readers": sum(s.readers for s in self._streams.values()),
            "opening": sorted(self._opening),
            "providers": sorted(self._providers),
            "rtp": self.rtp.status(),
            "loop_lag_max": round(self.loop_lag_max, 4),
            "loop_lags_over_50ms": self.loop_lags_over_50ms,
        }


class RtpReceiverHandle:
    """The source handle of an API-made RTP receiver: closing it closes the binding."""

    def __init__(self, hub: MediaHub, name: str) -> None:
        self.hub = hub
        self.name = name
        self.binding: RtpBinding | None = None

    async def close(self) -> None:
        if self.binding is not None:
            self.binding.close()
        if self.hub.receivers.get(self.name) is self:
            del self.hub.receivers[self.name]


async def _close_handle(handle: SourceHandle, name: str) -> None:
    try:
        await handle.close()
    except Exception:
        log.exception("stream %s: closing its source failed", name)
