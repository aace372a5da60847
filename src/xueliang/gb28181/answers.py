"""REGISTER and keepalives answered at once, and what the registrar's events change.

These two requests are most of the signalling: all of a registration storm, and nearly all of a
city's steady traffic. They are idempotent, so they are answered without a transaction (a
retransmission is processed again: a new challenge, or the same 200 with no fresh-registration
side effects because Call-ID and address are unchanged). What a registrar event changes, for
each device, is what the platform is for: its row and an event in the log (the writer, in 1 s
batches), its presence, a bus event (the state history turns it into an availability interval),
and the queries that learn what it is.

Compiled with mypyc (src/xueliang/_native.py) with the registrar it drives: per request and per
device this was interpreted glue between compiled calls (issue 18). The service
(service.py) builds one and keeps the rest: queries, catalogs, alarms.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, Final

from mypy_extensions import mypyc_attr

from xueliang import _native
from xueliang.bus import Bus
from xueliang.gb28181.endpoint import SipEndpoint
from xueliang.gb28181.persist import SignallingWriter
from xueliang.gb28181.registrar import (
    AuthFailed,
    Moved,
    Offline,
    Online,
    Pending,
    Registered,
    Registrar,
    RegistrarEvent,
    user_of,
)
from xueliang.gb28181.sip import SipRequest, response_bytes
from xueliang.presence import Presence

log = logging.getLogger("xueliang.signalling")

_sipscan: Any = _native.extension("xueliang.gb28181.sip._sipscan")
#: A plain Keepalive's device ID read in C (sip/_sipscan.c), or None when it is not built.
_keepalive_id_c: Callable[[bytes], str | None] | None = _sipscan.keepalive_id if _sipscan is not None else None
_KEEPALIVE: Final = re.compile(rb"<\s*CmdType\s*>\s*Keepalive\s*<", re.I)
_DEVICE_ID: Final = re.compile(rb"<\s*DeviceID\s*>\s*(\d{20})\s*<", re.I)


def keepalive_device_id(body: bytes) -> str:
    """The first ``<DeviceID>`` of twenty digits in a Keepalive (any case, spaces allowed), or ''."""
    i = body.find(b"<DeviceID>")
    # ``<DeviceID>`` then twenty digits and ``<``, with no other DeviceID tag before it in any
    # spelling: the match the expression would find first, without running it.
    if i >= 0 and body[i + 30:i + 31] == b"<" and body[i + 10:i + 30].isdigit() \
            and body[:i].lower().find(b"deviceid") < 0:
        return body[i + 10:i + 30].decode()
    m = _DEVICE_ID.search(body)
    return m.group(1).decode() if m else ""


@mypyc_attr(allow_interpreted_subclasses=True)  # bench/anchors/answering_only.py's, without the events
class Answers:
    """The stateless answers (``stateless``, the endpoint's hook) and the registrar's events
    applied (``apply``). ``after_registration`` queues a device for its queries; ``forget_catalog``
    drops a catalog being assembled for a device that went offline."""

    def __init__(self, registrar: Registrar, writer: SignallingWriter, bus: Bus, presence: Presence,
                 endpoint: SipEndpoint, after_registration: Callable[[str], None],
                 forget_catalog: Callable[[str], object]) -> None:
        self.registrar = registrar
        self.writer = writer
        #: Where a device's rows and events wait for the writer's flush (compiled calls).
        self.unwritten = writer.unwritten
        self.bus = bus
        self.presence = presence
        self.endpoint = endpoint
        self.after_registration = after_registration
        self.forget_catalog = forget_catalog

    def stateless(self, req: SipRequest, addr: Any, transport: str) -> bytes | None:
        """The answer to a REGISTER or a keepalive; None for anything else (a transaction's)."""
        if req.method == "REGISTER":
            wall = time.time()
            d = self.registrar.register(req, addr, transport, time.monotonic(), wall)
            if d.events:
                self.apply(d.events, wall)
            headers = list(d.headers)
            headers.append(("User-Agent", self.endpoint.user_agent))
            return response_bytes(req, d.status, d.reason, headers)
        return self.keepalive(req, addr, transport)

    def keepalive(self, req: SipRequest, addr: Any, transport: str) -> bytes | None:
        """Keepalives are most of the traffic: no XML parser, no transaction (a keepalive is
        idempotent; a retransmitted one simply gets another 200). None if not a keepalive."""
        if req.method != "MESSAGE":
            return None
        body = req.body
        # The spelling nearly every device sends, read in C where it is built (sip/_sipscan.c's
        # keepalive_id: the plain searches below in one call), else by plain searches; any
        # other (case, spaces) by the regular expressions, which cost several times as much.
        device_id = _keepalive_id_c(body) if _keepalive_id_c is not None else None
        if device_id is None:
            if body.find(b"<CmdType>Keepalive<", 0, 400) < 0 and not _KEEPALIVE.search(body[:400]):
                return None
            device_id = keepalive_device_id(body) or user_of(req.headers.get("From"))
        d = self.registrar.keepalive(device_id, addr, time.monotonic(), transport)
        if d.status == 200:
            self.unwritten.keepalive(device_id, time.time())
        if d.events:
            s = self.registrar.devices.get(device_id)
            if s is not None:
                self.unwritten.device_state(s)
            self.apply(d.events, time.time())
        return response_bytes(req, d.status, d.reason, [("User-Agent", self.endpoint.user_agent)])

    def apply(self, events: list[RegistrarEvent], wall: float) -> None:
        for ev in events:
            if isinstance(ev, Registered):
                if ev.new_device:
                    self.unwritten.device_new(ev.session)
                self.unwritten.device_state(ev.session)
                if ev.fresh:
                    self.after_registration(ev.session.device_id)
            elif isinstance(ev, Online):
                self.presence.online(ev.device_id, wall)
                self.publish("device.online", ev.device_id, wall, {"reason": ev.reason})
            elif isinstance(ev, Offline):
                s = self.registrar.devices.get(ev.device_id)
                if s is not None:
                    self.unwritten.device_state(s)
                self.unwritten.device_offline(ev.device_id)
                self.presence.offline(ev.device_id)
                self.forget_catalog(ev.device_id)
                self.publish("device.offline", ev.device_id, wall, {"reason": ev.reason})
            elif isinstance(ev, Moved):
                log.info("device %s registered from %s:%s, no longer %s:%s", ev.device_id, ev.new[0], ev.new[1],
                         ev.old[0], ev.old[1])
                self.publish("device.moved", ev.device_id, wall,
                             {"old": f"{ev.old[0]}:{ev.old[1]}", "new": f"{ev.new[0]}:{ev.new[1]}"})
            elif isinstance(ev, AuthFailed):
                self.publish("device.auth_failed", ev.device_id, wall, {"ip": ev.ip, "banned": ev.banned})
            elif isinstance(ev, Pending):
                s = self.registrar.devices[ev.device_id]
                s.addr = ev.addr
                self.unwritten.device_new(s)
                self.publish("device.pending", ev.device_id, wall, {"ip": ev.addr[0]})

    def publish(self, kind: str, subject: str, wall: float, data: dict[str, Any]) -> None:
        """Into the event log (with the writer's next batch) and onto the bus."""
        self.unwritten.event(kind, subject, wall, data)
        self.bus.publish(kind, subject, **data)
