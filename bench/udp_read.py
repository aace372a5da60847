"""Reading RTP datagrams from a UDP socket: what each way costs per datagram in this process.

Prints ``name: value unit`` lines. 2,000 datagrams of 1,400 bytes are queued on a loopback
socket, then read until it is empty, best of five:

* ``recvfrom`` (what the relay uses: it needs the sender's address), ``recv`` (no address),
  ``recvfrom_into`` a reused buffer;
* ``recvmmsg`` through ctypes, 64 datagrams per call, each copied out to ``bytes`` with its
  4-byte address: Python has no recvmmsg, and this is the cheapest way to reach it without a C
  extension of our own;
* ``batch_python`` and ``batch_recvmmsg``: ``media/udp_batch.py``'s two readers, 64 datagrams a
  call, each ``(bytes, (host, port))`` (the second is our C extension, when built);
* ``rtp_server_udp_ready`` (and ``…_python``): ``RtpServer._udp_ready`` with one binding whose
  stream takes the datagram and does nothing, i.e. the read plus the relay's per-packet Python
  (SSRC lookup, source check, the binding's count), with the reader the server uses (and with
  the pure Python one).

    python bench/udp_read.py
"""

from __future__ import annotations

import asyncio
import ctypes
import platform
import socket
import time
from collections.abc import Callable

from xueliang.media import udp_batch
from xueliang.media.rtp_server import RtpServer

COUNT, SIZE, BATCH, SLOT = 2000, 1400, 64, 2048
SSRC = 0x1234
PACKET = bytes([0x80, 96, 0, 1, 0, 0, 0, 1]) + SSRC.to_bytes(4, "big") + bytes(SIZE - 12)


def _pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    return rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def _best(rx: socket.socket, tx: socket.socket, drain: Callable[[], int]) -> float:
    best = float("inf")
    for _ in range(5):
        for _ in range(COUNT):
            tx.sendto(PACKET, rx.getsockname())
        t0 = time.perf_counter()
        got = 0
        while got < COUNT:
            n = drain()
            if n == 0:
                break
            got += n
        assert got == COUNT, f"read {got} of {COUNT}"
        best = min(best, (time.perf_counter() - t0) / COUNT)
    return best


def _loop(read: Callable[[], object]) -> Callable[[], int]:
    def drain() -> int:
        n = 0
        while True:
            try:
                read()
            except BlockingIOError:
                return n
            n += 1
    return drain


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(_Iovec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


def _recvmmsg(rx: socket.socket) -> Callable[[], int]:
    libc = ctypes.CDLL(None, use_errno=True)
    call = libc.recvmmsg
    call.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    bufs = ctypes.create_string_buffer(BATCH * SLOT)
    names = ctypes.create_string_buffer(BATCH * 16)
    iovs = (_Iovec * BATCH)()
    msgs = (_Mmsghdr * BATCH)()
    for i in range(BATCH):
        iovs[i].base = ctypes.addressof(bufs) + i * SLOT
        iovs[i].len = SLOT
        msgs[i].hdr.name = ctypes.addressof(names) + i * 16
        msgs[i].hdr.namelen = 16
        msgs[i].hdr.iov = ctypes.pointer(iovs[i])
        msgs[i].hdr.iovlen = 1
    data, addrs = memoryview(bufs).cast("B"), memoryview(names).cast("B")
    fd, where = rx.fileno(), ctypes.addressof(msgs)

    def drain() -> int:
        total = 0
        while True:
            n = call(fd, where, BATCH, socket.MSG_DONTWAIT, None)
            if n <= 0:
                return total
            for i in range(n):
                bytes(data[i * SLOT : i * SLOT + msgs[i].len])
                bytes(addrs[i * 16 + 4 : i * 16 + 8])
            total += n
    return drain


class _NullStream:
    name = "bench"

    def __init__(self) -> None:
        self.bindings: list[object] = []

    def feed_rtp(self, data: bytes, now: float) -> bool:
        return True


def _batches(read: udp_batch.BatchReader) -> Callable[[], int]:
    def drain() -> int:
        total = 0
        while batch := read():
            total += len(batch)
        return total
    return drain


async def _udp_ready(native: bool | None) -> float:
    server = RtpServer("127.0.0.1", 0, 0, poll_interval=0)
    await server.start()
    try:
        server.bind(SSRC, _NullStream())
        sock = server._udp
        assert sock is not None
        asyncio.get_running_loop().remove_reader(sock.fileno())  # read by hand below
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        read = udp_batch.batch_reader(sock, native=native)

        def drain() -> int:
            before = server.udp_packets
            server._udp_ready(read, None)
            return server.udp_packets - before

        return _best(sock, tx, drain)
    finally:
        await server.stop()


def main() -> None:
    print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}")
    rx, tx = _pair()
    buf = bytearray(65536)
    for name, drain in [
        ("recvfrom", _loop(lambda: rx.recvfrom(65536))),
        ("recv", _loop(lambda: rx.recv(65536))),
        ("recvfrom_into", _loop(lambda: rx.recvfrom_into(buf))),
        ("recvmmsg_ctypes", _recvmmsg(rx)),
        ("batch_python", _batches(udp_batch.batch_reader(rx, native=False))),
        *([("batch_recvmmsg", _batches(udp_batch.batch_reader(rx)))] if udp_batch.implementation() == "recvmmsg" else []),
    ]:
        print(f"udp_read_{name}: {_best(rx, tx, drain) * 1e6:.2f} us/datagram")
    print(f"udp_read_rtp_server_udp_ready ({udp_batch.implementation()}): "
          f"{asyncio.run(_udp_ready(None)) * 1e6:.2f} us/datagram")
    print(f"udp_read_rtp_server_udp_ready_python: {asyncio.run(_udp_ready(False)) * 1e6:.2f} us/datagram")


if __name__ == "__main__":
    main()
