"""Free ports for tests that must name a port before the server binds it.

A port from ``bind(("127.0.0.1", 0))`` comes from the kernel's ephemeral range, the same range
every outgoing connection takes its local port from: between choosing it and the server binding
it, a client connection elsewhere in the suite can take it (CI saw ``address already in use``
that way). So ports are taken below that range (32768 on Linux by default), each pytest-xdist
worker from a block of its own so that two workers never hand out the same one, and in turn
within the block so that one process does not hand the same port out twice while it may still
be in use. A port is handed out only if it binds for both TCP and UDP right now.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

_FIRST, _BLOCK, _BLOCKS = 10000, 2000, 11  # 10000–31999, below the ephemeral range


def _block() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"… or unset when serial
    index = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    first = _FIRST + (index % _BLOCKS) * _BLOCK
    return range(first, first + _BLOCK)


_ports = _block()
_turn = itertools.count(random.randrange(len(_ports)))


def _binds(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_range(size: int) -> tuple[int, int]:
    """``size`` consecutive ports, each free for TCP and UDP on loopback now: (first, last)."""
    for _ in range(len(_ports)):
        first = _ports[next(_turn) % len(_ports)]
        if first + size > _ports.stop:
            continue
        if all(_binds(p) for p in range(first, first + size)):
            for _ in range(size - 1):  # the rest of the range is handed out too
                next(_turn)
            return first, first + size - 1
    raise RuntimeError(f"no {size} free consecutive ports in {_ports}")


def free_port() -> int:
    """One port free for TCP and UDP on loopback now, not handed out before by this process."""
    return free_range(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports."""
    return [free_port() for _ in range(n)]
