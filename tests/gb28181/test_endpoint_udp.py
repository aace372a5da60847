"""The SIP endpoint's UDP edge: datagrams read a batch at a time, and on a timer while they keep
coming (issue 18); a batch's answers written together after it (sendmmsg); answers held, in
order, while the kernel's send buffer is full.

A real endpoint on 127.0.0.1 and a plain UDP socket as the peer."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from xueliang.gb28181 import endpoint as endpoint_mod
from xueliang.gb28181.endpoint import SipEndpoint
from xueliang.gb28181.sip import Address, SipRequest, make_response
from xueliang.media import udp_batch
from xueliang.sockets import grow_receive_buffer


def options(n: int, port: int) -> bytes:
    return (
        f"OPTIONS sip:34020000002000000001@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-burst-{n}\r\n"
        f"From: <sip:34020000001320000001@3402000000>;tag=t{n}\r\n"
        f"To: <sip:34020000002000000001@3402000000>\r\n"
        f"Call-ID: burst-{n}\r\n"
        f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def call_ids(answers: list[bytes]) -> list[int]:
    out = []
    for a in answers:
        line = next(ln for ln in a.split(b"\r\n") if ln.startswith(b"Call-ID:"))
        out.append(int(line.split(b"-")[-1]))
    return out


@pytest.fixture(params=["native", "python"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Both batch readers (recvmmsg and recvfrom in a loop) behind the endpoint."""
    native = request.param == "native"
    if native and udp_batch.implementation() != "recvmmsg":
        pytest.skip("the recvmmsg module is not built here")

    def forced(sock: socket.socket, count: int = udp_batch.BATCH) -> udp_batch.BatchReader:
        return udp_batch.batch_reader(sock, count, native=native)

    def forced_sender(sock: socket.socket) -> udp_batch.BatchSender:
        return udp_batch.batch_sender(sock, native=native)

    monkeypatch.setattr(endpoint_mod, "batch_reader", forced)
    monkeypatch.setattr(endpoint_mod, "batch_sender", forced_sender)
    yield request.param


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    grow_receive_buffer(s, 4 * 1024 * 1024)  # room for a whole burst of answers
    yield s
    s.close()


async def answers(sock: socket.socket, n: int, timeout: float = 5.0) -> list[bytes]:
    loop = asyncio.get_running_loop()
    out: list[bytes] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await loop.sock_recv(sock, 65536))
    return out


def stateless_ok(fail_on: set[str] | None = None) -> Any:
    """Answers every request 200 without a transaction; raises on the Call-IDs in ``fail_on``."""

    def answer(req: SipRequest, addr: Address, transport: str) -> bytes | None:
        if fail_on and req.headers.get("Call-ID") in fail_on:
            raise RuntimeError("a handler failing on one request")
        return make_response(req, 200).serialize()

    return answer


def burst(endpoint: SipEndpoint, peer: socket.socket, n: int) -> None:
    """``n`` OPTIONS from ``peer`` to the endpoint, Call-IDs burst-0 to burst-(n-1)."""
    port = peer.getsockname()[1]
    for i in range(n):
        peer.sendto(options(i, port), ("127.0.0.1", endpoint.port))


@pytest.fixture
async def endpoint(reader: str) -> AsyncIterator[SipEndpoint]:
    ep = SipEndpoint("127.0.0.1", 0, tcp=False, poll_interval=0.005)
    await ep.start()
    yield ep
    await ep.stop()


async def test_a_burst_is_answered_whole_and_in_order(endpoint: SipEndpoint, peer: socket.socket) -> None:
    """More datagrams than one batch, queued before the endpoint reads: every one answered, in
    the order sent, and the socket is then read on the timer."""
    endpoint.stateless = stateless_ok()
    n = 3 * udp_batch.BATCH + 7
    burst(endpoint, peer, n)
    got = await answers(peer, n)
    assert call_ids(got) == list(range(n))
    assert all(a.startswith(b"SIP/2.0 200 ") for a in got)
    assert endpoint.stats.received == n
    poller = endpoint._udp_poller
    assert poller is not None and poller.starts >= 1


async def test_one_failing_request_costs_nothing_else(endpoint: SipEndpoint, peer: socket.socket) -> None:
    """A handler that raises on one datagram of a batch: the others of the batch are answered."""
    endpoint.stateless = stateless_ok(fail_on={"burst-1", "burst-4"})
    burst(endpoint, peer, 6)
    got = await answers(peer, 4)
    assert call_ids(got) == [0, 2, 3, 5]
    with pytest.raises(TimeoutError):
        await answers(peer, 1, timeout=0.3)


async def test_back_to_waking_on_the_first_request_after_a_quiet_spell(endpoint: SipEndpoint,
                                                                        peer: socket.socket) -> None:
    endpoint.stateless = stateless_ok()
    port = peer.getsockname()[1]
    peer.sendto(options(0, port), ("127.0.0.1", endpoint.port))
    await answers(peer, 1)
    poller = endpoint._udp_poller
    assert poller is not None and poller.polling
    await asyncio.sleep(0.3)  # longer than the poller's idle spell (100 ms)
    assert not poller.polling
    loop = asyncio.get_running_loop()
    peer.sendto(options(1, port), ("127.0.0.1", endpoint.port))
    t0 = loop.time()
    assert call_ids(await answers(peer, 1)) == [1]
    assert loop.time() - t0 < 2.0


