"""A receiving GB/T 28181 peer for the PS-over-RTP sender tests: it takes RTP by UDP, by TCP
that it listens for (the sender connects) or by TCP it opens (the sender listens), and checks
what arrived the way an upper platform would: SSRC, gapless sequence numbers, one timestamp and
one marker per frame, the PS demultiplexed by the platform's own demuxer, and the video decoded
by FFmpeg (PyAV) from the PS as a file."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from xueliang.media.frame import Frame
from xueliang.media.ps import PsDemuxer
from xueliang.media.rtp import Rfc4571Deframer, RtpPacket, parse_rtp


@dataclass
class Received:
    packets: list[RtpPacket] = field(default_factory=list)
    #: the (host, port) the packets came from (UDP) or the connections came from (TCP)
    sources: set[tuple[str, int]] = field(default_factory=set)

    @property
    def ssrcs(self) -> set[int]:
        return {p.ssrc for p in self.packets}

    def sequence_gaps(self) -> int:
        """Packets missing between the first and the last (16-bit wrap handled)."""
        gaps = 0
        for a, b in zip(self.packets, self.packets[1:], strict=False):
            gaps += (b.sequence - a.sequence - 1) & 0xFFFF
        return gaps

    def frames(self) -> list[Frame]:
        """The platform's own PS demuxer over the payloads, frame boundaries from the RTP."""
        dm = PsDemuxer()
        out: list[Frame] = []
        for p in self.packets:
            out += dm.feed(bytes(p.payload), p.timestamp, p.marker, p.sequence)
        out += dm.flush()
        return out

    def markers_per_timestamp(self) -> bool:
        """Every timestamp's packets end with exactly one marker (the last). The newest
        timestamp may still be arriving when this is asked (a frame's packets come over several
        turns of the loop on a loaded machine): it needs at most one marker, and that one last."""
        by_ts: dict[int, list[bool]] = {}
        for p in self.packets:
            by_ts.setdefault(p.timestamp, []).append(p.marker)
        if not by_ts:
            return False
        *done, newest = by_ts.values()
        return all(m[-1] and sum(m) == 1 for m in done) and sum(newest) == (1 if newest[-1] else 0)

    def decode(self, tmp: Path) -> tuple[str, int, int, int]:
        """(codec, width, height, frames decoded) by FFmpeg from the PS written as a file."""
        path = tmp / "received.ps"
        path.write_bytes(b"".join(bytes(p.payload) for p in self.packets))
        with av.open(str(path), format="mpeg") as container:
            stream = container.streams.video[0]
            n = sum(1 for _ in container.decode(video=0))
            return stream.codec_context.name, stream.codec_context.width, stream.codec_context.height, n


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, got: Received) -> None:
        self.got = got

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.sources.add((str(addr[0]), int(addr[1])))
        self.got.packets.append(parse_rtp(data))


class _Tcp(asyncio.Protocol):
    def __init__(self, peer: RtpPeer) -> None:
        self.peer = peer
        self.deframer = Rfc4571Deframer()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.peer.connections += 1
        self.peer.transports.append(transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer.got.sources.add((str(peer[0]), int(peer[1])))

    def data_received(self, data: bytes) -> None:
        for raw in self.deframer.feed(data):
            self.peer.got.packets.append(parse_rtp(raw))

    def connection_lost(self, exc: Exception | None) -> None:
        self.peer.closed_connections += 1


class RtpPeer:
    """``udp``: a socket; ``listen``: a TCP server the sender connects to; ``connect(host,
    port, source=...)``: we connect to the sender's port (its tcp-passive)."""

    def __init__(self) -> None:
        self.got = Received()
        self.port = 0
        self.connections = 0
        self.closed_connections = 0
        self.transports: list[asyncio.BaseTransport] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None

    async def udp(self, host: str = "127.0.0.1") -> int:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((host, 0))
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self.got), sock=sock)
        self.port = sock.getsockname()[1]
        return self.port

    async def listen(self, host: str = "127.0.0.1") -> int:
        self._server = await asyncio.get_running_loop().create_server(lambda: _Tcp(self), host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def connect(self, host: str, port: int, source: str = "127.0.0.1") -> asyncio.BaseTransport:
        transport, _ = await asyncio.get_running_loop().create_connection(
            lambda: _Tcp(self), host, port, local_addr=(source, 0))
        return transport

    async def wait_frames(self, count: int, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len({p.timestamp for p in self.got.packets if p.marker}) < count:
            if loop.time() > deadline:
                raise TimeoutError(f"{len(self.got.packets)} packets after {timeout} s")
            await asyncio.sleep(0.02)

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        for t in self.transports:
            t.close()
