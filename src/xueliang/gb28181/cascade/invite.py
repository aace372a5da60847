"""Media dialogs an upper platform opens with us (级联点播、回放、下载), xueliang answering: sans-IO.

The upper sends INVITE for one of our shared channels with an SDP offer (s=Play, Playback or
Download; t= the range and u= the channel for history; y= the SSRC we must send with; m= with
RTP/AVP or TCP/RTP/AVP and, for TCP, a=setup:active|passive). :func:`read_offer` turns that
into an :class:`UpstreamOffer` or a refusal with the status the standard gives (400 no SSRC or
bad range, 415 no PS, 488 a session we do not serve). :class:`UpstreamDialogs` holds the
dialogs of one upper:

* INVITE → 100 Trying at once and :class:`MediaRequested`; the caller checks the share, opens
  the stream and the sender, then :meth:`~UpstreamDialogs.accept` (200 OK with our SDP: the
  announce address in ``c=``/``o=`` and Contact, the upper's SSRC in ``y=``, our TCP role) or
  :meth:`~UpstreamDialogs.reject`.
* ACK → :class:`MediaConfirmed`: send media from now. No ACK within 64*T1 → BYE and
  :class:`MediaEnded`.

What to send comes out as :class:`Reply` (answer this request with this response) and
:class:`Outgoing` (a request inside a dialog): the link below owns the SIP transactions
(retransmissions, the 2xx repeated until the ACK), this module the dialogs and the media
session they describe.
* BYE from the upper → 200 and :class:`MediaEnded`; :meth:`~UpstreamDialogs.hang_up` sends
  ours (the channel left the share, the source ended).
* INFO with MANSRTSP (pause, play with Scale or Range) → :class:`PlaybackControl` and 200; a
  body that does not parse gets 400 with the reason.
* :meth:`~UpstreamDialogs.media_status_end` sends MediaStatus 121 inside the dialog when a
  playback or download reached its end (the upper then sends BYE).

TCP roles, as the upper's offer says them (RFC 4145): ``a=setup:passive`` = the upper listens,
so we connect (our role ``tcp-active``); ``a=setup:active`` = the upper connects, so we listen
(``tcp-passive``). An offer that leaves it open (no a=setup, or actpass) takes the upper's
configured preference (``prefer``), else we connect. The offer always wins over the
configuration: uppers that say "TCP active" while we were set to passive are the field's most
common cascade failure.

Every request is checked against the dialog it names (Call-ID and both tags): a BYE or INFO
with another upper's Call-ID, or with the wrong tags, gets 481 and changes nothing. Requests
from another address never get here (the link drops them).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from xueliang.gb28181 import manscdp
from xueliang.gb28181.mansrtsp import MansrtspError, MansrtspRequest, parse_mansrtsp
from xueliang.gb28181.sdp import SdpError, make_answer, parse_sdp
from xueliang.gb28181.sip import (
    Dialog,
    SipParseError,
    SipRequest,
    SipResponse,
    format_via,
    make_response,
)

from .register import IdSource

__all__ = [
    "MODES",
    "DialogOutput",
    "MediaConfirmed",
    "MediaEnded",
    "MediaRequested",
    "OfferRefused",
    "Outgoing",
    "PlaybackControl",
    "Reply",
    "UpstreamDialogs",
    "UpstreamOffer",
    "our_tcp_role",
    "read_offer",
]

#: s= line → mode.
MODES = {"play": "play", "playback": "playback", "download": "download"}
_SESSION_NAME = {"play": "Play", "playback": "Playback", "download": "Download"}
_MANSRTSP = "application/mansrtsp"
#: The headers a dialog is made of (and our BYE repeats).
_DIALOG_HEADERS = ("From", "To", "Call-ID", "Contact", "Record-Route")
_MANSCDP = "Application/MANSCDP+xml"
#: Calls remembered after they end, so that a retransmitted BYE still gets its 200.
_ENDED_MEMORY = 256


class OfferRefused(ValueError):
    """An INVITE we cannot serve, with the SIP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class UpstreamOffer:
    """What the upper asked for, read from its INVITE."""

    channel_id: str  # as the upper names it (the share may map it to ours)
    mode: str  # play, playback or download
    start: int  # unix seconds (0 for live)
    end: int
    ssrc: str  # 10 digits: the SSRC we send with
    host: str  # where the upper receives (UDP, or TCP when it listens)
    port: int
    #: our side: udp, tcp-active (we connect to host:port), tcp-passive (we listen)
    transport: str
    payload_type: int  # the payload type the upper mapped to PS (96 when it mapped none)
    download_speed: int | None

    @property
    def ssrc_int(self) -> int:
        return int(self.ssrc)


