"""Video up to upper platforms (级联上送): an upper's INVITE served from the media hub.

Where signalling runs, each upper's link hands its media requests (INVITE, ACK, BYE, CANCEL,
INFO) to an :class:`UpperMedia`, which drives the sans-IO dialogs of
:mod:`xueliang.gb28181.cascade.invite` and does what they ask:

* INVITE: the channel the upper names must be in its share (``ShareLookup``: the share's ID
  mapping and filters); then the hub stream is opened as for any viewer: ``live/{channel}``
  for live, so the upper is one more reader of the camera's one stream; a playback or download
  is a stream of its own, from the platform's recordings when it holds the range, else from the
  device. A ``ps`` reader of that stream goes to a :class:`~xueliang.media.ps_rtp_out.PsRtpSender`
  (UDP, TCP active or TCP passive as the upper's SDP says, with its SSRC), and the dialogs
  answer 200 with the announce address. That part is a :class:`~xueliang.cascade.senders.SenderSide`:
  this process's hub (``HubSenders``), or on a signalling node of a cluster a media node asked
  over the RPC (cascade/remote.py), whose address then goes in the SDP.
* ACK starts the sending; BYE from the upper stops it; the stream ending, the RTP peer going
  away or the channel leaving the share (checked on every change of the uppers and every few
  seconds) ends it with our BYE. A playback that reached its end says so (MediaStatus 121).
* Every INVITE (served or refused) and every session's end is audited with the upper as the
  actor (``upper:<SIP ID>``, role ``upper``). The sessions show in the stream listing (their
  readers) and in :meth:`UpstreamMedia.sessions`.
* RecordInfo for a shared channel: the device's recordings (asked of the device, as the
  platform's own RecordInfo does) and the platform's (the ``recordings`` index), in the upper's
  channel numbering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import Bus, BusEvent
from xueliang.cascade.senders import HubSenders, SenderOrder, SenderSide
from xueliang.cascade.share import UpperScope, share_of
from xueliang.cascade.uppers import CHANGED, UpperService
from xueliang.errors import DomainError, GatewayTimeout, NotFound
from xueliang.gb28181.cascade import (
    AckReceived,
    ByeReceived,
    CancelReceived,
    InfoReceived,
    InviteReceived,
    RecordInfoQuery,
    RequestAnswered,
    UpperConfig,
)
from xueliang.gb28181.cascade.invite import (
    DialogOutput,
    MediaConfirmed,
    MediaEnded,
    MediaRequested,
    Outgoing,
    PlaybackControl,
    Reply,
    UpstreamDialogs,
    UpstreamOffer,
)
from xueliang.gb28181.manscdp import RecordItem, encode_record_info_response
from xueliang.gb28181.sip import SipRequest
from xueliang.media.hub import MediaHub
from xueliang.media.ports import PortPool, PortsExhausted
from xueliang.recording.playback import segments

__all__ = ["RegistryShare", "ShareLookup", "UpperMedia", "UpstreamMedia", "UpstreamSession", "record_info_parts"]

log = logging.getLogger("xueliang.cascade.upstream")

#: How often the open sessions are checked against the shares (besides every change).
RECHECK_EVERY = 5.0
#: After MediaStatus 121 the upper hangs up; if it does not, we do after this long.
END_GRACE = 3.0
#: Changes that may end or open an upper's sessions (with the uppers' own, CHANGED).
_RECHECK_KINDS = ("channel", "registry", "device", "catalog")
#: RecordInfo items per MESSAGE (a RecordInfo item is ~300 bytes; GB2312 over UDP).
RECORDS_PER_MESSAGE = 4


class ShareLookup(Protocol):
    """Which of our channels an upper's ID names, if that channel is in its share."""

    async def shared_channel(self, upper_id: int, channel_id: str) -> Any | None:
        """Our channel row (``id``, ``device_id``...) or None: not shared, unknown, not a camera."""
        ...


class Audit(Protocol):
    """Where the upper's acts are recorded (access/audit.py's AuditLog)."""

    def append(self, action: str, outcome: str = "ok", *, actor: str = "", role: str = "",
               resource_type: str = "", resource_id: str = "", ip: str = "", status: int | None = None,
               detail: Mapping[str, Any] | None = None) -> None: ...