class _FullOnce:
    """The endpoint's socket, whose send buffer reads full for the next ``full`` sends."""

    def __init__(self, sock: socket.socket, full: int) -> None:
        self.sock = sock
        self.full = full

    def sendto(self, data: bytes, addr: Any) -> int:
        if self.full > 0:
            self.full -= 1
            raise BlockingIOError
        return self.sock.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def send_five_into_a_full_buffer(endpoint: SipEndpoint, peer: socket.socket) -> None:
    """Five answers to ``peer``; the send buffer reads full for the first one."""
    sock = endpoint._udp
    assert sock is not None
    endpoint._udp = _FullOnce(sock, full=1)  # type: ignore[assignment]
    dest = peer.getsockname()
    for i in range(5):
        endpoint._send_bytes(options(i, dest[1]), dest, "udp")


async def test_answers_wait_in_order_while_the_send_buffer_is_full(endpoint: SipEndpoint,
                                                                   peer: socket.socket) -> None:
    send_five_into_a_full_buffer(endpoint, peer)
    assert len(endpoint._udp_backlog) == 5  # the first refused, the rest queued behind it
    got = await answers(peer, 5)
    assert call_ids(got) == [0, 1, 2, 3, 4]
    assert not endpoint._udp_backlog
    assert endpoint.stats.send_dropped == 0


async def test_a_full_backlog_drops_and_counts(endpoint: SipEndpoint, peer: socket.socket,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint_mod, "_SEND_BACKLOG", 3)
    send_five_into_a_full_buffer(endpoint, peer)
    assert endpoint.stats.send_dropped == 2
    assert call_ids(await answers(peer, 3)) == [0, 1, 2]


async def test_stopping_closes_the_port(endpoint: SipEndpoint) -> None:
    port = endpoint.port
    await endpoint.stop()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))  # free again
    finally:
        s.close()


class _Sends:
    """The endpoint's batch sender, counted; ``script`` makes its first calls answer otherwise
    (status at an index of the call's items) before the real sender takes over."""

    def __init__(self, real: udp_batch.BatchSender, script: list[tuple[int, int]] | None = None) -> None:
        self.real = real
        self.script = list(script or [])
        self.calls: list[int] = []

    def __call__(self, items: list[tuple[bytes, tuple[Any, ...]]], start: int) -> tuple[int, int, int]:
        self.calls.append(len(items) - start)
        if self.script:
            status, at = self.script.pop(0)
            stop = start + at
            if stop > start:
                assert self.real(items[:stop], start)[1] == udp_batch.SENT
            return stop, status, 0
        return self.real(items, start)


async def test_a_batch_s_answers_go_out_together(endpoint: SipEndpoint, peer: socket.socket) -> None:
    """Answers are written after the batch they answer, in one call of the batch sender (sendmmsg)
    per batch read, not one system call each."""
    endpoint.stateless = stateless_ok()
    assert endpoint._udp_send is not None
    sends = endpoint._udp_send = _Sends(endpoint._udp_send)
    n = 3 * udp_batch.BATCH + 7
    burst(endpoint, peer, n)
    got = await answers(peer, n)
    assert call_ids(got) == list(range(n))
    assert sum(sends.calls) == n
    assert len(sends.calls) <= n // 8, sends.calls  # at least 8 answers a call (a batch is up to 64)
    assert endpoint.stats.sent == n


@pytest.mark.parametrize("script", [[(udp_batch.BLOCKED, 2)], [(udp_batch.BLOCKED, 0)]], ids=["after-2", "at-once"])
async def test_answers_after_a_full_buffer_in_a_batch_wait_in_order(endpoint: SipEndpoint, peer: socket.socket,
                                                                    script: list[tuple[int, int]]) -> None:
    """The send buffer fills in the middle of a batch's answers: the rest wait, in order, and go
    when the socket is writable; answers of later batches queue behind them."""
    endpoint.stateless = stateless_ok()
    assert endpoint._udp_send is not None
    endpoint._udp_send = _Sends(endpoint._udp_send, script)
    burst(endpoint, peer, 6)
    got = await answers(peer, 6)
    burst(endpoint, peer, 3)
    got += await answers(peer, 3)
    assert call_ids(got) == [0, 1, 2, 3, 4, 5, 0, 1, 2]
    assert not endpoint._udp_backlog and endpoint.stats.send_dropped == 0


async def test_an_answer_the_batch_sender_cannot_address_goes_by_sendto_in_its_place(
        endpoint: SipEndpoint, peer: socket.socket) -> None:
    endpoint.stateless = stateless_ok()
    assert endpoint._udp_send is not None
    sends = endpoint._udp_send = _Sends(endpoint._udp_send, [(udp_batch.UNFIT, 1)])
    burst(endpoint, peer, 4)
    assert call_ids(await answers(peer, 4)) == [0, 1, 2, 3]
    assert sends.calls[:2] == [4, 2]  # then items 2 and 3, after item 1 went by sendto


async def test_a_handler_that_stops_the_endpoint_mid_batch_still_sends_what_was_answered(
        endpoint: SipEndpoint, peer: socket.socket) -> None:
    """A request that makes the handler close the port (as a device's restart does): the answers
    made before it in the same batch still go out; nothing after it is sent."""
    ok = stateless_ok()

    def answer(req: SipRequest, addr: Address, transport: str) -> bytes | None:
        if req.headers.get("Call-ID") == "burst-3":
            endpoint._close_udp()
            return None
        return ok(req, addr, transport)

    endpoint.stateless = answer
    poller = endpoint._udp_poller
    assert poller is not None
    poller.loop.remove_reader(poller.fd)  # the burst is queued whole before the endpoint reads
    burst(endpoint, peer, 6)
    await asyncio.sleep(0.05)
    endpoint._drain_udp()
    assert call_ids(await answers(peer, 3)) == [0, 1, 2]
    with pytest.raises(TimeoutError):
        await answers(peer, 1, timeout=0.3)
