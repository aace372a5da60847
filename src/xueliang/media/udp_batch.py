"""Reading and writing a UDP socket a batch of datagrams at a time (issue 18: batched socket
reads and writes).

:func:`batch_reader` gives a function that returns what is queued on a non-blocking socket, up
to ``count`` datagrams, as ``[(data, address), ...]`` with addresses as ``socket.recvfrom``
gives them; ``[]`` when nothing is queued; ``OSError`` for any other error with nothing read.

Two implementations, one contract (tests/media/test_udp_batch.py runs both):

* ``_udp_batch`` (C, Linux): one ``recvmmsg`` call for the whole batch, each datagram a
  ``bytes`` of its own size, the sender's address tuple cached by its raw bytes. Built by
  ``scripts/build_native.py`` and used only when its source is unchanged since the build and
  ``XUELIANG_PURE_PYTHON`` is not set (``_native.extension``).
* pure Python: ``recvfrom`` in a loop. Everywhere, and the fallback.

:func:`batch_sender` gives a function ``send(items, start) -> (next, status, errno)`` that sends
``items[start:]`` (``[(data, address), ...]``) and stops at the first it cannot send: ``SENT``
(all, ``next == len(items)``), ``BLOCKED`` (the send buffer is full at ``items[next]``: queue the
rest), ``UNFIT`` (``items[next]``'s host is not a numeric address of the socket's family: send
that one with ``socket.sendto``, which resolves it, then go on from ``next + 1``), ``FAILED``
(``items[next]`` was refused with ``errno``: a datagram lost; go on from ``next + 1``). The C one
sends in ``sendmmsg`` calls of up to ``BATCH``; pure Python calls ``sendto`` per item (and never
answers ``UNFIT``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from functools import partial
from typing import Any

from xueliang import _native

__all__ = ["BATCH", "BLOCKED", "FAILED", "SENT", "UNFIT", "BatchReader", "BatchSender", "batch_reader",
           "batch_sender", "implementation"]

#: Datagrams per call (the C module's maximum).
BATCH = 64

Datagram = tuple[bytes, tuple[Any, ...]]
BatchReader = Callable[[], list[Datagram]]
BatchSender = Callable[[list[Datagram], int], tuple[int, int, int]]

#: What a batch sender answers (see the module doc).
SENT, BLOCKED, UNFIT, FAILED = 0, 1, 2, 3

_c: Any = _native.extension("xueliang.media._udp_batch")


def implementation() -> str:
    """``"recvmmsg"`` when the C module is in use, else ``"python"``."""
    return "recvmmsg" if _c is not None else "python"


def _module(native: bool | None) -> Any:
    """The C module, or None for pure Python: ``native`` forces one (tests), by default the C
    one when it may load; forcing the C one when it is not built is an error."""
    use_c = _c is not None if native is None else native
    if use_c and _c is None:
        raise RuntimeError("the recvmmsg/sendmmsg module is not built (scripts/build_native.py)")
    return _c if use_c else None


def batch_reader(sock: socket.socket, count: int = BATCH, *, native: bool | None = None) -> BatchReader:
    """A function reading up to ``count`` datagrams from ``sock`` per call (see the module doc).
    ``native`` forces one implementation (tests); by default the C one when it may load."""
    if not 1 <= count <= BATCH:
        raise ValueError(f"count must be 1..{BATCH}")
    c = _module(native)
    if c is not None:
        return partial(c.recv_batch, sock.fileno(), count)
    return partial(_recv_batch, sock.recvfrom, count)


def _recv_batch(recvfrom: Callable[[int], tuple[bytes, Any]], count: int) -> list[Datagram]:
    out: list[Datagram] = []
    for _ in range(count):
        try:
            out.append(recvfrom(65536))
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            if out:
                break  # what was read is kept (the error, e.g. an ICMP report, is not)
            raise
    return out


def batch_sender(sock: socket.socket, *, native: bool | None = None) -> BatchSender:
    """A function sending a list of datagrams on ``sock`` (see the module doc). ``native`` forces
    one implementation (tests); by default the C one when it may load."""
    c = _module(native)
    if c is not None:
        return partial(c.send_batch, sock.fileno(), int(sock.family))
    return partial(_send_batch, sock.sendto)


def _send_batch(sendto: Callable[[bytes, Any], int], items: list[Datagram], start: int) -> tuple[int, int, int]:
    for i in range(start, len(items)):
        data, addr = items[i]
        try:
            sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            return i, BLOCKED, 0
        except OSError as exc:
            return i, FAILED, exc.errno or 0
    return len(items), SENT, 0
