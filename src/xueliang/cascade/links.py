"""The running links to upper platforms: one asyncio driver per enabled upper.

Each driver owns its connection to the upper (a UDP socket bound to the platform's SIP host
on an ephemeral port, or a TCP connection it dials and redials, cut into messages by
Content-Length) and feeds the sans-IO `UpperLink` what arrives (`receive`), wakes it at its
deadline (`tick`), starts it and closes it (REGISTER Expires: 0). A change to an upper's row
restarts its link, unless only the share changed: then the link stays up and the upper's
catalog subscriptions get the difference (ADD/DEL). A deleted or disabled upper's link is
closed.

What the upper asks is answered from the registry through its share (cascade/share.py,
cascade/catalog.py), as the upper's principal (`UpperPrincipal`), every act audited with the
actor ``upper:<its SIP ID>``: Catalog (in parts), DeviceInfo, DeviceStatus, DeviceControl
(forwarded to the device when the share allows control), catalog subscriptions (NOTIFY of what
changed, a moment after the bus says channels, devices or the registry changed, and at the
latest every `POLL` seconds), Alarm and MobilePosition subscriptions (forwarded from the bus
for shared channels).

Media (INVITE, ACK, BYE, INFO, CANCEL, RecordInfo, and the answers to requests sent with
`UpperDriver.send_request`) goes to ``CascadeLinks.media`` when one is set (a callable taking
the driver and the event, returning True when it took it); until then INVITE, INFO, BYE and
RecordInfo are answered 501 and CANCEL 481.

The clock is the event loop's; the status gives times as wall-clock ISO strings.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

import xueliang
from xueliang.access.audit import AuditLog
from xueliang.actions import Action
from xueliang.bus import BusEvent
from xueliang.db.tables import UpperPlatform
from xueliang.errors import NotFound
from xueliang.gb28181 import ptz
from xueliang.gb28181.cascade import (
    AckReceived,
    Backoff,
    ByeReceived,
    CancelReceived,
    CatalogQuery,
    CatalogSent,
    Closed,
    ControlReceived,
    DeviceInfoQuery,
    DeviceStatusQuery,
    InfoReceived,
    InviteReceived,
    KeepaliveMissed,
    LinkEvent,
    LinkLost,
    LinkState,
    Output,
    RecordInfoQuery,
    Refused,
    Registered,
    RegistrationFailed,
    RequestAnswered,
    Subscribed,
    Unsubscribed,
    UpperConfig,
    UpperLink,
)
from xueliang.gb28181.commands import DeviceCommands
from xueliang.gb28181.manscdp import (
    CONFIG_SECTIONS,
    ManscdpError,
    config_sections,
    encode_alarm_notify,
    encode_mobile_position,
    encode_response_result,
)
from xueliang.gb28181.sip import Send, SipRequest, StreamFramer
from xueliang.sealing import SealError
from xueliang.tasks import woken

from .catalog import CatalogDiff, SharedCatalog
from .share import Share, UpperPrincipal, UpperScope, share_of
from .uppers import CHANGED, UpperService

__all__ = ["CascadeLinks", "MediaHandler", "UpperDriver"]

log = logging.getLogger("xueliang.cascade")

#: How long closing waits for the upper to confirm Expires: 0.
CLOSE_WAIT = 3.0
#: A catalog change is told after this quiet moment (a device's whole catalog arriving is one
#: NOTIFY, not a thousand).
SETTLE = 0.3
#: Catalog subscriptions are compared with the registry at least this often (changes made
#: without an event on the bus still reach the upper).
POLL = 30.0
#: Refusals audited per minute per upper (a flood is counted, not written out line by line).
AUDITED_REFUSALS_PER_MINUTE = 20
#: Bus events that may change what an upper's catalog shows.
_CATALOG_KINDS = ("catalog", "channel", "device", "registry")

#: Sends a DeviceConfig ``<Control>`` to a device (device ID, channel ID, fields): the
#: composition root gives the signalling's ``control`` with ``cmd_type="DeviceConfig"``.
Configure = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]]

#: DeviceConfig BasicParam fields forwarded (GB/T 28181 A.2.3): the others are dropped.
_BASIC_PARAM = ("Name", "Expiration", "HeartBeatInterval", "HeartBeatCount")

#: Takes the media side's events (INVITE, ACK, BYE, INFO, CANCEL, RecordInfo, answers to its
#: requests); returns True when it took the event.
MediaHandler = Callable[["UpperDriver", LinkEvent], bool]

_DIALOG = (InviteReceived, AckReceived, ByeReceived, InfoReceived, CancelReceived, RecordInfoQuery, RequestAnswered)

#: DeviceControl fields → the device command (gb28181/commands.py), and whether the device
#: answers with a result the upper is told.
_CONTROLS: dict[tuple[str, str], str] = {
    ("TeleBoot", "Boot"): "teleboot", ("RecordCmd", "Record"): "record_start",
    ("RecordCmd", "StopRecord"): "record_stop", ("GuardCmd", "SetGuard"): "guard_set",
    ("GuardCmd", "ResetGuard"): "guard_reset", ("AlarmCmd", "ResetAlarm"): "alarm_reset",
    ("IFameCmd", "Send"): "iframe", ("IFrameCmd", "Send"): "iframe",
}


@dataclass(slots=True)
class Services:
    """What the drivers answer from, shared by every driver."""

    catalog: SharedCatalog
    audit: AuditLog | None
    devices: Callable[[], DeviceCommands | None]
    platform_name: str
    media: Callable[[], MediaHandler | None]
    #: Sends a DeviceConfig to a device: (device, channel, fields) → the SIP answer's summary.
    configure: Callable[[], Configure | None] = lambda: None


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_data: Callable[[bytes, Any], None]) -> None:
        self.on_data = on_data

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_data(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like
        log.debug("cascade socket: %s", exc)


class _Tcp(asyncio.Protocol):
    """One TCP connection to the upper: bytes cut into SIP messages by Content-Length."""

    def __init__(self, on_message: Callable[[bytes], None], on_lost: Callable[[str], None]) -> None:
        self.framer = StreamFramer()
        self.on_message = on_message
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.framer.feed(data)
        for message in self.framer.messages():
            self.on_message(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.on_lost(str(exc) if exc else "the upper closed the connection")


class UpperDriver:
    """One link to one upper, over UDP or TCP."""

    def __init__(self, upper_id: int, config: UpperConfig, *, bind_host: str, announce_port: int | None,
                 principal: UpperPrincipal | None = None, services: Services | None = None) -> None:
        self.upper_id = upper_id
        self.config = config
        #: The configuration as the row gave it (before addresses were resolved): a row that
        #: gives the same again needs no restart.
        self.base_config = config
        self.bind_host = bind_host
        self._announce_port = announce_port
        self.principal = principal
        self.services = services
        self.link: UpperLink | None = None
        self.local_port: int | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: _Tcp | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._backlog: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._sleep_until: float | None = None
        self._dirty = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.diff = CatalogDiff()
        self.error: str | None = None
        #: set when the link closed: whether the upper confirmed Expires: 0
        self.unregistered: bool | None = None
        self.catalogs_answered = 0
        self.notifies_sent = 0
        self.last_catalog_seconds: float | None = None
        self.last_catalog_read_seconds: float | None = None
        self._refusal_window = (0.0, 0)
        self._catalog_started: dict[int, float] = {}

    @property
    def tcp(self) -> bool:
        return self.config.reliable

    @property
    def scope(self) -> UpperScope | None:
        return None if self.principal is None else self.principal.scope

    # -- life ----------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        udp: asyncio.DatagramTransport | None = None
        try:
            host = await _resolve(self.config.host, self.config.port)
            announce = self.config.announce_host
            if announce in _WILDCARD:  # bound to every address: the one the route to the upper leaves by
                announce = _route_to(host, self.config.port)
            if self.tcp:
                # The port our connections leave from changes with each connection: the Contact
                # names the address only (the upper answers on the connection anyway).
                self.local_port = self._announce_port or 5060
            else:
                udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._received),
                                                             local_addr=(self.bind_host, 0))
                self.local_port = udp.get_extra_info("sockname")[1]
        except OSError as exc:
            if udp is not None:
                udp.close()
            self.error = f"cannot reach or bind: {exc}"
            log.warning("upper %s: %s", self.upper_id, self.error)
            return
        self._udp = udp
        self.config = replace(self.config, host=host, announce_host=announce,
                              announce_port=self._announce_port or self.local_port or 5060)
        self.link = UpperLink(self.config)
        self._handle(self.link.start(loop.time()))
        self._task = asyncio.create_task(self._run(), name=f"cascade-upper-{self.upper_id}")
        if self.services is not None:
            self._watch_task = asyncio.create_task(self._watch(), name=f"cascade-watch-{self.upper_id}")

    async def _run(self) -> None:
        assert self.link is not None and self._loop is not None
        link, loop = self.link, self._loop
        while link.state is not LinkState.CLOSED:
            deadline = link.next_deadline()
            self._sleep_until = deadline
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            self._wake.clear()
            await woken(self._wake, timeout)
            self._handle(link.tick(loop.time()))

    def _received(self, data: bytes, addr: Any) -> None:
        if self.link is None or self._loop is None:
            return
        self._handle(self.link.receive(data, self._loop.time(), (addr[0], addr[1])))
        self._rearm()

    def _rearm(self) -> None:
        """Wake the loop only when the link's next deadline moved before the one it sleeps
        to: a catalog answer's thousands of datagrams cost no task switch each."""
        if self.link is None:
            return
        d = self.link.next_deadline()
        if d is not None and (self._sleep_until is None or d < self._sleep_until):
            self._wake.set()
        elif self.link.state is LinkState.CLOSED:
            self._wake.set()

    def _tcp_message(self, data: bytes) -> None:
        if self.link is None or self._loop is None:
            return
        self._handle(self.link.receive(data, self._loop.time(), self.config.peer))
        self._wake.set()

    def _tcp_lost(self, reason: str) -> None:
        self._tcp = None
        if self.link is None or self._loop is None or self.link.state is LinkState.CLOSED:
            return
        log.info("TCP connection to upper %s lost: %s", self.upper_id, reason)
        self._backlog.clear()
        self._handle(self.link.connection_lost(self._loop.time(), reason))
        self._wake.set()

    async def _connect(self) -> None:
        """Dial the upper; what the link sent meanwhile goes out once connected. A failed dial
        is a lost connection to the link, which backs off before it sends (and so dials) again."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(10.0):
                _, proto = await loop.create_connection(lambda: _Tcp(self._tcp_message, self._tcp_lost),
                                                        self.config.host, self.config.port)
        except (OSError, TimeoutError) as exc:
            self._connecting = None
            self._backlog.clear()
            if self.link is not None and self.link.state is not LinkState.CLOSED:
                self._handle(self.link.connection_lost(loop.time(), f"cannot connect: {exc}"))
                self._wake.set()
            return
        self._connecting = None
        self._tcp = proto
        backlog, self._backlog = self._backlog, []
        if proto.transport is not None:
            for data in backlog:
                proto.transport.write(data)

    def _send(self, data: bytes, addr: Any) -> None:
        if not self.tcp:
            if self._udp is not None and not self._udp.is_closing():
                self._udp.sendto(data, addr)
            return
        if addr != self.config.peer:
            return  # over TCP only the upper's connection exists
        if self._tcp is not None and self._tcp.transport is not None:
            self._tcp.transport.write(data)
            return
        if sum(len(b) for b in self._backlog) < 4 << 20:
            self._backlog.append(data)
        if self._connecting is None and self._loop is not None:
            self._connecting = self._loop.create_task(self._connect())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _handle(self, outputs: list[Output]) -> None:
        for o in outputs:
            if isinstance(o, Send):
                self._send(o.data, o.addr)
            elif isinstance(o, _DIALOG):
                handler = self.services.media() if self.services is not None else None
                if handler is not None and handler(self, o):
                    continue
                self._no_media(o)
            elif isinstance(o, CatalogQuery):
                self._spawn(self._answer_catalog(o))
            elif isinstance(o, DeviceInfoQuery):
                self._spawn(self._answer_device_info(o))
            elif isinstance(o, DeviceStatusQuery):
                self._spawn(self._answer_device_status(o))
            elif isinstance(o, ControlReceived):
                self._spawn(self._control(o))
            elif isinstance(o, Subscribed):
                if not o.refreshed:
                    self._audit("cascade.subscribe", resource_id=o.kind, detail={"expires": o.expires})
                    if o.kind == "Catalog":
                        self._spawn(self._initial_notify(o.key))
            elif isinstance(o, Unsubscribed):
                self._audit("cascade.unsubscribe", resource_id=o.kind, detail={"reason": o.reason})
            elif isinstance(o, CatalogSent):
                if o.notify:
                    self.notifies_sent += 1
                else:
                    started = self._catalog_started.pop(o.sn, None)
                    if started is not None and o.ok:
                        self.last_catalog_seconds = self._now() - started
                if not o.ok:
                    log.warning("catalog to upper %s (SN %d) stopped after %d parts: %s", self.upper_id, o.sn,
                                o.parts, o.reason)
            elif isinstance(o, Refused):
                self._audit_refusal(o)
            elif isinstance(o, Registered):
                if not o.refreshed:
                    log.info("registered to upper %s (%s), expires %d s", self.upper_id, self.config.server_id, o.expires)
            elif isinstance(o, RegistrationFailed):
                log.warning("registration to upper %s failed: %s; again in %.0f s", self.upper_id, o.reason,
                            max(0.0, o.retry_at - self._now()))
            elif isinstance(o, LinkLost):
                log.warning("link to upper %s lost: %s", self.upper_id, o.reason)
            elif isinstance(o, KeepaliveMissed):
                log.info("upper %s missed keepalive %d", self.upper_id, o.missed)
            elif isinstance(o, Closed):
                self.unregistered = o.unregistered
                st = self.link.status if self.link is not None else None
                log.info("link to upper %s closed (unregistered: %s; last answer %s, last error %s)", self.upper_id,
                         o.unregistered, st.last_status if st else None, st.last_error if st else None)

    def _no_media(self, o: LinkEvent) -> None:
        """Nobody answers media yet: say so, so that the upper does not retransmit."""
        if isinstance(o, (InviteReceived, ByeReceived, InfoReceived, RecordInfoQuery)):
            self.respond(o.request, 501)
        elif isinstance(o, CancelReceived):
            self.respond(o.request, 481)

    # -- what the media side uses --------------------------------------------------------------

    def respond(self, request: SipRequest, status: int, **kw: Any) -> None:
        """Answer a request the link handed out unanswered (see UpperLink.respond)."""
        if self.link is not None:
            self._handle(self.link.respond(request, status, self._now(), **kw))
            self._wake.set()

    def send_request(self, request: SipRequest) -> None:
        if self.link is not None:
            self._handle(self.link.send_request(request, self._now()))
            self._wake.set()

    def send_message(self, body: bytes) -> None:
        if self.link is not None:
            self._handle(self.link.send_message(body, self._now()))
            self._wake.set()

    # -- answers (from the registry, through the share) ----------------------------------------

    def _audit(self, action: str, outcome: str = "ok", *, resource_type: str = "upper_platform",
               resource_id: str = "", status: int | None = None, detail: dict[str, Any] | None = None) -> None:
        if self.services is None or self.services.audit is None or self.principal is None:
            return
        p = self.principal
        self.services.audit.append(
            action, outcome, actor=p.actor, role=p.role, resource_type=resource_type,
            resource_id=resource_id or str(p.upper_id), ip=self.config.host, status=status,
            detail={"upper": p.upper_id, **(detail or {})},
        )

    def _audit_refusal(self, o: Refused) -> None:
        start, n = self._refusal_window
        now = self._now()
        if now - start >= 60.0:
            start, n = now, 0
        n += 1
        self._refusal_window = (start, n)
        if n <= AUDITED_REFUSALS_PER_MINUTE:
            self._audit("cascade.refused", "denied", status=o.status, detail={"method": o.method, "reason": o.reason[:200]})

    async def _answer_catalog(self, q: CatalogQuery) -> None:
        if self.services is None or self.scope is None or self.link is None:
            if self.link is not None:
                self.link.catalog_failed(q)
            return
        started = self._catalog_started[q.sn] = self._now()
        try:
            items = await self.services.catalog.items_under(self.scope, q.device_id)
            self.last_catalog_read_seconds = self._now() - started
        except Exception:
            log.exception("reading the catalog for upper %s failed", self.upper_id)
            self.link.catalog_failed(q)
            self._audit("cascade.catalog", "failed", detail={"device_id": q.device_id})
            return
        if q.device_id == self.config.local_id and self.diff.known is None:
            self.diff.reset(items)
        self.catalogs_answered += 1
        self._audit("cascade.catalog", detail={"device_id": q.device_id, "items": len(items), "sn": q.sn})
        self._handle(self.link.answer_catalog(q, items, self._now()))
        self._wake.set()

    async def _answer_device_info(self, q: DeviceInfoQuery) -> None:
        if self.services is None or self.scope is None or self.link is None:
            return
        scope = self.scope
        if q.device_id == self.config.local_id:
            count = await self.services.catalog.count(scope)
            outs = self.link.answer_device_info(
                q, self._now(), name=self.services.platform_name, manufacturer="xueliang",
                model="xueliang platform", firmware=xueliang.__version__, channels=count)
            found = True
        else:
            ch = await self.services.catalog.channel(scope, q.device_id)
            found = ch is not None
            outs = self.link.answer_device_info(
                q, self._now(), found=found, name=ch.name if ch else "",
                manufacturer=(ch.manufacturer or "") if ch else "", model=(ch.model or "") if ch else "")
        self._audit("cascade.device_info", "ok" if found else "denied", resource_id=q.device_id,
                    resource_type="channel" if q.device_id != self.config.local_id else "upper_platform")
        self._handle(outs)
        self._wake.set()

    async def _answer_device_status(self, q: DeviceStatusQuery) -> None:
        if self.services is None or self.scope is None or self.link is None:
            return
        device_time = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
        if q.device_id == self.config.local_id:
            found, online = True, True
        else:
            ch = await self.services.catalog.channel(self.scope, q.device_id)
            found, online = ch is not None, bool(ch and ch.online)
        self._audit("cascade.device_status", "ok" if found else "denied", resource_id=q.device_id,
                    resource_type="channel" if q.device_id != self.config.local_id else "upper_platform")
        self._handle(self.link.answer_device_status(q, self._now(), found=found, online=online,
                                                    device_time=device_time))
        self._wake.set()

    async def _control(self, c: ControlReceived) -> None:
        """DeviceControl from the upper: refused unless the share allows control (403) and
        takes the channel (404, the same as an ID that does not exist), then forwarded."""
        if self.link is None:
            return
        scope = self.scope
        ptz_cmd = c.fields.get("PTZCmd")
        action = Action.PTZ if ptz_cmd is not None else Action.DEVICE_CONTROL
        audit_action = action.value if c.cmd_type == "DeviceControl" else f"cascade.{c.cmd_type}"

        def refuse(status: int, why: str) -> None:
            self._audit(audit_action, "denied", resource_type="channel", resource_id=c.device_id, status=status,
                        detail={"reason": why, "cmd": c.cmd_type})
            # the reason phrase tells the upper why (never a line break from its own input)
            self.respond(c.request, status, reason="".join(ch if ch.isprintable() else " " for ch in why)[:120])

        if scope is not None and self.services is not None and c.cmd_type == "DeviceConfig":
            await self._config(c, scope, refuse)
            return
        if scope is None or self.services is None or c.cmd_type != "DeviceControl":
            refuse(501, f"{c.cmd_type} is not forwarded")
            return
        if not scope.may(action):
            refuse(403, "the share does not allow control")
            return
        ch = await self.services.catalog.channel(scope, c.device_id)
        if ch is None:
            refuse(404, "not in the share")
            return
        command: str | None = None
        if ptz_cmd is not None:
            try:
                ptz.decode(ptz_cmd)
            except ptz.PtzError as exc:
                refuse(400, f"bad PTZCmd: {exc}")
                return
        else:
            command = next((name for (k, v), name in _CONTROLS.items() if c.fields.get(k) == v), None)
            if command is None:
                refuse(501, "an unknown DeviceControl command")
                return
        devices = self.services.devices()
        if devices is None or ch.device_id is None:
            refuse(480, "the channel's device cannot be reached")
            return
        self.respond(c.request, 200)
        ok = True
        error = ""
        try:
            if ptz_cmd is not None:
                await devices.ptz(ch.device_id, ch.id, ptz_cmd)
            else:
                assert command is not None
                result = await devices.control(ch.device_id, ch.id, command)
                ok = str(result.get("result", "OK")).upper() in ("OK", "")
        except Exception as exc:  # the device did not answer, is offline...: failed, audited
            ok, error = False, str(exc)[:200]
        self._audit(audit_action, "ok" if ok else "failed", resource_type="channel", resource_id=ch.id,
                    detail={"upper_channel": c.device_id, "device": ch.device_id, "command": command or "ptz",
                            **({"ptz_cmd": ptz_cmd} if ptz_cmd else {}), **({"error": error} if error else {})})
        if ptz_cmd is None:
            self._handle(self.link.answer_control(c, ok, self._now()))
            self._wake.set()

    async def _config(self, c: ControlReceived, scope: UpperScope, refuse: Callable[[int, str], None]) -> None:
        """DeviceConfig from the upper: 403 with a Result ERROR body unless the share allows
        control, 404 outside the share, 400 malformed, 501 a section not forwarded, then its
        sections forwarded to the device as nested (audited)."""
        assert self.link is not None and self.services is not None
        if not scope.may(Action.DEVICE_CONTROL):
            self._audit("cascade.DeviceConfig", "denied", resource_type="channel", resource_id=c.device_id,
                        status=403, detail={"reason": "the share does not allow control", "cmd": c.cmd_type})
            charset = "UTF-8" if self.config.charset.upper().startswith("UTF") else "GB2312"
            self.respond(c.request, 403, body=encode_response_result(c.cmd_type, c.sn, c.device_id, False,
                                                                       encoding=charset),
                         content_type="Application/MANSCDP+xml")
            return
        ch = await self.services.catalog.channel(scope, c.device_id)
        if ch is None:
            refuse(404, "not in the share")
            return
        # The sections as the upper nested them (VideoParamOpt, SVACEncodeConfig...: the flat
        # fields of ControlReceived lose which section a field is in).
        try:
            sections = config_sections(c.request.body)
        except ManscdpError as exc:
            refuse(400, f"malformed DeviceConfig: {exc}")
            return
        unknown = [name for name in sections if name not in CONFIG_SECTIONS]
        if unknown:
            refuse(501, f"{unknown[0][:40]} is not a DeviceConfig section this platform forwards")
            return
        if "BasicParam" in sections:
            basic_in = sections["BasicParam"]
            basic = {k: v for k, v in basic_in.items() if k in _BASIC_PARAM} if isinstance(basic_in, dict) else {}
            if not basic or not all(isinstance(v, str) for v in basic.values()):
                refuse(400, "BasicParam takes Name, Expiration, HeartBeatInterval or HeartBeatCount, as text")
                return
            sections["BasicParam"] = basic
        if not sections:
            refuse(400, "the DeviceConfig holds no configuration section")
            return
        configure = self.services.configure()
        if configure is None or ch.device_id is None:
            refuse(480, "the channel's device cannot be reached")
            return
        self.respond(c.request, 200)
        ok, error = True, ""
        try:
            result = await configure(ch.device_id, ch.id, sections)
            ok = bool(result.get("ok", True))
        except Exception as exc:  # offline, no answer: failed, audited
            ok, error = False, str(exc)[:200]
        self._audit("cascade.DeviceConfig", "ok" if ok else "failed", resource_type="channel", resource_id=ch.id,
                    detail={"upper_channel": c.device_id, "device": ch.device_id, "fields": sections,
                            **({"error": error} if error else {})})
        self._handle(self.link.answer_control(c, ok, self._now()))
        self._wake.set()

    # -- changes told to subscribers -----------------------------------------------------------

    async def _initial_notify(self, key: tuple[str, str, str]) -> None:
        """Right after a catalog subscription is accepted: one NOTIFY (in parts) with the
        current state, every item an ADD (RFC 6665 §4.2.1; GB/T 28181 platforms expect the
        catalog). It is also the baseline the later NOTIFYs are told against."""
        link = self.link
        if link is None or self.services is None or self.scope is None:
            return
        try:
            items = await self.services.catalog.items(self.scope)
        except Exception:
            log.exception("reading the catalog for upper %s failed", self.upper_id)
            return
        if self.diff.known is None:
            self.diff.reset(items)
        else:
            self._dirty.set()  # an older baseline: the others hear what changed since
        self._audit("cascade.catalog.notify", detail={"items": len(items), "initial": True})
        self._handle(link.notify_catalog([replace(it, event="ADD") for it in items], self._now(), only=key))
        self._wake.set()

    def catalog_changed(self) -> None:
        self._dirty.set()

    def set_principal(self, principal: UpperPrincipal) -> None:
        """The share changed, the connection did not: keep the link, tell the difference."""
        self.principal = principal
        self._dirty.set()

    async def _watch(self) -> None:
        took = 0.0
        while True:
            await woken(self._dirty, POLL)
            # A quiet moment, and never more than a fifth of the time reading the catalog: a
            # registry that changes all the time costs a big share a bounded part of a core.
            await asyncio.sleep(max(SETTLE, 4 * took))
            self._dirty.clear()
            link = self.link
            if link is None or link.state is LinkState.CLOSED:
                return
            if self.services is None or self.scope is None or not link.subscriptions.of_kind("Catalog"):
                continue
            started = self._now()
            try:
                items = await self.services.catalog.items(self.scope)
            except Exception:
                log.exception("reading the catalog for upper %s failed", self.upper_id)
                continue
            took = self._now() - started
            changes = self.diff.changes(items)
            if changes:
                self._audit("cascade.catalog.notify", detail={"items": len(changes)})
                self._handle(link.notify_catalog(changes, self._now()))
                self._wake.set()

    async def forward(self, ev: BusEvent) -> None:
        """An alarm or mobile position on the bus, to an upper that subscribed, for a shared
        channel (in its numbering)."""
        link, scope = self.link, self.scope
        kind = "Alarm" if ev.kind == "alarm" else "MobilePosition"
        if link is None or scope is None or self.services is None or not link.subscriptions.of_kind(kind):
            return
        ch = await self.services.catalog.channel(scope, scope.upper_id(ev.subject))
        if ch is None:
            return
        d = ev.data
        upper_id = scope.upper_id(ch.id)
        stamp = datetime.fromtimestamp(ev.at).strftime("%Y-%m-%dT%H:%M:%S")
        charset = "UTF-8" if self.config.charset.upper().startswith("UTF") else "GB2312"
        try:
            if kind == "Alarm":
                body = encode_alarm_notify(
                    0, upper_id, priority=_int(d.get("priority"), 4), method=_int(d.get("method"), 7),
                    time=str(d.get("time") or stamp), description=d.get("description"),
                    longitude=d.get("longitude"), latitude=d.get("latitude"),
                    alarm_type=d.get("alarm_type") if isinstance(d.get("alarm_type"), int) else None,
                    encoding=charset)
            else:
                lon, lat = d.get("longitude"), d.get("latitude")
                if not isinstance(lon, (int, float)) or not isinstance(lat, (int, float)):
                    return
                body = encode_mobile_position(0, upper_id, time=stamp, longitude=float(lon), latitude=float(lat),
                                              speed=d.get("speed"), direction=d.get("direction"), encoding=charset)
        except (ManscdpError, TypeError, ValueError):
            return
        self._audit(f"cascade.{ev.kind}", resource_type="channel", resource_id=ch.id)
        self._handle(link.notify(kind, body, self._now()))
        self._wake.set()

    async def stop(self) -> None:
        """Unregister (REGISTER Expires: 0) and wait a little for the answer, then close."""
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
            self._watch_task = None
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.link is not None and self._loop is not None:
            self._handle(self.link.close(self._loop.time()))
            self._wake.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(CLOSE_WAIT):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            self._task = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
            self._connecting = None
        if self._tcp is not None and self._tcp.transport is not None:
            self._tcp.transport.close()
        self._tcp = None

    def status(self) -> dict[str, Any]:
        if self.link is None:
            return {"state": "failed", "last_error": self.error, "last_status": None, "registered_until": None,
                    "next_action_at": None}
        st = self.link.status
        return {
            "state": st.state.value,
            "last_error": st.last_error,
            "last_status": st.last_status,
            "registered_until": self._wall(st.registered_until),
            "next_action_at": self._wall(st.next_action_at),
            "granted_expires": st.granted_expires,
            "consecutive_failures": st.consecutive_failures,
            "missed_keepalives": st.missed_keepalives,
            "registrations": st.registrations,
            "keepalives_sent": st.keepalives_sent,
            "keepalives_answered": st.keepalives_answered,
            "local_port": self.local_port,
            "unregistered": self.unregistered,
            "transport": "tcp" if self.tcp else "udp",
            "connected": (self._tcp is not None) if self.tcp else None,
            "subscriptions": st.subscriptions,
            "catalogs_answered": self.catalogs_answered,
            "last_catalog_seconds": self.last_catalog_seconds,
            "last_catalog_read_seconds": self.last_catalog_read_seconds,
            "catalog_notifies": self.notifies_sent,
            "refused_requests": st.refused_requests,
        }

    def _wall(self, t: float | None) -> str | None:
        if t is None or self._loop is None:
            return None
        return datetime.fromtimestamp(time.time() + (t - self._loop.time()), UTC).isoformat()


def _int(v: Any, default: int) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


_WILDCARD = ("0.0.0.0", "::", "")


def _route_to(host: str, port: int) -> str:
    """Our address toward ``host`` (a connected UDP socket sends nothing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        return str(s.getsockname()[0])


async def _resolve(host: str, port: int) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=2)  # SOCK_DGRAM
    if not infos:
        raise OSError(f"{host} does not resolve")
    return str(infos[0][4][0])


