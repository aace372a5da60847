"""Local ports from a configured range (``media.upstream_port_range``).

Video toward an upper platform leaves from (UDP), listens on (TCP passive) or connects from
(TCP active) a port of its own. Between a city and a province sits a firewall that lets a
known range through, so those ports come from a range instead of the OS's ephemeral ones.

A port is taken by binding it (``bind(port)`` raises ``OSError`` when something else on the
host holds it, and the pool moves on); the pool also remembers which ports it handed out so a
port is only offered again after :meth:`PortPool.release`, whatever the kernel would allow
(``SO_REUSEADDR`` lets a TCP port in TIME_WAIT be bound twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from xueliang.errors import Unavailable

__all__ = ["PortPool", "PortsExhausted"]

T = TypeVar("T")


class PortsExhausted(Unavailable):
    """Every port of the range is in use."""


class PortPool:
    """The ports ``first``..``last`` (inclusive), handed out round-robin: a port just released
    is the last to be reused, so a late packet of an ended stream does not reach a new one."""

    def __init__(self, first: int, last: int) -> None:
        if not 0 < first <= last <= 65535:
            raise ValueError(f"port range must be [first, last] within 1-65535, got [{first}, {last}]")
        self.first, self.last = first, last
        self._next = first
        self.in_use: set[int] = set()

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    @property
    def free(self) -> int:
        return self.size - len(self.in_use)

    def acquire(self, bind: Callable[[int], T]) -> tuple[int, T]:
        """The first port ``bind`` succeeds on, and what it returned (a bound socket).

        Raises :class:`PortsExhausted` when none is left."""
        span = self.size
        for i in range(span):
            port = self.first + (self._next - self.first + i) % span
            if port in self.in_use:
                continue
            try:
                bound = bind(port)
            except OSError:  # held by another process (or another pool on the same range)
                continue
            self.in_use.add(port)
            self._next = port + 1 if port < self.last else self.first
            return port, bound
        raise PortsExhausted(f"no free RTP port in {self.first}-{self.last}")

    def release(self, port: int) -> None:
        self.in_use.discard(port)

    def describe(self) -> dict[str, int]:
        return {"first": self.first, "last": self.last, "in_use": len(self.in_use)}