class RecordQuery(Protocol):
    """Asks a device for its recordings (gb28181.commands.DeviceCommands is one)."""

    async def record_info(self, device_id: str, channel_id: str, start: str, end: str,
                          type_: str) -> list[dict[str, Any]]: ...


class LinkDriver(Protocol):
    """What the media side uses of an upper's link driver (cascade/links.py's UpperDriver)."""

    upper_id: int
    config: UpperConfig

    def respond(self, request: SipRequest, status: int, **kw: Any) -> None: ...

    def send_request(self, request: SipRequest) -> None: ...

    def send_message(self, body: bytes) -> None: ...


class ChannelLookup(Protocol):
    async def get_channel(self, channel_id: str) -> Any: ...


class RegistryShare:
    """:class:`ShareLookup` over the uppers' rows and the registry: the share of
    :mod:`xueliang.cascade.share` (its ID mapping, then its filters on the channel's row),
    read fresh at each question so a change applies at once."""

    def __init__(self, uppers: UpperService, channels: ChannelLookup, platform_id: str) -> None:
        self.uppers = uppers
        self.channels = channels
        self.platform_id = platform_id

    async def shared_channel(self, upper_id: int, channel_id: str) -> Any | None:
        try:
            row = await self.uppers.get(upper_id)
        except NotFound:
            return None
        if not row.enabled:
            return None
        scope = UpperScope(share_of(row.share), row.local_sip_id or self.platform_id)
        local = scope.local_id(channel_id)
        if local is None:
            return None
        try:
            channel = await self.channels.get_channel(local)
        except NotFound:
            return None
        return channel if scope.match(channel) else None


@dataclass(slots=True, eq=False)
class UpstreamSession:
    """One upper watching one stream: a dialog, a hub reader, an RTP sender."""

    media: UpperMedia
    call_id: str
    offer: UpstreamOffer
    channel_id: str  # ours
    started: float = field(default_factory=time.time)
    stream_name: str = ""
    #: the media node sending it, in a cluster ("" here)
    node: str = ""
    opening: asyncio.Task[None] | None = None
    state: str = "opening"  # opening, answered, sending, ended
    ended_reason: str = ""

    def where(self) -> dict[str, Any]:
        """The media node sending, in a cluster (for the audit)."""
        return {"node": self.node} if self.node else {}

    def describe(self) -> dict[str, Any]:
        m = self.media
        return {
            "upper_id": m.upper_id, "upper": m.name, "upper_sip_id": m.sip_id, "call_id": self.call_id,
            "channel_id": self.channel_id, "upper_channel_id": self.offer.channel_id, "mode": self.offer.mode,
            "stream": self.stream_name, "state": self.state, "ssrc": self.offer.ssrc,
            "transport": self.offer.transport, "to": f"{self.offer.host}:{self.offer.port}",
            "since": datetime.fromtimestamp(self.started, UTC).isoformat(),
            **({"node": self.node} if self.node else {}),
            **({"sender": sender} if (sender := m.service.senders.describe(self.call_id)) else {}),
        }


def _status_of(exc: BaseException) -> tuple[int, str]:
    """The SIP answer to a stream that would not open."""
    if isinstance(exc, NotFound):
        return 404, str(exc)
    if isinstance(exc, PortsExhausted):  # media.upstream_port_range is used up: busy, not broken
        return 503, str(exc)
    if isinstance(exc, GatewayTimeout | TimeoutError):
        return 408, "the camera did not answer in time"
    if isinstance(exc, DomainError):
        return 480, str(exc)
    return 500, "the stream could not be opened"


