"""A virtual device's media: INVITE answered with SDP (Play, Playback, Download; PS over RTP,
UDP or TCP either way), ACK starting the stream, BYE ending it, a stream that fails hung up."""

from __future__ import annotations

import asyncio

from xueliang.gb28181.endpoint import Incoming
from xueliang.gb28181.sdp import SdpError, answer_offer, parse_sdp
from xueliang.gb28181.sip import Dialog, SipRequest, generate_tag
from xueliang.sim.device.core import _MediaCall, log
from xueliang.sim.device.playback import Playback
from xueliang.sim.video import FAULT_MARK, MediaSession


class Media(Playback):
    """INVITE, ACK, BYE and the media sessions they drive. On :class:`Playback`: a session
    that reaches the end of its range reports it there."""

    def _target(self, req: SipRequest) -> str:
        uri = req.uri
        at = uri.find("@")
        start = uri.find(":") + 1
        return uri[start:at] if at > 0 else self.id

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
        if ch.picture_fault:
            label.append(FAULT_MARK + ch.picture_fault)
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
        call = self._in_call(inc)
        if call is None:
            return
        inc.respond(200)
        self._end_call(inc.request.call_id)

    async def _media_failed(self, call_id: str, why: str) -> None:
        log.info("device %s: media of %s failed: %s", self.id, call_id, why)
        await self.hang_up(call_id)

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
