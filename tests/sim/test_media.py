"""Simulator video: INVITE → 200 → ACK → PS over RTP (UDP, TCP both ways), decoded with PyAV;
BYE, playback end (MediaStatus 121), MANSRTSP control, download speed."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest

from xueliang.gb28181 import mansrtsp
from xueliang.gb28181.sdp import make_offer, parse_sdp
from xueliang.media.frame import Codec, Frame
from xueliang.media.ps import PsDemuxer
from xueliang.media.rtp import Rfc4571Deframer, parse_rtp
from xueliang.sim.simulator import Simulator
from xueliang.sim.video import Clip, ClipLibrary, RtpStream, has_encoder

from ._platform import SERVER_ID, FakePlatform

W, H = 320, 180


class Sink:
    """Collects RTP packets (UDP datagrams or a TCP stream with RFC 4571 framing)."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.deframer = Rfc4571Deframer()
        self.arrivals: list[float] = []

    def add(self, pkt: bytes) -> None:
        self.packets.append(pkt)
        self.arrivals.append(time.monotonic())

    def feed_tcp(self, data: bytes) -> None:
        for p in self.deframer.feed(data):
            self.add(p)

    def frames(self) -> tuple[list[Frame], PsDemuxer]:
        dm = PsDemuxer()
        out: list[Frame] = []
        for p in self.packets:
            out += dm.feed_packet(parse_rtp(p))
        return out, dm


def decode(frames: list[Frame], codec: Codec = Codec.H264) -> list[Any]:
    cc: Any = av.CodecContext.create("hevc" if codec is Codec.H265 else "h264", "r")
    pictures = []
    for f in frames:
        for pkt in cc.parse(f.data):
            pictures += cc.decode(pkt)
    for pkt in cc.parse(b""):
        pictures += cc.decode(pkt)
    return pictures


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.sink.add(data)


