"""The shared RTP ports: one UDP and one TCP port for every stream, demultiplexed by SSRC.

Firewall- and NAT-friendly (GB/T 28181 platforms usually open one port, not a range):

* **UDP**: one socket, drained a batch of datagrams at a time (``recvmmsg`` where the C
  module is built, :mod:`xueliang.media.udp_batch`; ``recvfrom`` in a loop otherwise). The SSRC (bytes 8–11) selects
  the :class:`RtpBinding`, which parses the packet and feeds its
  :class:`~xueliang.media.stream.Stream` (reordering, loss/jitter, PS demux).
* **TCP passive**: devices connect to our TCP port and send RTP framed by RFC 4571 (2-byte
  length; the 4-byte ``$`` prefix is tolerated). The first packet's SSRC selects the binding;
  the connection then belongs to it (a TCP connection carries one stream).
* **TCP active**: :meth:`RtpServer.connect` — we connect to the device's port.
* **Reading**: the shared UDP port, and every TCP connection together through one selector of
  the server's own, are each one descriptor for the loop (:class:`Poller`): waited on when
  quiet, read every ``poll_interval`` while RTP flows (one loop turn for many packets, instead
  of one per datagram or per write a device makes). Ports of a range wake per datagram.
* Optionally a **port range**: ``bind(..., dedicated=True)`` gives the binding its own UDP
  port from ``port_range``; everything arriving there feeds it, whatever the SSRC.

**Latching** (devices that send SSRC 0, or another SSRC than negotiated): a binding made with
``latch=True`` that has received nothing yet adopts the first packet with an *unknown*
SSRC that arrives

1. on the shared UDP port from the binding's ``peer`` host (when given; any host if not), or
2. as the first packet of a TCP connection to our port, from the ``peer`` host (or any),

the oldest waiting binding first; it is then rebound to that SSRC (:meth:`RtpBinding.rebind`)
and keeps it. Packets with a known SSRC always go to their own binding, so latching never
steals another stream's packets. An unknown SSRC with no latching binding is counted
(``unknown``) and dropped; a TCP connection that matches nothing within ``tcp_match_timeout``
seconds is closed.

**Pinning.** A binding takes packets from one host: its ``peer`` when given, else the host its
first packet came from. Its SSRC arriving from any other host (UDP packet or TCP connection) is
dropped and counted (``foreign``): GB/T 28181 SSRCs are easy to guess, and a stream must not
take video from whoever sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import selectors
import socket
import time
from typing import Any, Protocol

from xueliang.errors import Unavailable
from xueliang.media.rtp import Rfc4571Deframer, be32
from xueliang.media.udp_batch import BATCH, BatchReader, batch_reader
from xueliang.sockets import Poller, grow_receive_buffer


class RtpSink(Protocol):
    """Where a binding's packets go (media/stream.py's Stream is one): the RTP server knows
    nothing else of streams."""

    name: str
    bindings: list[RtpBinding]

    def feed_rtp(self, data: bytes, now: float) -> bool:
        """One datagram; False if it is not RTP."""
        ...

__all__ = ["RtpBinding", "RtpServer"]


def _nothing() -> list[tuple[bytes, tuple[Any, ...]]]:
    return []

log = logging.getLogger("xueliang.media.rtp")

#: Datagrams read per readiness event before yielding to the loop (fairness): four batches.
_BURST = 4 * BATCH
#: Polling: at most this many bursts per tick (then the loop's other work gets its turn).
_POLL_BURSTS = 16
#: Bytes asked of an RTP/TCP connection per read.
_TCP_READ = 262144
#: The shared UDP port's receive buffer asked for unless told (``media.rtp_receive_buffer_mb``):
#: to ride out bursts of key frames and moments when the process is not scheduled. Beyond
#: ``net.core.rmem_max`` it takes SO_RCVBUFFORCE (CAP_NET_ADMIN); otherwise the kernel caps it
#: (see ``receive_buffer``).
_RCVBUF = 128 * 1024 * 1024
#: A port of its own per stream (``rtp_port_range``): one stream's bursts.
_PORT_RCVBUF = 4 * 1024 * 1024


class RtpBinding:
    """SSRC → stream. Made by :meth:`RtpServer.bind` / :meth:`RtpServer.connect`."""

    def __init__(
        self,
        server: RtpServer,
        ssrc: int,
        stream: RtpSink,
        *,
        latch: bool = False,
        peer: str | None = None,
    ) -> None:
        self.server = server
        self.ssrc = ssrc & 0xFFFFFFFF
        self.stream = stream
        self.latch = latch
        self.peer = peer
        self.packets = 0
        self.bad = 0
        self.closed = False
        self.created = time.monotonic()
        self.source: tuple[str, int] | None = None  # where packets came from last
        #: The one host this binding takes packets from: ``peer`` when given, else the host of
        #: its first packet. Packets with its SSRC from anywhere else are dropped and counted
        #: (``foreign``): SSRCs are guessable, so without this anyone on the camera network
        #: could splice their own video into a camera's stream.
        self.host: str | None = peer
        self.foreign = 0
        self.transport: str = "udp"
        #: Own UDP socket (port range), else None.
        self.port: int | None = None
        self._sock: socket.socket | None = None
        self._tcp: list[_TcpConnection] = []

    @property
    def waiting(self) -> bool:
        """Nothing received yet."""
        return self.packets == 0 and not self.closed

    def feed(self, data: bytes, now: float) -> None:
        """One RTP packet for this binding's stream (which parses it: ps_rtp_in.py)."""
        if self.stream.feed_rtp(data, now):
            self.packets += 1
        else:
            self.bad += 1

    def rebind(self, ssrc: int) -> None:
        """The device answered (or sends) another SSRC."""
        self.server._rebind(self, ssrc & 0xFFFFFFFF)

    def close(self) -> None:
        """Stop feeding the stream; idempotent. Closes its TCP connections and own port."""
        if self.closed:
            return
        self.closed = True
        self.server._unbind(self)
        for conn in list(self._tcp):
            conn.close()
        self._tcp.clear()
        if self._sock is not None:
            with contextlib.suppress(Exception):
                self.server._loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        with contextlib.suppress(ValueError):
            self.stream.bindings.remove(self)

    def describe(self) -> dict[str, Any]:
        return {
            "ssrc": self.ssrc,
            "stream": self.stream.name,
            "transport": self.transport,
            "packets": self.packets,
            "latch": self.latch,
            "peer": self.peer,
            "source": list(self.source) if self.source else None,
            "foreign": self.foreign,
            "port": self.port,
        }


