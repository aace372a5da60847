"""The senders of video to upper platforms: a hub stream read as PS and sent over RTP.

An upper's INVITE, once its share and access are checked (cascade/upstream.py), becomes a
:class:`SenderOrder`: which of our channels, in which mode, to where, with which SSRC. Whatever
runs the media hub carries it out through :class:`HubSenders`: the hub stream opened as for any
viewer (``live/{channel}`` shared with every viewer; a playback or download of its own) and a
:class:`~xueliang.media.ps_rtp_out.PsRtpSender` from ``media.upstream_port_range``.

Where signalling and the hub share a process, the upper's media side calls :class:`HubSenders`
directly. In a cluster, a signalling node without the hub asks a media node to do the same over
the cluster RPC (cascade/remote.py's ``RemoteSenders``, the same :class:`SenderSide` surface),
and the media node answers with its own announce address for the SDP. The order is plain data
both ways (:meth:`SenderOrder.to_json`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.errors import NotFound
from xueliang.gb28181.cascade.invite import UpstreamOffer
from xueliang.media.hub import MediaHub
from xueliang.media.ports import PortPool
from xueliang.media.ps_rtp_out import PsOutput, PsRtpSender
from xueliang.media.stream import Stream
from xueliang.recording.playback import segments

__all__ = ["HubSenders", "Opened", "SenderOrder", "SenderSide"]

log = logging.getLogger("xueliang.cascade.upstream")


@dataclass(frozen=True, slots=True)
class SenderOrder:
    """What one upper's session needs sent: checked already (share, access)."""

    call_id: str
    channel_id: str  # ours
    device_id: str | None
    offer: UpstreamOffer
    upper_id: int
    upper_name: str
    actor: str  # upper:<SIP ID>
    #: who may connect to a passive TCP port of ours (the upper's media and signalling addresses)
    allowed_hosts: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["allowed_hosts"] = list(self.allowed_hosts)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SenderOrder:
        return cls(call_id=str(d["call_id"]), channel_id=str(d["channel_id"]),
                   device_id=str(d["device_id"]) if d.get("device_id") else None,
                   offer=UpstreamOffer(**d["offer"]), upper_id=int(d["upper_id"]),
                   upper_name=str(d["upper_name"]), actor=str(d["actor"]),
                   allowed_hosts=tuple(str(h) for h in d.get("allowed_hosts") or ()))


@dataclass(frozen=True, slots=True)
class Opened:
    """A sender ready: its local port, the address for our SDP (None: the dialogs' default), the
    hub stream it reads and where it runs (a node ID in a cluster, "" here)."""

    port: int
    host: str | None
    stream: str
    node: str = ""


class SenderSide(Protocol):
    """Who carries out :class:`SenderOrder`s: the hub here, or a media node over the cluster."""

    async def open(self, order: SenderOrder, on_end: Callable[[str], None]) -> Opened:
        """Open the stream and the sender (not sending yet). ``on_end(reason)`` once when it ends
        by itself (stream ended, peer gone, node gone). Raises DomainError / PortsExhausted."""
        ...

    def start(self, call_id: str) -> None:
        """The upper acknowledged: send."""
        ...

    async def close(self, call_id: str, reason: str) -> dict[str, Any]:
        """Stop sending, free the port, close a stream opened for this session alone; idempotent.
        Returns the sender's last figures (bytes, packets...) for the session's audit; {} when
        none are known (already closed, or its media node away)."""
        ...

    async def control(self, call_id: str, action: str, value: float | None) -> None:
        """pause, resume, speed, seek on a playback's source."""
        ...

    def describe(self, call_id: str) -> dict[str, Any]:
        """The sender's figures (bytes, packets...) as known here; {} when none."""
        ...


@dataclass(slots=True, eq=False)
class _Running:
    order: SenderOrder
    stream_name: str = ""
    owned: bool = False  # a playback or download opened for this session alone
    sender: PsRtpSender | None = None
    closed: bool = False


