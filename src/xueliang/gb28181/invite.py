"""GB/T 28181 media sessions (实时点播、录像回放、录像下载): INVITE a device to send RTP to the media hub.

This is the media hub's source provider for GB/T 28181 channels. One INVITE per stream: the hub
calls :meth:`GbMediaSessions.open` once for the first viewer (concurrent viewers share it) and
the handle's ``close`` sends BYE when the last viewer has gone. The SDP offer carries an SSRC
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
from dataclasses import dataclass, field
from typing import Any, Protocol

from xueliang.errors import GatewayTimeout, Invalid, NotFound, Unavailable
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


@dataclass(slots=True)
class MediaSession:
    """One INVITE dialog feeding one stream."""

    sessions: GbMediaSessions
    name: str
    mode: str  # play / playback / download
    channel_id: str
    device: DeviceSession
    ssrc: str
    transport: str
    dialog: Dialog | None = None
    binding: RtpBinding | None = None
    started: float = field(default_factory=time.time)
    closed: bool = False
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
        if self.dialog is not None and self.device.addr is not None:
            sig = self.sessions.signalling
            bye = self.dialog.create_request("BYE", via=sig.endpoint.via(self.device.transport))
            with contextlib.suppress(SipTimeout, OSError):
                await sig.endpoint.request(bye, self.device.addr, self.device.transport, timeout=3.0)

    async def control(self, action: str, value: float | None = None) -> dict[str, Any]:
        """Playback control through INFO with a MANSRTSP body: pause, resume, seek (s), speed (scale)."""
        if self.mode == "play":
            raise Invalid("a live stream cannot be paused, seeked or sped up")
        if self.dialog is None or self.device.addr is None or self.closed:
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
        sig = self.sessions.signalling
        info = self.dialog.create_request("INFO", via=sig.endpoint.via(self.device.transport), body=body.encode(),
                                          content_type="Application/MANSRTSP")
        try:
            resp = await sig.endpoint.request(info, self.device.addr, self.device.transport, timeout=5.0)
        except SipTimeout as exc:
            raise GatewayTimeout("the device did not answer the playback control") from exc
        if resp.status >= 300:
            raise Invalid(f"the device refused {action}: {resp.status} {resp.reason}")
        if action == "pause":
            self.paused = True
        elif action == "resume":
            self.paused = False
        elif action == "speed" and value is not None:
            self.scale = value
        return {"ok": True, "action": action, "value": value}


class GbMediaSessions:
    """Opens GB/T 28181 media sessions for the hub; answers the device's in-dialog requests."""

    def __init__(self, signalling: SignallingService, *, invite_timeout: float = 8.0) -> None:
        self.signalling = signalling
        self.invite_timeout = invite_timeout
        self._seq = itertools.count(1)
        self.by_call: dict[str, MediaSession] = {}
        self.by_name: dict[str, MediaSession] = {}
        self.hub: Hub | None = None
        signalling.on_dialog_request = self.on_dialog_request

    def forget(self, s: MediaSession) -> None:
        if s.dialog is not None:
            self.by_call.pop(s.dialog.call_id, None)
        self.by_name.pop(s.name, None)

    def _ssrc(self, history: bool) -> str:
        used = {s.ssrc for s in self.by_name.values()}
        for _ in range(10_000):
            ssrc = make_ssrc(self.signalling.cfg.domain, next(self._seq) % 10_000, history)
            if ssrc not in used:
                return ssrc
        raise Unavailable("no free SSRC: 10,000 media sessions are open")

    async def open(self, hub: Hub, name: str, params: dict[str, Any]) -> MediaSession:
        """Start the stream ``name`` for ``params``: channel_id, device_id, mode (play/playback/download),
        start/end (unix seconds, for history), transport (udp, tcp-passive, tcp-active), speed."""
        self.hub = hub
        channel_id = str(params["channel_id"])
        device = self.signalling.device_for_channel(channel_id, params.get("device_id"))
        mode = str(params.get("mode", "play"))
        transport = str(params.get("transport") or "udp")
        if transport not in ("udp", "tcp-passive", "tcp-active"):
            raise Invalid("transport must be udp, tcp-passive or tcp-active")
        history = mode != "play"
        ssrc = self._ssrc(history)
        stream = hub.publish(name, kind=f"gb28181-{mode}", meta={"channel_id": channel_id, "device_id": device.device_id,
                                                                 "ssrc": ssrc, "transport": transport, "mode": mode})
        rtp = hub.rtp
        s = MediaSession(self, name, mode, channel_id, device, ssrc, transport)
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
            offer = make_offer(self.signalling.cfg.id, rtp.announce_ip, port if transport != "tcp-active" else 9,
                               ssrc, session=session_name, transport=transport,
                               channel_id=channel_id if history else None,
                               start=int(params.get("start", 0)), end=int(params.get("end", 0)),
                               download_speed=int(params.get("speed", 4)) if mode == "download" else None)
        except SdpError as exc:
            await s.close()
            raise Invalid(str(exc)) from exc
        sig = self.signalling
        req = sig.make_request("INVITE", device, channel_id, [
            ("Subject", f"{channel_id}:{ssrc},{sig.cfg.id}:0"), ("Content-Type", "APPLICATION/SDP")], offer.encode())
        self.by_name[name] = s
        assert device.addr is not None
        try:
            resp = await sig.endpoint.request(req, device.addr, device.transport, timeout=self.invite_timeout)
        except SipTimeout as exc:
            await s.close()
            raise GatewayTimeout(f"device {device.device_id} did not answer the INVITE for {channel_id}") from exc
        if resp.status >= 300:
            await s.close()
            raise _refusal(resp.status, resp.reason, channel_id)
        s.dialog = Dialog.from_response(req, resp)
        self.by_call[s.dialog.call_id] = s
        sig.endpoint.send(s.dialog.create_ack(via=sig.endpoint.via(device.transport)), device.addr, device.transport)
        try:
            answer = parse_sdp(resp.body)
        except SdpError as exc:
            await s.close()
            raise Invalid(f"device {device.device_id} answered with unusable SDP: {exc}") from exc
        answered = answer.ssrc
        if answered and answered != ssrc and s.binding is not None:
            log.info("device %s answered SSRC %s instead of %s", device.device_id, answered, ssrc)
            s.binding.rebind(int(answered))
            s.ssrc = answered
        if transport == "tcp-active":
            host = answer.media_address or device.addr[0]
            s.binding = await rtp.connect(host, answer.media_port, int(answered or ssrc), stream)
        return s

    def on_dialog_request(self, inc: Incoming) -> bool:
        """BYE from the device, INFO, and MediaStatus (end of a recording) inside our dialogs."""
        req: SipRequest = inc.request
        s = self.by_call.get(req.call_id)
        if s is None:
            return False
        if inc.addr != s.device.addr:
            # The Call-ID alone is no proof: only the device, from where it registered, may end
            # or report on its stream. Someone else gets what an unknown dialog gets.
            self.signalling.registrar.foreign(s.device.device_id, inc.addr, inc.transport, req.method, time.monotonic())
            if req.method != "ACK" and not inc.responded:
                inc.respond(481)
            return True
        if req.method == "BYE":
            inc.respond(200)
            s.dialog = None  # the device ended it: no BYE back
            self._end(s, "device hung up")
            return True
        if req.method == "MESSAGE":
            if not inc.responded:
                inc.respond(200)
            if b"MediaStatus" in req.body and b"121" in req.body:
                self._end(s, "end of recording")
            return True
        if req.method == "INFO":
            inc.respond(200)
            return True
        if req.method == "ACK":
            return True
        return False

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
