"""What every concern of a virtual device stands on: the context the devices of one endpoint
share, the device's state (registration, counters, subscriptions, media calls, faults), its
channels and background tasks, and how it sends requests to the server and ends its calls."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from xueliang.gb28181.endpoint import Incoming, SipEndpoint, SipTimeout
from xueliang.gb28181.manscdp import ManscdpMessage
from xueliang.gb28181.sip import (
    Dialog,
    SipRequest,
    SipResponse,
    format_via,
    generate_branch,
    generate_call_id,
    generate_tag,
    make_request,
)
from xueliang.sim.device.channel import ChannelSpec, VirtualChannel
from xueliang.sim.recordings import RecordingSchedule, format_gb_time
from xueliang.sim.video import MediaPump, MediaSession
from xueliang.tasks import woken

log = logging.getLogger("xueliang.sim")

MANSCDP_CONTENT_TYPE = "Application/MANSCDP+xml"
Address = tuple[str, int]

#: The device type the routing tables of a :class:`DeviceContext` hold (the simulator's is
#: :class:`~xueliang.sim.device.virtual.VirtualDevice`).
DeviceT = TypeVar("DeviceT")


@dataclass(slots=True)
class Faults:
    """Misbehaviour on command. Change the fields at any time; they apply from then on."""

    #: Register with a wrong password (the platform answers 403, or 401 again).
    wrong_password: bool = False
    #: Send no keepalives (the platform should take the device offline).
    drop_keepalives: bool = False
    #: Seconds to wait before sending a Response MESSAGE (and before answering an INVITE).
    answer_delay: float = 0.0
    #: Answer 200 to queries and controls but never send the Response.
    no_answers: bool = False
    #: Ignore every request from the platform: no 200, nothing (its transaction times out).
    ignore_requests: bool = False
    #: Answer every INVITE with this status (e.g. 486 Busy Here) instead of 200.
    reject_invite: int | None = None


@dataclass(slots=True)
class Subscription:
    """A subscription the platform holds on this device (目录/报警/移动位置订阅)."""

    dialog: Dialog
    cmd_type: str
    event: str
    expires_at: float
    addr: Address
    transport: str
    notifies: int = 0

    @property
    def active(self) -> bool:
        return time.monotonic() < self.expires_at


@dataclass(slots=True)
class _MediaCall:
    """An INVITE dialog with its media session."""

    dialog: Dialog
    session: MediaSession
    addr: Address
    transport: str
    channel: VirtualChannel
    ended: bool = False
    bye_timer: asyncio.TimerHandle | None = None


@dataclass
class DeviceContext(Generic[DeviceT]):
    """What the devices on one endpoint share: the endpoint, where the server is, the media."""

    endpoint: SipEndpoint
    server: Address
    server_id: str
    domain: str
    transport: str = "udp"
    contact_host: str = "127.0.0.1"
    media: MediaPump | None = None
    #: Call-ID → device, for routing in-dialog requests (ACK, BYE, INFO, refreshes).
    calls: dict[str, DeviceT] = field(default_factory=dict)
    #: Device and channel ID → device, for routing by Request-URI (kept up to date by devices).
    index: dict[str, DeviceT] = field(default_factory=dict)
    request_timeout: float = 8.0
    retry_interval: float = 30.0
    user_agent: str = "xueliang-sim/1.0"
    recordings: RecordingSchedule = field(default_factory=RecordingSchedule)
    resolution: str = "640*360"
    codec_f: str = "2"
    bit_rate: int = 1_000_000

    @property
    def server_hostport(self) -> str:
        host, port = self.server
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def contact_hostport(self) -> str:
        host = self.contact_host
        port = self.endpoint.port
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _now_text(offset: float = 0.0) -> str:
    return format_gb_time(dt.datetime.now() + dt.timedelta(seconds=offset))


def _parse_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    value = value.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


class DeviceCore:
    """A device's state and plumbing; :class:`~xueliang.sim.device.virtual.VirtualDevice` adds
    the concerns (signalling, media, recordings) and its life."""

    def __init__(
        self,
        ctx: DeviceContext[Any],
        device_id: str,
        channels: Iterable[ChannelSpec],
        *,
        password: str = "12345678",
        name: str = "",
        manufacturer: str = "XUELIANG",
        model: str | None = None,
        firmware: str = "V1.0.0 build 240101",
        version: str = "2.0",
        keepalive_interval: float = 60.0,
        expires: int = 3600,
        catalog_per_message: int = 8,
        encoding: str = "GB2312",
        start_delay: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.ctx = ctx
        self.id = device_id
        self.type_code = device_id[10:13]
        self.kind = "NVR" if self.type_code in ("111", "118", "130") else "IPC"
        self.name = name or f"{self.kind}-{device_id[-6:]}"
        self.password = password
        self.manufacturer = manufacturer
        self.model = model or ("SIM-NVR" if self.kind == "NVR" else "SIM-IPC")
        self.firmware = firmware
        self.version = version
        self.keepalive_interval = keepalive_interval
        self.expires = expires
        self.catalog_per_message = max(1, catalog_per_message)
        self.encoding = encoding
        self.start_delay = start_delay
        self.rng = rng or random.Random()
        self.faults = Faults()
        self.channels: dict[str, VirtualChannel] = {}
        ctx.index[device_id] = self
        for spec in channels:
            self._make_channel(spec)
        # registration state
        self.registered = False
        self.call_id = generate_call_id()
        self._reg_tag = generate_tag()
        self._reg_cseq = 0
        self.granted_expires = expires
        self.registered_at: float | None = None
        self.register_count = 0
        self.register_failures = 0
        self.last_register_status: int | None = None
        self.clock_offset = 0.0
        self.call_ids: list[str] = [self.call_id]
        # traffic counters
        self.keepalives_sent = 0
        self.keepalives_answered = 0
        self.keepalive_misses = 0
        self.messages_received: collections.deque[ManscdpMessage] = collections.deque(maxlen=100)
        self.responses_sent = 0
        self._sn = self.rng.randrange(1, 100_000)
        self._msg_cseq = 0
        # dialogs
        self.subscriptions: dict[str, Subscription] = {}
        self.calls: dict[str, _MediaCall] = {}
        # life
        self.running = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._next_keepalive = 0.0
        self._refresh_at = 0.0
        self._tasks: set[asyncio.Task[object]] = set()

    # -- channels ------------------------------------------------------------------------------

    def _make_channel(self, spec: ChannelSpec) -> VirtualChannel:
        ch = VirtualChannel(
            id=spec.id,
            name=spec.name,
            parent_id=self.id,
            manufacturer=spec.manufacturer,
            model=spec.model,
            civil_code=spec.civil_code or spec.id[:6],
            address=spec.address,
            status=spec.status,
            longitude=spec.longitude,
            latitude=spec.latitude,
            ptz_type=spec.ptz_type,
            ip_address=self.ctx.contact_host,
            port=None,
        )
        self.channels[ch.id] = ch
        self.ctx.index[ch.id] = self
        return ch

    def channel(self, channel_id: str | None = None) -> VirtualChannel:
        """A channel by ID; without an ID (or the device's own ID) the first channel."""
        if channel_id is None or channel_id == self.id:
            return next(iter(self.channels.values()))
        return self.channels[channel_id]

    def owns(self, some_id: str) -> bool:
        return some_id == self.id or some_id in self.channels

    # -- tasks -----------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[object]) -> None:
        async def wrapper() -> object:
            return await coro

        task: asyncio.Task[object] = asyncio.create_task(wrapper())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("device %s: %r", self.id, task.exception())

    async def _sleep(self, seconds: float) -> None:
        """Sleep, or less when woken (restart); a wake-up that came earlier ends it at once."""
        await woken(self._wake, max(0.0, seconds))
        self._wake.clear()

    # -- requests to the server ------------------------------------------------------------

    def _via(self) -> str:
        return format_via(
            self.ctx.transport.upper(),
            self.ctx.contact_host,
            self.ctx.endpoint.port,
            branch=generate_branch(),
            rport=True,
        )

    @property
    def server_uri(self) -> str:
        return f"sip:{self.ctx.server_id}@{self.ctx.server_hostport}"

    @property
    def contact(self) -> str:
        return f"<sip:{self.id}@{self.ctx.contact_hostport}>"

    def _common_headers(self) -> list[tuple[str, str]]:
        return [("User-Agent", self.ctx.user_agent), ("X-GB-Ver", self.version)]

    async def _send(
        self, req: SipRequest, addr: Address | None = None, transport: str | None = None
    ) -> SipResponse | None:
        try:
            return await self.ctx.endpoint.request(
                req,
                addr or self.ctx.server,
                transport or self.ctx.transport,
                timeout=self.ctx.request_timeout,
            )
        except (SipTimeout, OSError) as exc:
            log.debug("device %s: %s %s", self.id, req.method, exc)
            return None

    def _next_sn(self) -> int:
        self._sn += 1
        return self._sn

    def _message_request(self, body: bytes) -> SipRequest:
        self._msg_cseq += 1
        return make_request(
            "MESSAGE",
            self.server_uri,
            via=self._via(),
            from_=f"<sip:{self.id}@{self.ctx.domain}>;tag={generate_tag()}",
            to=f"<sip:{self.ctx.server_id}@{self.ctx.domain}>",
            call_id=generate_call_id(),
            cseq=self._msg_cseq,
            headers=[("Content-Type", MANSCDP_CONTENT_TYPE), *self._common_headers()],
            body=body,
        )

    async def send_message(self, body: bytes) -> int | None:
        """Send a MANSCDP body to the server as a MESSAGE; the final status (None: no answer)."""
        resp = await self._send(self._message_request(body))
        return resp.status if resp is not None else None

    # -- media calls (ended by stop and restart, BYE, the end of a range, a failed stream) ---

    def _in_call(self, inc: Incoming) -> _MediaCall | None:
        """The call an in-dialog request (BYE, INFO) belongs to, the request passed to its dialog;
        without one, None, and the request is answered 481."""
        call = self.calls.get(inc.request.call_id)
        if call is None:
            inc.respond(481)
            return None
        call.dialog.receive_request(inc.request)
        return call

    def _end_call(self, call_id: str) -> None:
        call = self.calls.pop(call_id, None)
        self.ctx.calls.pop(call_id, None)
        if call is None:
            return
        if call.bye_timer is not None:
            call.bye_timer.cancel()
        if self.ctx.media is not None:
            self.ctx.media.close(call.session)

    async def hang_up(self, call_id: str) -> int | None:
        """Send BYE for a media dialog (as a device does when its stream fails)."""
        call = self.calls.get(call_id)
        if call is None:
            return None
        req = call.dialog.create_request("BYE", via=self._via(), headers=self._common_headers())
        self._end_call(call_id)
        resp = await self._send(req, call.addr, call.transport)
        return resp.status if resp is not None else None