class UpperMedia:
    """One upper's media dialogs, driven (see the module docstring).

    ``send`` takes the dialogs' :class:`Reply` and :class:`Outgoing` for the link (which owns
    the SIP transactions); ``peer_host`` is the upper's signalling address (also let in on a
    passive RTP port, for uppers whose media leaves from there).
    """

    def __init__(self, service: UpstreamMedia, *, upper_id: int, sip_id: str, name: str,
                 dialogs: UpstreamDialogs, send: Callable[[Reply | Outgoing], None], peer_host: str) -> None:
        self.service = service
        self.upper_id = upper_id
        self.sip_id = sip_id
        self.name = name
        self.dialogs = dialogs
        self.send = send
        self.peer_host = peer_host
        self.sessions: dict[str, UpstreamSession] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        #: the link driver it answers through (a restarted link gets a new UpperMedia)
        self.driver: LinkDriver | None = None
        #: requests that came while the upper's media settings were read (None: read)
        self._pending: list[SipRequest] | None = None

    @property
    def actor(self) -> str:
        return f"upper:{self.sip_id}"

    # -- from the link ---------------------------------------------------------------------

    def receive(self, request: SipRequest) -> None:
        """An INVITE, ACK, BYE, CANCEL, INFO (or an in-dialog request) from the upper."""
        if self.closed:
            return
        if self._pending is not None:
            self._pending.append(request)
            return
        self._apply(self.dialogs.receive(request, self._now(), self.peer_host))

    def load(self, settings: Awaitable[tuple[str | None, str | None]]) -> None:
        """Read the upper's media settings (announce address, preferred RTP transport) before
        the first request is handled; requests meanwhile wait, in order."""
        self._pending = []

        async def run() -> None:
            try:
                media_host, prefer = await settings
                if media_host:
                    self.dialogs.media_host = media_host
                self.dialogs.prefer = prefer
            except Exception:  # the defaults serve
                log.exception("media settings of upper %s", self.upper_id)
            pending, self._pending = self._pending or [], None
            for request in pending:
                self.receive(request)

        self._spawn(run())

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _apply(self, outputs: list[DialogOutput]) -> None:
        for o in outputs:
            if isinstance(o, Reply | Outgoing):
                self.send(o)
            elif isinstance(o, MediaRequested):
                self._requested(o)
            elif isinstance(o, MediaConfirmed):
                s = self.sessions.get(o.call_id)
                if s is not None and s.state == "answered":
                    self.service.senders.start(o.call_id)
                    s.state = "sending"
            elif isinstance(o, MediaEnded):
                self._ended(o.call_id, o.reason)
            elif isinstance(o, PlaybackControl):
                self._spawn(self._control(o))
        self._arm()

    def _arm(self) -> None:
        """Wake the dialogs at their deadline (an INVITE not decided, a 200 not acknowledged)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.dialogs.next_deadline()
        if deadline is not None and not self.closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(deadline, lambda: self._apply(self.dialogs.tick(loop.time())))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        return self.service._spawn(coro)

    # -- INVITE ----------------------------------------------------------------------------

    def _requested(self, ev: MediaRequested) -> None:
        s = UpstreamSession(self, ev.call_id, ev.offer, "")
        self.sessions[ev.call_id] = s
        s.opening = self._spawn(self._open(s))

    async def _open(self, s: UpstreamSession) -> None:
        offer = s.offer
        svc = self.service
        try:
            channel = await svc.share.shared_channel(self.upper_id, offer.channel_id)
        except Exception:  # the registry is away: not a refusal of the upper's right
            log.exception("share check for upper %s", self.upper_id)
            channel = False
        if channel is None or channel is False:
            status, reason = (404, "Not in this upper's share") if channel is None else (500, "Share check failed")
            self._audit("cascade.invite", "denied" if channel is None else "error", offer.channel_id, offer,
                        status=status, reason=reason)
            self.sessions.pop(s.call_id, None)
            self._apply(self.dialogs.reject(s.call_id, status, reason))
            return
        s.channel_id = str(channel.id)
        order = SenderOrder(call_id=s.call_id, channel_id=s.channel_id,
                            device_id=str(channel.device_id) if getattr(channel, "device_id", None) else None,
                            offer=offer, upper_id=self.upper_id, upper_name=self.name, actor=self.actor,
                            allowed_hosts=(offer.host, self.peer_host))
        try:  # here through the hub, in a cluster through a media node (cascade/remote.py)
            opened = await svc.senders.open(order, partial(self._sender_ended, s.call_id))
            s.stream_name, s.node = opened.stream, opened.node
        except asyncio.CancelledError:
            await self._release(s)
            raise
        except Exception as exc:
            status, reason = _status_of(exc)
            if not isinstance(exc, DomainError):
                log.exception("upper %s: opening %s failed", self.upper_id, s.channel_id)
            self._audit("cascade.invite", "error", s.channel_id, offer, status=status, reason=reason)
            await self._release(s)
            self.sessions.pop(s.call_id, None)
            self._apply(self.dialogs.reject(s.call_id, status, reason))
            return
        if s.state == "ended":  # cancelled while opening
            await self._release(s)
            return
        s.state = "answered"
        self._audit("cascade.invite", "ok", s.channel_id, offer, status=200, stream=s.stream_name, **s.where())
        self._apply(self.dialogs.accept(s.call_id, opened.port, self._now(), host=opened.host))

    # -- the end -----------------------------------------------------------------------------

    def _sender_ended(self, call_id: str, reason: str) -> None:
        s = self.sessions.get(call_id)
        if s is None or s.state == "ended":
            return
        if reason == "end of stream" and s.offer.mode != "play":
            # The recording reached its end: say so; the upper hangs up (or we do, shortly).
            self._apply(self.dialogs.media_status_end(call_id, s.offer.channel_id))
            asyncio.get_running_loop().call_later(END_GRACE, self.hang_up, call_id, "end of recording")
            return
        self.hang_up(call_id, reason)

    def hang_up(self, call_id: str, reason: str) -> None:
        """End a session from our side (BYE)."""
        self._apply(self.dialogs.hang_up(call_id, reason))

    def _ended(self, call_id: str, reason: str) -> None:
        s = self.sessions.pop(call_id, None)
        if s is None:
            return
        was = s.state
        s.state, s.ended_reason = "ended", reason
        if s.opening is not None and not s.opening.done():
            s.opening.cancel()
        self._spawn(self._release(s, audit=was != "opening", seconds=round(time.time() - s.started, 3)))

    async def _release(self, s: UpstreamSession, *, audit: bool = False, seconds: float = 0.0) -> None:
        """Close the sender, then audit the session with its last figures: they come back from
        the close, since in a cluster the sender (and its counts) is on a media node."""
        sender: dict[str, Any] = {}
        try:
            sender = await self.service.senders.close(s.call_id, s.ended_reason or "closed")
        except Exception as exc:  # a media node away: its own checks end the sender
            log.info("upper %s: closing the sender of %s: %s", self.upper_id, s.call_id, exc)
        if audit:
            self._audit("cascade.session", "ok", s.channel_id, s.offer, reason=s.ended_reason, stream=s.stream_name,
                        seconds=seconds, bytes=int(sender.get("bytes") or 0), packets=int(sender.get("packets") or 0),
                        **s.where())

    async def close(self, reason: str = "link closed") -> None:
        """The link is going: every session ends with our BYE."""
        for call_id in list(self.sessions):
            self.hang_up(call_id, reason)
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()

    async def recheck(self) -> int:
        """Sessions whose channel left the share (or was deleted) end with our BYE. Returns them."""
        gone = 0
        for call_id, s in list(self.sessions.items()):
            if s.state == "opening":
                continue
            try:
                channel = await self.service.share.shared_channel(self.upper_id, s.offer.channel_id)
            except Exception:
                continue  # cannot tell now: the next round will
            if channel is None or str(channel.id) != s.channel_id:
                gone += 1
                self.hang_up(call_id, "channel no longer shared")
        return gone

    # -- playback control ----------------------------------------------------------------------

    async def _control(self, ev: PlaybackControl) -> None:
        s = self.sessions.get(ev.call_id)
        if s is None:
            return
        req = ev.request
        steps: list[tuple[str, float | None]] = []
        if req.method == "PAUSE":
            steps.append(("pause", None))
        elif req.method == "PLAY":
            if req.scale is not None:
                steps.append(("speed", req.scale))
            if req.range_start is not None:
                steps.append(("seek", req.range_start))
            elif req.range_now or req.scale is None:
                steps.append(("resume", None))
        outcome = "ok"
        for action, value in steps:
            try:
                await self.service.senders.control(s.call_id, action, value)
            except Exception as exc:  # the upper got its 200; the source could not follow
                outcome = "error"
                log.info("upper %s: %s on %s: %s", self.upper_id, action, s.stream_name, exc)
        self._audit("cascade.playback_control", outcome, s.channel_id, s.offer,
                    control=[a for a, _ in steps], stream=s.stream_name)

    # -- audit -------------------------------------------------------------------------------------

    def _audit(self, action: str, outcome: str, channel_id: str, offer: UpstreamOffer, *,
               status: int | None = None, **detail: Any) -> None:
        audit = self.service.audit
        if audit is None:
            return
        audit.append(action, outcome, actor=self.actor, role="upper", resource_type="channel",
                     resource_id=channel_id, ip=self.peer_host, status=status,
                     detail={"upper": self.name, "upper_id": self.upper_id, "mode": offer.mode,
                             "upper_channel_id": offer.channel_id, "ssrc": offer.ssrc,
                             "transport": offer.transport, "to": f"{offer.host}:{offer.port}", **detail})


class UpstreamMedia:
    """The media side of cascade for every upper, where the links run: the senders on this
    process's hub, or (``senders``) on media nodes of a cluster."""

    def __init__(self, hub: MediaHub | None, share: ShareLookup, *,
                 sessions: async_sessionmaker[AsyncSession] | None = None,
                 audit: Audit | None = None, records: RecordQuery | None = None, media_host: str | None = None,
                 bind_host: str | None = None, recheck_every: float = RECHECK_EVERY,
                 utc_offset_hours: float = 8.0, uppers: UpperService | None = None,
                 port_range: tuple[int, int] | None = None, senders: SenderSide | None = None) -> None:
        #: who opens the streams and senders: this process's hub, or (``senders``, a signalling
        #: node of a cluster) a media node over the cluster RPC
        self.senders: SenderSide
        if senders is None:
            if hub is None:
                raise ValueError("UpstreamMedia needs a hub or a SenderSide")
            self.senders = HubSenders(hub, sessions, PortPool(*port_range) if port_range is not None else None,
                                      bind_host or hub.rtp.host)
        else:
            self.senders = senders
        self.share = share
        #: the uppers' rows: each one's announce address and preferred RTP transport
        self.upper_rows = uppers
        self.db = sessions
        self.audit = audit
        self.records = records
        #: the address in our SDP when the upper's row names none (media.announce_ip; in a cluster
        #: the media node sending says its own, session by session)
        self.media_host = media_host or (hub.rtp.announce_ip if hub is not None else "0.0.0.0")
        self.recheck_every = recheck_every
        #: GB/T 28181 times carry no zone: the platform's local time
        self.zone = timezone(timedelta(hours=utc_offset_hours))
        self.uppers: dict[int, UpperMedia] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._checker: asyncio.Task[None] | None = None
        self._recheck_due: asyncio.Task[Any] | None = None

    @property
    def ports(self) -> PortPool | None:
        """The local ports of video to uppers (media.upstream_port_range) when the hub is here."""
        return self.senders.ports if isinstance(self.senders, HubSenders) else None

    def attach(self, *, upper_id: int, sip_id: str, name: str, local_id: str, contact_host: str, contact_port: int,
               sip_transport: str, peer_host: str, send: Callable[[Reply | Outgoing], None],
               media_host: str | None = None, prefer: str | None = None, charset: str = "GB2312") -> UpperMedia:
        """The media of one upper's link (replacing an older one of the same upper)."""
        dialogs = UpstreamDialogs(local_id=local_id, contact_host=contact_host, contact_port=contact_port,
                                  media_host=media_host or self.media_host, sip_transport=sip_transport,
                                  prefer=prefer, charset=charset)
        m = UpperMedia(self, upper_id=upper_id, sip_id=sip_id, name=name, dialogs=dialogs, send=send,
                       peer_host=peer_host)
        self.uppers[upper_id] = m
        if self._checker is None:
            self._checker = asyncio.get_running_loop().create_task(self._recheck_loop(), name="cascade-recheck")
        return m

    async def detach(self, upper_id: int, reason: str = "link closed") -> None:
        m = self.uppers.pop(upper_id, None)
        if m is not None:
            await m.close(reason)

    async def stop(self) -> None:
        for upper_id in list(self.uppers):
            await self.detach(upper_id, "shutdown")
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- the links' media events (cascade/links.py: CascadeLinks.media) ---------------------------

    def handle(self, driver: LinkDriver, event: object) -> bool:
        """An upper's INVITE, ACK, BYE, INFO, CANCEL or RecordInfo, from its link driver; True
        when taken."""
        if isinstance(event, InviteReceived | AckReceived | ByeReceived | InfoReceived | CancelReceived):
            self._media_of(driver).receive(event.request)
            return True
        if isinstance(event, RecordInfoQuery):
            self._spawn(self._answer_record_info(driver, event))
            return True
        if isinstance(event, RequestAnswered):  # the upper's answer to our BYE or MediaStatus
            m = self.uppers.get(driver.upper_id)
            return m is not None and m.dialogs.owns(event.request)
        return False

    def _media_of(self, driver: LinkDriver) -> UpperMedia:
        m = self.uppers.get(driver.upper_id)
        if m is not None and m.driver is driver:
            return m
        if m is not None:  # the link was restarted: what ran on the old one is over
            self._spawn(m.close("link restarted"))
        cfg = driver.config
        principal = getattr(driver, "principal", None)
        m = self.attach(upper_id=driver.upper_id, sip_id=cfg.server_id,
                        name=str(getattr(principal, "name", driver.upper_id)), local_id=cfg.local_id,
                        contact_host=cfg.announce_host, contact_port=cfg.announce_port,
                        sip_transport=cfg.transport.upper(), peer_host=cfg.host,
                        send=partial(_through, driver), charset=cfg.charset)
        m.driver = driver
        if self.upper_rows is not None:
            m.load(self._settings(driver.upper_id))
        return m

    async def _settings(self, upper_id: int) -> tuple[str | None, str | None]:
        assert self.upper_rows is not None
        row = await self.upper_rows.get(upper_id)
        return row.announce_host, row.rtp_transport

    async def _answer_record_info(self, driver: LinkDriver, q: RecordInfoQuery) -> None:
        f = q.message.fields
        start, end, type_ = f.get("StartTime", ""), f.get("EndTime", ""), f.get("Type") or "all"
        principal = getattr(driver, "principal", None)
        actor = f"upper:{driver.config.server_id}"
        try:
            channel = await self.share.shared_channel(driver.upper_id, q.device_id)
        except Exception:
            log.exception("share check for RecordInfo of upper %s", driver.upper_id)
            driver.respond(q.request, 500)
            return
        if channel is None:
            driver.respond(q.request, 404, reason="Not in this upper's share")
            self._audit_record_info(actor, principal, q.device_id, "denied", 404, start, end, 0)
            return
        driver.respond(q.request, 200)
        try:
            items = await self.record_info(driver.upper_id, q.device_id, start, end, str(type_))
        except DomainError as exc:
            log.info("RecordInfo for upper %s: %s", driver.upper_id, exc)
            items = []
        for body in record_info_parts(q.sn, q.device_id, items, name=str(getattr(channel, "name", "") or ""),
                                      encoding=driver.config.charset):
            driver.send_message(body)
        self._audit_record_info(actor, principal, str(channel.id), "ok", 200, start, end, len(items))

    def _audit_record_info(self, actor: str, principal: Any, channel_id: str, outcome: str, status: int,
                           start: str, end: str, count: int) -> None:
        if self.audit is not None:
            self.audit.append("cascade.record_info", outcome, actor=actor, role="upper", resource_type="channel",
                              resource_id=channel_id, status=status,
                              detail={"upper": str(getattr(principal, "name", "")), "start": start, "end": end,
                                      "records": count})

    def listen(self, bus: Bus) -> None:
        """Changes of the uppers (their shares), channels and devices: check the sessions soon."""
        def on(ev: BusEvent) -> None:
            self._soon()
        bus.listen(on, CHANGED, *_RECHECK_KINDS)

    def _soon(self) -> None:
        if self._recheck_due is None or self._recheck_due.done():
            async def later() -> None:
                await asyncio.sleep(0.2)  # one recheck for a burst of changes
                await self.recheck()
            self._recheck_due = self._spawn(later())

    def sessions(self) -> list[dict[str, Any]]:
        return [s.describe() for m in self.uppers.values() for s in m.sessions.values()]

    def changed(self) -> None:
        """Shares or channels changed: check the open sessions now."""
        self._spawn(self.recheck())

    async def recheck(self) -> int:
        return sum([await m.recheck() for m in list(self.uppers.values())])

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_every)
            try:
                await self.recheck()
            except Exception:  # never let the checker die
                log.exception("cascade share recheck")

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- RecordInfo ------------------------------------------------------------------------------

    async def record_info(self, upper_id: int, channel_id: str, start: str, end: str,
                          type_: str = "all") -> list[RecordItem]:
        """The recordings of a shared channel in [start, end] (GB/T 28181 local times), in the
        upper's numbering: the device's and the platform's. NotFound when not shared."""
        channel = await self.share.shared_channel(upper_id, channel_id)
        if channel is None:
            raise NotFound(f"channel {channel_id} is not shared with this upper")
        local = str(channel.id)
        items: list[RecordItem] = []
        device_id = getattr(channel, "device_id", None)
        if self.records is not None and device_id:
            try:
                for it in await self.records.record_info(device_id, local, start, end, type_):
                    items.append(RecordItem(  # DeviceCommands' plain shape; the upper's channel ID
                        device_id=channel_id, name=str(it.get("name") or ""), file_path=str(it.get("file_path") or ""),
                        start_time=str(it.get("start") or ""), end_time=str(it.get("end") or ""),
                        secrecy=it.get("secrecy"), type=str(it.get("type") or ""), recorder_id=device_id,
                        file_size=it.get("size")))
            except DomainError as exc:  # the device is offline or silent: the platform's still count
                log.info("RecordInfo of %s from device %s: %s", local, device_id, exc)
        if self.db is not None and type_ in ("all", "time"):
            t0, t1 = self._parse_time(start), self._parse_time(end)
            for seg in await segments(self.db, local, t0, t1):
                seg_end = seg.end or datetime.now(UTC)
                items.append(RecordItem(
                    device_id=channel_id, name=getattr(channel, "name", "") or "", file_path=f"platform/{seg.id}",
                    start_time=self._format_time(max(seg.start, t0)), end_time=self._format_time(min(seg_end, t1)),
                    secrecy=0, type="time", recorder_id="platform", file_size=seg.size or None))
        items.sort(key=lambda r: r.start_time)
        return items

    def _parse_time(self, text: str) -> datetime:
        try:
            t = datetime.fromisoformat(text.strip().replace(" ", "T"))
        except ValueError as exc:
            raise NotFound(f"unreadable time {text[:30]!r}") from exc
        return (t if t.tzinfo is not None else t.replace(tzinfo=self.zone)).astimezone(UTC)

    def _format_time(self, t: datetime) -> str:
        return t.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M:%S")


