"""GB/T 28181 media sessions (实时点播、录像回放、录像下载): INVITE a device to send RTP to the media hub.

This is the media hub's source provider for GB/T 28181 channels, in two halves: the media side
(`GbMediaSessions`: SSRC, RTP port, SDP offer, the stream) and the signalling side (`GbDialogs`:
the INVITE dialog with the device), which in a cluster run on different nodes. One INVITE per
stream: the hub calls :meth:`GbMediaSessions.open` once for the first viewer (concurrent viewers
share it) and the handle's ``close`` sends BYE when the last viewer has gone. The SDP offer carries an SSRC
we allocate (live 0…, history 1…); when the device answers with another one, the RTP binding
follows the answer. Playback is controlled with INFO (MANSRTSP); the device's MediaStatus 121
ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from xueliang.errors import DomainError, GatewayTimeout, Invalid, NotFound, Unavailable
from xueliang.gb28181 import mansrtsp
from xueliang.gb28181.endpoint import Incoming, SipTimeout
from xueliang.gb28181.registrar import DeviceSession
from xueliang.gb28181.sdp import SdpError, make_offer, make_ssrc, parse_sdp
from xueliang.gb28181.service import SignallingService
from xueliang.gb28181.sip import Dialog, SipRequest

log = logging.getLogger("xueliang.invite")


class RtpBinding(Protocol):
    #: Its own UDP port (media.rtp_port_range), or None on the shared port.
    port: int | None

    def rebind(self, ssrc: int) -> None: ...
    def close(self) -> None: ...


class Hub(Protocol):
    rtp: Any

    def publish(self, name: str, *, kind: str, meta: dict[str, Any] | None = None) -> Any: ...
    async def close(self, name: str, reason: str) -> None: ...


class DialogSide(Protocol):
    """What the media side asks of signalling for a stream: the INVITE dialog with the device.
    `GbDialogs` on this process's signalling; in a cluster, the signalling node serving the
    device (cluster/remote.py), with the same calls and the same data."""

    async def invite(self, channel_id: str, device_id: str | None, mode: str, ssrc: str, offer: str,
                     owner: str = "") -> dict[str, Any]: ...

    async def bye(self, call_id: str) -> None: ...

    async def info(self, call_id: str, body: str) -> None: ...


@dataclass(slots=True)
class _Dialog:
    device: DeviceSession
    dialog: Dialog
    #: the media node whose stream it feeds ("" for this process)
    owner: str


class GbDialogs:
    """The signalling side of GB/T 28181 media sessions: INVITE, ACK, BYE and INFO with the
    device, and what the device sends inside the dialog (BYE, MediaStatus), which ends the
    stream of the media side that asked: ``on_end`` here, or a ``media.dialog.ended`` event for
    a media node elsewhere."""

    def __init__(self, signalling: SignallingService, *, invite_timeout: float = 8.0) -> None:
        self.signalling = signalling
        self.invite_timeout = invite_timeout
        self.by_call: dict[str, _Dialog] = {}
        #: the media side of this process: (call id, reason) when the device ended a dialog
        self.on_end: Callable[[str, str], None] | None = None
        signalling.on_dialog_request = self.on_dialog_request

    async def invite(self, channel_id: str, device_id: str | None, mode: str, ssrc: str, offer: str,
                     owner: str = "") -> dict[str, Any]:
        sig = self.signalling
        device = sig.device_for_channel(channel_id, device_id)
        req = sig.make_request("INVITE", device, channel_id, [
            ("Subject", f"{channel_id}:{ssrc},{sig.cfg.id}:0"), ("Content-Type", "APPLICATION/SDP")],
            offer.encode())
        assert device.addr is not None
        try:
            resp = await sig.endpoint.request(req, device.addr, device.transport, timeout=self.invite_timeout)
        except SipTimeout as exc:
            raise GatewayTimeout(f"device {device.device_id} did not answer the INVITE for {channel_id}") from exc
        if resp.status >= 300:
            raise _refusal(resp.status, resp.reason, channel_id)
        dialog = Dialog.from_response(req, resp)
        self.by_call[dialog.call_id] = _Dialog(device, dialog, owner)
        sig.endpoint.send(dialog.create_ack(via=sig.endpoint.via(device.transport)), device.addr, device.transport)
        return {"call_id": dialog.call_id, "answer": resp.body.decode("latin-1"), "device_id": device.device_id,
                "device_ip": device.addr[0], "mode": mode}

    async def bye(self, call_id: str) -> None:
        d = self.by_call.pop(call_id, None)
        if d is None or d.device.addr is None:
            return
        sig = self.signalling
        bye = d.dialog.create_request("BYE", via=sig.endpoint.via(d.device.transport))
        with contextlib.suppress(SipTimeout, OSError):
            await sig.endpoint.request(bye, d.device.addr, d.device.transport, timeout=3.0)

    async def info(self, call_id: str, body: str) -> None:
        """A MANSRTSP command (pause, resume, seek, speed) inside the dialog."""
        d = self.by_call.get(call_id)
        if d is None or d.device.addr is None:
            raise Unavailable("the playback session has ended")
        sig = self.signalling
        info = d.dialog.create_request("INFO", via=sig.endpoint.via(d.device.transport), body=body.encode(),
                                       content_type="Application/MANSRTSP")
        try:
            resp = await sig.endpoint.request(info, d.device.addr, d.device.transport, timeout=5.0)
        except SipTimeout as exc:
            raise GatewayTimeout("the device did not answer the playback control") from exc
        if resp.status >= 300:
            raise Invalid(f"the device refused it: {resp.status} {resp.reason}")

    def forget_owner(self, alive: set[str]) -> list[str]:
        """Dialogs of media nodes no longer alive: hung up (their RTP has nowhere to go)."""
        gone = [c for c, d in self.by_call.items() if d.owner and d.owner not in alive]
        for call_id in gone:
            asyncio.get_running_loop().create_task(self.bye(call_id))
        return gone

    def on_dialog_request(self, inc: Incoming) -> bool:
        """BYE from the device, INFO, and MediaStatus (end of a recording) inside our dialogs."""
        req: SipRequest = inc.request
        d = self.by_call.get(req.call_id)
        if d is None:
            return False
        if inc.addr != d.device.addr:
            # The Call-ID alone is no proof: only the device, from where it registered, may end
            # or report on its stream. Someone else gets what an unknown dialog gets.
            self.signalling.registrar.foreign(d.device.device_id, inc.addr, inc.transport, req.method, time.monotonic())
            if req.method != "ACK" and not inc.responded:
                inc.respond(481)
            return True
        if req.method == "BYE":
            inc.respond(200)
            self.by_call.pop(req.call_id, None)  # the device ended it: no BYE back
            self._ended(req.call_id, d, "device hung up")
            return True
        if req.method == "MESSAGE":
            if not inc.responded:
                inc.respond(200)
            if b"MediaStatus" in req.body and b"121" in req.body:
                self._ended(req.call_id, d, "end of recording")
            return True
        if req.method == "INFO":
            inc.respond(200)
            return True
        if req.method == "ACK":
            return True
        return False

    def _ended(self, call_id: str, d: _Dialog, reason: str) -> None:
        if not d.owner:
            if self.on_end is not None:
                self.on_end(call_id, reason)
        else:
            self.signalling.bus.publish("media.dialog.ended", call_id, owner=d.owner, reason=reason)


@dataclass(slots=True)
class MediaSession:
    """One INVITE dialog feeding one stream (the media side's view of it)."""

    sessions: GbMediaSessions
    name: str
    mode: str  # play / playback / download
    channel_id: str
    ssrc: str
    transport: str
    call_id: str | None = None
    binding: RtpBinding | None = None
    started: float = field(default_factory=time.time)
    closed: bool = False
    #: the device hung up: no BYE back
    ended_by_device: bool = False
    cseq: int = 0
    paused: bool = False
    scale: float = 1.0

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.sessions.forget(self)
        if self.binding is not None:
            self.binding.close()
        if self.call_id is not None and not self.ended_by_device:
            with contextlib.suppress(DomainError):
                await self.sessions.dialogs.bye(self.call_id)

    async def control(self, action: str, value: float | None = None) -> dict[str, Any]:
        """Playback control through INFO with a MANSRTSP body: pause, resume, seek (s), speed (scale)."""
        if self.mode == "play":
            raise Invalid("a live stream cannot be paused, seeked or sped up")
        if self.call_id is None or self.closed or self.ended_by_device:
            raise Unavailable("the playback session has ended")
        self.cseq += 1
        if action == "pause":
            body = mansrtsp.pause(self.cseq)
        elif action == "resume":
            body = mansrtsp.resume(self.cseq)
        elif action == "seek":
            if value is None or value < 0:
                raise Invalid("seek needs a position in seconds from the start")
            body = mansrtsp.seek(self.cseq, value)
        elif action == "speed":
            if value is None or not (0.25 <= abs(value) <= 4):
                raise Invalid("speed must be between 0.25 and 4 (negative: reverse)")
            body = mansrtsp.speed(self.cseq, value)
        else:
            raise Invalid(f"unknown playback action {action!r}")
        try:
            await self.sessions.dialogs.info(self.call_id, body)
        except Invalid as exc:
            raise Invalid(f"the device refused {action}: {exc.detail.removeprefix('the device refused it: ')}") from exc
        if action == "pause":
            self.paused = True
        elif action == "resume":
            self.paused = False
        elif action == "speed" and value is not None:
            self.scale = value
        return {"ok": True, "action": action, "value": value}


class GbMediaSessions:
    """Opens GB/T 28181 media sessions for the hub: the RTP side here (SSRC, port, SDP offer),
    the dialog through ``dialogs`` (this process's signalling, or the node serving the device)."""

    def __init__(self, dialogs: DialogSide, *, domain: str, platform_id: str, owner: str = "") -> None:
        self.dialogs = dialogs
        self.domain = domain
        self.platform_id = platform_id
        #: this node's name when the dialogs are elsewhere ("" when they are here)
        self.owner = owner
        self._seq = itertools.count(1)
        self.by_call: dict[str, MediaSession] = {}
        self.by_name: dict[str, MediaSession] = {}
        self.hub: Hub | None = None

    def forget(self, s: MediaSession) -> None:
        if s.call_id is not None:
            self.by_call.pop(s.call_id, None)
        self.by_name.pop(s.name, None)

    def _ssrc(self, history: bool) -> str:
        used = {s.ssrc for s in self.by_name.values()}
        for _ in range(10_000):
            ssrc = make_ssrc(self.domain, next(self._seq) % 10_000, history)
            if ssrc not in used:
                return ssrc
        raise Unavailable("no free SSRC: 10,000 media sessions are open")

    async def open(self, hub: Hub, name: str, params: dict[str, Any]) -> MediaSession:
        """Start the stream ``name`` for ``params``: channel_id, device_id, mode (play/playback/download),
        start/end (unix seconds, for history), transport (udp, tcp-passive, tcp-active), speed."""
        self.hub = hub
        channel_id = str(params["channel_id"])
        device_id = params.get("device_id")
        mode = str(params.get("mode", "play"))
        transport = str(params.get("transport") or "udp")
        if transport not in ("udp", "tcp-passive", "tcp-active"):
            raise Invalid("transport must be udp, tcp-passive or tcp-active")
        history = mode != "play"
        ssrc = self._ssrc(history)
        stream = hub.publish(name, kind=f"gb28181-{mode}", meta={"channel_id": channel_id, "device_id": device_id,
                                                                 "ssrc": ssrc, "transport": transport, "mode": mode})
        rtp = hub.rtp
        s = MediaSession(self, name, mode, channel_id, ssrc, transport)
        port = rtp.tcp_port if transport.startswith("tcp") else rtp.udp_port
        if transport == "udp" and rtp.port_range is not None:
            try:  # a port of its own (media.rtp_port_range)
                s.binding = rtp.bind(int(ssrc), stream, dedicated=True)
                assert s.binding.port is not None
                port = s.binding.port
            except Unavailable as exc:  # the range is used up: the shared port still works
                log.warning("%s; %s uses the shared RTP port", exc, name)
                s.binding = None
        if transport != "tcp-active" and s.binding is None:
            s.binding = rtp.bind(int(ssrc), stream)
        session_name = {"play": "Play", "playback": "Playback", "download": "Download"}[mode]
        try:
            offer = make_offer(self.platform_id, rtp.announce_ip, port if transport != "tcp-active" else 9,
                               ssrc, session=session_name, transport=transport,
                               channel_id=channel_id if history else None,
                               start=int(params.get("start", 0)), end=int(params.get("end", 0)),
                               download_speed=int(params.get("speed", 4)) if mode == "download" else None)
        except SdpError as exc:
            await s.close()
            raise Invalid(str(exc)) from exc
        self.by_name[name] = s
        try:
            got = await self.dialogs.invite(channel_id, device_id, mode, ssrc, offer, self.owner)
        except BaseException:
            await s.close()
            raise
        s.call_id = str(got["call_id"])
        self.by_call[s.call_id] = s
        if s.closed:  # the viewer left while the device answered
            self.forget(s)
            await self.dialogs.bye(s.call_id)
            raise Unavailable(f"{name}: closed while the device answered")
        stream.meta["device_id"] = got["device_id"]
        try:
            answer = parse_sdp(str(got["answer"]).encode("latin-1"))
        except SdpError as exc:
            await s.close()
            raise Invalid(f"device {got['device_id']} answered with unusable SDP: {exc}") from exc
        answered = answer.ssrc
        if answered and answered != ssrc and s.binding is not None:
            log.info("device %s answered SSRC %s instead of %s", got["device_id"], answered, ssrc)
            s.binding.rebind(int(answered))
            s.ssrc = answered
        if transport == "tcp-active":
            host = answer.media_address or str(got["device_ip"])
            s.binding = await rtp.connect(host, answer.media_port, int(answered or ssrc), stream)
        return s

    def dialog_ended(self, call_id: str, reason: str) -> None:
        """The device hung up (BYE) or its recording ended (MediaStatus 121)."""
        s = self.by_call.get(call_id)
        if s is None:
            return
        if reason == "device hung up":
            s.ended_by_device = True
        self._end(s, reason)

    def _end(self, s: MediaSession, reason: str) -> None:
        async def run() -> None:
            if self.hub is not None:
                await self.hub.close(s.name, reason)
            await s.close()

        asyncio.get_running_loop().create_task(run())


def _refusal(status: int, reason: str, channel_id: str) -> Exception:
    if status == 404:
        return NotFound(f"the device does not know channel {channel_id}")
    if status in (486, 503, 600, 603):
        return Unavailable(f"the device is busy ({status} {reason})")
    if status == 415 or status == 488:
        return Invalid(f"the device cannot send this media ({status} {reason})")
    return Unavailable(f"the device refused the stream: {status} {reason}")