@dataclass(slots=True, eq=False)
class HubSenders:
    """:class:`SenderSide` over this process's media hub (see the module docstring)."""

    hub: MediaHub
    db: async_sessionmaker[AsyncSession] | None = None
    #: media.upstream_port_range; None: the OS picks
    ports: PortPool | None = None
    #: the address senders bind (media.host) and the one our SDP names (media.announce_ip)
    bind_host: str = ""
    announce_host: str | None = None
    running: dict[str, _Running] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bind_host = self.bind_host or self.hub.rtp.host

    async def open(self, order: SenderOrder, on_end: Callable[[str], None]) -> Opened:
        r = _Running(order)
        self.running[order.call_id] = r
        offer = order.offer
        try:
            stream = await self._stream(r)
            output = stream.output("ps")
            assert isinstance(output, PsOutput)
            sender = PsRtpSender(
                output.add_reader(info={"upper": order.upper_name, "upper_id": order.upper_id, "actor": order.actor,
                                          "call_id": order.call_id, "ssrc": offer.ssrc, "transport": offer.transport,
                                          "remote": f"{offer.host}:{offer.port}"}),
                ssrc=offer.ssrc_int, transport=offer.transport, host=offer.host, port=offer.port,
                payload_type=offer.payload_type, bind_host=self.bind_host,
                allowed_hosts=set(order.allowed_hosts) | {offer.host}, on_end=on_end, ports=self.ports)
            r.sender = sender
            port = await sender.open()
        except BaseException:
            await self.close(order.call_id, "not opened")
            raise
        if r.closed:  # closed while opening: what opened since goes too
            await self._shut(r, "closed while opening")
            raise NotFound("the session ended while its stream opened")
        return Opened(port, self.announce_host, r.stream_name)

    async def _stream(self, r: _Running) -> Stream:
        """The camera's live stream (shared with every viewer), or a playback / download of its
        own (the platform's recordings when they cover some of the range, else the device's)."""
        order, offer, ch = r.order, r.order.offer, r.order.channel_id
        if offer.mode == "play":
            r.stream_name = f"live/{ch}"
            return await self.hub.acquire(r.stream_name, params={"channel_id": ch})
        start = datetime.fromtimestamp(offer.start, UTC)
        end = datetime.fromtimestamp(offer.end, UTC)
        token = secrets.token_hex(8)
        platform_has = self.db is not None and bool(await segments(self.db, ch, start, end))
        if platform_has:
            name = f"record/{ch}/{token}"
            speed = float(min(offer.download_speed or 1, 16)) if offer.mode == "download" else 1.0
            params: dict[str, Any] = {"channel_id": ch, "start": float(offer.start), "end": float(offer.end),
                                      "speed": speed}
        else:
            if not order.device_id:
                raise NotFound(f"no recording of channel {offer.channel_id} in that range")
            name = f"{offer.mode}/{ch}/{token}"
            params = {"channel_id": ch, "device_id": order.device_id, "mode": offer.mode, "transport": "udp",
                      "start": offer.start, "end": offer.end, "speed": offer.download_speed or 4}
        r.stream_name, r.owned = name, True
        stream = await self.hub.acquire(name, params=params)
        # Nobody but media managers reads it (no owner); the listing says whose it is.
        stream.meta["upper"] = {"id": order.upper_id, "name": order.upper_name, "call_id": order.call_id}
        return stream

    def start(self, call_id: str) -> None:
        r = self.running.get(call_id)
        if r is not None and r.sender is not None:
            r.sender.start()

    async def close(self, call_id: str, reason: str) -> dict[str, Any]:
        figures = self.describe(call_id)
        r = self.running.pop(call_id, None)
        if r is None:
            return {}
        r.closed = True
        await self._shut(r, reason)
        return figures

    async def _shut(self, r: _Running, reason: str) -> None:
        if r.sender is not None:
            r.sender.close(reason or "closed")
        if r.owned and r.stream_name:
            r.owned = False
            with contextlib.suppress(Exception):
                await self.hub.close(r.stream_name, "upper hung up")

    async def control(self, call_id: str, action: str, value: float | None) -> None:
        r = self.running.get(call_id)
        stream = self.hub.stream(r.stream_name) if r is not None else None
        handle = getattr(stream, "handle", None) if stream is not None else None
        control = getattr(handle, "control", None)
        if control is None:
            raise NotFound("this stream cannot be controlled")
        await control(action, value)

    def describe(self, call_id: str) -> dict[str, Any]:
        r = self.running.get(call_id)
        return r.sender.describe() if r is not None and r.sender is not None else {}

