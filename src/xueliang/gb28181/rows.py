"""The signalling writer's rows as its driver takes them: plain tuples, timestamps encoded.

A registration storm is two rows a device (its registry row, a ``device.online`` event) and
the writer built them interpreted, at about half the cost of the database's own work on them
(issue 18). Kept apart from persist.py's asynchronous flushing so that it is compiled with
mypyc (src/xueliang/_native.py) while that stays Python; nothing here does I/O.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

from mypy_extensions import mypyc_attr

from xueliang.db.stamps import Stamps
from xueliang.gb28181.registrar import DeviceSession

log = logging.getLogger("xueliang.signalling")

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


@mypyc_attr(allow_interpreted_subclasses=True)  # bench/anchors/answering_only.py's, that keep nothing
class Unwritten:
    """What the signalling writer (persist.py) has yet to write, kept until its next flush takes
    it all. The registrar's answers (answers.py) put it here with compiled calls: the writer's
    own methods, interpreted, cost each registration a thousand instructions a call (issue 18)."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        #: Events dropped, oldest first, because the database was away longer than ``max_events`` lasts.
        self.events_dropped = 0
        self.new: dict[str, DeviceSession] = {}
        self.state: dict[str, DeviceSession] = {}
        self.keepalives: dict[str, float] = {}
        self.offline_channels: set[str] = set()
        self.info: dict[str, tuple[str | None, ...]] = {}
        self.events: list[tuple[float, str, str, dict[str, Any]]] = []

    def device_new(self, s: DeviceSession) -> None:
        self.new[s.device_id] = s

    def device_state(self, s: DeviceSession) -> None:
        self.state[s.device_id] = s

    def keepalive(self, device_id: str, wall: float) -> None:
        self.keepalives[device_id] = wall

    def device_info(self, device_id: str, name: str | None, manufacturer: str | None, model: str | None,
                    firmware: str | None) -> None:
        """What a device said of itself (DeviceInfo); an empty field keeps the stored value."""
        self.info[device_id] = tuple((v or "")[:200] or None for v in (name, manufacturer, model, firmware))

    def device_offline(self, device_id: str) -> None:
        self.offline_channels.add(device_id)

    def event(self, kind: str, subject: str, wall: float, data: dict[str, Any]) -> None:
        self.events.append((wall, kind, subject, data))
        if len(self.events) > self.max_events + self.max_events // 10:  # trimmed a tenth at a time
            self.trim_events()

    def trim_events(self) -> None:
        over = len(self.events) - self.max_events
        if over > 0:
            del self.events[:over]
            self.events_dropped += over
            log.error("the database has been away too long: %d oldest signalling events dropped (%d in all)",
                      over, self.events_dropped)
