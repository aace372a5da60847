"""Socket options the platform's UDP edges share (SIP and RTP)."""

from __future__ import annotations

import contextlib
import socket
import sys

__all__ = ["SO_RCVBUFFORCE", "grow_receive_buffer"]

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
