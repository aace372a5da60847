"""PS over RTP out of the hub (级联上送): what an upper platform (or any GB/T 28181 peer) receives.

Two pieces:

* :class:`PsOutput`, the ``ps`` output format of a stream: each frame muxed once into a PS
  chunk (pack header, system header and PSM before key frames, PES), shared by every reader
  like the fMP4 and FLV outputs, so ten uppers watching a camera cost one muxing.
* :class:`PsRtpSender`, one reader of it sent as RTP with the SSRC and payload type the peer
  gave: over UDP; over TCP with RFC 4571 framing, either connecting to the peer
  (``tcp-active``) or listening on a port of our own that only the peer's addresses may
  connect to (``tcp-passive``). All packets of a frame share its timestamp and the last one
  carries the marker (GB/T 28181). A sender that cannot keep up (a TCP peer reading slowly)
  drops whole frames up to the next key frame, never single packets, so the peer's
  sequence numbers stay gapless and its decoder restarts cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, cast

from xueliang.media.frame import Codec, Frame
from xueliang.media.nal import inspect_access_unit
from xueliang.media.outputs import READER_LIMIT, Output, OutputSource, Reader
from xueliang.media.ports import PortPool
from xueliang.media.ps_mux import PsMuxer
from xueliang.media.rtp import RtpPacketizer

__all__ = ["TRANSPORTS", "PsChunk", "PsOutput", "PsReader", "PsRtpSender"]

log = logging.getLogger("xueliang.media.ps_rtp_out")

TRANSPORTS = ("udp", "tcp-active", "tcp-passive")
#: TCP bytes waiting in the kernel and the transport beyond which frames are dropped up to the
#: next key frame (about 2 s of a 4 Mbit/s camera).
TCP_BACKLOG = 1 << 20
#: UDP packets held while the kernel's send buffer is full, beyond which frames are dropped.
UDP_BACKLOG_PACKETS = 4096
#: Linux's UDP_SEGMENT socket option (GSO), and the segments per send (64 KB at most).
_UDP_SEGMENT = 103
_GSO_SEGMENTS = 40
#: RTP packets no bigger than this (a 1500-byte MTU less IP/UDP headers and some room).
MTU = 1400


@dataclass(frozen=True, slots=True)
class PsChunk:
    """One frame as PS: the bytes and the RTP timestamp (the frame's DTS, 90 kHz)."""

    data: bytes
    timestamp: int
    key: bool


class PsOutput(Output[PsChunk]):
    """The ``ps`` format of a stream: one PS chunk per frame, muxed once for all readers."""

    fmt = "ps"

    def __init__(self, stream: OutputSource) -> None:
        super().__init__(stream)
        self.muxer = PsMuxer(video=stream.codec)

    def mux(self, frame: Frame) -> PsChunk | None:
        key = frame.keyframe and frame.codec.is_video
        if key and frame.codec in (Codec.H264, Codec.H265):
            _, params = inspect_access_unit(frame.codec, frame.data)
            if not params:
                # A source that sent its parameter sets out of band (RTSP's SDP): a GB/T 28181
                # receiver only has the stream, so each key frame carries them in band.
                ps = self.stream.parameter_sets
                inband = b"".join(b"\x00\x00\x00\x01" + p for p in (ps.vps, ps.sps, ps.pps) if p)
                frame = Frame(frame.codec, frame.pts, frame.dts, inband + frame.data, frame.keyframe)
        return PsChunk(self.muxer.mux(frame), frame.dts, key)

    def size(self, chunk: PsChunk) -> int:
        return len(chunk.data)

    def _new_reader(self, limit: int, info: dict[str, Any] | None) -> PsReader:
        return PsReader(self, limit, info)

    def add_reader(self, limit: int = READER_LIMIT, info: dict[str, Any] | None = None) -> PsReader:
        """As `Output.add_reader`, with a reader that can hand its chunks straight to a sender."""
        return cast(PsReader, super().add_reader(limit, info))


class PsReader(Reader[PsChunk]):
    """A reader of PS chunks that queues them (before the peer is ready: the GOP it will start
    with) and then, once a ``sink`` is set, hands each one to it as the stream publishes it: no
    queue and no task between the stream and the socket, which is what makes an upper cost no
    more than a local viewer. ``on_eof`` is told when the stream ends."""

    __slots__ = ("on_eof",)

    def __init__(self, output: Output[PsChunk], limit: int, info: dict[str, Any] | None = None) -> None:
        super().__init__(output, limit, info)
        self.on_eof: Callable[[], None] | None = None

    def _end(self) -> None:
        super()._end()
        if self.on_eof is not None and not self.closed:
            # Not from inside the stream's own end(): the callback closes this reader.
            asyncio.get_running_loop().call_soon(self.on_eof)


class _Conn(asyncio.Protocol):
    def __init__(self, sender: PsRtpSender) -> None:
        self.sender = sender
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.sender._connected(self)

    def data_received(self, data: bytes) -> None:
        pass  # RTCP or nothing: GB/T 28181 peers send nothing we use

    def connection_lost(self, exc: Exception | None) -> None:
        self.sender._lost(self, exc)


class PsRtpSender:
    """One reader of a stream's ``ps`` output, sent to one peer (see the module docstring).

    Life: :meth:`open` binds (UDP: a socket; ``tcp-passive``: a listening port) and returns
    the local port to put in the SDP answer; :meth:`start` begins sending (``tcp-active``
    connects first; ``tcp-passive`` sends once the peer connected); :meth:`close` ends it.
    ``on_end(reason)`` is called once when it ends by itself (stream ended, peer went away,
    nobody connected in time).
    """

    def __init__(
        self,
        reader: PsReader,
        *,
        ssrc: int,
        transport: str,
        host: str,
        port: int,
        payload_type: int = 96,
        bind_host: str = "0.0.0.0",
        allowed_hosts: Collection[str] = (),
        connect_timeout: float = 10.0,
        on_end: Callable[[str], None] | None = None,
        ports: PortPool | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        self.reader = reader
        self.ssrc = ssrc & 0xFFFFFFFF
        self.transport = transport
        self.host, self.port = host, port
        self.bind_host = bind_host
        #: tcp-passive: the hosts a connection is accepted from (the peer's media and signalling
        #: addresses); anyone else is refused at once.
        self.allowed_hosts = frozenset(allowed_hosts) or frozenset({host})
        self.connect_timeout = connect_timeout
        self.on_end = on_end
        #: where the local port comes from (media.upstream_port_range); None: the OS picks
        self.ports = ports
        #: the port taken from ``ports``, given back on close
        self._pool_port: int | None = None
        self.packetizer = RtpPacketizer(ssrc, payload_type, MTU, rfc4571=transport != "udp")
        self.local_port: int | None = None
        self.peer: tuple[str, int] | None = None
        self.closed = False
        self.end_reason = ""
        # counters
        self.packets = 0
        self.bytes = 0
        self.frames = 0
        self.dropped_frames = 0
        self.refused = 0
        self._sock: socket.socket | None = None
        self._gso = False
        #: UDP packets the kernel had no room for yet (sent when the socket is writable again)
        self._pending: deque[bytes] = deque()
        #: send errors (ICMP port unreachable: the upper's port is not open yet, or any more)
        self.errors = 0
        self._server: asyncio.Server | None = None
        self._conn: _Conn | None = None
        self._waiter: asyncio.Task[None] | None = None
        self._skipping = False

    # -- life --------------------------------------------------------------------------------

    async def open(self) -> int:
        """Bind; the local port (for UDP the one we send from, for tcp-passive the one we listen
        on, for tcp-active 9, the discard port RFC 4145 answers with)."""
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            # A plain non-blocking socket, connected to the upper: one send() per packet and no
            # transport layer in between is what keeps an upper as cheap as a local viewer.
            sock = self._bound(socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                with contextlib.suppress(OSError):  # a key frame of a 4K camera is ~1 MB at once
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
                sock.connect((self.host, self.port))
            except OSError:
                sock.close()
                self._give_back()
                raise
            try:  # UDP GSO (Linux 4.18+): a frame's packets in one send, cut by the kernel
                sock.setsockopt(socket.IPPROTO_UDP, _UDP_SEGMENT, MTU)
                self._gso = True
            except OSError:
                self._gso = False
            self._sock = sock
            self.local_port = int(sock.getsockname()[1])
        elif self.transport == "tcp-passive":
            # on a port of the range, or one the OS picks (_bound decides)
            sock = self._bound(socket.SOCK_STREAM)
            try:
                sock.listen(1)
                self._server = await loop.create_server(lambda: _Conn(self), sock=sock)
            except BaseException:
                sock.close()
                self._give_back()
                raise
            self.local_port = int(self._server.sockets[0].getsockname()[1])
        else:
            if self.ports is not None:
                # Reserve the source port now: a range used up refuses the INVITE, not the
                # connection after the ACK. Each attempt in _connect binds it again.
                self._bound(socket.SOCK_STREAM).close()
            self.local_port = 9
        return self.local_port

    def _bound(self, kind: int, port: int | None = None) -> socket.socket:
        """A socket of ``kind`` bound on ``bind_host``: to ``port``, else to one from ``ports``
        (kept in ``_pool_port``), else to one the OS picks."""
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET

        def bind(p: int) -> socket.socket:
            sock = socket.socket(family, kind)
            try:
                if kind == socket.SOCK_STREAM:  # the port of an ended stream may be in TIME_WAIT
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.bind_host, p))
            except OSError:
                sock.close()
                raise
            return sock

        if port is not None or self.ports is None:
            return bind(port or 0)
        self._pool_port, sock = self.ports.acquire(bind)
        return sock

    def _give_back(self) -> None:
        if self._pool_port is not None and self.ports is not None:
            self.ports.release(self._pool_port)
        self._pool_port = None

    def start(self) -> None:
        """The peer acknowledged: send (after connecting, or once it connected)."""
        if self.closed or self._waiter is not None or self.reader.sink is not None:
            return
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            self._begin()
        elif self.transport == "tcp-active":
            self._waiter = loop.create_task(self._connect(), name=f"rtp-out connect {self.host}:{self.port}")
        else:
            self._waiter = loop.create_task(self._await_peer(), name="rtp-out accept")

    def close(self, reason: str = "closed") -> None:
        """Stop sending and release the ports; idempotent. ``on_end`` is not called."""
        if self.closed:
            return
        self.closed = True
        self.end_reason = self.end_reason or reason
        self.reader.close()
        self.reader.sink = None
        self.reader.on_eof = None
        if self._waiter is not None and self._waiter is not asyncio.current_task():
            self._waiter.cancel()
        if self._sock is not None:
            if self._pending:
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().remove_writer(self._sock.fileno())
            self._sock.close()
            self._pending.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.close()
        self._give_back()

    def _end(self, reason: str) -> None:
        if self.closed:
            return
        self.end_reason = reason
        self.close(reason)
        if self.on_end is not None:
            self.on_end(reason)

    # -- TCP ---------------------------------------------------------------------------------

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        last: Exception | None = None
        while loop.time() < deadline and not self.closed:
            try:
                async with asyncio.timeout(max(0.1, deadline - loop.time())):
                    await self._dial(loop)
                return
            except (OSError, TimeoutError) as exc:  # the peer may open its port a moment after the ACK
                last = exc
                await asyncio.sleep(0.2)
        self._end(f"cannot connect to {self.host}:{self.port}: {last}")

    async def _dial(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._pool_port is None:
            await loop.create_connection(lambda: _Conn(self), self.host, self.port)
            return
        sock = self._bound(socket.SOCK_STREAM, self._pool_port)  # the source port reserved in open()
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, (self.host, self.port))
            await loop.create_connection(lambda: _Conn(self), sock=sock)
        except BaseException:
            sock.close()
            raise

    async def _await_peer(self) -> None:
        await asyncio.sleep(self.connect_timeout)
        if self._conn is None:
            self._end("the peer did not connect to our RTP port")

    def _connected(self, conn: _Conn) -> None:
        assert conn.transport is not None
        peer = conn.transport.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        if self.transport == "tcp-passive":
            if self.closed or self._conn is not None or host not in self.allowed_hosts:
                # Not the peer the SDP named (or a second connection): this port is the stream
                # of one upper, not a feed for whoever finds it.
                self.refused += 1
                log.info("RTP out: refused a connection from %s (expected %s)", host,
                         ", ".join(sorted(self.allowed_hosts)))
                conn.transport.abort()
                return
            if self._server is not None:  # one connection per stream: stop listening
                self._server.close()
                self._server = None
        self._conn = conn
        self.peer = (host, int(peer[1])) if peer else None
        sock = conn.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._waiter is not None and self.transport == "tcp-passive":
            self._waiter.cancel()
            self._waiter = None
        if not self.closed:
            self._begin()

    def _lost(self, conn: _Conn, exc: Exception | None) -> None:
        if conn is self._conn:
            self._end(f"the peer closed the RTP connection{f' ({exc})' if exc else ''}")

    # -- sending -----------------------------------------------------------------------------

    def _begin(self) -> None:
        """What the reader queued (from the key frame it started at), then every chunk as the
        stream publishes it."""
        reader = self.reader
        if self.closed or reader.sink is not None:
            return
        for chunk in reader.get_nowait():
            self._send(chunk)
        if reader.eof:
            self._end("end of stream")
            return
        reader.on_eof = lambda: self._end("end of stream")
        reader.sink = self._take

    def _take(self, chunk: PsChunk) -> bool:
        """The reader's sink: every chunk is taken (sent, or dropped and counted), none queued."""
        self._send(chunk)
        return True

    def _send(self, chunk: PsChunk) -> None:
        if self.transport == "udp":
            if self._sock is None:
                return
            if len(self._pending) > UDP_BACKLOG_PACKETS:  # the kernel has been full for a while
                self.dropped_frames += 1
                return
            packets = self.packetizer.packetize(chunk.data, chunk.timestamp)
            self._udp_send(packets)
        else:
            conn = self._conn
            if conn is None or conn.transport is None or conn.transport.is_closing():
                return
            t = conn.transport
            if self._skipping or t.get_write_buffer_size() > TCP_BACKLOG:
                if not chunk.key or t.get_write_buffer_size() > TCP_BACKLOG:
                    self._skipping = True
                    self.dropped_frames += 1
                    return
                self._skipping = False
            packets = self.packetizer.packetize(chunk.data, chunk.timestamp)
            t.write(b"".join(packets))
        self.frames += 1
        self.packets += len(packets)
        self.bytes += sum(len(p) for p in packets)

    def _udp_send(self, packets: list[bytes]) -> None:
        sock = self._sock
        assert sock is not None
        if self._pending:
            self._pending.extend(packets)
            return
        send = sock.send
        if self._gso and len(packets) > 1:
            # Every packet but a frame's last is exactly MTU bytes: the kernel cuts the joined
            # buffer back into the same datagrams, one system call per frame instead of ~8.
            for at in range(0, len(packets), _GSO_SEGMENTS):
                group = packets[at:at + _GSO_SEGMENTS]
                try:
                    send(b"".join(group))
                except BlockingIOError:
                    self._pending.extend(packets[at:])
                    asyncio.get_running_loop().add_writer(sock.fileno(), self._flush)
                    return
                except OSError as exc:
                    if exc.errno in (errno.EIO, errno.EINVAL, errno.EOPNOTSUPP):
                        self._gso = False  # a path that cannot segment: one by one from now
                        self._udp_send(packets[at:])
                        return
                    self.errors += 1
            return
        for i, p in enumerate(packets):
            try:
                send(p)
            except BlockingIOError:
                self._pending.extend(packets[i:])
                asyncio.get_running_loop().add_writer(sock.fileno(), self._flush)
                return
            except OSError:  # ECONNREFUSED from an earlier ICMP: the packet is gone, go on
                self.errors += 1

    def _flush(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while self._pending:
            try:
                sock.send(self._pending[0])
            except BlockingIOError:
                return
            except OSError:
                self.errors += 1
            self._pending.popleft()
        asyncio.get_running_loop().remove_writer(sock.fileno())

    def describe(self) -> dict[str, Any]:
        return {
            "ssrc": f"{self.ssrc:010d}",
            "transport": self.transport,
            "to": f"{self.host}:{self.port}" if self.transport != "tcp-passive" else None,
            "local_port": self.local_port,
            "peer": f"{self.peer[0]}:{self.peer[1]}" if self.peer else None,
            "packets": self.packets,
            "bytes": self.bytes,
            "frames": self.frames,
            "dropped_frames": self.dropped_frames,
            "refused_connections": self.refused,
            "errors": self.errors,
        }
