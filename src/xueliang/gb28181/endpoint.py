"""The asyncio edge of the SIP stack: UDP and TCP sockets around the sans-IO transaction layer.

One class serves both sides: the platform's signalling server and the device simulator. It
owns the sockets and the clock; everything it learns goes through the sans-IO core
(``sip.parse_message``, ``sip.TransactionLayer``) and out to a handler as an :class:`Incoming`.
Handlers are plain functions (the hot paths, REGISTER and keepalive, answer without awaiting);
anything slow they start as a task.

UDP is read a batch of datagrams at a time (``recvmmsg`` where the C module is built, see
:mod:`xueliang.media.udp_batch`) and, while requests keep coming, on a timer rather than on every
wake-up (:class:`xueliang.sockets.Poller`, ``poll_interval``): in a registration storm one loop
turn and one system call then serve dozens of requests instead of one. The answers to a batch
are written together after it (``sendmmsg``), in the order they were made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from xueliang.gb28181.sip import (
    Address,
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    Send,
    ServerTransaction,
    SipParseError,
    SipRequest,
    SipResponse,
    StreamFramer,
    TransactionLayer,
    TransactionTimeout,
    format_via,
    generate_branch,
    make_response,
    parse_message,
)
from xueliang.gb28181.sip.message import is_keepalive
from xueliang.media.udp_batch import (
    BATCH,
    BLOCKED,
    SENT,
    UNFIT,
    BatchReader,
    BatchSender,
    batch_reader,
    batch_sender,
)
from xueliang.sockets import Poller, grow_receive_buffer
from xueliang.tasks import woken

log = logging.getLogger("xueliang.sip")

#: UDP datagrams read per wake-up or poll before the loop's other work gets its turn. At a 5 ms
#: poll this admits 51,000 a second, past what one process answers (about 30,000).
_UDP_BURST: Final = 4 * BATCH
#: Datagrams held while the kernel's send buffer is full (then dropped and counted: SIP over UDP
#: retransmits a request, and a retransmitted request is answered again).
_SEND_BACKLOG = 10_000


class SipTimeout(Exception):
    """No final response in time (timer B/F, or the caller's own deadline)."""


@dataclass(slots=True)
class Incoming:
    """A request for the transaction user, with what it needs to answer."""

    request: SipRequest
    #: Where it came from: the address to answer and to reach the peer at (NAT-safe).
    addr: Address
    transport: str
    txn: ServerTransaction | None
    endpoint: SipEndpoint
    responded: bool = False

    def respond(self, status: int, reason: str | None = None, *, to_tag: str | None = None,
                headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> SipResponse:
        resp = make_response(self.request, status, reason, to_tag=to_tag, headers=headers, body=body)
        self.responded = True
        if self.txn is not None:
            self.endpoint.respond(self.txn, resp)
        return resp


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass(slots=True)
class EndpointStats:
    received: int = 0
    sent: int = 0
    parse_errors: int = 0
    rate_limited: int = 0
    banned_drops: int = 0
    oversized: int = 0
    #: UDP datagrams dropped because the send backlog was full.
    send_dropped: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


Handler = Callable[[Incoming], None]


class _Tcp(asyncio.Protocol):
    def __init__(self, ep: SipEndpoint) -> None:
        self.ep = ep
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Address = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        self.ep._tcp[self.peer] = self

    def data_received(self, data: bytes) -> None:
        self.framer.feed(data)
        while True:
            try:
                msg = self.framer.next_message()
            except SipParseError as exc:
                self.ep.stats.oversized += 1
                log.info("tcp %s: %s", self.peer, exc.reason)
                continue
            if msg is None:
                break
            self.ep._datagram(msg, self.peer, "tcp")
        if self.framer.buffered > 4 * 65536 and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ep._tcp.get(self.peer) is self:
            del self.ep._tcp[self.peer]


class SipEndpoint:
    def __init__(self, host: str, port: int, handler: Handler | None = None, *, udp: bool = True, tcp: bool = True,
                 max_server_transactions: int = 100_000, rate_limit: float | None = None, burst: float = 50.0,
                 is_banned: Callable[[str, float], bool] | None = None, user_agent: str = "xueliang",
                 poll_interval: float = 0.0) -> None:
        self.host = host
        self.port = port
        self._wanted_port = port
        self.handler = handler
        self.use_udp = udp
        self.use_tcp = tcp
        self.layer = TransactionLayer(max_server_transactions=max_server_transactions)
        self.rate_limit = rate_limit
        self.burst = burst
        self.is_banned = is_banned
        self.user_agent = user_agent
        #: Seconds between reads of the UDP socket while requests keep coming (0: every wake-up).
        self.poll_interval = poll_interval
        self.stats = EndpointStats()
        self.on_stray_2xx: Callable[[SipResponse], None] | None = None
        #: Idempotent requests answered without a transaction (keepalives): returns the
        #: response to send, serialised, or None to go through the transaction layer as usual.
        self.stateless: Callable[[SipRequest, Address, str], bytes | None] | None = None
        self._udp: socket.socket | None = None
        self._udp_read: BatchReader | None = None
        self._udp_send: BatchSender | None = None
        #: While a batch read is handled: the UDP datagrams to send after it (then one sendmmsg).
        self._udp_out: list[tuple[bytes, Address]] | None = None
        self._udp_poller: Poller | None = None
        self._udp_backlog: deque[tuple[bytes, Address]] = deque()
        self._tcp_server: asyncio.AbstractServer | None = None
        self._tcp: dict[Address, _Tcp] = {}
        self._waiting: dict[int, asyncio.Future[SipResponse]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._timer_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._sleep_until = float("inf")
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        # Port 0: the kernel picks a UDP port, and TCP must get the same number; another
        # process may hold it on TCP, so pick again until both are ours.
        for attempt in range(20):
            try:
                await self._bind()
                break
            except OSError:
                if self._wanted_port != 0 or attempt == 19:
                    raise
                await self._unbind()
        self._timer_task = asyncio.create_task(self._timers(), name="sip-timers")

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.port = self._wanted_port
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        if self.use_udp:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind((self.host, self.port))
            except OSError:
                sock.close()
                raise
            # Bursts (catalogs of lower platforms, registration storms) must not overflow the
            # kernel queue: ask for 8 MiB, past rmem_max where we are allowed to.
            grow_receive_buffer(sock, 8 * 1024 * 1024)
            self._udp = sock
            self._udp_read = batch_reader(sock)
            self._udp_send = batch_sender(sock)
            self._udp_poller = Poller(loop, sock.fileno(), self._drain_udp, self.poll_interval)
            if self.port == 0:
                self.port = sock.getsockname()[1]
        if self.use_tcp:
            self._tcp_server = await loop.create_server(lambda: _Tcp(self), self.host, self.port, family=family,
                                                        reuse_address=True)
            if self.port == 0:
                self.port = self._tcp_server.sockets[0].getsockname()[1]

    def _close_udp(self) -> None:
        if self._udp_poller is not None:
            self._udp_poller.close()
            self._udp_poller = None
        if self._udp_out:
            # stopped by a handler in the middle of a batch: what was answered before goes out
            # (now, on the socket about to close; emptied, so the batch's own send has none)
            self._send_udp(self._udp_out)
            self._udp_out.clear()
        if self._udp is not None:
            if self._udp_backlog and self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_writer(self._udp.fileno())
            self._udp_backlog.clear()
            self._udp.close()
            self._udp = None
            self._udp_read = None
            self._udp_send = None

    async def _unbind(self) -> None:
        self._close_udp()
        if self._tcp_server is not None:
            self._tcp_server.close()
            self._tcp_server = None

    async def stop(self) -> None:
        if self._timer_task:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        self._close_udp()
        for conn in list(self._tcp.values()):
            if conn.transport:
                conn.transport.close()
        if self._tcp_server:
            self._tcp_server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._tcp_server.wait_closed()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(SipTimeout("endpoint stopped"))

    # ---- addresses ---------------------------------------------------------------------
    def via(self, transport: str = "udp") -> str:
        return format_via(transport.upper(), self.host, self.port, branch=generate_branch(), rport=True)

    @property
    def hostport(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"

    # ---- receiving ---------------------------------------------------------------------
    def _drain_udp(self) -> int:
        """Read what the UDP socket holds, up to ``_UDP_BURST`` datagrams (the Poller's drain)."""
        read = self._udp_read
        n = 0
        while read is not None and n < _UDP_BURST:
            try:
                batch = read()
            except OSError as exc:  # an ICMP report (port unreachable) on the socket; the rest waits
                log.debug("udp error: %s", exc)
                break
            out: list[tuple[bytes, Address]] = []
            self._udp_out = out
            try:
                for data, addr in batch:
                    try:
                        self._datagram(data, (addr[0], addr[1]), "udp")
                    except Exception:  # one bad datagram must not cost the rest of the batch
                        log.exception("SIP datagram from %s failed", addr[0])
            finally:
                self._udp_out = None
                if out:
                    self._send_udp(out)
            n += len(batch)
            if len(batch) < BATCH:
                break
            read = self._udp_read  # a handler may have stopped the endpoint
        return n

    def _allow(self, ip: str, now: float) -> bool:
        if self.is_banned is not None and self.is_banned(ip, now):
            self.stats.banned_drops += 1
            return False
        if self.rate_limit is None:
            return True
        b = self._buckets.get(ip)
        if b is None:
            if len(self._buckets) > 200_000:
                self._buckets.clear()
            b = self._buckets[ip] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate_limit)
        b.stamp = now
        if b.tokens < 1.0:
            self.stats.rate_limited += 1
            return False
        b.tokens -= 1.0
        return True

    def _datagram(self, data: bytes, addr: Address, transport: str) -> None:
        now = time.monotonic()
        if transport == "udp" and is_keepalive(data):
            return
        if not self._allow(addr[0], now):
            return
        self.stats.received += 1
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            self.stats.parse_errors += 1
            self._reject_malformed(data, addr, transport, exc)
            return
        if isinstance(msg, SipRequest):
            self.stats.by_method[msg.method] = self.stats.by_method.get(msg.method, 0) + 1
            if transport == "udp":
                try:
                    msg.stamp_via(addr[0], addr[1])
                except (SipParseError, ValueError):
                    pass
            if self.stateless is not None:
                answer = self.stateless(msg, addr, transport)
                if answer is not None:
                    self._send_bytes(answer, addr, transport)
                    return
        try:
            events = self.layer.receive(msg, addr, now, reliable=transport == "tcp")
        except (SipParseError, ValueError, KeyError) as exc:
            self.stats.parse_errors += 1
            if isinstance(msg, SipRequest) and msg.method != "ACK":
                self._send_bytes(make_response(msg, 400, f"Bad Request ({exc})"[:120]).serialize(), addr, transport)
            return
        self._events(events, transport)

    def _reject_malformed(self, data: bytes, addr: Address, transport: str, exc: SipParseError) -> None:
        """Answer a malformed request with the parse error as reason phrase, when it can be addressed."""
        head = data[:4096].split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n").split(b"\n")
        if not head or head[0].startswith(b"SIP/2.0") or b" SIP/2.0" not in head[0]:
            return
        wanted = {b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq"}
        lines = [ln for ln in head[1:] if b":" in ln and ln.split(b":", 1)[0].strip().lower() in wanted]
        names = {ln.split(b":", 1)[0].strip().lower() for ln in lines}
        if not ({b"via", b"v"} & names and b"cseq" in names):
            return
        reason = exc.reason.replace("\r", " ").replace("\n", " ")[:120]
        status = exc.status if 400 <= exc.status < 600 else 400
        resp = f"SIP/2.0 {status} {reason}\r\n".encode() + b"\r\n".join(lines) + b"\r\nContent-Length: 0\r\n\r\n"
        self._send_bytes(resp, addr, transport)

    def _events(self, events: Sequence[object], transport: str) -> None:
        for ev in events:
            if isinstance(ev, Send):
                self._send_bytes(ev.data, ev.addr, transport)
            elif isinstance(ev, RequestReceived):
                if self.handler is None:
                    continue
                inc = Incoming(ev.request, ev.addr, transport, ev.transaction, self)
                try:
                    self.handler(inc)
                except Exception:
                    log.exception("handler failed on %s", ev.request.method)
                    if ev.transaction is not None and not inc.responded:
                        with contextlib.suppress(Exception):
                            inc.respond(500, "Server Internal Error")
            elif isinstance(ev, ResponseReceived):
                self._response(ev.response, ev.transaction)
            elif isinstance(ev, TransactionTimeout):
                fut = self._waiting.pop(id(ev.transaction), None)
                if fut is not None and not fut.done():
                    fut.set_exception(SipTimeout(f"no answer to {ev.transaction.method}"))
        self._rearm()

    def _response(self, resp: SipResponse, txn: ClientTransaction | None) -> None:
        if txn is None:
            if self.on_stray_2xx is not None:
                self.on_stray_2xx(resp)
            return
        if resp.status < 200:
            return
        fut = self._waiting.pop(id(txn), None)
        if fut is not None and not fut.done():
            fut.set_result(resp)

    # ---- sending -----------------------------------------------------------------------
    def respond(self, txn: ServerTransaction, resp: SipResponse) -> None:
        if self.user_agent and resp.headers.get("User-Agent") is None:
            resp.headers.add("User-Agent", self.user_agent)
        self._events(self.layer.respond(txn, resp, time.monotonic()), "tcp" if txn.reliable else "udp")

    async def request(self, req: SipRequest, addr: Address, transport: str = "udp", timeout: float | None = None) -> SipResponse:
        """Send ``req`` in a client transaction and wait for its final response."""
        if transport == "tcp" and addr not in self._tcp:
            await self._connect(addr)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[SipResponse] = loop.create_future()
        txn, events = self.layer.send_request(req, addr, time.monotonic(), reliable=transport == "tcp")
        self._waiting[id(txn)] = fut
        self._events(list(events), transport)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError as exc:
            raise SipTimeout(f"no answer to {req.method} within {timeout} s") from exc
        finally:
            self._waiting.pop(id(txn), None)

    def send(self, msg: SipRequest | SipResponse, addr: Address, transport: str = "udp") -> None:
        """Send outside a transaction (ACK for a 2xx)."""
        self._send_bytes(msg.serialize(), addr, transport)

    async def _connect(self, addr: Address) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: _Tcp(self), addr[0], addr[1])

    def _send_bytes(self, data: bytes, addr: Address, transport: str) -> None:
        self.stats.sent += 1
        if transport == "tcp":
            conn = self._tcp.get(addr)
            if conn is not None and conn.transport is not None and not conn.transport.is_closing():
                conn.transport.write(data)
            else:
                log.debug("no tcp connection to %s", addr)
            return
        sock = self._udp
        if sock is None:
            return
        if self._udp_out is not None:
            self._udp_out.append((data, addr))  # sent with the rest of the batch's answers
            return
        if self._udp_backlog:
            self._queue_udp(data, addr)
            return
        self._sendto(sock, data, addr)

    def _sendto(self, sock: socket.socket, data: bytes, addr: Address) -> None:
        try:
            sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._queue_udp(data, addr)
        except OSError as exc:  # unreachable network and the like: as a lost datagram
            log.debug("udp send to %s failed: %s", addr, exc)

    def _send_udp(self, out: list[tuple[bytes, Address]]) -> None:
        """A batch's datagrams, in order: in sendmmsg calls, the rest queued when the send
        buffer fills, one the C sender cannot address sent by ``socket.sendto`` (a host name)."""
        sock, send = self._udp, self._udp_send
        if sock is None or send is None:
            return  # stopped while the batch was handled: as any send after the stop
        i = 0
        while i < len(out) and not self._udp_backlog:
            i, status, err = send(out, i)
            if status == SENT:
                return
            if status == BLOCKED:
                break
            if status == UNFIT:
                self._sendto(sock, *out[i])
            else:
                log.debug("udp send to %s failed: errno %d", out[i][1], err)
            i += 1
        for data, addr in out[i:]:
            self._queue_udp(data, addr)

    def _queue_udp(self, data: bytes, addr: Address) -> None:
        """The kernel's send buffer is full: hold the datagram until the socket is writable."""
        if len(self._udp_backlog) >= _SEND_BACKLOG:
            self.stats.send_dropped += 1
            return
        if not self._udp_backlog and self._loop is not None and self._udp is not None:
            self._loop.add_writer(self._udp.fileno(), self._flush_udp)
        self._udp_backlog.append((data, addr))

    def _flush_udp(self) -> None:
        sock, backlog = self._udp, self._udp_backlog
        while sock is not None and backlog:
            data, addr = backlog[0]
            try:
                sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return  # still full: the next writable event goes on
            except OSError as exc:
                log.debug("udp send to %s failed: %s", addr, exc)
            backlog.popleft()
        if sock is not None and self._loop is not None:
            self._loop.remove_writer(sock.fileno())

    # ---- timers ------------------------------------------------------------------------
    def _rearm(self) -> None:
        d = self.layer.next_deadline()
        if d is not None and d < self._sleep_until:
            self._wake.set()

    async def _timers(self) -> None:
        while True:
            d = self.layer.next_deadline()
            now = time.monotonic()
            # Tens of thousands of transactions each have their own deadline (timer J: 32 s after
            # the answer). Waking for each would cost more than the timers do: fire them in
            # batches at most every 50 ms, which no SIP timer notices.
            delay = 3600.0 if d is None else max(0.05, d - now)
            self._sleep_until = now + delay
            self._wake.clear()
            await woken(self._wake, delay)  # a cancellation in the turn of a wake-up is kept
            self._sleep_until = float("inf")
            try:
                events = self.layer.handle_timer(time.monotonic())
            except Exception:
                log.exception("transaction timers failed")
                continue
            # A timer retransmission goes out on the transport its transaction uses: UDP only.
            self._events(list(events), "udp")