#: Headers make_response copies from the request: the link writes them again.
_COPIED = frozenset({"via", "from", "to", "call-id", "cseq", "content-length", "record-route"})


def _through(driver: LinkDriver, o: Reply | Outgoing) -> None:
    """The dialogs' answers and requests, through the link's transactions."""
    if isinstance(o, Reply):
        r = o.response
        driver.respond(o.request, r.status, reason=r.reason,
                       headers=[(n, v) for n, v in r.headers if n.lower() not in _COPIED],
                       body=r.body, to_tag=r.to_tag)
    else:
        driver.send_request(o.request)


def record_info_parts(sn: int, channel_id: str, items: list[RecordItem], *, name: str = "",
                      encoding: str = "GB2312", per_message: int = RECORDS_PER_MESSAGE) -> list[bytes]:
    """The RecordInfo Response as MANSCDP bodies, split like a catalog (SumNum; at least one,
    with an empty RecordList when there is nothing)."""
    total = len(items)
    chunks = [items[i:i + per_message] for i in range(0, total, per_message)] or [[]]
    try:
        return [encode_record_info_response(sn, channel_id, total, part, name=name, encoding=encoding)
                for part in chunks]
    except Exception:  # a name the charset cannot write: UTF-8 says it all
        return [encode_record_info_response(sn, channel_id, total, part, name=name, encoding="UTF-8")
                for part in chunks]