class CascadeLinks:
    """Every enabled upper's link, kept in step with the table (where signalling runs)."""

    def __init__(self, uppers: UpperService, *, local_id: str, sip_host: str,
                 backoff: Backoff | None = None, audit: AuditLog | None = None,
                 devices: DeviceCommands | None = None, platform_name: str = "xueliang",
                 udp_message: int = 1300, tcp_message: int = 60000) -> None:
        self.uppers = uppers
        #: The largest SIP message toward an upper over UDP and over TCP (catalog parts fit it).
        self.udp_message = udp_message
        self.tcp_message = tcp_message
        self.local_id = local_id
        self.sip_host = sip_host
        self.backoff = backoff or Backoff()
        #: Forwards DeviceControl to the devices (set by the composition root once it exists).
        self.devices = devices
        #: The media side's handler of INVITE/ACK/BYE/INFO/CANCEL/RecordInfo (see the module doc).
        self.media: MediaHandler | None = None
        #: Sends DeviceConfig to the devices (set by the composition root: the signalling here).
        self.configure: Configure | None = None
        self.services = Services(SharedCatalog(uppers.sessions), audit, lambda: self.devices, platform_name,
                                 lambda: self.media, lambda: self.configure)
        self.drivers: dict[int, UpperDriver] = {}
        #: uppers configured whose link cannot start (a row the link refuses, a password that does not open)
        self.failed: dict[int, str] = {}
        #: the stopped links of disabled uppers, for their last status
        self.closed: dict[int, UpperDriver] = {}
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self._running = False
        if uppers.bus is not None:  # changes made here and on other nodes
            uppers.bus.listen(self._on_bus, CHANGED, *_CATALOG_KINDS, "alarm", "mobile_position")
        else:
            uppers.on_change.append(self._changed)

    def _on_bus(self, ev: BusEvent) -> None:
        if not self.drivers and ev.kind != CHANGED:  # no upper platform: nothing to tell (a storm's every event)
            return
        if ev.kind == CHANGED:
            self._changed(int(ev.subject))
        elif ev.kind.split(".")[0] in _CATALOG_KINDS:
            for d in self.drivers.values():
                d.catalog_changed()
        elif ev.kind in ("alarm", "mobile_position") and self._running:
            for d in list(self.drivers.values()):
                task = asyncio.get_running_loop().create_task(d.forward(ev))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    async def start(self) -> None:
        self._running = True
        for row in await self.uppers.list():
            await self.reload(row.id)

    async def stop(self) -> None:
        self._running = False
        for t in list(self._pending):
            t.cancel()
        async with self._lock:
            drivers, self.drivers = self.drivers, {}
            await asyncio.gather(*(d.stop() for d in drivers.values()), return_exceptions=True)

    def _changed(self, upper_id: int) -> None:
        if not self._running:
            return
        task = asyncio.get_running_loop().create_task(self.reload(upper_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settled(self) -> None:
        """Every reload asked for so far is done (tests, and the API answering after a write)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def principal(self, row: UpperPlatform) -> UpperPrincipal:
        try:
            share = share_of(row.share)
        except ValidationError:
            share = Share()  # a stored share that no longer reads shares nothing
        return UpperPrincipal(row.id, row.sip_id, row.name, UpperScope(share, row.local_sip_id or self.local_id))

    async def reload(self, upper_id: int) -> None:
        """The upper's link as its row now says: closed, (re)started, or left off."""
        async with self._lock:
            try:
                row: UpperPlatform | None = await self.uppers.get(upper_id)
            except NotFound:
                row = None
            old = self.drivers.get(upper_id)
            if (row is not None and row.enabled and old is not None and self._running
                    and old.link is not None and old.link.state is not LinkState.CLOSED):
                try:
                    same = self._config(row) == old.base_config and (row.announce_port == old._announce_port)
                except (ValueError, SealError):
                    same = False
                if same:  # only the share (or the name) changed: the link stays up
                    old.set_principal(self.principal(row))
                    return
            self.drivers.pop(upper_id, None)
            self.failed.pop(upper_id, None)
            if old is not None:
                await old.stop()
            if not self._running:
                return
            self.closed.pop(upper_id, None)
            if row is None:
                return
            if not row.enabled:
                if old is not None:
                    self.closed[upper_id] = old  # its last state (closed, unregistered or not)
                return
            try:
                config = self._config(row)
            except (ValueError, SealError) as exc:  # a row the link refuses, a password that does not open
                self.failed[upper_id] = f"cannot start: {exc}"
                return
            driver = UpperDriver(row.id, config, bind_host=self.sip_host, announce_port=row.announce_port,
                                 principal=self.principal(row), services=self.services)
            await driver.start()
            self.drivers[upper_id] = driver

    def _config(self, row: UpperPlatform) -> UpperConfig:
        return UpperConfig(
            server_id=row.sip_id, host=row.host, port=row.port, domain=row.domain, transport=row.transport.upper(),
            local_id=row.local_sip_id or self.local_id, password=self.uppers.secret(row),
            announce_host=row.announce_host or self.sip_host, announce_port=row.announce_port or 5060,
            register_expires=row.register_expires, keepalive_interval=float(row.keepalive_interval),
            keepalive_max_missed=row.keepalive_max_missed, charset=row.charset, backoff=self.backoff,
            max_message=self.tcp_message if row.transport.lower() == "tcp" else self.udp_message,
        )

    def status(self, row: UpperPlatform) -> dict[str, Any]:
        if not self._running:
            return {"state": "not-running",
                    "last_error": "the links run on another signalling node (the one holding the cascade lease)"}
        if not row.enabled:
            old = self.closed.get(row.id)
            return old.status() if old is not None else {"state": "closed"}
        if row.id in self.failed:
            return {"state": "failed", "last_error": self.failed[row.id]}
        driver = self.drivers.get(row.id)
        if driver is None:
            return {"state": "starting"}
        return driver.status()
