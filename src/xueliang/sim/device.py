"""A virtual GB/T 28181 device (虚拟设备): an IPC with one channel or an NVR with M channels.

Plain logic driven by a shared :class:`~xueliang.gb28181.endpoint.SipEndpoint`: thousands of
devices share one endpoint (one UDP port), and the simulator routes each incoming request to
its device by the Request-URI user (device or channel ID) or, inside a dialog, by Call-ID.

What a device does (and what a platform must expect from it):

* **REGISTER** to ``sip:<serverId>@<host:port>``; From = To = ``sip:<deviceId>@<domain>``,
  Contact ``sip:<deviceId>@<ip:port>``, Expires (3600), ``X-GB-Ver`` (2.0 or 3.0). A 401 is
  answered with MD5 digest (qop=auth when offered); re-registers at 80 % of the granted
  expiry with the same Call-ID; unregisters (Expires 0) on stop; after a failure it retries
  every ``retry_interval`` seconds. The ``Date`` of the 200 sets the device clock.
* **Keepalive** MESSAGE every ``keepalive_interval`` seconds (``Application/MANSCDP+xml``,
  Notify/Keepalive/Status OK). Three unanswered keepalives, or a non-2xx answer, make it
  register again.
* **MESSAGE Query / Control** from the platform: a bare 200 at once, then the Response as its
  own MESSAGE to the server: Catalog (split over several MESSAGEs, same SN, SumNum, DeviceList
  Num), DeviceInfo, DeviceStatus, RecordInfo (split like Catalog), PresetQuery;
  DeviceControl (PTZCmd, RecordCmd, GuardCmd, AlarmCmd, IFameCmd/IFrameCmd, DragZoom,
  HomePosition) and DeviceConfig answered with Response Result OK. TeleBoot restarts the
  device: no Response, a new registration with a new Call-ID.
* **SUBSCRIBE** (Catalog, Alarm, MobilePosition): 200 with Result OK; then NOTIFY in the
  subscription dialog on changes (``set_channel_status``, ``add_channel``, ``remove_channel``,
  alarms and positions when subscribed). Unsubscribed alarms and positions go as MESSAGE.
* **INVITE** (Play / Playback / Download) for a channel: 200 with SDP (a=sendonly, the
  offer's ``y=``, ``f=``); after the ACK, PS over RTP to the offered address over UDP, or TCP
  (RFC 4571): the device connects when the offer says ``a=setup:passive``, listens on its
  answered port when it says ``active``. BYE stops it. INFO (MANSRTSP) pauses, resumes, seeks
  and changes speed; at the end of a Playback/Download range, a MESSAGE Notify MediaStatus
  121 inside the dialog, then it waits for the BYE.

Faults (per device, :class:`Faults`): wrong password, dropped keepalives, slow answers,
no answers (200 but no Response), ignored requests (no 200 either), INVITE rejection, and
:meth:`VirtualDevice.restart` (new Call-ID) / :meth:`VirtualDevice.power_off`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field

from xueliang.gb28181 import manscdp, ptz
from xueliang.gb28181.endpoint import Incoming, SipEndpoint, SipTimeout
from xueliang.gb28181.manscdp import CatalogItem, ManscdpError, ManscdpMessage
from xueliang.gb28181.mansrtsp import MansrtspError, parse_mansrtsp
from xueliang.gb28181.sdp import SdpError, answer_offer, parse_sdp
from xueliang.gb28181.sip import (
    Dialog,
    SipParseError,
    SipRequest,
    SipResponse,
    format_via,
    generate_branch,
    generate_call_id,
    generate_tag,
    make_authorization,
    make_request,
)
from xueliang.sim.recordings import RecordingSchedule, format_gb_time, parse_gb_time
from xueliang.sim.video import MediaPump, MediaSession

__all__ = [
    "MANSCDP_CONTENT_TYPE",
    "ChannelSpec",
    "DeviceContext",
    "Faults",
    "PtzRecord",
    "PtzState",
    "Subscription",
    "VirtualChannel",
    "VirtualDevice",
]

log = logging.getLogger("xueliang.sim")

MANSCDP_CONTENT_TYPE = "Application/MANSCDP+xml"
Address = tuple[str, int]


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ChannelSpec:
    """What a channel is (for ``device_specs`` and :meth:`VirtualDevice.add_channel`)."""

    id: str
    name: str
    address: str = ""
    longitude: float | None = None
    latitude: float | None = None
    #: None: not reported (the platform keeps what its registry says).
    ptz_type: int | None = 3
    civil_code: str = ""
    manufacturer: str = "XUELIANG"
    model: str = "SIM-CAM"
    status: str = "ON"


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
class PtzRecord:
    """One PTZCmd received: when, the hex as sent, and its decoding (None if malformed)."""

    at: float
    hex: str
    command: ptz.PtzCommand | None

    @property
    def kind(self) -> str:
        return self.command.kind if self.command is not None else "invalid"


@dataclass(slots=True)
class PtzState:
    """The simulated head: pan/tilt in degrees, zoom factor, presets, last motion."""

    pan: float = 0.0
    tilt: float = 0.0
    zoom: float = 1.0
    focus: int = 0
    iris: int = 0
    moving: tuple[int, int, int] = (0, 0, 0)
    presets: dict[int, tuple[float, float, float]] = field(default_factory=dict)

    def apply(self, cmd: ptz.PtzCommand) -> None:
        kind = cmd.kind
        if kind == "ptz":
            self.moving = (cmd.pan, cmd.tilt, cmd.zoom)
            # Each command moves the head one step, proportional to its speed.
            self.pan = (self.pan + cmd.pan * (1 + cmd.pan_speed * 10 / 255)) % 360
            self.tilt = max(
                -90.0, min(90.0, self.tilt + cmd.tilt * (1 + cmd.tilt_speed * 10 / 255))
            )
            self.zoom = max(1.0, min(40.0, self.zoom + cmd.zoom * (0.5 + cmd.zoom_speed / 15)))
        elif kind == "fi":
            self.focus += cmd.focus_direction
            self.iris += cmd.iris_direction
        elif kind == "preset_set" and cmd.preset is not None:
            self.presets[cmd.preset] = (self.pan, self.tilt, self.zoom)
        elif kind == "preset_call" and cmd.preset in self.presets:
            self.pan, self.tilt, self.zoom = self.presets[cmd.preset]
            self.moving = (0, 0, 0)
        elif kind == "preset_delete" and cmd.preset is not None:
            self.presets.pop(cmd.preset, None)


@dataclass(slots=True)
class VirtualChannel:
    """One channel (通道) of a virtual device: catalog data and simulated state."""

    id: str
    name: str
    parent_id: str
    manufacturer: str = "XUELIANG"
    model: str = "SIM-CAM"
    owner: str = "Owner"
    civil_code: str = ""
    address: str = ""
    status: str = "ON"
    longitude: float | None = None
    latitude: float | None = None
    ptz_type: int | None = 3
    ip_address: str = ""
    port: int | None = None
    ptz: PtzState = field(default_factory=PtzState)
    ptz_log: collections.deque[PtzRecord] = field(
        default_factory=lambda: collections.deque(maxlen=200)
    )
    recording: bool = True
    guard: bool = False
    alarm: bool = False

    def catalog_item(self, resolution: str = "") -> CatalogItem:
        return CatalogItem(
            device_id=self.id,
            name=self.name,
            manufacturer=self.manufacturer,
            model=self.model,
            owner=self.owner,
            civil_code=self.civil_code,
            address=self.address,
            parental=0,
            parent_ids=[self.parent_id],
            safety_way=0,
            register_way=1,
            secrecy=0,
            ip_address=self.ip_address,
            port=self.port,
            status=self.status,
            longitude=self.longitude,
            latitude=self.latitude,
            ptz_type=self.ptz_type,
            resolution=resolution,
        )

    @property
    def last_ptz(self) -> PtzRecord | None:
        return self.ptz_log[-1] if self.ptz_log else None

    @property
    def duty_status(self) -> str:
        return "ALARM" if self.alarm else "ONDUTY" if self.guard else "OFFDUTY"


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
class DeviceContext:
    """What the devices on one endpoint share: the endpoint, where the server is, the media."""

    endpoint: SipEndpoint
    server: Address
    server_id: str
    domain: str
    transport: str = "udp"
    contact_host: str = "127.0.0.1"
    media: MediaPump | None = None
    #: Call-ID → device, for routing in-dialog requests (ACK, BYE, INFO, refreshes).
    calls: dict[str, VirtualDevice] = field(default_factory=dict)
    #: Device and channel ID → device, for routing by Request-URI (kept up to date by devices).
    index: dict[str, VirtualDevice] = field(default_factory=dict)
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


# --------------------------------------------------------------------------------------------
# the device
# --------------------------------------------------------------------------------------------


class VirtualDevice:
    """One simulated device. Create, then :meth:`start`; :meth:`stop` unregisters it."""

    def __init__(
        self,
        ctx: DeviceContext,
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

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self.running = True
            self._task = asyncio.create_task(self._run(), name=f"sim-device-{self.id}")

    async def stop(self, unregister: bool = True) -> None:
        """Stop: end media and subscriptions, and unregister (Expires 0) when registered."""
        self.running = False
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._tasks):
            task.cancel()
        for call_id in list(self.calls):
            self._end_call(call_id)
        for call_id in list(self.subscriptions):
            self.ctx.calls.pop(call_id, None)
        self.subscriptions.clear()
        if unregister and self.registered:
            with contextlib.suppress(Exception):
                await self._register(expires=0)
        self.registered = False

    def restart(self) -> None:
        """Reboot: drop streams and subscriptions, register again with a new Call-ID."""
        for call_id in list(self.calls):
            self._end_call(call_id)
        for call_id in list(self.subscriptions):
            self.ctx.calls.pop(call_id, None)
        self.subscriptions.clear()
        self.registered = False
        self.call_id = generate_call_id()
        self.call_ids.append(self.call_id)
        self._reg_tag = generate_tag()
        self._reg_cseq = 0
        self._refresh_at = 0.0
        self._wake.set()

    async def power_off(self) -> None:
        """Go silent without unregistering (power cut, cable pulled)."""
        await self.stop(unregister=False)

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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, seconds))
        self._wake.clear()

    async def _run(self) -> None:
        if self.start_delay > 0:
            await asyncio.sleep(self.start_delay)
        while self.running:
            now = time.monotonic()
            if not self.registered:
                if await self._register(self.expires):
                    now = time.monotonic()
                    self._next_keepalive = now + self.rng.uniform(0.2, 1.0)
                else:
                    await self._sleep(self.ctx.retry_interval * self.rng.uniform(0.8, 1.2))
                    continue
            if now >= self._refresh_at:
                if not await self._register(self.expires):
                    continue
            if now >= self._next_keepalive:
                self._next_keepalive = now + self.keepalive_interval
                if not self.faults.drop_keepalives:
                    await self._keepalive()
                continue
            await self._sleep(min(self._next_keepalive, self._refresh_at) - time.monotonic())

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

    def _register_request(self, expires: int, authorization: str | None) -> SipRequest:
        self._reg_cseq += 1
        headers = [("Expires", str(expires)), *self._common_headers()]
        if authorization is not None:
            headers.insert(0, ("Authorization", authorization))
        user = f"sip:{self.id}@{self.ctx.domain}"
        return make_request(
            "REGISTER",
            self.server_uri,
            via=self._via(),
            from_=f"<{user}>;tag={self._reg_tag}",
            to=f"<{user}>",
            call_id=self.call_id,
            cseq=self._reg_cseq,
            contact=self.contact,
            headers=headers,
        )

    async def _register(self, expires: int) -> bool:
        """One registration (or refresh, or with ``expires`` 0 unregistration), with digest."""
        call_id = self.call_id
        resp = await self._send(self._register_request(expires, None))
        if resp is not None and resp.status in (401, 407):
            challenge = resp.headers.get("WWW-Authenticate") or resp.headers.get(
                "Proxy-Authenticate"
            )
            password = self.password + ("-wrong" if self.faults.wrong_password else "")
            try:
                auth = make_authorization(
                    username=self.id,
                    password=password,
                    challenge=challenge or "",
                    method="REGISTER",
                    uri=self.server_uri,
                )
            except SipParseError as exc:
                log.info("device %s: unusable challenge: %s", self.id, exc)
                auth = None
            if auth is not None:
                resp = await self._send(self._register_request(expires, auth))
        self.last_register_status = resp.status if resp is not None else None
        if call_id != self.call_id:
            return False  # restarted meanwhile: this answer is for the old registration
        if expires == 0:
            self.registered = False
            return resp is not None and resp.is_success
        if resp is None or not resp.is_success:
            self.registered = False
            self.register_failures += 1
            log.debug("device %s: register failed (%s)", self.id, self.last_register_status)
            return False
        granted = expires
        value = resp.headers.get("Expires")
        if value and value.strip().isdigit():
            granted = int(value.strip()) or expires
        self.granted_expires = granted
        now = time.monotonic()
        self._refresh_at = now + max(1.0, granted * 0.8)
        self.keepalive_misses = 0
        date = _parse_date(resp.headers.get("Date"))
        if date is not None:
            self.clock_offset = (date - dt.datetime.now()).total_seconds()
        if not self.registered:
            self.registered_at = now
        self.registered = True
        self.register_count += 1
        return True

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

    async def _keepalive(self) -> None:
        body = manscdp.encode_keepalive(self._next_sn(), self.id, encoding=self.encoding)
        self.keepalives_sent += 1
        status = await self.send_message(body)
        if status is not None and 200 <= status < 300:
            self.keepalives_answered += 1
            self.keepalive_misses = 0
        elif status is None:
            self.keepalive_misses += 1
            if self.keepalive_misses >= 3:
                log.info("device %s: 3 keepalives unanswered, registering again", self.id)
                self.registered = False
        else:
            log.info("device %s: keepalive answered %s, registering again", self.id, status)
            self.registered = False

    # -- requests from the platform --------------------------------------------------------

    def handle(self, inc: Incoming) -> None:
        """Entry point for every request routed to this device."""
        if not self.running:
            return
        req = inc.request
        method = req.method
        if self.faults.ignore_requests and method != "ACK":
            return
        if method == "MESSAGE":
            self._on_message(inc)
        elif method == "INVITE":
            self._spawn(self._on_invite(inc))
        elif method == "ACK":
            self._on_ack(inc)
        elif method == "BYE":
            self._on_bye(inc)
        elif method == "INFO":
            self._on_info(inc)
        elif method == "SUBSCRIBE":
            self._on_subscribe(inc)
        elif method == "CANCEL":
            inc.respond(200)
        elif method == "OPTIONS":
            inc.respond(
                200,
                headers=[
                    ("Allow", "INVITE, ACK, BYE, CANCEL, INFO, MESSAGE, SUBSCRIBE, NOTIFY, OPTIONS")
                ],
            )
        elif method == "NOTIFY":
            inc.respond(200)
        else:
            inc.respond(405)

    def _target(self, req: SipRequest) -> str:
        uri = req.uri
        at = uri.find("@")
        start = uri.find(":") + 1
        return uri[start:at] if at > 0 else self.id

    def _on_message(self, inc: Incoming) -> None:
        req = inc.request
        if req.call_id in self.calls:
            inc.respond(200)  # e.g. a platform's answer inside a media dialog
            return
        try:
            msg = manscdp.decode(req.body)
        except ManscdpError as exc:
            inc.respond(400, f"Bad MANSCDP body ({exc.reason})"[:100])
            return
        inc.respond(200)
        self.messages_received.append(msg)
        if msg.root in ("Query", "Control"):
            self._spawn(self._answer(msg))

    async def _answer(self, msg: ManscdpMessage) -> None:
        if self.faults.answer_delay > 0:
            await asyncio.sleep(self.faults.answer_delay)
        bodies = self._respond_to(msg)
        if self.faults.no_answers or not bodies:
            return
        window = 8
        for i in range(0, len(bodies), window):
            results = await asyncio.gather(*(self.send_message(b) for b in bodies[i : i + window]))
            self.responses_sent += sum(1 for r in results if r is not None)

    def _respond_to(self, msg: ManscdpMessage) -> list[bytes]:
        """The Response bodies for a Query or Control (empty: none is due)."""
        cmd = msg.cmd_type
        sn = msg.sn
        target = msg.device_id or self.id
        enc = self.encoding
        if msg.root == "Query":
            if cmd == "Catalog":
                return self._catalog_bodies(sn, target)
            if cmd == "DeviceInfo":
                return [
                    manscdp.encode_device_info_response(
                        sn,
                        self.id,
                        device_name=self.name,
                        manufacturer=self.manufacturer,
                        model=self.model,
                        firmware=self.firmware,
                        channel=len(self.channels),
                        encoding=enc,
                    )
                ]
            if cmd == "DeviceStatus":
                return [
                    manscdp.encode_device_status_response(
                        sn,
                        target if self.owns(target) else self.id,
                        online=True,
                        status_ok=True,
                        encode=True,
                        record=any(c.recording for c in self.channels.values()),
                        device_time=_now_text(self.clock_offset),
                        alarm_status=[(c.id, c.duty_status) for c in self.channels.values()],
                        encoding=enc,
                    )
                ]
            if cmd == "RecordInfo":
                return self._record_bodies(msg, target)
            if cmd == "PresetQuery":
                return [self._preset_body(sn, target)]
            return [manscdp.encode_response_result(cmd, sn, target, False, encoding=enc)]
        # Control
        if cmd == "DeviceControl":
            return self._control(msg, target)
        if cmd == "DeviceConfig":
            return [manscdp.encode_response_result(cmd, sn, target, True, encoding=enc)]
        return [manscdp.encode_response_result(cmd, sn, target, False, encoding=enc)]

    def _catalog_bodies(self, sn: int, target: str) -> list[bytes]:
        if target in self.channels:
            channels = [self.channels[target]]
        else:
            channels = list(self.channels.values())
        items = [c.catalog_item(self.ctx.resolution) for c in channels]
        parts = manscdp.split_catalog(items, self.catalog_per_message)
        return [
            manscdp.encode_catalog_response(sn, self.id, len(items), part, encoding=self.encoding)
            for part in parts
        ]

    def _record_bodies(self, msg: ManscdpMessage, target: str) -> list[bytes]:
        if target in self.channels:
            ch: VirtualChannel | None = self.channels[target]
        elif target == self.id and self.kind == "IPC":
            ch = self.channel()
        else:
            ch = None
        files = []
        name = ""
        if ch is not None:
            name = ch.name
            files = self.ctx.recordings.files(
                ch.id,
                parse_gb_time(msg.get("StartTime")),
                parse_gb_time(msg.get("EndTime")),
                now=dt.datetime.now().replace(microsecond=0),
                name=ch.name,
                address=ch.address,
                recorder_id=self.id,
                record_type=(msg.get("Type") or "all").lower(),
            )
        parts = manscdp.split_catalog(files, self.catalog_per_message)
        return [
            manscdp.encode_record_info_response(
                msg.sn, target, len(files), part, name=name, encoding=self.encoding
            )
            for part in parts
        ]

    def _preset_body(self, sn: int, target: str) -> bytes:
        ch = self.channels.get(target) or self.channel()
        items = "".join(
            f"<Item><PresetID>{n}</PresetID><PresetName>Preset {n}</PresetName></Item>\r\n"
            for n in sorted(ch.ptz.presets)
        )
        text = (
            f'<?xml version="1.0" encoding="{self.encoding}"?>\r\n<Response>\r\n'
            f"<CmdType>PresetQuery</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{target}</DeviceID>\r\n"
            f'<PresetList Num="{len(ch.ptz.presets)}">\r\n{items}</PresetList>\r\n</Response>\r\n'
        )
        return text.encode("gb18030" if self.encoding.upper().startswith("GB") else "utf-8")

    def _control(self, msg: ManscdpMessage, target: str) -> list[bytes]:
        f = msg.fields
        ok = True
        channel = self.channels.get(target) or (self.channel() if self.channels else None)
        if "TeleBoot" in f:
            log.info("device %s: TeleBoot", self.id)
            asyncio.get_running_loop().call_later(0.2, self.restart)
            return []
        if "PTZCmd" in f and channel is not None:
            text = f["PTZCmd"]
            try:
                cmd: ptz.PtzCommand | None = ptz.decode(text)
            except ptz.PtzError:
                cmd = None
                ok = False
            channel.ptz_log.append(PtzRecord(time.time(), text, cmd))
            if cmd is not None:
                channel.ptz.apply(cmd)
        if "RecordCmd" in f and channel is not None:
            channel.recording = f["RecordCmd"].strip().lower() == "record"
        if "GuardCmd" in f and channel is not None:
            channel.guard = f["GuardCmd"].strip().lower() == "setguard"
        if "AlarmCmd" in f and channel is not None:
            channel.alarm = False
        if ("IFameCmd" in f or "IFrameCmd" in f) and channel is not None:
            for call in self.calls.values():
                if call.channel is channel:
                    call.session.force_keyframe()
        if "HomePosition" in f and channel is not None:
            channel.ptz.pan, channel.ptz.tilt, channel.ptz.zoom = 0.0, 0.0, 1.0
        return [
            manscdp.encode_response_result(
                "DeviceControl", msg.sn, target, ok, encoding=self.encoding
            )
        ]

    # -- subscriptions ---------------------------------------------------------------------

    def _on_subscribe(self, inc: Incoming) -> None:
        req = inc.request
        expires_text = (req.headers.get("Expires") or "3600").strip()
        expires = int(expires_text) if expires_text.isdigit() else 3600
        sub = self.subscriptions.get(req.call_id)
        if req.to_tag:
            if sub is None:
                inc.respond(481)
                return
            sub.dialog.receive_request(req)
            if expires == 0:
                self.subscriptions.pop(req.call_id, None)
                self.ctx.calls.pop(req.call_id, None)
            sub.expires_at = time.monotonic() + expires
            inc.respond(200, headers=[("Expires", str(expires))])
            return
        cmd_type = "Catalog"
        sn = 0
        if req.body:
            try:
                msg = manscdp.decode(req.body)
            except ManscdpError as exc:
                inc.respond(400, f"Bad MANSCDP body ({exc.reason})"[:100])
                return
            cmd_type, sn = msg.cmd_type, msg.sn
        else:
            event = (req.headers.get("Event") or "").split(";")[0].strip()
            cmd_type = event if event in ("Catalog", "Alarm", "MobilePosition") else "Catalog"
        tag = generate_tag()
        contact = self.contact
        body = manscdp.encode_response_result(cmd_type, sn, self.id, True, encoding=self.encoding)
        inc.respond(
            200,
            to_tag=tag,
            headers=[
                ("Contact", contact),
                ("Expires", str(expires)),
                ("Content-Type", MANSCDP_CONTENT_TYPE),
            ],
            body=body,
        )
        if expires == 0:
            return
        dialog = Dialog.from_request(req, tag, local_contact=contact)
        self.subscriptions[req.call_id] = Subscription(
            dialog,
            cmd_type,
            (req.headers.get("Event") or cmd_type).split(";")[0].strip(),
            time.monotonic() + expires,
            inc.addr,
            inc.transport,
        )
        self.ctx.calls[req.call_id] = self

    def _subscriptions_for(self, cmd_type: str) -> list[Subscription]:
        out = []
        for call_id, sub in list(self.subscriptions.items()):
            if not sub.active:
                del self.subscriptions[call_id]
                self.ctx.calls.pop(call_id, None)
            elif sub.cmd_type == cmd_type:
                out.append(sub)
        return out

    async def _notify(self, sub: Subscription, body: bytes) -> int | None:
        remaining = max(0, int(sub.expires_at - time.monotonic()))
        req = sub.dialog.create_request(
            "NOTIFY",
            via=self._via(),
            body=body,
            content_type=MANSCDP_CONTENT_TYPE,
            headers=[
                ("Event", sub.event),
                ("Subscription-State", f"active;expires={remaining}"),
                *self._common_headers(),
            ],
        )
        sub.notifies += 1
        resp = await self._send(req, sub.addr, sub.transport)
        return resp.status if resp is not None else None

    async def _notify_catalog(self, items: Sequence[CatalogItem]) -> int:
        subs = self._subscriptions_for("Catalog")
        if not subs:
            return 0
        body = manscdp.encode_catalog_notify(
            self._next_sn(), self.id, items, encoding=self.encoding
        )
        results = await asyncio.gather(*(self._notify(s, body) for s in subs))
        return sum(1 for r in results if r is not None and 200 <= r < 300)

    async def set_channel_status(self, channel_id: str, status: str) -> int:
        """Change a channel's status (ON, OFF, VLOST, DEFECT); NOTIFY catalog subscribers.
        Returns how many subscribers accepted the NOTIFY."""
        event = status.strip().upper()
        ch = self.channels[channel_id]
        ch.status = "ON" if event == "ON" else "OFF"
        item = CatalogItem(device_id=ch.id, event=event)
        return await self._notify_catalog([item])

    async def add_channel(self, spec: ChannelSpec) -> int:
        """Add a channel; NOTIFY catalog subscribers with an ADD carrying the full item."""
        ch = self._make_channel(spec)
        item = ch.catalog_item(self.ctx.resolution)
        item.event = "ADD"
        return await self._notify_catalog([item])

    async def remove_channel(self, channel_id: str) -> int:
        """Remove a channel; NOTIFY catalog subscribers with a DEL."""
        self.channels.pop(channel_id)
        if self.ctx.index.get(channel_id) is self:
            del self.ctx.index[channel_id]
        return await self._notify_catalog([CatalogItem(device_id=channel_id, event="DEL")])

    async def update_channel(self, channel_id: str, **changes: object) -> int:
        """Change catalog fields of a channel (name=..., address=...); NOTIFY an UPDATE."""
        ch = self.channels[channel_id]
        for key, value in changes.items():
            setattr(ch, key, value)
        item = ch.catalog_item(self.ctx.resolution)
        item.event = "UPDATE"
        return await self._notify_catalog([item])

    async def _deliver(self, cmd_type: str, body: bytes) -> int | None:
        subs = self._subscriptions_for(cmd_type)
        if subs:
            results = await asyncio.gather(*(self._notify(s, body) for s in subs))
            return next((r for r in results if r is not None), None)
        return await self.send_message(body)

    async def send_alarm(
        self,
        channel_id: str | None = None,
        priority: int = 1,
        method: int = 5,
        description: str = "",
        *,
        alarm_type: int | None = None,
    ) -> int | None:
        """An Alarm Notify (NOTIFY when the platform subscribed to alarms, else MESSAGE)."""
        ch = self.channel(channel_id)
        ch.alarm = True
        body = manscdp.encode_alarm_notify(
            self._next_sn(),
            ch.id,
            priority=priority,
            method=method,
            time=_now_text(self.clock_offset),
            description=description or None,
            longitude=ch.longitude,
            latitude=ch.latitude,
            alarm_type=alarm_type,
            encoding=self.encoding,
        )
        return await self._deliver("Alarm", body)

    async def send_position(
        self,
        longitude: float,
        latitude: float,
        *,
        speed: float | None = None,
        direction: float | None = None,
        altitude: float | None = None,
    ) -> int | None:
        """A MobilePosition Notify (NOTIFY when subscribed, else MESSAGE)."""
        body = manscdp.encode_mobile_position(
            self._next_sn(),
            self.id,
            time=_now_text(self.clock_offset),
            longitude=longitude,
            latitude=latitude,
            speed=speed,
            direction=direction,
            altitude=altitude,
            encoding=self.encoding,
        )
        for ch in self.channels.values():
            ch.longitude, ch.latitude = longitude, latitude
        return await self._deliver("MobilePosition", body)

    # -- media -----------------------------------------------------------------------------

    async def _on_invite(self, inc: Incoming) -> None:
        req = inc.request
        existing = self.calls.get(req.call_id)
        if existing is not None:  # a re-INVITE: keep the session as it is
            inc.respond(200, to_tag=existing.dialog.local_tag, headers=[("Contact", self.contact)])
            return
        if self.faults.answer_delay > 0:
            await asyncio.sleep(self.faults.answer_delay)
        if self.faults.reject_invite:
            inc.respond(self.faults.reject_invite)
            return
        media = self.ctx.media
        if media is None:
            inc.respond(488, "Media disabled")
            return
        channel_id = self._target(req)
        if channel_id not in self.channels:
            if channel_id == self.id and len(self.channels) == 1:
                channel_id = next(iter(self.channels))
            else:
                inc.respond(404)
                return
        ch = self.channels[channel_id]
        if ch.status != "ON":
            inc.respond(480, "Channel offline")
            return
        try:
            offer = parse_sdp(req.body)
        except SdpError as exc:
            inc.respond(400, f"Bad SDP ({exc})"[:100])
            return
        if offer.video.media.lower() != "video":
            inc.respond(415)
            return
        pts = offer.payload_types
        ps_pt = next((p for p, n in offer.rtpmap.items() if n.upper().startswith("PS/")), None)
        if ps_pt is None:
            if 96 not in pts:
                inc.respond(415, "PS over RTP only")
                return
            ps_pt = 96
        if offer.ssrc is None:
            inc.respond(400, "No SSRC (y=) in the offer")
            return
        kind = (
            offer.session_name if offer.session_name in ("Play", "Playback", "Download") else "Play"
        )
        duration: float | None = None
        rate = 1.0
        if kind != "Play":
            if offer.end_time <= offer.start_time:
                inc.respond(400, "Playback needs a time range (t=)")
                return
            duration = float(offer.end_time - offer.start_time)
            if kind == "Download":
                rate = float(offer.download_speed or 1)
        if offer.is_tcp:
            transport = "tcp-passive" if offer.setup == "active" else "tcp-active"
        else:
            transport = "udp"
        host = offer.media_address
        if not host or host in ("0.0.0.0", "::"):
            host = inc.addr[0]
        label = [f"CH {ch.id}"]
        if ch.name.isascii():
            label.append(ch.name.upper()[:32])
        if kind != "Play":
            label.append(kind.upper())
        session = MediaSession(
            call_id=req.call_id,
            channel_id=ch.id,
            kind=kind,
            ssrc=int(offer.ssrc),
            transport=transport,
            remote=(host, offer.media_port),
            label=label,
            payload_type=ps_pt,
            duration=duration,
            rate=rate,
        )
        try:
            port = await media.prepare(session)
        except OSError as exc:
            inc.respond(500, f"Media port ({exc})"[:100])
            return
        f_line = f"v/{self.ctx.codec_f}/{_resolution_code(self.ctx.resolution)}/25/2/{self.ctx.bit_rate // 1000}a///"
        answer = answer_offer(offer, ch.id, self.ctx.contact_host, port, ssrc=offer.ssrc, f=f_line)
        tag = generate_tag()
        contact = f"<sip:{ch.id}@{self.ctx.contact_hostport}>"
        dialog = Dialog.from_request(req, tag, local_contact=contact)
        call = _MediaCall(dialog, session, inc.addr, inc.transport, ch)
        session.on_end = lambda s: self._spawn(self._media_end(s.call_id))
        session.on_failed = lambda s, why: self._spawn(self._media_failed(s.call_id, why))
        self.calls[req.call_id] = call
        self.ctx.calls[req.call_id] = self
        inc.respond(
            200,
            to_tag=tag,
            headers=[
                ("Contact", contact),
                ("Content-Type", "APPLICATION/SDP"),
                *self._common_headers(),
            ],
            body=answer.encode(),
        )
        loop = asyncio.get_running_loop()
        call.bye_timer = loop.call_later(32.0, self._ack_timeout, req.call_id)

    def _ack_timeout(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None and not call.session.acked:
            log.info("device %s: no ACK for %s", self.id, call_id)
            self._end_call(call_id)

    def _on_ack(self, inc: Incoming) -> None:
        call = self.calls.get(inc.request.call_id)
        if call is None or call.session.acked:
            return
        if call.bye_timer is not None:
            call.bye_timer.cancel()
            call.bye_timer = None
        media = self.ctx.media
        if media is not None:
            self._spawn(media.activate(call.session))

    def _on_bye(self, inc: Incoming) -> None:
        call = self.calls.get(inc.request.call_id)
        if call is None:
            inc.respond(481)
            return
        call.dialog.receive_request(inc.request)
        inc.respond(200)
        self._end_call(inc.request.call_id)

    def _on_info(self, inc: Incoming) -> None:
        call = self.calls.get(inc.request.call_id)
        if call is None:
            inc.respond(481)
            return
        call.dialog.receive_request(inc.request)
        try:
            cmd = parse_mansrtsp(inc.request.body)
        except MansrtspError as exc:
            inc.respond(400, f"Bad MANSRTSP ({exc})"[:100])
            return
        inc.respond(200)
        s = call.session
        if cmd.method == "PAUSE":
            s.pause()
        elif cmd.method == "TEARDOWN":
            media = self.ctx.media
            if media is not None:
                media.close(s)
        else:
            if cmd.scale is not None:
                s.set_rate(cmd.scale)
            if cmd.range_start is not None:
                s.seek(cmd.range_start)
            s.resume()

    def _end_call(self, call_id: str) -> None:
        call = self.calls.pop(call_id, None)
        self.ctx.calls.pop(call_id, None)
        if call is None:
            return
        if call.bye_timer is not None:
            call.bye_timer.cancel()
        if self.ctx.media is not None:
            self.ctx.media.close(call.session)

    async def _media_end(self, call_id: str) -> None:
        """Playback/download reached its end: MediaStatus 121 in the dialog, then wait for BYE."""
        call = self.calls.get(call_id)
        if call is None:
            return
        call.ended = True
        body = manscdp.encode_media_status(
            self._next_sn(), call.channel.id, notify_type=121, encoding=self.encoding
        )
        req = call.dialog.create_request(
            "MESSAGE",
            via=self._via(),
            body=body,
            content_type=MANSCDP_CONTENT_TYPE,
            headers=self._common_headers(),
        )
        await self._send(req, call.addr, call.transport)
        loop = asyncio.get_running_loop()
        call.bye_timer = loop.call_later(60.0, lambda: self._spawn(self.hang_up(call_id)))

    async def _media_failed(self, call_id: str, why: str) -> None:
        log.info("device %s: media of %s failed: %s", self.id, call_id, why)
        await self.hang_up(call_id)

    async def hang_up(self, call_id: str) -> int | None:
        """Send BYE for a media dialog (as a device does when its stream fails)."""
        call = self.calls.get(call_id)
        if call is None:
            return None
        req = call.dialog.create_request("BYE", via=self._via(), headers=self._common_headers())
        self._end_call(call_id)
        resp = await self._send(req, call.addr, call.transport)
        return resp.status if resp is not None else None

    def sessions(self) -> list[MediaSession]:
        return [c.session for c in self.calls.values()]


def _resolution_code(resolution: str) -> int:
    """f= resolution code: 1 QCIF, 2 CIF, 3 4CIF, 4 D1, 5 720P, 6 1080P."""
    try:
        height = int(resolution.replace("x", "*").split("*")[1])
    except (IndexError, ValueError):
        return 4
    if height >= 1080:
        return 6
    if height >= 720:
        return 5
    if height >= 480:
        return 4
    if height >= 288:
        return 2
    return 1
