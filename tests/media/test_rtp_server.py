"""The shared RTP ports: real PS over RTP (x264 clip → PsMuxer → RtpPacketizer) sent to one
UDP and one TCP port for several SSRCs at once, demultiplexed onto the right streams."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from test_hub_support import RtpPusher, ps_clip
from tests.ports import free_port, free_range
from tests.waiting import until

from xueliang.bus import EventBus
from xueliang.config import MediaConfig
from xueliang.errors import Unavailable
from xueliang.media.frame import Frame
from xueliang.media.hub import MediaHub
from xueliang.media.ps_mux import PsMuxer
from xueliang.media.rtp import RtpPacketizer
from xueliang.media.rtp_server import RtpServer
from xueliang.media.stream import Stream


@pytest.fixture(params=[5.0, 0.0], ids=["poll", "wake"])
async def hub(request: pytest.FixtureRequest) -> Any:
    # Both ways of reading the shared port: polled while RTP flows (the default), and a wake-up
    # for every datagram.
    h = MediaHub(
        MediaConfig(rtp_port=0, rtp_tcp_port=0, rtp_timeout=5, rtp_poll_ms=request.param), EventBus(),
        tick_interval=0.05,
    )
    await h.start()
    yield h
    await h.stop()


async def run(*pushers: RtpPusher) -> None:
    for p in pushers:
        p.start()
    await asyncio.gather(*(asyncio.to_thread(p.wait) for p in pushers))
    for p in pushers:
        assert p.error is None, p.error
    await asyncio.sleep(0.3)  # the last gaps are given up by the hub's timer


def received(stream: Stream, reader: Any) -> list[Frame]:
    return [f for f in reader.get_nowait() if f.codec.is_video]


async def ready_reader(stream: Stream) -> Any:
    await stream.wait_ready(5)
    return stream.reader("frames")


async def test_two_ssrcs_at_once_over_udp_land_on_their_own_streams(hub: MediaHub) -> None:
    small, big = ps_clip(176, 144), ps_clip(320, 240)
    a = hub.publish("rtp/a", kind="rtp")
    b = hub.publish("rtp/b", kind="rtp")
    hub.rtp.bind(0x0200000001, a)
    hub.rtp.bind(0x0200000002, b)
    # One warm-up loop each (to get a key frame and open readers), then the real check.
    pa = RtpPusher(hub.rtp.udp_port, 0x0200000001, small, fps=250, loops=3)
    pb = RtpPusher(hub.rtp.udp_port, 0x0200000002, big, fps=250, loops=3)
    pa.start()
    pb.start()
    ra, rb = await asyncio.gather(ready_reader(a), ready_reader(b))
    await asyncio.gather(asyncio.to_thread(pa.wait), asyncio.to_thread(pb.wait))
    await asyncio.sleep(0.3)
    assert (a.width, a.height, b.width, b.height) == (176, 144, 320, 240)
    fa, fb = received(a, ra), received(b, rb)
    assert len(fa) >= 50 and len(fb) >= 50
    # The frames are the clip's own access units, byte for byte, on the right stream.
    assert {f.data for f in fa} <= {f.data for f in small}
    assert {f.data for f in fb} <= {f.data for f in big}
    assert a.packets == pa.sent_packets and b.packets == pb.sent_packets
    assert a.lost == b.lost == 0
    assert hub.rtp.unknown == 0


@pytest.mark.parametrize("dollar", [False, True], ids=["rfc4571", "dollar"])
async def test_two_ssrcs_at_once_over_tcp(hub: MediaHub, dollar: bool) -> None:
    clip = ps_clip()
    streams = [hub.publish(f"rtp/t{i}", kind="rtp") for i in range(2)]
    for i, s in enumerate(streams):
        hub.rtp.bind(1000 + i, s)
    pushers = [
        RtpPusher(hub.rtp.tcp_port, 1000 + i, clip, tcp=True, dollar=dollar, fps=250, loops=2)
        for i in range(2)
    ]
    await run(*pushers)
    for s, p in zip(streams, pushers, strict=True):
        assert s.ready and s.packets == p.sent_packets and s.lost == 0
        assert s.video_frames >= 2 * len(clip) - 1
        assert s.bindings[0].transport == "tcp"


async def test_loss_is_counted_and_damaged_frames_are_dropped(hub: MediaHub) -> None:
    clip = ps_clip()
    s = hub.publish("rtp/lossy", kind="rtp")
    hub.rtp.bind(77, s)
    # Lose a packet inside frames of several packets (the second one), so the frame was under
    # way when the gap came: whichever packet a fixed stride hits depends on the encoder's frame
    # sizes, and a lost one-packet frame never reaches the demuxer at all.
    counter, muxer = RtpPacketizer(77), PsMuxer()
    sizes = [len(counter.packetize(muxer.mux(f), 0)) for f in clip]
    targets, n = set(), 0
    for loop in range(2):
        for k, size in enumerate(sizes):
            if size >= 2 and k % 10 == 3 + loop:  # a few frames per loop: a loss of a few %
                targets.add(n + 1)
            n += size
    pusher = RtpPusher(hub.rtp.udp_port, 77, clip, fps=250, loops=2, drop=targets.__contains__)
    await run(pusher)
    assert pusher.dropped_packets > 3
    assert s.lost == pusher.dropped_packets
    assert s.packets == pusher.sent_packets
    assert 0 < s.loss < 0.05
    assert s.video_frames < 2 * len(clip)  # frames that lost a packet were dropped
    assert s.demuxer is not None and s.demuxer.dropped_frames > 0
    described = s.describe()
    assert described["lost"] == pusher.dropped_packets and described["jitter_ms"] >= 0


async def test_latching_adopts_an_unknown_ssrc_on_udp_and_tcp(hub: MediaHub) -> None:
    clip = ps_clip()
    u = hub.publish("rtp/latch-udp", kind="rtp")
    t = hub.publish("rtp/latch-tcp", kind="rtp")
    bu = hub.rtp.bind(0x0200000009, u, latch=True, peer="127.0.0.1")
    bt = hub.rtp.bind(0x020000000A, t, latch=True)
    # A device that sends SSRC 0 over UDP, another with its own SSRC over TCP.
    await run(RtpPusher(hub.rtp.udp_port, 0, clip, fps=250, loops=1))
    await run(RtpPusher(hub.rtp.tcp_port, 0x12345678, clip, tcp=True, fps=250, loops=1))
    assert bu.ssrc == 0 and u.ready and u.video_frames >= len(clip) - 1
    assert bt.ssrc == 0x12345678 and t.ready and t.video_frames >= len(clip) - 1
    assert hub.rtp.latched == 2
    # Now bound: a stranger's SSRC is not latched by anyone.
    await run(RtpPusher(hub.rtp.udp_port, 4242, clip[:5], fps=250, loops=1))
    assert hub.rtp.unknown > 0 and u.packets == bu.packets


async def test_unmatched_tcp_connection_is_closed(hub: MediaHub) -> None:
    hub.rtp.tcp_match_timeout = 0.2
    hub.rtp._reaper.cancel()  # type: ignore[union-attr]
    hub.rtp._schedule_reaper()
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.rtp.tcp_port)
    pusher = RtpPusher(hub.rtp.tcp_port, 555, ps_clip()[:3], tcp=True, fps=250, loops=1)
    await run(pusher)
    async with asyncio.timeout(3):
        assert await reader.read() == b""  # closed by the server
    writer.close()


async def test_tcp_active_connects_to_the_device(hub: MediaHub) -> None:
    clip = ps_clip()
    device = socket.socket()
    device.bind(("127.0.0.1", 0))
    device.listen(1)
    port = device.getsockname()[1]
    s = hub.publish("rtp/active", kind="rtp")
    binding = await hub.rtp.connect("127.0.0.1", port, 31, s)
    conn, _ = await asyncio.to_thread(device.accept)

    def send() -> None:
        from xueliang.media.ps_mux import PsMuxer
        from xueliang.media.rtp import RtpPacketizer

        muxer, packetizer = PsMuxer(), RtpPacketizer(31, rfc4571=True)
        for f in clip:
            conn.sendall(b"".join(packetizer.packetize(muxer.mux(f), f.dts & 0xFFFFFFFF)))

    await asyncio.to_thread(send)
    await asyncio.sleep(0.2)
    assert s.ready and s.video_frames >= len(clip) - 1 and binding.transport == "tcp-active"
    s.end("done")
    assert binding.closed
    conn.close()
    device.close()
    with pytest.raises(Unavailable):
        await hub.rtp.connect("127.0.0.1", port, 32, hub.publish("rtp/x", kind="rtp"), timeout=1)


async def test_a_datagram_the_stream_cannot_parse_counts_as_bad_on_its_binding(hub: MediaHub) -> None:
    s = hub.publish("rtp/bad", kind="rtp")
    b = hub.rtp.bind(77, s)
    # RTP version 2, but 15 CSRCs announced in a 12-byte datagram: the stream refuses it.
    b.feed(bytes([0x8F, 96, 0, 1, 0, 0, 0, 1]) + (77).to_bytes(4, "big"), 0.0)
    assert (b.bad, b.packets, s.packets, s.bytes_in) == (1, 0, 0, 0)
    b.feed(_rtp(77, 1), 0.0)
    assert (b.bad, b.packets, s.packets, s.bytes_in) == (1, 1, 1, len(_rtp(77, 1)))
    b.close()


async def test_port_range_gives_a_binding_its_own_port() -> None:
    lo, hi = free_range(11)
    server = RtpServer("127.0.0.1", 0, 0, port_range=(lo, hi))
    h = MediaHub(MediaConfig(rtp_port=0, rtp_tcp_port=0), EventBus(), rtp=server)
    await h.start()
    try:
        s = h.publish("rtp/own", kind="rtp")
        b = server.bind(9, s, dedicated=True)
        assert b.port is not None and lo <= b.port <= hi
        # Whatever SSRC arrives on its own port feeds it.
        await run(RtpPusher(b.port, 0xDEAD, ps_clip(), fps=250, loops=1))
        assert s.ready and s.packets > 0
        b.close()
    finally:
        await h.stop()


async def test_a_used_up_port_range_leaves_nothing_bound() -> None:
    only = free_port()
    server = RtpServer("127.0.0.1", 0, 0, port_range=(only, only))
    h = MediaHub(MediaConfig(rtp_port=0, rtp_tcp_port=0), EventBus(), rtp=server)
    await h.start()
    try:
        first = server.bind(21, h.publish("rtp/a", kind="rtp"), dedicated=True)
        assert first.port == only
        s = h.publish("rtp/b", kind="rtp")
        with pytest.raises(Unavailable, match=str(only)):
            server.bind(22, s, dedicated=True)
        assert [b.ssrc for b in server.bindings()] == [21] and s.bindings == []
        server.bind(22, s)  # the shared port still takes it
        first.close()
        again = server.bind(23, h.publish("rtp/c", kind="rtp"), dedicated=True)
        assert again.port == only  # a closed binding gives its port back
    finally:
        await h.stop()


def test_port_range_is_checked_at_start() -> None:
    from pydantic import ValidationError

    assert MediaConfig(rtp_port_range=(30002, 30999)).rtp_port_range == (30002, 30999)
    for bad in [(30999, 30002), (80, 90), (29990, 30010)]:  # reversed, privileged, holds rtp_port
        with pytest.raises(ValidationError, match="rtp_port_range"):
            MediaConfig(rtp_port_range=bad)


async def test_a_stream_takes_packets_from_its_source_host_only(hub: MediaHub) -> None:
    """Someone else on the camera network who guesses a live stream's SSRC cannot splice their
    own video into it: the binding keeps to the host its first packet came from."""
    real, fake = ps_clip(176, 144), ps_clip(320, 240)
    s = hub.publish("rtp/pinned", kind="rtp")
    b = hub.rtp.bind(0x20000077, s)
    pusher = RtpPusher(hub.rtp.udp_port, 0x20000077, real, fps=250, loops=3)
    pusher.start()
    reader = await ready_reader(s)
    # The intruder: the same SSRC, another clip, from another loopback host (127.0.0.2).
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.bind(("127.0.0.2", 0))
    pk = RtpPacketizer(0x20000077, payload_type=96)
    mux = PsMuxer()
    sent = 0
    for i, f in enumerate(fake * 3):
        for pkt in pk.packetize(mux.mux(f), timestamp=90_000 + i * 3600, marker=True):
            intruder.sendto(pkt, ("127.0.0.1", hub.rtp.udp_port))
            sent += 1
        if i % 20 == 0:
            await asyncio.sleep(0.01)
    intruder.close()
    await asyncio.to_thread(pusher.wait)
    await asyncio.sleep(0.3)
    frames = received(s, reader)
    assert frames and {f.data for f in frames} <= {f.data for f in real}  # nothing of theirs
    assert (s.width, s.height) == (176, 144)
    assert b.foreign == sent > 0 and hub.rtp.foreign == sent
    assert s.packets == pusher.sent_packets


class _Sink:
    def __init__(self, name: str) -> None:
        self.name = name
        self.bindings: list[Any] = []
        self.seqs: list[int] = []

    def feed_rtp(self, data: bytes, now: float) -> bool:
        self.seqs.append(int.from_bytes(data[2:4], "big"))
        return True


def _rtp(ssrc: int, seq: int) -> bytes:
    return bytes([0x80, 96]) + seq.to_bytes(2, "big") + (seq * 3600).to_bytes(4, "big") + ssrc.to_bytes(4, "big") \
        + b"\x00" * 100


async def test_the_shared_port_is_polled_while_rtp_flows_and_woken_on_again_when_quiet() -> None:
    server = RtpServer("127.0.0.1", 0, 0, poll_interval=0.005)
    await server.start()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sink = _Sink("rtp/poll")
        binding = server.bind(0x20000077, sink)
        to = ("127.0.0.1", server.udp_port)
        assert not server.polling
        # The first datagram wakes the loop; from then on the port is read on a timer, and
        # every datagram of a burst larger than one read's worth still arrives.
        out.sendto(_rtp(0x20000077, 0), to)
        await until(lambda: binding.packets == 1, 5.0)
        assert server.polling and server.poll_starts == 1
        for seq in range(1, 601):
            out.sendto(_rtp(0x20000077, seq), to)
        await until(lambda: binding.packets == 601, 5.0)
        assert server.polling
        # Quiet for longer than the idle limit: back to waking for the next datagram...
        await until(lambda: not server.polling, 5.0)
        out.sendto(_rtp(0x20000077, 601), to)
        await until(lambda: binding.packets == 602, 5.0)
        assert server.poll_starts == 2  # ...which starts polling again
        assert sink.seqs == list(range(602))  # all of them, in order
        assert server.unknown == server.bad == 0
    finally:
        out.close()
        await server.stop()
    assert not server.polling


async def test_no_polling_when_switched_off() -> None:
    server = RtpServer("127.0.0.1", 0, 0, poll_interval=0.0)
    await server.start()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        binding = server.bind(0x20000078, _Sink("rtp/wake"))
        for seq in range(50):
            out.sendto(_rtp(0x20000078, seq), ("127.0.0.1", server.udp_port))
        await until(lambda: binding.packets == 50, 5.0)
        assert not server.polling and server.poll_starts == 0
    finally:
        out.close()
        await server.stop()


async def test_an_error_while_polled_does_not_silence_the_port() -> None:
    # A stream's feed raising (a bug anywhere downstream) is logged by the loop; the shared
    # port must go on being read, as it would be by a reader callback.
    class Failing(_Sink):
        def feed_rtp(self, data: bytes, now: float) -> bool:
            fed = super().feed_rtp(data, now)
            if self.seqs[-1] == 5:
                raise RuntimeError("a bug downstream")
            return fed

    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    server = RtpServer("127.0.0.1", 0, 0, poll_interval=0.005)
    await server.start()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sink = Failing("rtp/failing")
        server.bind(0x20000079, sink)
        to = ("127.0.0.1", server.udp_port)
        out.sendto(_rtp(0x20000079, 0), to)
        await until(lambda: server.polling, 5.0)
        for seq in range(1, 40):
            out.sendto(_rtp(0x20000079, seq), to)
            await asyncio.sleep(0.002)
        await until(lambda: 39 in sink.seqs, 5.0)
        assert any("a bug downstream" in str(e.get("exception")) for e in errors)
    finally:
        loop.set_exception_handler(None)
        out.close()
        await server.stop()


async def test_tcp_connections_are_read_once_a_tick_and_lose_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """RTP over TCP with polling on: devices writing each packet on its own wake the loop once
    a tick, not once a write; every packet still arrives, in order, including those written
    just before the device closed; quiet, the connections are waited on again."""
    from xueliang.media import rtp_server

    reads = 0
    real = rtp_server._TcpConnection.data_received

    def counted(self: Any, data: bytes, now: float) -> None:
        nonlocal reads
        reads += 1
        real(self, data, now)

    monkeypatch.setattr(rtp_server._TcpConnection, "data_received", counted)
    server = RtpServer("127.0.0.1", 0, 0, poll_interval=0.05)
    await server.start()
    try:
        sinks = [_Sink(f"rtp/tcp-tick{i}") for i in range(2)]
        bindings = [server.bind(0x2000007A + i, sink) for i, sink in enumerate(sinks)]
        writers = [(await asyncio.open_connection("127.0.0.1", server.tcp_port))[1] for _ in sinks]
        assert not server.tcp_polling
        for seq in range(60):  # 2 x 60 writes over about 120 ms: two or three ticks
            for i, w in enumerate(writers):
                p = _rtp(0x2000007A + i, seq)
                w.write(len(p).to_bytes(2, "big") + p)
                await w.drain()
            await asyncio.sleep(0.002)
        assert server.tcp_polling
        for w in writers:
            w.close()
        await until(lambda: all(b.packets == 60 for b in bindings), 5.0)
        assert all(sink.seqs == list(range(60)) for sink in sinks)
        assert reads <= 20, reads  # one read per write would be about 120
        await until(lambda: not server._tcp_conns, 5.0)  # the close is seen on a tick too
        await until(lambda: not server.tcp_polling, 5.0)
    finally:
        await server.stop()


async def test_tcp_without_polling_reads_at_once() -> None:
    server = RtpServer("127.0.0.1", 0, 0, poll_interval=0.0)
    await server.start()
    try:
        binding = server.bind(0x2000007C, _Sink("rtp/tcp-wake"))
        _, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
        for seq in range(5):
            p = _rtp(0x2000007C, seq)
            writer.write(len(p).to_bytes(2, "big") + p)
            await writer.drain()
            await until(lambda seq=seq: binding.packets == seq + 1, 5.0)
        assert not server.tcp_polling
        writer.close()
        await until(lambda: not server._tcp_conns, 5.0)
    finally:
        await server.stop()


async def test_a_queue_longer_than_a_burst_is_read_in_batches_and_sorted_exactly() -> None:
    # 700 datagrams queued before the first read (more than a burst of four batches): three
    # SSRCs interleaved, garbage, an unknown SSRC and an intruder using a bound SSRC from another
    # host. Every datagram lands where it belongs, in order, and is counted once: the batched
    # read (recvmmsg when built; the pure Python run of tests/test.sh reads with recvfrom).
    server = RtpServer("127.0.0.1", 0, 0, poll_interval=0.005)
    await server.start()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.bind(("127.0.0.2", 0))
    try:
        sinks = [_Sink(f"rtp/{i}") for i in range(3)]
        ssrcs = [0x20000100 + i for i in range(3)]
        bindings = [server.bind(s, k) for s, k in zip(ssrcs, sinks, strict=True)]
        asyncio.get_running_loop().remove_reader(server._udp.fileno())  # type: ignore[union-attr]
        to = ("127.0.0.1", server.udp_port)
        sent = {s: [] for s in ssrcs}  # type: dict[int, list[int]]
        out.sendto(_rtp(ssrcs[0], 60000), to)  # pins every binding's host on 127.0.0.1 first
        sent[ssrcs[0]].append(60000)
        out.sendto(_rtp(ssrcs[1], 60000), to)
        sent[ssrcs[1]].append(60000)
        out.sendto(_rtp(ssrcs[2], 60000), to)
        sent[ssrcs[2]].append(60000)
        bad = unknown = foreign = 0
        for i in range(700):
            if i % 50 == 7:
                out.sendto(b"\x00" * 20, to)
                bad += 1
            elif i % 50 == 11:
                out.sendto(_rtp(0x7777, i), to)
                unknown += 1
            elif i % 50 == 13:
                intruder.sendto(_rtp(ssrcs[1], i), to)
                foreign += 1
            else:
                s = ssrcs[i % 3]
                out.sendto(_rtp(s, i), to)
                sent[s].append(i)
        read = server._drain_shared()
        assert read == 3 + 700
        assert [k.seqs for k in sinks] == [sent[s] for s in ssrcs]
        assert [b.packets for b in bindings] == [len(sent[s]) for s in ssrcs]
        assert (server.bad, server.unknown, server.foreign) == (bad, unknown, foreign)
        assert bindings[1].foreign == foreign and bindings[0].foreign == bindings[2].foreign == 0
        assert bindings[0].source == ("127.0.0.1", out.getsockname()[1])
        assert server.udp_packets == 703
    finally:
        out.close()
        intruder.close()
        await server.stop()


class _CountingSocket(socket.socket):
    """A real socket that counts its reads and the reads that found nothing (EAGAIN)."""

    reads = 0  # per socket: the first count makes it the instance's own
    empty = 0

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self.reads += 1
        try:
            return super().recv(bufsize, flags)
        except BlockingIOError:
            self.empty += 1
            raise


async def test_a_tcp_read_stops_at_a_short_read_and_a_full_one_reads_on() -> None:
    # Under load a connection has a packet or two each tick: asking again for the EAGAIN was a
    # system call and an exception per connection per tick. A read that fills the buffer may
    # leave more behind: then it reads on, in the same tick.
    from xueliang.media import rtp_server

    server = RtpServer("127.0.0.1", 0, 0)
    await server.start()
    listen = socket.create_server(("127.0.0.1", 0))
    b = socket.create_connection(listen.getsockname())
    a, _ = listen.accept()
    listen.close()
    ours = _CountingSocket(fileno=a.detach())
    ours.setblocking(False)
    try:
        sink = _Sink("rtp/tcp-reads")
        binding = server.bind(0x2000007F, sink)
        conn = rtp_server._TcpConnection(server, ours, binding)
        b.sendall(b"".join(len(p).to_bytes(2, "big") + p for p in (_rtp(0x2000007F, s) for s in range(3))))
        await asyncio.sleep(0.05)
        conn.read(0.0)
        assert sink.seqs == [0, 1, 2]
        assert (ours.reads, ours.empty) == (1, 0)
        # More than one read's worth (each 110-byte packet with its 2-byte length): all of it now.
        n = rtp_server._TCP_READ // 112 + 50
        b.setblocking(False)
        data = b"".join(len(p).to_bytes(2, "big") + p for p in (_rtp(0x2000007F, 3 + s) for s in range(n)))
        sent = 0
        while sent < len(data):
            try:
                sent += b.send(data[sent:])
            except BlockingIOError:
                conn.read(0.0)  # the connection's buffers are smaller than the data
        await asyncio.sleep(0.05)
        conn.read(0.0)
        assert sink.seqs == list(range(3 + n))
        assert not conn.closed
    finally:
        b.close()
        ours.close()
        await server.stop()


def test_the_readiness_set_without_epoll_reports_what_epoll_would() -> None:
    # Where there is no epoll (not Linux) the server's TCP connections are watched through
    # selectors behind the same methods; the server itself uses epoll here.
    import select

    from xueliang.media import rtp_server

    used = rtp_server._readiness()
    assert isinstance(used, select.epoll)
    used.close()
    ready = rtp_server._SelectorReadiness()
    a, b = socket.socketpair()
    try:
        ready.register(a.fileno(), select.POLLIN)
        assert ready.poll(0) == []
        b.send(b"x")
        assert ready.poll(0) == [(a.fileno(), select.POLLIN)]
        # The descriptor the loop waits on when quiet turns readable too.
        assert select.select([ready.fileno()], [], [], 1.0)[0] == [ready.fileno()]
        ready.unregister(a.fileno())
        assert ready.poll(0) == []
    finally:
        ready.close()
        a.close()
        b.close()
