"""The signalling writer's rows as its driver takes them: plain tuples, timestamps encoded.

A registration storm is two rows a device (its registry row, a ``device.online`` event) and
the writer built them interpreted, at about half the cost of the database's own work on them
(issue 18). Kept apart from persist.py's asynchronous flushing so that it is compiled with
mypyc (src/xueliang/_native.py) while that stays Python; nothing here does I/O.
"""

from __future__ import annotations

import json
from typing import Any, Final

from xueliang.db.stamps import Stamps
from xueliang.gb28181.registrar import DeviceSession

#: The registry columns that registration state sets, in the order of :func:`state_values`.
STATE: Final = ("online", "remote_host", "remote_port", "transport", "contact", "registered_at", "gb_version", "admission",
         "last_keepalive")
#: What a device says of itself (DeviceInfo), in the order of :func:`info_rows`.
INFO: Final = ("name", "manufacturer", "model", "firmware")

#: Events whose data are all strings (most: ``{"reason": "registered"}``) encoded once each.
_JSON_CACHE_MAX: Final = 1024


class Encoding(Stamps):
    """Values as the dialect's driver takes them: times (db/stamps.py) and event data as JSON text."""

    def __init__(self, sqlite: bool) -> None:
        super().__init__(sqlite)
        self._json: dict[tuple[tuple[str, str], ...], str] = {}

    def json(self, data: dict[str, Any]) -> str:
        """``json.dumps(data)``; remembered for data of strings only (a storm's events repeat a
        few), so that a True is never taken for a 1."""
        key: list[tuple[str, str]] = []
        for k, v in data.items():
            if type(k) is not str or type(v) is not str:
                return json.dumps(data)
            key.append((k, v))
        t = tuple(key)
        text = self._json.get(t)
        if text is None:
            if len(self._json) >= _JSON_CACHE_MAX:
                self._json.clear()
            text = self._json[t] = json.dumps(data)
        return text


def state_values(d: DeviceSession, enc: Encoding, offset: float) -> tuple[Any, ...]:
    """The :data:`STATE` columns of a device; ``offset`` turns registrar (monotonic) times into wall."""
    addr = d.addr
    return (d.online, addr[0] if addr else None, addr[1] if addr else None, d.transport, d.contact[:400],
            enc.ts(d.registered_wall) if d.registered_wall else None, d.gb_version[:8] or None,
            d.admission or "accepted", enc.ts(offset + d.last_seen) if d.last_seen else None)


def new_device_rows(new: dict[str, DeviceSession], enc: Encoding, offset: float, now: Any) -> list[tuple[Any, ...]]:
    """id, name, type code, :data:`STATE`, channel count, created, updated."""
    return [(d.device_id, d.device_id, d.device_id[10:13], *state_values(d, enc, offset), 0, now, now)
            for d in new.values()]


def state_rows(state: dict[str, DeviceSession], new: dict[str, DeviceSession], enc: Encoding, offset: float,
               now: Any) -> list[tuple[Any, ...]]:
    """:data:`STATE`, updated, id; of devices not new (a new one's state is in its INSERT)."""
    return [(*state_values(d, enc, offset), now, k) for k, d in state.items() if k not in new]


def keepalive_rows(kas: dict[str, float], enc: Encoding, now: Any) -> list[tuple[Any, ...]]:
    """last keepalive, updated, id."""
    return [(enc.ts(v), now, k) for k, v in kas.items()]


def info_rows(info: dict[str, tuple[str | None, ...]], now: Any) -> list[tuple[Any, ...]]:
    """:data:`INFO`, updated, id."""
    return [(*v, now, k) for k, v in info.items()]


def event_rows(events: list[tuple[float, str, str, dict[str, Any]]], enc: Encoding) -> list[tuple[Any, ...]]:
    """at, kind, subject, data (JSON text)."""
    return [(enc.ts(at), kind, subject, enc.json(data)) for at, kind, subject, data in events]
