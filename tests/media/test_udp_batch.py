"""Batched UDP reads (media/udp_batch.py): the recvmmsg module and pure Python keep one contract."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xueliang import _native
from xueliang.media import udp_batch

BUILT = _native._compiled("xueliang.media._udp_batch")
#: Built and loadable here (not under XUELIANG_PURE_PYTHON=1, which tests/test.sh's pure pass sets).
LOADED = udp_batch.implementation() == "recvmmsg"

IMPLEMENTATIONS = [
    pytest.param(False, id="python"),
    pytest.param(
        True, id="recvmmsg",
        marks=pytest.mark.skipif(not LOADED, reason="recvmmsg module not built or not loaded"),
    ),
]


def _pair(family: int = socket.AF_INET) -> tuple[socket.socket, socket.socket]:
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    rx = socket.socket(family, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.bind((host, 0))
    rx.setblocking(False)
    tx = socket.socket(family, socket.SOCK_DGRAM)
    tx.bind((host, 0))
    return rx, tx


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    rx, tx = _pair()
    yield rx, tx
    rx.close()
    tx.close()


def _drain(read: udp_batch.BatchReader) -> list[tuple[bytes, tuple[object, ...]]]:
    out: list[tuple[bytes, tuple[object, ...]]] = []
    while batch := read():
        out.extend(batch)
    return out


@pytest.mark.parametrize("native", IMPLEMENTATIONS)
def test_every_datagram_in_order_with_its_size_and_sender(native: bool, pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = pair
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    sizes = [1, 12, 1400, 0, 9000, 65507, 3]  # 65,507: the largest IPv4 UDP payload
    sent = []
    for i, size in enumerate(sizes):
        data = bytes((i + j) % 251 for j in range(size))
        src = tx if i % 2 else other
        src.sendto(data, rx.getsockname())
        sent.append((data, src.getsockname()))
    got = _drain(udp_batch.batch_reader(rx, native=native))
    other.close()
    assert got == sent
    assert all(type(d) is bytes for d, _ in got)


@pytest.mark.parametrize("native", IMPLEMENTATIONS)
def test_a_batch_holds_at_most_count_and_the_rest_waits(native: bool, pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = pair
    for i in range(10):
        tx.sendto(bytes([i]) * 20, rx.getsockname())
    read = udp_batch.batch_reader(rx, 4, native=native)
    assert [d[0] for d, _ in read()] == [0, 1, 2, 3]
    assert [d[0] for d, _ in read()] == [4, 5, 6, 7]
    assert [d[0] for d, _ in read()] == [8, 9]
    assert read() == []  # nothing queued: an empty batch, not an error


@pytest.mark.parametrize("native", IMPLEMENTATIONS)
def test_an_error_with_nothing_read_is_raised(native: bool) -> None:
    # A datagram to a closed port: Linux reports the ICMP port unreachable on the next read.
    rx, _ = _pair()
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    rx.connect(("127.0.0.1", port))
    rx.send(b"x")
    with pytest.raises(ConnectionRefusedError):
        udp_batch.batch_reader(rx, native=native)()
    assert udp_batch.batch_reader(rx, native=native)() == []  # reported once
    rx.close()


@pytest.mark.parametrize("native", IMPLEMENTATIONS)
def test_ipv6_senders_as_recvfrom_gives_them(native: bool) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        rx, tx = _pair(socket.AF_INET6)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    check = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    check.bind(("::1", 0))
    tx.sendto(b"probe", check.getsockname())
    expected = check.recvfrom(100)[1]  # the socket module's own form of tx's address
    check.close()
    tx.sendto(b"rtp", rx.getsockname())
    assert udp_batch.batch_reader(rx, native=native)() == [(b"rtp", expected)]
    assert len(expected) == 4
    rx.close()
    tx.close()


@pytest.mark.skipif(not LOADED, reason="recvmmsg module not built or not loaded")
def test_many_senders_each_get_their_own_address_through_the_cache(pair: tuple[socket.socket, socket.socket]) -> None:
    # 300 source ports into the module's 1,024-slot address cache: slots collide, and a
    # collision must never hand one sender's address to another.
    rx, _ = pair
    senders = []
    try:
        for _ in range(300):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            senders.append(s)
        for rnd in range(2):  # the second round is served from the cache
            for i, s in enumerate(senders):
                s.sendto(i.to_bytes(2, "big") + bytes([rnd]), rx.getsockname())
            got = _drain(udp_batch.batch_reader(rx, native=True))
            assert len(got) == len(senders)
            for data, addr in got:
                assert addr == senders[int.from_bytes(data[:2], "big")].getsockname()
                assert data[2] == rnd
    finally:
        for s in senders:
            s.close()


@pytest.mark.skipif(not LOADED, reason="recvmmsg module not built or not loaded")
def test_the_module_refuses_what_is_not_a_batch() -> None:
    mod = _native.extension("xueliang.media._udp_batch")
    assert mod is not None
    rx, tx = _pair()
    with pytest.raises(ValueError):
        mod.recv_batch(rx.fileno(), 0)
    with pytest.raises(ValueError):
        mod.recv_batch(rx.fileno(), mod.MAX_BATCH + 1)
    with pytest.raises(ValueError):
        mod.recv_batch(-1, 1)
    with pytest.raises(TypeError):
        mod.recv_batch(rx.fileno())
    with pytest.raises(ValueError):
        udp_batch.batch_reader(rx, 0)
    fd = rx.fileno()
    rx.close()
    with pytest.raises(OSError):
        mod.recv_batch(fd, 1)  # EBADF: not a crash
    tx.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(min_size=0, max_size=2000), min_size=1, max_size=150), st.integers(1, udp_batch.BATCH))
def test_both_implementations_read_the_same(payloads: list[bytes], count: int) -> None:
    if not LOADED:
        pytest.skip("recvmmsg module not built or not loaded")
    rx, tx = _pair()
    try:
        results = []
        for native in (False, True):
            for p in payloads:
                tx.sendto(p, rx.getsockname())
            results.append(_drain(udp_batch.batch_reader(rx, count, native=native)))
        assert results[0] == results[1] == [(p, tx.getsockname()) for p in payloads]
    finally:
        rx.close()
        tx.close()


def test_a_changed_source_or_pure_python_leaves_the_module_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    name = "xueliang.media._udp_batch"
    monkeypatch.delenv("XUELIANG_PURE_PYTHON", raising=False)
    assert name in _native.EXTENSIONS and _native.source_of(name).suffix == ".c"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({name: "0" * 64}))  # the source "changed" since the build
    monkeypatch.setattr(_native, "MANIFEST", manifest)
    assert _native.extension(name) is None
    manifest.write_text(json.dumps({name: _native.digest_of(name)}))
    assert (_native.extension(name) is not None) == BUILT
    monkeypatch.setenv("XUELIANG_PURE_PYTHON", "1")
    assert _native.extension(name) is None
    assert _native.extension("xueliang.media.rtp") is None  # only the listed C extensions


def test_the_relay_reads_with_recvmmsg_when_built() -> None:
    # What the server uses follows the build: recvmmsg on Linux when built, never silently not.
    expected = "recvmmsg" if BUILT and sys.platform == "linux" else "python"
    pure = os.environ.get("XUELIANG_PURE_PYTHON") == "1"
    assert udp_batch.implementation() == ("python" if pure else expected)


# ---- batched writes (sendmmsg): the SIP port's answers ---------------------------------------


@pytest.mark.parametrize("native", IMPLEMENTATIONS)
def test_a_batch_is_sent_whole_in_order_past_the_sendmmsg_size(native: bool, pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = pair
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.setblocking(False)
    # 150 datagrams (three sendmmsg calls of at most 64), to two receivers, sizes 0 to 65,507
    items = [(bytes([i % 251]) * (65507 if i == 7 else i * 37 % 1500), (rx if i % 3 else other).getsockname())
             for i in range(150)]
    send = udp_batch.batch_sender(tx, native=native)
    assert send(items, 0) == (150, udp_batch.SENT, 0)
    got_rx = _drain(udp_batch.batch_reader(rx, native=False))
    got_other = _drain(udp_batch.batch_reader(other, native=False))
    other.close()
    assert [d for d, _ in got_rx] == [d for i, (d, _) in enumerate(items) if i % 3]
    assert [d for d, _ in got_other] == [d for i, (d, _) in enumerate(items) if not i % 3]
    assert {a for _, a in got_rx + got_other} == {tx.getsockname()}
    # from an offset: only the rest; and nothing to send is all sent
    assert send(items[:5], 3) == (5, udp_batch.SENT, 0)
    assert [d for d, _ in _drain(udp_batch.batch_reader(rx, native=False))] == [items[4][0]]
    assert send([], 0) == (0, udp_batch.SENT, 0)


@pytest.mark.parametrize("native", IMPLEMENTATIONS)
def test_a_refused_datagram_is_told_by_its_place_and_errno_and_the_rest_can_follow(
        native: bool, pair: tuple[socket.socket, socket.socket]) -> None:
    import errno

    rx, tx = pair
    # a broadcast without SO_BROADCAST: the kernel refuses it (EACCES), as sendto would raise
    items = [(b"a", rx.getsockname()), (b"b", ("255.255.255.255", 5060)), (b"c", rx.getsockname())]
    send = udp_batch.batch_sender(tx, native=native)
    assert send(items, 0) == (1, udp_batch.FAILED, errno.EACCES)
    assert send(items, 2) == (3, udp_batch.SENT, 0)
    assert [d for d, _ in _drain(udp_batch.batch_reader(rx, native=False))] == [b"a", b"c"]


def test_the_c_sender_hands_back_what_it_cannot_address(pair: tuple[socket.socket, socket.socket]) -> None:
    """A host name (socket.sendto resolves it), an address of the other family, a bad port or a
    malformed item: UNFIT at its place, nothing of it sent, what came before sent."""
    if not LOADED:
        pytest.skip("sendmmsg module not built or not loaded")
    rx, tx = pair
    to = rx.getsockname()
    send = udp_batch.batch_sender(tx, native=True)
    for bad in [(b"x", ("localhost", to[1])), (b"x", ("::1", to[1])), (b"x", ("127.0.0.1", 70000)),
                (b"x", ("127.0.0.1\x00", to[1])), ("text", to), (b"x", (to[0],)), (b"x", to, 1)]:
        items: list = [(b"before", to), bad, (b"after", to)]
        assert send(items, 0) == (1, udp_batch.UNFIT, 0), bad
        assert send(items, 2) == (3, udp_batch.SENT, 0)
        assert [d for d, _ in _drain(udp_batch.batch_reader(rx, native=False))] == [b"before", b"after"]
    with pytest.raises(TypeError):
        send((b"x", to), 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        send([], -1)


def test_the_c_sender_on_ipv6() -> None:
    if not LOADED:
        pytest.skip("sendmmsg module not built or not loaded")
    rx, tx = _pair(socket.AF_INET6)
    try:
        send = udp_batch.batch_sender(tx, native=True)
        items = [(bytes([i]) * 10, ("::1", rx.getsockname()[1])) for i in range(70)]
        assert send(items, 0) == (70, udp_batch.SENT, 0)
        # an IPv4 address on an IPv6 socket, or one with flow info and scope: socket.sendto's
        assert send([(b"x", ("127.0.0.1", 1))], 0) == (0, udp_batch.UNFIT, 0)
        assert send([(b"x", rx.getsockname())], 0) == (0, udp_batch.UNFIT, 0)
        assert [d for d, _ in _drain(udp_batch.batch_reader(rx, native=False))] == [d for d, _ in items]
    finally:
        rx.close()
        tx.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=0, max_size=2000),
                          st.sampled_from(["rx", "localhost", "255.255.255.255", "other"])), min_size=0, max_size=150))
def test_both_senders_deliver_the_same(items: list[tuple[bytes, str]]) -> None:
    """Arbitrary batches, with host names and refused destinations among them, driven to the end
    as the endpoint drives a sender: both deliver the same datagrams in the same order."""
    if not LOADED:
        pytest.skip("sendmmsg module not built or not loaded")
    rx, tx = _pair()
    try:
        where = {"rx": rx.getsockname(), "localhost": ("localhost", rx.getsockname()[1]),
                 "255.255.255.255": ("255.255.255.255", 9), "other": ("127.0.0.1", 9)}
        batch = [(data, where[to]) for data, to in items]
        results = []
        for native in (False, True):
            send = udp_batch.batch_sender(tx, native=native)
            i = 0
            while i < len(batch):
                i, status, _ = send(batch, i)
                assert status != udp_batch.BLOCKED
                if status == udp_batch.UNFIT:
                    tx.sendto(*batch[i])
                if status != udp_batch.SENT:
                    i += 1
            results.append([d for d, _ in _drain(udp_batch.batch_reader(rx, native=False))])
        assert results[0] == results[1] == [data for data, to in items if to in ("rx", "localhost")]
    finally:
        rx.close()
        tx.close()
