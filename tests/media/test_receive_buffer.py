"""The UDP edges' receive buffers: past rmem_max where the process may (CAP_NET_ADMIN), which
Python's socket module cannot name (it has no SO_RCVBUFFORCE): a bug that left the hub's RTP
port at the kernel's cap, losing camera packets at 100 streams."""

from __future__ import annotations

import socket
from pathlib import Path

from xueliang.sockets import grow_receive_buffer

CAP_NET_ADMIN = 12


def _may_force() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


def test_a_receive_buffer_past_rmem_max_is_forced_where_the_process_may() -> None:
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    want = rmem_max * 4
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        before = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        grow_receive_buffer(s, want)
        got = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if _may_force():
        assert got >= want, (got, want)  # the kernel reports twice what it was given
    else:
        assert before < got <= 2 * rmem_max, (before, got, rmem_max)


async def test_the_shared_rtp_port_gets_the_configured_buffer() -> None:
    """``media.rtp_receive_buffer_mb`` reaches the shared port (the 600-stream bench lost packets
    at 32 MiB while viewers joined): two sizes, each granted as asked where it may be forced."""
    from xueliang.config import MediaConfig
    from xueliang.media.hub import MediaHub

    granted = {}
    for mb in (8, 48):
        hub = MediaHub(MediaConfig(rtp_port=0, rtp_tcp_port=0, rtp_receive_buffer_mb=mb))
        await hub.rtp.start()
        try:
            granted[mb] = hub.rtp.receive_buffer
        finally:
            await hub.rtp.stop()
    if _may_force():
        assert granted[8] >= 8 << 20 and granted[48] >= 48 << 20, granted
        assert granted[48] > granted[8]
    else:  # capped by rmem_max: asked more, granted no less
        assert granted[48] >= granted[8]