class _Tcp(asyncio.Protocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def data_received(self, data: bytes) -> None:
        self.sink.feed_tcp(data)


@pytest.fixture
async def env() -> AsyncIterator[tuple[FakePlatform, Simulator]]:
    platform = FakePlatform()
    await platform.start()
    sim = Simulator(
        platform.address,
        1,
        2,
        video_size=(W, H),
        keepalive=5,
        summary_interval=0,
        register_rate=1000,
        retry_interval=0.3,
    )
    await sim.start()
    assert await sim.wait_registered(timeout=5)
    await platform.wait_for(lambda: sim.devices[0].id in platform.registrations)
    yield platform, sim
    await sim.stop()
    await platform.stop()


async def _udp_sink() -> tuple[Sink, asyncio.DatagramTransport, int]:
    sink = Sink()
    loop = asyncio.get_running_loop()
    tr, _ = await loop.create_datagram_endpoint(lambda: _Udp(sink), local_addr=("127.0.0.1", 0))
    return sink, tr, tr.get_extra_info("sockname")[1]


async def _wait(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_live_udp_then_bye(env: tuple[FakePlatform, Simulator]) -> None:
    platform, sim = env
    dev = sim.devices[0]
    ch = list(dev.channels)[1]
    sink, tr, port = await _udp_sink()
    try:
        offer = make_offer(SERVER_ID, "127.0.0.1", port, "0200000001")
        resp, dialog, reg = await platform.invite(dev.id, ch, offer)
        assert resp.status == 200 and dialog is not None
        assert (resp.headers.get("Content-Type") or "").lower() == "application/sdp"
        answer = parse_sdp(resp.body)
        assert answer.ssrc == "0200000001" and answer.media_direction == "sendonly"
        assert answer.f is not None and answer.f.startswith("v/2/")
        await _wait(
            lambda: len(sink.packets) > 0 and sum(1 for p in sink.packets if p[1] & 0x80) >= 30
        )
        frames, dm = sink.frames()
        first = parse_rtp(sink.packets[0])
        assert first.payload_type == 96 and first.ssrc == 200000001
        assert dm.width == W and dm.height == H and dm.video_codec is Codec.H264
        assert frames[0].keyframe
        assert len(decode(frames)) >= len(frames) - 2 > 20
        pictures = decode(frames[:5])
        assert (pictures[0].width, pictures[0].height) == (W, H)
        resp = await platform.in_dialog(dialog, reg, "BYE")
        assert resp.status == 200
        await asyncio.sleep(0.1)
        n = len(sink.packets)
        await asyncio.sleep(0.3)
        assert len(sink.packets) == n
        assert not dev.calls and not sim.media.sessions  # type: ignore[union-attr]
    finally:
        tr.close()


async def test_live_tcp_platform_listens(env: tuple[FakePlatform, Simulator]) -> None:
    platform, sim = env
    dev = sim.devices[0]
    ch = next(iter(dev.channels))
    sink = Sink()
    server = await asyncio.get_running_loop().create_server(lambda: _Tcp(sink), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        offer = make_offer(SERVER_ID, "127.0.0.1", port, "0200000002", transport="tcp-passive")
        resp, dialog, reg = await platform.invite(dev.id, ch, offer)
        assert resp.status == 200 and dialog is not None
        answer = parse_sdp(resp.body)
        assert answer.is_tcp and answer.setup == "active"
        await _wait(lambda: sum(1 for p in sink.packets if p[1] & 0x80) >= 30)
        frames, dm = sink.frames()
        assert dm.errors == 0 and sink.deframer.resyncs == 0
        assert (dm.width, dm.height) == (W, H)
        assert len(decode(frames)) > 20
        assert (await platform.in_dialog(dialog, reg, "BYE")).status == 200
    finally:
        server.close()


async def test_live_tcp_device_listens(env: tuple[FakePlatform, Simulator]) -> None:
    platform, sim = env
    dev = sim.devices[0]
    ch = next(iter(dev.channels))
    offer = make_offer(SERVER_ID, "127.0.0.1", 9, "0200000003", transport="tcp-active")
    resp, dialog, reg = await platform.invite(dev.id, ch, offer)
    assert resp.status == 200 and dialog is not None
    answer = parse_sdp(resp.body)
    assert answer.is_tcp and answer.setup == "passive"
    sink = Sink()
    tr, _ = await asyncio.get_running_loop().create_connection(
        lambda: _Tcp(sink), answer.media_address, answer.media_port
    )
    try:
        await _wait(lambda: sum(1 for p in sink.packets if p[1] & 0x80) >= 30)
        frames, dm = sink.frames()
        assert (dm.width, dm.height) == (W, H) and len(decode(frames)) > 20
        assert (await platform.in_dialog(dialog, reg, "BYE")).status == 200
    finally:
        tr.close()


async def test_invite_errors(env: tuple[FakePlatform, Simulator]) -> None:
    platform, sim = env
    dev = sim.devices[0]
    ch = next(iter(dev.channels))
    no_ssrc = make_offer(SERVER_ID, "127.0.0.1", 9, "0200000004").replace("y=0200000004\r\n", "")
    resp, _, _ = await platform.invite(dev.id, ch, no_ssrc)
    assert resp.status == 400
    resp, _, _ = await platform.invite(
        dev.id, "34020000001310999999", make_offer(SERVER_ID, "127.0.0.1", 9, "0200000005")
    )
    assert resp.status == 404
    sim.set_fault(dev.id, reject_invite=486)
    resp, _, _ = await platform.invite(
        dev.id, ch, make_offer(SERVER_ID, "127.0.0.1", 9, "0200000006")
    )
    assert resp.status == 486


async def test_playback_controls_and_media_status(env: tuple[FakePlatform, Simulator]) -> None:
    platform, sim = env
    dev = sim.devices[0]
    ch = next(iter(dev.channels))
    sink, tr, port = await _udp_sink()
    try:
        now = int(time.time())
        offer = make_offer(
            SERVER_ID,
            "127.0.0.1",
            port,
            "1200000007",
            session="Playback",
            channel_id=ch,
            start=now - 3600,
            end=now - 3600 + 3,
        )
        resp, dialog, reg = await platform.invite(dev.id, ch, offer)
        assert resp.status == 200 and dialog is not None
        answer = parse_sdp(resp.body)
        assert answer.session_name == "Playback" and answer.ssrc == "1200000007"
        assert (answer.start_time, answer.end_time) == (now - 3600, now - 3600 + 3)
        session = dev.sessions()[0]
        await _wait(lambda: len(sink.packets) > 10)
        # pause: the flow stops
        info = await platform.in_dialog(
            dialog, reg, "INFO", mansrtsp.pause(1).encode(), "Application/MANSRTSP"
        )
        assert info.status == 200 and session.paused
        await asyncio.sleep(0.1)
        n = len(sink.packets)
        await asyncio.sleep(0.3)
        assert len(sink.packets) == n
        # resume at double speed, seek to 1 s
        await platform.in_dialog(
            dialog, reg, "INFO", mansrtsp.speed(2, 2.0).encode(), "Application/MANSRTSP"
        )
        assert session.rate == 2.0 and not session.paused
        await platform.in_dialog(
            dialog, reg, "INFO", mansrtsp.seek(3, 1).encode(), "Application/MANSRTSP"
        )
        assert 1.0 <= session.position < 1.3
        # 2 s of recording left at 2x: MediaStatus 121 within about a second, in the dialog
        await platform.wait_for(lambda: platform.messages("MediaStatus"), 4)
        status = platform.messages("MediaStatus")[0]
        assert status.request.call_id == dialog.call_id
        assert status.msg.fields["NotifyType"] == "121" and status.device_id == ch
        assert session.state == "ended"
        assert (await platform.in_dialog(dialog, reg, "BYE")).status == 200
        frames, _ = sink.frames()
        assert decode(frames)
    finally:
        tr.close()


async def test_download_runs_at_download_speed(env: tuple[FakePlatform, Simulator]) -> None:
    platform, sim = env
    dev = sim.devices[0]
    ch = list(dev.channels)[1]
    sink, tr, port = await _udp_sink()
    try:
        now = int(time.time())
        offer = make_offer(
            SERVER_ID,
            "127.0.0.1",
            port,
            "1200000008",
            session="Download",
            channel_id=ch,
            start=now - 7200,
            end=now - 7200 + 4,
            download_speed=4,
        )
        t0 = time.monotonic()
        resp, dialog, reg = await platform.invite(dev.id, ch, offer)
        assert resp.status == 200 and dialog is not None
        await platform.wait_for(lambda: platform.messages("MediaStatus"), 4)
        assert time.monotonic() - t0 < 2.5
        frames, _ = sink.frames()
        assert 90 <= len(frames) <= 101  # 4 s of 25 fps
        assert (await platform.in_dialog(dialog, reg, "BYE")).status == 200
    finally:
        tr.close()


def test_clip_loops_with_continuing_timestamps() -> None:
    lib = ClipLibrary(width=W, height=H, seconds=1.0, labels=False)
    clip: Clip = lib.base
    n = len(clip.frames)
    assert n == 25 and clip.frames[0].keyframe and sum(f.keyframe for f in clip.frames) == 1
    stream = RtpStream(42)
    sink = Sink()
    for i in range(3 * n):
        for d in stream.render_udp(clip.frames[i % n], clip.tick):
            sink.add(bytes(d))
    frames, dm = sink.frames()
    frames += dm.flush()
    assert len(frames) == 3 * n and dm.errors == 0
    assert {b.pts - a.pts for a, b in itertools.pairwise(frames)} == {3600}
    seqs = [parse_rtp(p).sequence for p in sink.packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert len(decode(frames)) == 3 * n


@pytest.mark.skipif(not has_encoder(Codec.H265), reason="no libx265")
async def test_h265_stream() -> None:
    platform = FakePlatform()
    await platform.start()
    sink, tr, port = await _udp_sink()
    try:
        async with Simulator(
            platform.address,
            1,
            1,
            video_size=(W, H),
            h265=True,
            keepalive=5,
            summary_interval=0,
            video_seconds=1.0,
        ) as sim:
            await sim.wait_registered(timeout=5)
            dev = sim.devices[0]
            await platform.wait_for(lambda: dev.id in platform.registrations)
            resp, _dialog, _reg = await platform.invite(
                dev.id,
                next(iter(dev.channels)),
                make_offer(SERVER_ID, "127.0.0.1", port, "0200000009"),
            )
            assert resp.status == 200 and (parse_sdp(resp.body).f or "").startswith("v/5/")
            await _wait(lambda: sum(1 for p in sink.packets if p[1] & 0x80) >= 10)
            frames, dm = sink.frames()
            assert dm.video_codec is Codec.H265 and (dm.width, dm.height) == (W, H)
            assert decode(frames, Codec.H265)
    finally:
        tr.close()
        await platform.stop()


def test_labelled_clip_is_encoded_lazily() -> None:
    lib = ClipLibrary(width=W, height=H, seconds=1.0)
    base = lib.base
    assert lib.clip_for(["CH 34020000001310000001"]) is not base  # no loop: encoded at once
    assert lib.clip_for([]) is base
