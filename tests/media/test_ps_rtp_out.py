"""PS over RTP out of the hub to a real receiving peer: UDP, TCP where we connect, TCP where the
peer connects to us (and nobody else may), the SSRC the peer gave, gapless sequence numbers,
and video that the platform's PS demuxer and FFmpeg both read back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _media_clips import encode, has_encoder
from tests.media._ps_rtp_peer import RtpPeer
from tests.waiting import until

from xueliang.config import MediaConfig
from xueliang.media.frame import Codec, Frame
from xueliang.media.hub import MediaHub
from xueliang.media.nal import split_annexb
from xueliang.media.ps_rtp_out import PsChunk, PsOutput, PsRtpSender
from xueliang.media.stream import Stream

SSRC = 123456789  # "0123456789" as the upper writes it in y=


def looped(frames: tuple[Frame, ...], loops: int) -> list[Frame]:
    span = max(f.dts for f in frames) - frames[0].dts + 3600
    return [Frame(f.codec, f.pts + k * span, f.dts + k * span, f.data, f.keyframe)
            for k in range(loops) for f in frames]


@pytest.fixture
async def hub() -> Any:
    h = MediaHub(MediaConfig(rtp_port=0, rtp_tcp_port=0, idle_stop_seconds=5, rtp_timeout=5), tick_interval=0.05)
    await h.start()
    yield h
    await h.stop()


class Camera:
    """Pushes real x264 frames into a stream at a steady pace."""

    def __init__(self, stream: Stream, frames: list[Frame], interval: float = 0.004) -> None:
        self.stream, self.frames, self.interval = stream, frames, interval
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        for f in self.frames:
            self.stream.push_frame(f)
            await asyncio.sleep(self.interval)

    async def ready(self) -> None:
        await self.stream.wait_ready(5)

    def stop(self) -> None:
        self.task.cancel()


async def camera(hub: MediaHub, name: str = "live/34020000001320000001", loops: int = 4) -> Camera:
    frames, _ = encode(Codec.H264, 320, 240, 50, 25, 0)
    cam = Camera(hub.publish(name, kind="test"), looped(frames, loops))
    await cam.ready()
    return cam


def sender(stream: Stream, **kw: Any) -> PsRtpSender:
    return PsRtpSender(stream.reader("ps", info={"upper": "province"}), ssrc=SSRC, **kw)


async def check_received(peer: RtpPeer, tmp: Path, frames: int = 40) -> None:
    await peer.wait_frames(frames)
    got = peer.got
    assert got.ssrcs == {SSRC}
    assert got.sequence_gaps() == 0
    assert got.markers_per_timestamp()
    assert {p.payload_type for p in got.packets} == {96}
    demuxed = [f for f in got.frames() if f.codec is Codec.H264]
    assert len(demuxed) >= frames - 1
    assert demuxed[0].keyframe  # a new reader starts at a key frame (the GOP cache)
    codec, width, height, decoded = got.decode(tmp)
    assert (codec, width, height) == ("h264", 320, 240)
    assert decoded >= frames - 2


async def test_udp_to_the_peer_with_its_ssrc_decodes(hub: MediaHub, tmp_path: Path) -> None:
    cam = await camera(hub)
    peer = RtpPeer()
    port = await peer.udp()
    s = sender(hub.stream(cam.stream.name) or cam.stream, transport="udp", host="127.0.0.1", port=port,
               bind_host="127.0.0.1")
    local = await s.open()
    assert local > 0
    s.start()
    await check_received(peer, tmp_path)
    assert s.packets >= len(peer.got.packets) > 0
    s.close()
    cam.stop()
    peer.close()


async def test_tcp_active_connects_to_the_peer_rfc4571(hub: MediaHub, tmp_path: Path) -> None:
    cam = await camera(hub)
    peer = RtpPeer()
    port = await peer.listen()
    s = sender(cam.stream, transport="tcp-active", host="127.0.0.1", port=port, bind_host="127.0.0.1")
    assert await s.open() == 9  # RFC 4145: the active side answers the discard port
    s.start()
    await check_received(peer, tmp_path)
    assert peer.connections == 1
    s.close()
    cam.stop()
    peer.close()


async def test_tcp_passive_serves_the_peer_and_refuses_any_other_address(hub: MediaHub, tmp_path: Path) -> None:
    cam = await camera(hub)
    s = sender(cam.stream, transport="tcp-passive", host="127.0.0.1", port=0, bind_host="127.0.0.1",
               allowed_hosts={"127.0.0.1"})
    port = await s.open()
    s.start()
    intruder = RtpPeer()
    await intruder.connect("127.0.0.1", port, source="127.0.0.2")  # holds the port, not the address
    await until(lambda: intruder.closed_connections > 0)
    assert intruder.closed_connections == 1 and s.refused == 1
    peer = RtpPeer()
    await peer.connect("127.0.0.1", port)
    await check_received(peer, tmp_path)
    assert intruder.got.packets == []
    # One connection per stream: a second one, even from the right address, is refused.
    late = RtpPeer()
    with pytest.raises(OSError):  # the port stopped listening
        await late.connect("127.0.0.1", port)
    assert s.peer is not None and s.peer[0] == "127.0.0.1"
    s.close()
    for p in (peer, intruder, late):
        p.close()
    cam.stop()


async def test_tcp_passive_ends_when_nobody_connects(hub: MediaHub) -> None:
    cam = await camera(hub)
    ended: list[str] = []
    s = sender(cam.stream, transport="tcp-passive", host="127.0.0.1", port=0, bind_host="127.0.0.1",
               connect_timeout=0.2, on_end=ended.append)
    await s.open()
    s.start()
    await until(lambda: bool(ended))
    assert ended == ["the peer did not connect to our RTP port"] and s.closed
    cam.stop()


async def test_peer_closing_tcp_ends_the_sender(hub: MediaHub) -> None:
    cam = await camera(hub, loops=40)
    peer = RtpPeer()
    port = await peer.listen()
    ended: list[str] = []
    s = sender(cam.stream, transport="tcp-active", host="127.0.0.1", port=port, bind_host="127.0.0.1",
               on_end=ended.append)
    await s.open()
    s.start()
    await peer.wait_frames(5)
    peer.close()
    await until(lambda: bool(ended))
    assert ended[0].startswith("the peer closed the RTP connection")
    cam.stop()


async def test_tcp_active_gives_up_when_the_peer_never_listens(hub: MediaHub) -> None:
    cam = await camera(hub)
    probe = RtpPeer()
    port = await probe.listen()
    probe.close()  # a port nobody listens on any more
    await asyncio.sleep(0.05)
    ended: list[str] = []
    s = sender(cam.stream, transport="tcp-active", host="127.0.0.1", port=port, bind_host="127.0.0.1",
               connect_timeout=0.5, on_end=ended.append)
    await s.open()
    s.start()
    await until(lambda: bool(ended))
    assert ended[0].startswith(f"cannot connect to 127.0.0.1:{port}")
    cam.stop()


async def test_end_of_stream_ends_the_sender(hub: MediaHub) -> None:
    cam = await camera(hub, loops=40)
    peer = RtpPeer()
    port = await peer.udp()
    ended: list[str] = []
    s = sender(cam.stream, transport="udp", host="127.0.0.1", port=port, bind_host="127.0.0.1", on_end=ended.append)
    await s.open()
    s.start()
    await peer.wait_frames(3)
    await hub.close(cam.stream.name, "camera gone")
    await until(lambda: bool(ended))
    assert ended == ["end of stream"]
    peer.close()


async def test_two_peers_share_one_ps_muxing(hub: MediaHub, tmp_path: Path) -> None:
    cam = await camera(hub)
    peers, senders = [RtpPeer(), RtpPeer()], []
    for i, peer in enumerate(peers):
        port = await peer.udp()
        s = PsRtpSender(cam.stream.reader("ps"), ssrc=SSRC + i, transport="udp", host="127.0.0.1", port=port,
                        bind_host="127.0.0.1")
        await s.open()
        s.start()
        senders.append(s)
    for peer in peers:
        await peer.wait_frames(30)
    out = cam.stream.output("ps")
    assert isinstance(out, PsOutput) and len(out.readers) == 2
    # the same PS bytes (muxed once), each peer its own SSRC
    assert peers[0].got.ssrcs == {SSRC} and peers[1].got.ssrcs == {SSRC + 1}
    first = {p.timestamp: bytes(p.payload) for p in peers[0].got.packets}
    both = [p for p in peers[1].got.packets if p.timestamp in first]
    assert both and all(bytes(p.payload) for p in both)
    viewers = cam.stream.describe()["viewers"]
    assert [v["format"] for v in viewers] == ["ps", "ps"]
    for s in senders:
        s.close()
    for peer in peers:
        peer.close()
    cam.stop()


def test_ps_chunk_of_a_key_frame_carries_the_psm() -> None:
    frames, _ = encode(Codec.H264, 320, 240, 50, 25, 0)

    class Src:
        codec = Codec.H264
        audio_config = None
        parameter_sets = None

        def _readers_changed(self) -> None: ...

        def _reader_left(self, reader: Any) -> None: ...

    out = PsOutput(Src())  # type: ignore[arg-type]
    chunk = out.mux(frames[0])
    assert isinstance(chunk, PsChunk) and chunk.key and chunk.timestamp == frames[0].dts
    assert chunk.data.startswith(b"\x00\x00\x01\xba") and b"\x00\x00\x01\xbc" in chunk.data
    later = out.mux(frames[1])
    assert later is not None and not later.key and b"\x00\x00\x01\xbc" not in later.data


async def test_key_frames_carry_parameter_sets_a_source_gave_out_of_band(hub: MediaHub, tmp_path: Path) -> None:
    """An RTSP camera's SPS/PPS come in its SDP, not in its frames: the upper only has the
    stream, so the PS key frames must carry them."""
    frames, params = encode(Codec.H264, 320, 240, 50, 25, 0)

    def stripped(f: Frame) -> Frame:
        nals = [n for n in split_annexb(f.data) if n[0] & 0x1F not in (7, 8)]
        return Frame(f.codec, f.pts, f.dts, b"".join(b"\x00\x00\x00\x01" + n for n in nals), f.keyframe)

    stream = hub.publish("live/34020000001320000009", kind="rtsp")
    stream.parameter_sets.sps, stream.parameter_sets.pps = params.sps, params.pps
    cam = Camera(stream, [stripped(f) for f in looped(frames, 4)])
    await cam.ready()
    assert all(n[0] & 0x1F not in (7, 8) for n in split_annexb(stream.keyframe.data))  # type: ignore[union-attr]
    peer = RtpPeer()
    port = await peer.udp()
    s = sender(stream, transport="udp", host="127.0.0.1", port=port, bind_host="127.0.0.1")
    await s.open()
    s.start()
    await check_received(peer, tmp_path)
    s.close()
    cam.stop()
    peer.close()


@pytest.mark.skipif(not has_encoder(Codec.H265), reason="no H.265 encoder in this FFmpeg")
async def test_h265_goes_up_as_ps_stream_type_0x24(hub: MediaHub, tmp_path: Path) -> None:
    frames, _ = encode(Codec.H265, 320, 240, 50, 25, 0)
    cam = Camera(hub.publish("live/34020000001320000265", kind="test"), looped(frames, 3))
    await cam.ready()
    peer = RtpPeer()
    s = sender(cam.stream, transport="udp", host="127.0.0.1", port=await peer.udp(), bind_host="127.0.0.1")
    await s.open()
    s.start()
    await peer.wait_frames(40)
    assert peer.got.sequence_gaps() == 0
    first = bytes(peer.got.packets[0].payload)
    psm = first.find(b"\x00\x00\x01\xbc")
    assert psm > 0 and first[psm + 12] == 0x24  # the PSM's first elementary stream: H.265
    assert peer.got.decode(tmp_path)[:3] == ("hevc", 320, 240)
    s.close()
    cam.stop()
    peer.close()