def our_tcp_role(setup: str | None, prefer: str | None) -> str:
    """Our TCP role from the upper's a=setup (its own role) and our configured preference."""
    if setup == "passive":
        return "tcp-active"
    if setup == "active":
        return "tcp-passive"
    return prefer if prefer in ("tcp-active", "tcp-passive") else "tcp-active"


def _channel_of(request: SipRequest) -> str:
    """The channel the INVITE is for: the Request-URI's user, else Subject's first field."""
    uri = request.uri
    scheme, _, rest = uri.partition(":")
    user = rest.split("@", 1)[0] if "@" in rest else ""
    if scheme.lower() in ("sip", "sips") and user:
        return user.split(";", 1)[0]
    subject = request.headers.get("Subject") or ""
    return subject.split(":", 1)[0].strip()


def read_offer(request: SipRequest, *, source_host: str, prefer: str | None = None) -> UpstreamOffer:
    """The upper's INVITE as an :class:`UpstreamOffer`; :class:`OfferRefused` says why not.

    ``source_host`` (where the INVITE came from) stands in for an unusable ``c=`` address
    (0.0.0.0, missing). ``prefer`` is our configured RTP transport toward this upper, used
    only where the offer leaves the TCP role open.
    """
    channel_id = _channel_of(request)
    if not channel_id or len(channel_id) > 64 or not channel_id.isascii() or not channel_id.isalnum():
        raise OfferRefused(400, "no channel in the Request-URI")
    ctype = (request.content_type or "").split(";", 1)[0].strip().lower()
    if ctype != "application/sdp":
        raise OfferRefused(415, "an SDP offer is needed (Content-Type: APPLICATION/SDP)")
    try:
        sdp = parse_sdp(request.body)
    except SdpError as exc:
        raise OfferRefused(400, f"bad SDP: {exc}") from None
    mode = MODES.get(sdp.session_name.strip().lower())
    if mode is None:
        raise OfferRefused(488, f"session {sdp.session_name[:20]!r} is not served (Play, Playback, Download)")
    video = sdp.video
    if video.media.lower() != "video":
        raise OfferRefused(415, "no video in the offer")
    ps_pt = next((p for p, name in video.rtpmap.items() if name.upper().startswith("PS/")), None)
    if ps_pt is None:
        if 96 not in video.payload_types:
            raise OfferRefused(415, "PS over RTP only")
        ps_pt = 96
    if sdp.ssrc is None:
        raise OfferRefused(400, "no SSRC (y=) in the offer")
    start, end = sdp.start_time, sdp.end_time
    if mode == "play":
        start = end = 0
    elif end <= start:
        raise OfferRefused(400, f"{_SESSION_NAME[mode]} needs a time range (t=<start> <end>)")
    proto = video.protocol.upper()
    if proto not in ("RTP/AVP", "TCP/RTP/AVP", "RTP/AVP/TCP"):
        raise OfferRefused(415, f"transport {video.protocol[:24]!r} is not RTP/AVP or TCP/RTP/AVP")
    transport = our_tcp_role(video.setup, prefer) if video.is_tcp else "udp"
    host = sdp.media_address or ""
    if host in ("", "0.0.0.0", "::"):
        host = source_host
    port = video.port
    if transport != "tcp-passive" and port == 0:
        raise OfferRefused(400, "the offer has no port to send to")
    speed = sdp.download_speed if mode == "download" else None
    return UpstreamOffer(channel_id, mode, start, end, sdp.ssrc, host, port, transport, ps_pt,
                         speed if speed is None else max(1, min(speed, 32)))


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaRequested:
    """An INVITE to serve: check the share, open the media, then accept or reject."""

    call_id: str
    offer: UpstreamOffer


