"""Presence: which devices are online, since when, last seen when, on which signalling node; and
which nodes are alive.

`Presence` is the interface. `MemoryPresence` serves the single process; the cluster's Redis
presence (cluster/redis_presence.py) implements the same interface and passes the same contract
tests. The database keeps the record (a device's last state, for reports and after a restart);
presence is the live view that routing needs: a command for a device goes to the node serving it.

Writes are synchronous and cheap (the signalling hot path calls them); an implementation may
batch them. Reads are async.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from mypy_extensions import mypyc_attr


class Seen:
    """A device's presence: the signalling ``node`` serving it, online ``since``, last heard
    from (``seen``: REGISTER or keepalive); wall-clock seconds.

    A plain class with ``Final`` fields rather than a frozen dataclass: compiled with mypyc
    (src/xueliang/_native.py), its fields cannot be set and building one is a native call (one
    a device at registration and at each presence sweep). Equal by its fields.
    """

    __slots__ = ("device_id", "node", "seen", "since")

    def __init__(self, device_id: str, node: str, since: float, seen: float) -> None:
        self.device_id: Final = device_id
        self.node: Final = node
        self.since: Final = since
        self.seen: Final = seen

    def _fields(self) -> tuple[str, str, float, float]:
        return (self.device_id, self.node, self.since, self.seen)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Seen):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[type[Seen], tuple[str, str, float, float]]:
        return (Seen, self._fields())

    def __repr__(self) -> str:
        return f"Seen(device_id={self.device_id!r}, node={self.node!r}, since={self.since!r}, seen={self.seen!r})"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: str
    roles: tuple[str, ...]
    started: float
    #: where the node can be reached, by edge: {"api": "http://h:p", "sip": "h:p", "media": "http://h:p"}
    addresses: dict[str, str] = field(default_factory=dict)
    #: what the node reports of its load, e.g. {"devices": 1200, "streams": 40}
    load: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "roles": list(self.roles), "started": self.started,
                "addresses": dict(self.addresses), "load": dict(self.load)}


def default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"[:64]


class Presence(Protocol):
    node: str

    def online(self, device_id: str, at: float) -> None: ...

    def seen(self, device_id: str, at: float) -> None: ...

    def offline(self, device_id: str) -> None: ...

    async def get(self, device_id: str) -> Seen | None:
        """The device's presence, or None when it is offline or its node is dead."""
        ...

    async def get_many(self, device_ids: list[str]) -> dict[str, Seen]:
        """The presence of those of ``device_ids`` that are online (on a live node)."""
        ...

    async def online_count(self) -> int: ...

    def announce(self, info: NodeInfo) -> None:
        """This node's announcement (kept alive until stop)."""
        ...

    async def nodes(self) -> list[NodeInfo]:
        """The nodes alive now."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@mypyc_attr(allow_interpreted_subclasses=True)  # tests stand in nodes by subclassing it
class MemoryPresence:
    """One process: presence is what this process's signalling knows."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._devices: dict[str, Seen] = {}
        self._info: NodeInfo | None = None

    def online(self, device_id: str, at: float) -> None:
        self._devices[device_id] = Seen(device_id, self.node, at, at)

    def seen(self, device_id: str, at: float) -> None:
        s = self._devices.get(device_id)
        if s is not None:
            self._devices[device_id] = Seen(device_id, s.node, s.since, at)

    def offline(self, device_id: str) -> None:
        self._devices.pop(device_id, None)

    async def get(self, device_id: str) -> Seen | None:
        return self._devices.get(device_id)

    async def get_many(self, device_ids: list[str]) -> dict[str, Seen]:
        return {d: self._devices[d] for d in device_ids if d in self._devices}

    async def online_count(self) -> int:
        return len(self._devices)

    def announce(self, info: NodeInfo) -> None:
        self._info = info

    async def nodes(self) -> list[NodeInfo]:
        return [self._info] if self._info is not None else []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._info = None
