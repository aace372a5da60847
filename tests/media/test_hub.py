"""The media hub: one source, many readers (DESIGN principle 2).

Real x264 frames go through real streams and outputs; readers are checked by parsing what
they received (fMP4 boxes, FLV tags) and by decoding it with PyAV.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import av
import pytest
from test_hub_support import ps_clip

from xueliang.bus import BusEvent, EventBus
from xueliang.config import MediaConfig
from xueliang.errors import GatewayTimeout, NotFound
from xueliang.media.frame import Codec, Frame
from xueliang.media.hub import MediaHub
from xueliang.media.stream import Stream


def looped(frames: tuple[Frame, ...], loops: int) -> list[Frame]:
    span = max(f.dts for f in frames) - frames[0].dts + 3600
    return [
        Frame(f.codec, f.pts + k * span, f.dts + k * span, f.data, f.keyframe)
        for k in range(loops)
        for f in frames
    ]


def boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert size >= 8, f"bad box size at {pos}"
        out.append((kind, data[pos + 8 : pos + size]))
        pos += size
    assert pos == len(data), "trailing partial box"
    return out


def first_sample_is_sync(moof: bytes) -> bool:
    """Whether the first video sample of a moof payload is a sync sample."""
    i = moof.find(b"trun")
    assert i > 0
    flags = int.from_bytes(moof[i + 5 : i + 8], "big")
    assert flags & 0x400, "per-sample flags expected"
    off = i + 4 + 4 + 4 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
    off += (4 if flags & 0x100 else 0) + (4 if flags & 0x200 else 0)
    sample_flags = int.from_bytes(moof[off : off + 4], "big")
    return not sample_flags & 0x00010000


def flv_tags(data: bytes, *, header: bool) -> list[tuple[int, int, bytes]]:
    """(type, timestamp ms, body) of each tag; ``header``: data starts with the FLV header."""
    pos = 13 if header else 0
    if header:
        assert data[:3] == b"FLV"
    tags = []
    while pos + 11 <= len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
        tags.append((kind, ts, data[pos + 11 : pos + 11 + size]))
        pos += 11 + size + 4
    assert pos == len(data)
    return tags


class FakeSource:
    """A source handle pushing frames into its stream from a task (like a device would)."""

    def __init__(
        self, stream: Stream, frames: list[Frame], interval: float, stop_after: int | None
    ):
        self.stream = stream
        self.closed = 0
        self.sent = 0
        self._task = asyncio.create_task(self._run(frames, interval, stop_after))

    async def _run(self, frames: list[Frame], interval: float, stop_after: int | None) -> None:
        for f in frames:
            if stop_after is not None and self.sent >= stop_after:
                return  # the device goes silent (no BYE)
            self.stream.push_frame(f)
            self.sent += 1
            await asyncio.sleep(interval)

    async def close(self) -> None:
        self.closed += 1
        self._task.cancel()


class FakeProvider:
    def __init__(
        self,
        frames: list[Frame],
        *,
        interval: float = 0.005,
        latency: float = 0.05,
        stop_after: int | None = None,
    ) -> None:
        self.frames = frames
        self.interval = interval
        self.latency = latency
        self.stop_after = stop_after
        self.opens = 0
        self.sources: list[FakeSource] = []

    async def open(self, hub: MediaHub, name: str, params: dict[str, Any]) -> FakeSource:
        self.opens += 1
        await asyncio.sleep(self.latency)  # e.g. INVITE round trip
        stream = hub.publish(name, kind="test", meta={"params": params})
        src = FakeSource(stream, self.frames, self.interval, self.stop_after)
        self.sources.append(src)
        return src


def events_of(bus_sub: Any) -> list[BusEvent]:
    out = []
    while not bus_sub.queue.empty():
        out.append(bus_sub.queue.get_nowait())
    return out


@pytest.fixture
async def hub() -> Any:
    bus = EventBus()
    h = MediaHub(
        MediaConfig(rtp_port=0, rtp_tcp_port=0, idle_stop_seconds=0.3, rtp_timeout=0.4),
        bus,
        tick_interval=0.05,
    )
    await h.start()
    yield h
    await h.stop()


async def test_hundred_readers_join_at_once_share_one_open_and_one_mux(
    hub: MediaHub, tmp_path: Path
) -> None:
    frames = looped(ps_clip(), 4)
    provider = FakeProvider(frames, interval=0.01)
    hub.set_provider("live/", provider)
    got: list[bytes] = []

    async def viewer() -> None:
        s = await hub.acquire("live/1", params={"channel_id": "1"}, timeout=5)
        r = s.reader("fmp4")
        data = bytearray()
        fragments = 0
        while fragments < 30:
            chunks = await r.get()
            assert chunks
            data += b"".join(chunks)
            fragments = sum(1 for k, _ in boxes(bytes(data)) if k == b"moof")
        r.close()
        got.append(bytes(data))

    await asyncio.gather(*(viewer() for _ in range(100)))
    assert provider.opens == 1  # one source for every concurrent caller
    assert len(got) == 100
    for data in got:
        b = boxes(data)
        assert [k for k, _ in b[:3]] == [b"ftyp", b"moov", b"moof"]
        assert first_sample_is_sync(b[2][1]), "a new reader starts at a key frame"
    # Muxed once: the shared output made one fragment per frame, not one per reader.
    s = hub.stream("live/1")
    assert s is not None
    assert s.readers == 0 and s.video_frames <= len(frames)
    assert s.bytes_out > 100 * 1000
    path = tmp_path / "one.mp4"
    path.write_bytes(got[0])
    with av.open(str(path)) as c:
        decoded = list(c.decode(video=0))
    assert len(decoded) >= 30 and decoded[0].width == 320


async def test_slow_reader_is_cut_to_next_key_frame_fast_reader_keeps_every_frame(
    hub: MediaHub,
) -> None:
    # 403 frames, a key frame every 25; the last 3 open a GOP, so the slow reader ends resumed.
    frames = looped(ps_clip(), 9)[:-47]
    s = hub.publish("test/slow", kind="test")
    s.push_frame(frames[0])
    fast = s.reader("frames")
    slow = s.reader("frames", limit=60_000)
    fast_flv = s.reader("flv")
    slow_flv = s.reader("flv", limit=60_000)
    received: list[Frame] = []
    flv = bytearray()

    async def consume() -> None:
        while chunks := await fast.get():
            received.extend(chunks)

    async def consume_flv() -> None:
        while chunks := await fast_flv.get():
            flv.extend(b"".join(chunks))

    tasks = [asyncio.create_task(consume()), asyncio.create_task(consume_flv())]
    biggest = max(len(f.data) for f in frames)
    for f in frames[1:]:
        s.push_frame(f)
        assert slow.buffered <= 60_000 + biggest
        assert slow_flv.buffered <= 60_000 + biggest + 100
        await asyncio.sleep(0)
    s.end("done")
    await asyncio.gather(*tasks)

    assert [f.dts for f in received] == [f.dts for f in frames]  # fast: every frame, in order
    assert slow.cuts >= 1 and slow.dropped > 0
    tail = slow.get_nowait()
    assert tail and tail[0].keyframe, "the slow reader resumes at a key frame"
    start = next(i for i, f in enumerate(frames) if f.dts == tail[0].dts)
    assert [f.dts for f in tail] == [f.dts for f in frames[start:]]  # contiguous from there

    tags = flv_tags(bytes(flv), header=True)
    video = [t for t in tags if t[0] == 9 and t[2][1] == 1]  # AVC NALU tags
    assert len(video) == len(frames)
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(video))
    slow_tags = flv_tags(b"".join(slow_flv.get_nowait()), header=False)
    assert slow_flv.cuts >= 1 and slow_tags[0][0] == 9 and slow_tags[0][2][0] >> 4 == 1


async def test_memory_stays_bounded_with_a_stuck_reader(hub: MediaHub) -> None:
    frames = looped(ps_clip(), 40)  # 2000 frames
    s = hub.publish("test/stuck", kind="test")
    s.push_frame(frames[0])
    stuck = [s.reader(fmt, limit=100_000) for fmt in ("fmp4", "flv", "frames")]
    tracemalloc.start()
    try:
        for f in frames[1:500]:
            s.push_frame(f)
        base = tracemalloc.get_traced_memory()[0]
        for f in frames[500:]:
            s.push_frame(f)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    keys = [i for i, f in enumerate(frames[:51]) if f.keyframe]
    gop = max(sum(len(f.data) for f in frames[a:b]) for a, b in itertools.pairwise(keys))
    for r in stuck:
        assert r.buffered <= 100_000 + max(len(f.data) for f in frames) + 1000
        assert r.cuts >= 10
    assert s._gop_bytes <= gop + 1000
    for out in s._outputs.values():
        assert out.cache_bytes <= gop + 25 * 200
    assert grown < 1_000_000, f"memory grew by {grown} bytes over 1500 frames"


async def test_idle_stop_closes_the_source_after_the_last_reader(hub: MediaHub) -> None:
    sub = hub.bus.subscribe("stream")  # type: ignore[union-attr]
    provider = FakeProvider(looped(ps_clip(), 20), interval=0.02)
    hub.set_provider("live/", provider)
    s = await hub.acquire("live/7", timeout=5)
    r1 = s.reader("flv")
    r2 = s.reader("fmp4")
    await asyncio.sleep(0.6)  # two idle periods with readers: still running
    assert hub.stream("live/7") is s and provider.sources[0].closed == 0
    r1.close()
    await asyncio.sleep(0.6)
    assert hub.stream("live/7") is s, "one reader left: keeps running"
    r2.close()
    for _ in range(40):
        if provider.sources[0].closed:
            break
        await asyncio.sleep(0.05)
    assert provider.sources[0].closed == 1
    assert hub.stream("live/7") is None
    kinds = [(e.kind, e.data.get("reason")) for e in events_of(sub)]
    assert ("stream.up", None) in kinds and ("stream.down", "idle") in kinds
    # A new viewer opens it again.
    s2 = await hub.acquire("live/7", timeout=5)
    assert s2 is not s and provider.opens == 2


async def test_dead_source_ends_the_stream_with_events(hub: MediaHub) -> None:
    sub = hub.bus.subscribe("stream")  # type: ignore[union-attr]
    provider = FakeProvider(looped(ps_clip(), 4), interval=0.01, stop_after=60)
    hub.set_provider("live/", provider)
    s = await hub.acquire("live/9", timeout=5)
    r = s.reader("fmp4")
    chunks: list[bytes] = []
    async with asyncio.timeout(5):
        while batch := await r.get():  # ends by itself: EOF when the stream ends
            chunks += batch
    assert s.ended and s.end_reason == "timeout"
    assert hub.stream("live/9") is None
    await asyncio.sleep(0.05)
    assert provider.sources[0].closed == 1
    evs = events_of(sub)
    kinds = [e.kind for e in evs]
    assert kinds.index("stream.timeout") < kinds.index("stream.down")
    assert next(e for e in evs if e.kind == "stream.down").data["reason"] == "timeout"
    assert len(chunks) > 10


async def test_acquire_times_out_without_a_key_frame_and_closes_the_source(hub: MediaHub) -> None:
    clip = ps_clip()
    no_key = [f for f in looped(clip, 2) if not f.keyframe]
    provider = FakeProvider(no_key, interval=0.01)
    hub.set_provider("live/", provider)
    results = await asyncio.gather(
        *(hub.acquire("live/3", timeout=0.5) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, GatewayTimeout) for r in results), results
    assert provider.opens == 1
    await asyncio.sleep(0.05)
    assert provider.sources[0].closed == 1 and hub.stream("live/3") is None
    with pytest.raises(NotFound):
        await hub.acquire("nobody/1")


async def test_parameter_set_change_goes_in_band(hub: MediaHub) -> None:
    small = looped(ps_clip(320, 240), 1)
    big = ps_clip(640, 360)
    span = small[-1].dts + 3600 - big[0].dts
    big = [Frame(f.codec, f.pts + span, f.dts + span, f.data, f.keyframe) for f in big]
    s = hub.publish("test/ps", kind="test")
    s.push_frame(small[0])
    mp4 = s.reader("fmp4")
    flv = s.reader("flv")
    for f in small[1:] + big:
        s.push_frame(f)
    assert (s.width, s.height) == (640, 360)
    kinds = [k for k, _ in boxes(b"".join(mp4.get_nowait()))]
    assert kinds.count(b"moov") == 2  # the new init segment, in-band before the key frame
    second = kinds.index(b"moov", 2)
    assert kinds[second + 1] == b"moof"
    tags = flv_tags(b"".join(flv.get_nowait()), header=True)
    sequence_headers = [t for t in tags if t[0] == 9 and t[2][1] == 0]
    assert len(sequence_headers) == 2
    # New readers get the new size straight away.
    late = s.reader("fmp4")
    moov = boxes(b"".join(late.get_nowait()))[1]
    assert moov[0] == b"moov" and struct.pack(">HH", 640, 360) in moov[1]


@pytest.mark.parametrize("mode", ["aac", "drop"])
async def test_g711_becomes_aac_or_is_dropped(mode: str, tmp_path: Path) -> None:
    import numpy as np

    h = MediaHub(MediaConfig(rtp_port=0, rtp_tcp_port=0, g711=mode), EventBus())
    video = looped(ps_clip(), 2)
    rng = np.random.default_rng(3)
    t0 = video[0].dts
    audio = [
        Frame(
            Codec.G711A,
            t0 + i * 1800,
            t0 + i * 1800,
            rng.integers(0, 255, 160, np.uint8).tobytes(),
            True,
        )
        for i in range(100)  # 2 s of 20 ms A-law frames
    ]
    merged = sorted(video + audio, key=lambda f: (f.dts, not f.codec.is_video))
    s = h.publish("test/g711", kind="test")
    s.declare_audio(Codec.G711A)  # as the PSM (or RTSP's SDP) announces it
    s.push_frame(merged[0])
    r = s.reader("frames")
    mp4 = s.reader("fmp4")
    for f in merged[1:]:
        s.push_frame(f)
    out = r.get_nowait()
    aac = [f for f in out if f.codec is Codec.AAC]
    assert not [f for f in out if f.codec is Codec.G711A]
    chunks = mp4.get_nowait()
    init = boxes(chunks[0])[1][1]
    if mode == "aac":
        assert len(aac) > 5 and b"mp4a" in init
        path = tmp_path / "av.mp4"
        path.write_bytes(b"".join(chunks))
        with av.open(str(path)) as c:
            assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"
            decoded = list(c.decode(audio=0))
        assert sum(f.samples for f in decoded) >= 8000  # at least a second of sound
        assert s.audio_config is not None and s.audio_config.codec is Codec.AAC
    else:
        assert aac == [] and s.audio_config is None and b"mp4a" not in init


async def test_rtp_in_through_the_hub_counts_and_times_out(hub: MediaHub) -> None:
    """A binding on the shared UDP port feeds a stream; silence ends it (stream.timeout)."""
    from test_hub_support import RtpPusher

    sub = hub.bus.subscribe("stream")  # type: ignore[union-attr]
    s = hub.publish("rtp/1", kind="rtp")
    hub.rtp.bind(0x0200000001, s)
    pusher = RtpPusher(hub.rtp.udp_port, 0x0200000001, ps_clip(), loops=1, fps=200).start()
    await asyncio.to_thread(pusher.wait)
    await asyncio.sleep(0.1)
    assert s.ready and s.packets == pusher.sent_packets and s.lost == 0
    assert s.video_frames >= 49  # the last one ends with the next timestamp or the marker
    await asyncio.sleep(0.6)
    assert s.ended and s.end_reason == "timeout"
    assert [e.kind for e in events_of(sub)] == ["stream.up", "stream.timeout", "stream.down"]


async def test_a_source_that_fails_before_open_returns_is_refused_at_once(hub: MediaHub) -> None:
    """A source that publishes and ends its stream before ``open`` returns (an RTSP camera
    refusing the connection on a fast machine) is refused with its reason, at once: not taken
    for a source that has not published yet and waited for until the timeout."""
    from xueliang.errors import Unavailable

    class Handle:
        async def close(self) -> None:
            return None

    class Refused:
        async def open(self, hub: MediaHub, name: str, params: dict[str, Any]) -> Handle:
            hub.publish(name, kind="rtsp").end("rtsp: cannot open (connection refused)")
            return Handle()

    hub.set_provider("cam/", Refused())
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(Unavailable, match="cannot open"):
        await hub.acquire("cam/x", timeout=10)
    assert loop.time() - t0 < 5
    assert hub.stream("cam/x") is None


async def test_each_open_is_one_picture_attempt_on_the_bus(hub: MediaHub) -> None:
    """The picture rate (出图率) counts opens: one per open, however many callers share it."""
    sub = hub.bus.subscribe("stream.attempt")  # type: ignore[union-attr]
    clip = ps_clip()
    hub.set_provider("live/", FakeProvider(looped(clip, 4), interval=0.01))
    await asyncio.gather(*(hub.acquire("live/34020000001310000001", timeout=5) for _ in range(5)))
    hub.set_provider("live/", FakeProvider([f for f in looped(clip, 2) if not f.keyframe], interval=0.01))
    results = await asyncio.gather(*(hub.acquire("live/34020000001310000002", timeout=0.5) for _ in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, GatewayTimeout) for r in results)
    await asyncio.sleep(0.05)
    evs = events_of(sub)
    assert [(e.data["channel_id"], e.data["ok"]) for e in evs] == [
        ("34020000001310000001", True), ("34020000001310000002", False)]
    assert "key frame" in evs[1].data["reason"]