@dataclass(frozen=True, slots=True)
class MediaConfirmed:
    """The upper acknowledged our 200: send media now."""

    call_id: str


@dataclass(frozen=True, slots=True)
class MediaEnded:
    """The dialog is over: stop sending. ``by_upper``: the upper hung up (or cancelled)."""

    call_id: str
    reason: str
    by_upper: bool


@dataclass(frozen=True, slots=True)
class PlaybackControl:
    """The upper paused, resumed, sought or changed speed (MANSRTSP in INFO)."""

    call_id: str
    request: MansrtspRequest


@dataclass(frozen=True, slots=True, eq=False)
class Reply:
    """Answer ``request`` with ``response`` (through the link's server transaction, which
    retransmits a 2xx to an INVITE until the ACK and answers retransmitted requests)."""

    request: SipRequest
    response: SipResponse


@dataclass(frozen=True, slots=True, eq=False)
class Outgoing:
    """Send ``request`` (BYE, MediaStatus MESSAGE) inside a dialog, through the link."""

    request: SipRequest


DialogEvent = MediaRequested | MediaConfirmed | MediaEnded | PlaybackControl
DialogOutput = Reply | Outgoing | DialogEvent


@dataclass(slots=True)
class _Call:
    invite: SipRequest
    offer: UpstreamOffer
    local_tag: str
    #: when the INVITE is given up if still unanswered, then when the ACK must have come
    deadline: float | None
    #: the dialog our 200 will make (checked when the INVITE came)
    prepared: Dialog
    dialog: Dialog | None = None
    answer: bytes = b""
    confirmed: bool = False