class _Readiness(Protocol):
    """What the server asks of its TCP readiness set: ``select.epoll``'s methods."""

    def register(self, fd: int, eventmask: int, /) -> None: ...

    def unregister(self, fd: int, /) -> None: ...

    def poll(self, timeout: float, /) -> list[tuple[int, int]]: ...

    def fileno(self) -> int: ...

    def close(self) -> None: ...


class _SelectorReadiness:
    """The same over :mod:`selectors`, where there is no epoll (not Linux)."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()

    def register(self, fd: int, eventmask: int, /) -> None:
        self._sel.register(fd, selectors.EVENT_READ)

    def unregister(self, fd: int, /) -> None:
        self._sel.unregister(fd)

    def poll(self, timeout: float, /) -> list[tuple[int, int]]:
        return [(key.fd, select.POLLIN) for key, _ in self._sel.select(timeout)]

    def fileno(self) -> int:
        return self._sel.fileno()

    def close(self) -> None:
        self._sel.close()


def _readiness() -> _Readiness:
    """epoll itself where there is one: ``selectors`` wraps it in Python that, drained every
    tick, cost a tuple and a dict lookup in the interpreter per ready connection."""
    epoll = getattr(select, "epoll", None)
    return epoll() if epoll is not None else _SelectorReadiness()


class _TcpConnection:
    """One RTP-over-TCP connection (passive: accepted; active: we connected), read by its
    server (see :meth:`RtpServer._drain_tcp`) from a plain non-blocking socket."""

    def __init__(self, server: RtpServer, sock: socket.socket, binding: RtpBinding | None = None) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.binding = binding
        self.deframer = Rfc4571Deframer()
        self.opened = time.monotonic()
        self.unmatched = 0
        self.closed = False
        self.peer: tuple[str, int] | None = None
        with contextlib.suppress(OSError):
            peer = sock.getpeername()
            self.peer = (str(peer[0]), int(peer[1]))
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        if binding is not None:
            binding._tcp.append(self)
            binding.source = self.peer

    def read(self, now: float) -> None:
        """Everything the kernel holds for this connection (the end of it closes it).

        A read shorter than asked for took all there was: stop there rather than ask again for
        the EAGAIN (a system call and an exception per connection per tick). What arrives
        meanwhile is not lost: the selector is level-triggered and reports it at the next tick."""
        recv = self.sock.recv
        while not self.closed:
            try:
                data = recv(_TCP_READ)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            if not data:
                self.close()
                return
            self.data_received(data, now)
            if len(data) < _TCP_READ:
                return

    def data_received(self, data: bytes, now: float) -> None:
        packets = self.deframer.feed(data)
        if not packets:
            return
        binding = self.binding
        if binding is None:
            binding = self.server._match_tcp(self, packets[0])
            if binding is None:
                self.unmatched += len(data)
                return
        if binding.closed:
            self.close()
            return
        for p in packets:
            binding.feed(p, now)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.server._forget_tcp(self)
        if self.binding is not None:
            with contextlib.suppress(ValueError):
                self.binding._tcp.remove(self)
        self.sock.close()


class RtpServer:
    """One UDP and one TCP port for all streams (``port`` 0: any free port)."""

    def __init__(
        self,
        host: str = "0.0.0.0",
        udp_port: int = 0,
        tcp_port: int = 0,
        announce_ip: str = "",
        *,
        port_range: tuple[int, int] | None = None,
        tcp_match_timeout: float = 10.0,
        poll_interval: float = 0.0,
        receive_buffer: int = _RCVBUF,
    ) -> None:
        self.host = host
        #: Bytes of kernel receive buffer asked for the shared UDP port.
        self.receive_buffer_asked = receive_buffer
        self.udp_port = udp_port
        self.tcp_port = tcp_port
        self.announce_ip = announce_ip or (
            host if host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        )
        self.port_range = port_range
        self.tcp_match_timeout = tcp_match_timeout
        self._by_ssrc: dict[int, RtpBinding] = {}
        self._latching: list[RtpBinding] = []
        self._udp: socket.socket | None = None
        self._udp_read: BatchReader = _nothing
        self._udp_poller: Poller | None = None
        self._tcp_listen: socket.socket | None = None
        #: Open RTP/TCP connections by descriptor, all in one selector of our own (epoll on
        #: Linux), which the loop waits on (or which is polled) as one descriptor.
        self._tcp_conns: dict[int, _TcpConnection] = {}
        self._tcp_sel: _Readiness | None = None
        self._tcp_poller: Poller | None = None
        self._reaper: asyncio.TimerHandle | None = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._next_port = port_range[0] if port_range else 0
        #: Seconds between reads of the shared port while RTP flows (0: wake for each datagram).
        self.poll_interval = poll_interval
        # counters
        self.udp_packets = 0
        self.unknown = 0
        #: Packets (or TCP connections) with a bound SSRC from another host than its source.
        self.foreign = 0
        self.bad = 0
        self.latched = 0

    @property
    def polling(self) -> bool:
        """Whether the shared UDP port is being polled now (else the loop wakes on it)."""
        return self._udp_poller is not None and self._udp_poller.polling

    @property
    def poll_starts(self) -> int:
        """Times the shared UDP port went from waking on readiness to polling."""
        return self._udp_poller.starts if self._udp_poller is not None else 0

    @property
    def tcp_polling(self) -> bool:
        """Whether the RTP/TCP connections are being polled now."""
        return self._tcp_poller is not None and self._tcp_poller.polling

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self._loop_ref is None:
            self._loop_ref = asyncio.get_running_loop()
        return self._loop_ref

    # ------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = self._loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        grow_receive_buffer(sock, self.receive_buffer_asked)
        sock.bind((self.host, self.udp_port))
        sock.setblocking(False)
        self._udp = sock
        self._udp_read = batch_reader(sock)
        self.udp_port = sock.getsockname()[1]
        self._udp_poller = Poller(loop, sock.fileno(), self._drain_shared, self.poll_interval)
        listen = socket.socket(family, socket.SOCK_STREAM)
        try:
            listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listen.bind((self.host, self.tcp_port))
            listen.listen(512)
        except OSError:
            listen.close()
            raise
        listen.setblocking(False)
        self._tcp_listen = listen
        self.tcp_port = listen.getsockname()[1]
        loop.add_reader(listen.fileno(), self._accept)
        self._tcp_sel = _readiness()
        self._tcp_poller = Poller(loop, self._tcp_sel.fileno(), self._drain_tcp, self.poll_interval)
        self._schedule_reaper()

    async def stop(self) -> None:
        for poller in (self._udp_poller, self._tcp_poller):
            if poller is not None:
                poller.close()
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for b in list(self._by_ssrc.values()) + list(self._latching):
            b.close()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
            self._udp_read = _nothing
        for conn in list(self._tcp_conns.values()):
            conn.close()
        if self._tcp_listen is not None:
            with contextlib.suppress(Exception):
                self._loop().remove_reader(self._tcp_listen.fileno())
            self._tcp_listen.close()
            self._tcp_listen = None
        if self._tcp_sel is not None:
            self._tcp_sel.close()
            self._tcp_sel = None

    @property
    def receive_buffer(self) -> int:
        """The UDP socket's actual receive buffer, bytes (the kernel caps it at rmem_max)."""
        if self._udp is None:
            return 0
        return int(self._udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    # ------------------------------------------------------------------------ bindings

    def bind(
        self,
        ssrc: int,
        stream: RtpSink,
        *,
        latch: bool = False,
        peer: str | None = None,
        dedicated: bool = False,
    ) -> RtpBinding:
        """Packets with this SSRC (UDP, or passive TCP to our port) feed ``stream``.

        ``latch``: adopt an unknown SSRC (see the module docstring); ``peer``: the device's
        host, to latch only on its packets; ``dedicated``: own UDP port from the range.
        """
        ssrc &= 0xFFFFFFFF
        old = self._by_ssrc.get(ssrc)
        if old is not None and not old.closed and old.stream is not stream:
            raise Unavailable(f"SSRC {ssrc} is already bound to stream {old.stream.name}")
        b = RtpBinding(self, ssrc, stream, latch=latch, peer=peer)
        if dedicated:
            self._open_dedicated(b)  # first: when the range is used up, nothing is left bound
        self._by_ssrc[ssrc] = b
        if latch:
            self._latching.append(b)
        stream.bindings.append(b)
        return b

    async def connect(
        self, host: str, port: int, ssrc: int, stream: RtpSink, *, timeout: float = 5.0
    ) -> RtpBinding:
        """TCP active: connect to the device (which listens) and read RTP from it."""
        b = RtpBinding(self, ssrc, stream, peer=host)
        b.transport = "tcp-active"
        loop = self._loop()
        sock: socket.socket | None = None
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            if not infos:
                raise OSError(f"no address for {host}")
            family, kind, proto, _, addr = infos[0]
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, addr)
        except (OSError, TimeoutError) as exc:
            if sock is not None:
                sock.close()
            raise Unavailable(
                f"cannot connect to the device's RTP port {host}:{port}: {exc}"
            ) from exc
        self._add_tcp(_TcpConnection(self, sock, b))
        self._by_ssrc.setdefault(b.ssrc, b)
        stream.bindings.append(b)
        return b

    def bindings(self) -> list[RtpBinding]:
        seen = {id(b): b for b in self._by_ssrc.values()}
        for b in self._latching:
            seen.setdefault(id(b), b)
        return list(seen.values())

    def _rebind(self, b: RtpBinding, ssrc: int) -> None:
        if self._by_ssrc.get(b.ssrc) is b:
            del self._by_ssrc[b.ssrc]
        b.ssrc = ssrc
        other = self._by_ssrc.get(ssrc)
        if other is not None and other is not b and not other.closed:
            log.warning(
                "SSRC %d moves from stream %s to %s", ssrc, other.stream.name, b.stream.name
            )
        self._by_ssrc[ssrc] = b

    def _unbind(self, b: RtpBinding) -> None:
        if self._by_ssrc.get(b.ssrc) is b:
            del self._by_ssrc[b.ssrc]
        with contextlib.suppress(ValueError):
            self._latching.remove(b)

    def _latch(self, ssrc: int, host: str) -> RtpBinding | None:
        for b in self._latching:
            if b.waiting and (b.peer is None or b.peer == host):
                self._latching.remove(b)
                self._rebind(b, ssrc)
                self.latched += 1
                log.info("stream %s latched SSRC %d from %s", b.stream.name, ssrc, host)
                return b
        return None

    # ------------------------------------------------------------------------ UDP

    def _drain_shared(self) -> int:
        """Read the shared port: bursts of up to ``_BURST`` datagrams while bursts come full."""
        sock = self._udp
        if sock is None:
            return 0
        before = self.udp_packets
        read = self._udp_read
        for _ in range(_POLL_BURSTS):
            start = self.udp_packets
            self._udp_ready(read, None)
            if self.udp_packets - start < _BURST:
                break
        return self.udp_packets - before

    def _udp_ready(self, read: BatchReader, owner: RtpBinding | None) -> None:
        by_ssrc = self._by_ssrc
        # One clock reading per burst: what a burst holds was queued before it was read, so a
        # reading per datagram would be no truer (and costs a call per packet).
        now = time.monotonic()
        n = 0
        while n < _BURST:
            try:
                batch = read()
            except OSError:
                break  # e.g. ICMP port unreachable reported on the socket
            n += len(batch)
            for data, addr in batch:
                if len(data) < 12 or data[0] & 0xC0 != 0x80:
                    self.bad += 1
                    continue
                b = owner
                if b is None:
                    ssrc = be32(data, 8)
                    b = by_ssrc.get(ssrc)
                    if b is None:
                        b = self._latch(ssrc, addr[0]) if self._latching else None
                        if b is None:
                            self.unknown += 1
                            continue
                host = b.host
                if host is None:
                    b.host = addr[0]
                elif addr[0] != host:
                    b.foreign += 1
                    self.foreign += 1
                    continue
                if b.packets == 0:
                    b.source = (addr[0], addr[1])
                # RtpBinding.feed, inlined (keep the two alike): this loop is the relay's hottest
                if b.stream.feed_rtp(data, now):
                    b.packets += 1
                else:
                    b.bad += 1
            if len(batch) < BATCH:
                break  # the socket is drained
        self.udp_packets += n

    def _open_dedicated(self, b: RtpBinding) -> None:
        if self.port_range is None:
            raise Unavailable("no RTP port range configured")
        lo, hi = self.port_range
        span = hi - lo + 1
        for i in range(span):
            port = lo + (self._next_port - lo + i) % span
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            grow_receive_buffer(sock, _PORT_RCVBUF)
            self._next_port = port + 1
            b._sock = sock
            b.port = port
            self._loop().add_reader(sock.fileno(), self._udp_ready, batch_reader(sock), b)
            return
        raise Unavailable(f"no free RTP port in {lo}-{hi}")

    # ------------------------------------------------------------------------ TCP

    def _accept(self) -> None:
        listen = self._tcp_listen
        while listen is not None:
            try:
                sock, _ = listen.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of descriptors: the next readiness tries again
                log.warning("RTP/TCP accept failed: %s", exc)
                return
            sock.setblocking(False)
            self._add_tcp(_TcpConnection(self, sock))

    def _add_tcp(self, conn: _TcpConnection) -> None:
        sel = self._tcp_sel
        if sel is None:  # stopped meanwhile
            conn.close()
            return
        self._tcp_conns[conn.fd] = conn
        # level-triggered: what arrived before registering is reported at the next drain
        sel.register(conn.fd, select.POLLIN)

    def _forget_tcp(self, conn: _TcpConnection) -> None:
        if self._tcp_conns.get(conn.fd) is conn:
            del self._tcp_conns[conn.fd]
            if self._tcp_sel is not None:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._tcp_sel.unregister(conn.fd)

    def _drain_tcp(self) -> int:
        """Read every RTP/TCP connection with something to read: one ``epoll_wait`` for all."""
        sel = self._tcp_sel
        if sel is None:
            return 0
        ready = sel.poll(0)
        now = time.monotonic()
        conns = self._tcp_conns
        for fd, _ in ready:
            conn = conns.get(fd)
            if conn is not None and not conn.closed:
                conn.read(now)
        return len(ready)

    def _match_tcp(self, conn: _TcpConnection, first: bytes) -> RtpBinding | None:
        if len(first) < 12:
            return None
        ssrc = be32(first, 8)
        b = self._by_ssrc.get(ssrc)
        host = conn.peer[0] if conn.peer else ""
        if b is None and self._latching:
            b = self._latch(ssrc, host)
        if b is None:
            self.unknown += 1
            return None
        if b.host is None:
            b.host = host
        elif host != b.host:  # its SSRC, from another host: not its source (see RtpBinding.host)
            b.foreign += 1
            self.foreign += 1
            return None
        conn.binding = b
        b._tcp.append(conn)
        b.transport = "tcp"
        b.source = conn.peer
        with contextlib.suppress(ValueError):
            self._latching.remove(b)
        return b

    def _schedule_reaper(self) -> None:
        self._reaper = self._loop().call_later(self.tcp_match_timeout / 2, self._reap)

    def _reap(self) -> None:
        now = time.monotonic()
        for conn in list(self._tcp_conns.values()):
            if conn.binding is None and now - conn.opened > self.tcp_match_timeout:
                log.info("closing RTP/TCP connection from %s: no stream for its SSRC", conn.peer)
                conn.close()
        self._schedule_reaper()

    # ------------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        return {
            "ip": self.announce_ip,
            "udp_port": self.udp_port,
            "tcp_port": self.tcp_port,
            "bindings": len(self.bindings()),
            "tcp_connections": len(self._tcp_conns),
            "udp_packets": self.udp_packets,
            "unknown_ssrc": self.unknown,
            "foreign_source": self.foreign,
            "bad": self.bad,
            "latched": self.latched,
            "receive_buffer": self.receive_buffer,
        }
