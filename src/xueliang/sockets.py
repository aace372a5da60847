"""What the platform's UDP edges share (SIP and RTP): socket options and the poller."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Callable

__all__ = ["SO_RCVBUFFORCE", "Poller", "grow_receive_buffer"]

#: A polled descriptor goes back to waking on readiness after this many seconds without traffic.
_POLL_IDLE = 0.1

#: Linux's SO_RCVBUFFORCE: set a receive buffer past ``net.core.rmem_max`` (needs CAP_NET_ADMIN).
#: Python's socket module does not define it (3.11), so the number is Linux's own.
SO_RCVBUFFORCE: int | None = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform == "linux" else None)


def grow_receive_buffer(sock: socket.socket, size: int) -> None:
    """Ask for a ``size``-byte receive buffer: forced where the process may (bursts of key frames
    or of registrations must not overflow the kernel queue), else as much as rmem_max allows."""
    if SO_RCVBUFFORCE is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
            return
        except OSError:
            pass  # not privileged: fall back to what rmem_max allows
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


class Poller:
    """Reads a descriptor when it becomes readable or, while traffic flows, on a timer.

    Under load one wake-up per datagram burst (or per write a device makes on its TCP
    connection, or per request of a registration storm) is most of the edge's cost: the
    kernel's context switch and the loop's turn, for a handful of packets each time. So after
    the first wake-up the descriptor is no longer waited on; ``drain`` runs every ``interval``
    and reads what hundreds of packets left there, for a few milliseconds of latency. Quiet for ``_POLL_IDLE``: back to waking on the
    next packet, at once. ``interval`` 0: always wake.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, drain: Callable[[], int], interval: float
    ) -> None:
        self.loop = loop
        self.fd = fd
        self.drain = drain
        self.interval = interval
        #: Whether the descriptor is being read on the timer now.
        self.polling = False
        #: Times it went from waking on readiness to the timer.
        self.starts = 0
        self.closed = False
        self._handle: asyncio.TimerHandle | None = None
        self._idle = 0
        loop.add_reader(fd, self._ready)

    def _ready(self) -> None:
        self.drain()
        if self.interval > 0 and not self.polling and not self.closed:
            self.loop.remove_reader(self.fd)
            self.polling = True
            self.starts += 1
            self._idle = 0
            self._handle = self.loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        if self.closed or not self.polling:
            return
        # The next tick first: an error while reading (logged by the loop, as for a reader
        # callback) must not leave the descriptor unread, which would silence its streams.
        self._handle = self.loop.call_later(self.interval, self._tick)
        if self.drain():
            self._idle = 0
            return
        self._idle += 1
        if self._idle * self.interval >= _POLL_IDLE:
            self._handle.cancel()
            self._handle = None
            self.polling = False
            self.loop.add_reader(self.fd, self._ready)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self.polling:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.fd)
        self.polling = False