@dataclass(slots=True)
class UpstreamDialogs:
    """The media dialogs of one upper (see the module docstring). The link below carries the
    SIP transactions (retransmissions, the 2xx until the ACK); this holds the dialogs.

    ``local_id``, ``contact_host``/``contact_port`` and ``sip_transport`` are ours toward the
    upper (the announce address behind NAT: Contact and Via); ``media_host`` is the address
    put in our SDP. ``max_calls`` bounds the dialogs one upper may hold open (486 beyond).
    ``answer_within`` is how long an INVITE may wait for the platform's decision (the stream
    opening); ``ack_within`` how long our 200 waits for the ACK before we hang up (64*T1).
    """

    local_id: str
    contact_host: str
    contact_port: int
    media_host: str
    sip_transport: str = "UDP"
    prefer: str | None = None
    max_calls: int = 256
    answer_within: float = 30.0
    ack_within: float = 32.0
    charset: str = "GB2312"
    rng: random.Random | None = None
    _ids: IdSource = field(init=False)
    _calls: dict[str, _Call] = field(init=False, default_factory=dict)
    _ended: dict[str, tuple[str, str]] = field(init=False, default_factory=dict)
    _sn: int = field(init=False, default=0)
    #: requests refused because they named no dialog of ours (481), for the status
    stray: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._ids = IdSource(self.rng or random.SystemRandom())

    # -- views -----------------------------------------------------------------------------

    @property
    def contact(self) -> str:
        host = f"[{self.contact_host}]" if ":" in self.contact_host else self.contact_host
        return f"<sip:{self.local_id}@{host}:{self.contact_port}>"

    def calls(self) -> list[str]:
        """Call-IDs of the dialogs open (answered or not)."""
        return list(self._calls)

    def offer(self, call_id: str) -> UpstreamOffer | None:
        call = self._calls.get(call_id)
        return call.offer if call is not None else None

    def confirmed(self, call_id: str) -> bool:
        call = self._calls.get(call_id)
        return call is not None and call.confirmed

    def owns(self, request: SipRequest) -> bool:
        """Is this request for the media dialogs (INVITE, ACK, BYE, CANCEL, INFO, or anything
        inside one of our dialogs)?"""
        if request.method in ("INVITE", "ACK", "BYE", "CANCEL", "INFO"):
            return True
        try:
            call_id = request.call_id
        except SipParseError:
            return False
        return call_id in self._calls or call_id in self._ended

    # -- incoming --------------------------------------------------------------------------

    def receive(self, request: SipRequest, now: float, source_host: str = "") -> list[DialogOutput]:
        """A request from the upper: INVITE, ACK, BYE, CANCEL, INFO, or anything in a dialog.
        ``source_host`` (where it came from) stands in for an SDP without a usable address."""
        out: list[DialogOutput] = []
        try:
            call_id = request.call_id
            request.cseq  # noqa: B018 (a request without a readable CSeq gets 400)
        except SipParseError as exc:
            self._reply(request, 400, str(exc), out)
            return out
        method = request.method
        if method == "INVITE":
            self._on_invite(request, call_id, now, source_host, out)
        elif method == "ACK":
            self._on_ack(request, call_id, out)
        elif method == "CANCEL":
            self._on_cancel(request, call_id, out)
        else:
            self._in_dialog(request, call_id, out)
        return out

    def _on_invite(self, request: SipRequest, call_id: str, now: float, source_host: str,
                   out: list[DialogOutput]) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            if request.cseq[0] == call.invite.cseq[0]:
                return  # a retransmission the link did not absorb: the answer is on its way
            if call.dialog is not None and request.to_tag == call.local_tag \
                    and request.from_tag == call.dialog.remote_tag:
                # A re-INVITE (session refresh): the same session, the same answer.
                if not call.dialog.receive_request(request):
                    self._reply(request, 500, "CSeq out of order", out)
                    return
                out.append(Reply(request, make_response(request, 200, headers=self._answer_headers(),
                                                        body=call.answer)))
            else:
                self.stray += 1
                self._reply(request, 481 if call.dialog is not None else 491, None, out)
            return
        if request.to_tag:  # names a dialog we do not have (ended, or never ours)
            self.stray += 1
            self._reply(request, 481, None, out)
            return
        if not request.from_tag:
            self._reply(request, 400, "From without a tag", out)
            return
        for name in _DIALOG_HEADERS:
            value = request.headers.get(name) or ""
            if "\r" in value or "\n" in value:
                # A bare CR or LF the parser let through would end up in our BYE (found by the
                # fuzzer): not a dialog we can keep.
                self._reply(request, 400, f"{name} holds a CR or LF", out)
                return
        if len(self._calls) >= self.max_calls:
            self._reply(request, 486, "Too many streams to this upper", out)
            return
        try:
            offer = read_offer(request, source_host=source_host, prefer=self.prefer)
        except OfferRefused as exc:
            self._reply(request, exc.status, exc.reason, out)
            return
        tag = self._ids.tag()
        try:  # the dialog it would make: From, To and Contact must read as addresses
            dialog = Dialog.from_request(request, tag, local_contact=self.contact)
        except SipParseError as exc:
            self._reply(request, 400, str(exc), out)
            return
        self._calls[call_id] = _Call(request, offer, tag, now + self.answer_within, dialog)
        # The 100 carries the tag the 200 will (RFC 3261 allows it): one To tag for the upper.
        out.append(Reply(request, make_response(request, 100, to_tag=tag)))
        out.append(MediaRequested(call_id, offer))

    def accept(self, call_id: str, port: int, now: float, host: str | None = None) -> list[DialogOutput]:
        """200 OK with our SDP: media from ``host`` (the media node sending, in a cluster), else
        ``media_host``, at ``port`` (9 when we connect)."""
        out: list[DialogOutput] = []
        call = self._calls.get(call_id)
        if call is None or call.dialog is not None:
            return out
        offer = call.offer
        setup = {"udp": None, "tcp-active": "active", "tcp-passive": "passive"}[offer.transport]
        body = make_answer(
            offer.channel_id, host or self.media_host, 9 if offer.transport == "tcp-active" else port, offer.ssrc,
            session=_SESSION_NAME[offer.mode], setup=setup, start=offer.start, end=offer.end,
            payload_type=offer.payload_type,
        ).encode()
        call.answer = body
        call.dialog = call.prepared
        call.deadline = now + self.ack_within
        out.append(Reply(call.invite, make_response(call.invite, 200, to_tag=call.local_tag,
                                                    headers=self._answer_headers(), body=body)))
        return out

    def reject(self, call_id: str, status: int, reason: str | None) -> list[DialogOutput]:
        """A final error to a pending INVITE (not in the share: 404; busy: 486; failed: 500...)."""
        out: list[DialogOutput] = []
        call = self._calls.get(call_id)
        if call is None or call.dialog is not None:
            return out
        del self._calls[call_id]
        out.append(Reply(call.invite, make_response(call.invite, status, _reason(reason))))
        return out

    def _on_ack(self, request: SipRequest, call_id: str, out: list[DialogOutput]) -> None:
        call = self._calls.get(call_id)
        if call is None or call.dialog is None or call.confirmed:
            return  # ACK gets no answer, ever
        if request.to_tag != call.local_tag or request.from_tag != call.dialog.remote_tag \
                or request.cseq[0] != call.invite.cseq[0]:
            self.stray += 1
            return
        call.confirmed = True
        call.deadline = None
        out.append(MediaConfirmed(call_id))

    def _on_cancel(self, request: SipRequest, call_id: str, out: list[DialogOutput]) -> None:
        call = self._calls.get(call_id)
        if call is None or call.invite.branch != request.branch or request.cseq[0] != call.invite.cseq[0]:
            self.stray += 1
            self._reply(request, 481, None, out)
            return
        self._reply(request, 200, None, out)
        if call.dialog is None:  # too late once answered: the upper sends BYE instead
            del self._calls[call_id]
            out.append(Reply(call.invite, make_response(call.invite, 487)))
            out.append(MediaEnded(call_id, "cancelled by the upper", True))

    def _in_dialog(self, request: SipRequest, call_id: str, out: list[DialogOutput]) -> None:
        method = request.method
        call = self._calls.get(call_id)
        if call is None or call.dialog is None or not call.dialog.matches(request):
            ended = self._ended.get(call_id)
            if method == "BYE" and ended is not None and ended == (request.to_tag or "", request.from_tag or ""):
                self._reply(request, 200, None, out)  # our BYEs crossed
                return
            self.stray += 1
            self._reply(request, 481, None, out)
            return
        if not call.dialog.receive_request(request):
            self._reply(request, 500, "CSeq out of order", out)
            return
        if method == "BYE":
            self._reply(request, 200, None, out)
            self._finish(call_id, call, "the upper hung up", True, out)
        elif method == "INFO":
            self._on_info(request, call, out)
        elif method == "MESSAGE":
            self._reply(request, 200, None, out)
        else:
            self._reply(request, 405, None, out, [("Allow", "INVITE, ACK, BYE, CANCEL, INFO, MESSAGE")])

    def _on_info(self, request: SipRequest, call: _Call, out: list[DialogOutput]) -> None:
        ctype = (request.content_type or "").split(";", 1)[0].strip().lower()
        if ctype != _MANSRTSP:
            self._reply(request, 415, None, out, [("Accept", "Application/MANSRTSP")])
            return
        if call.offer.mode == "play":
            self._reply(request, 488, "A live stream cannot be paused or sought", out)
            return
        try:
            control = parse_mansrtsp(request.body)
        except MansrtspError as exc:
            self._reply(request, 400, f"MANSRTSP: {exc}", out)
            return
        if control.scale is not None and not 0.25 <= abs(control.scale) <= 16:
            self._reply(request, 400, "Scale out of range", out)
            return
        self._reply(request, 200, None, out)
        out.append(PlaybackControl(call.invite.call_id, control))

    # -- ours --------------------------------------------------------------------------------

    def hang_up(self, call_id: str, reason: str) -> list[DialogOutput]:
        """End a dialog from our side: BYE when answered, 480 when still pending."""
        out: list[DialogOutput] = []
        call = self._calls.get(call_id)
        if call is None:
            return out
        if call.dialog is None:
            out.append(Reply(call.invite, make_response(call.invite, 480, _reason(reason))))
        else:
            out.append(Outgoing(call.dialog.create_request("BYE", via=self._via(), headers=self._common())))
        self._finish(call_id, call, reason, False, out)
        return out

    def media_status_end(self, call_id: str, device_id: str) -> list[DialogOutput]:
        """MediaStatus 121 inside the dialog: the recording reached its end (the upper hangs up)."""
        call = self._calls.get(call_id)
        if call is None or call.dialog is None:
            return []
        self._sn += 1
        try:
            body = manscdp.encode_media_status(self._sn, device_id, encoding=self.charset)
        except manscdp.ManscdpError:
            body = manscdp.encode_media_status(self._sn, device_id, encoding="UTF-8")
        return [Outgoing(call.dialog.create_request("MESSAGE", via=self._via(), body=body, content_type=_MANSCDP,
                                                    headers=self._common()))]

    # -- time --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return min((c.deadline for c in self._calls.values() if c.deadline is not None), default=None)

    def tick(self, now: float) -> list[DialogOutput]:
        """An INVITE the platform did not decide on in time gets 408... (480); a 200 the upper
        never acknowledged ends with our BYE (RFC 3261 §13.3.1.4)."""
        out: list[DialogOutput] = []
        for call_id, call in list(self._calls.items()):
            if call.deadline is None or call.deadline > now:
                continue
            out.extend(self.hang_up(call_id, "no ACK from the upper" if call.dialog is not None
                                    else "the stream did not open in time"))
        return out

    # -- helpers -----------------------------------------------------------------------------

    def _finish(self, call_id: str, call: _Call, reason: str, by_upper: bool, out: list[DialogOutput]) -> None:
        self._calls.pop(call_id, None)
        if call.dialog is not None:
            self._ended[call_id] = (call.dialog.local_tag, call.dialog.remote_tag)
            while len(self._ended) > _ENDED_MEMORY:
                self._ended.pop(next(iter(self._ended)))
        out.append(MediaEnded(call_id, reason, by_upper))

    def _reply(self, request: SipRequest, status: int, reason: str | None, out: list[DialogOutput],
               headers: list[tuple[str, str]] | None = None) -> None:
        try:
            resp = make_response(request, status, _reason(reason),
                                 to_tag=None if request.to_tag else self._ids.tag(), headers=headers or [])
        except SipParseError:
            return  # a request too broken to answer: the link refuses those itself
        out.append(Reply(request, resp))

    def _answer_headers(self) -> list[tuple[str, str]]:
        return [("Contact", self.contact), ("Content-Type", "APPLICATION/SDP"), *self._common()]

    def _common(self) -> list[tuple[str, str]]:
        return [("User-Agent", "xueliang")]

    def _via(self) -> str:
        return format_via(self.sip_transport, self.contact_host, self.contact_port, self._ids.branch())


def _reason(text: str | None) -> str | None:
    """A reason phrase that fits on the status line (no CR/LF, bounded)."""
    if text is None:
        return None
    return " ".join(text.split())[:100] or None
