"""An upper platform's media dialogs with us, sans-IO: the bytes we answer to its INVITE (live,
playback, download; UDP and both TCP roles), ACK, BYE either way, CANCEL, INFO (MANSRTSP),
retransmissions and their timers, and a peer holding everything but the right dialog."""

from __future__ import annotations

import random

import pytest

from xueliang.gb28181 import manscdp
from xueliang.gb28181.cascade.invite import (
    MediaConfirmed,
    MediaEnded,
    MediaRequested,
    OfferRefused,
    Outgoing,
    PlaybackControl,
    Reply,
    UpstreamDialogs,
    UpstreamOffer,
    read_offer,
)
from xueliang.gb28181.mansrtsp import pause, speed
from xueliang.gb28181.sdp import make_offer, parse_sdp
from xueliang.gb28181.sip import SipRequest, SipResponse, make_request, parse_message

UPPER = ("10.0.0.1", 5060)
UPPER_ID = "34020000002000000001"
LOCAL_ID = "34020100002000000001"
CHANNEL = "34020100001320000001"
SSRC = "0200000123"
ANNOUNCE = "203.0.113.7"  # our public address (NAT)
MEDIA = "203.0.113.8"  # the address our RTP leaves from, as the upper must see it


def dialogs(**kw: object) -> UpstreamDialogs:
    values: dict[str, object] = {"local_id": LOCAL_ID, "contact_host": ANNOUNCE,
                                 "contact_port": 15060, "media_host": MEDIA, "rng": random.Random(7)}
    values.update(kw)
    return UpstreamDialogs(**values)  # type: ignore[arg-type]


def invite(body: str | bytes, *, call_id: str = "call-1", channel: str = CHANNEL, cseq: int = 1,
           branch: str = "z9hG4bKinv1", content_type: str = "APPLICATION/SDP", from_tag: str = "up1") -> SipRequest:
    return make_request(
        "INVITE", f"sip:{channel}@3402010000",
        via=f"SIP/2.0/UDP {UPPER[0]}:{UPPER[1]};branch={branch}",
        from_=f"<sip:{UPPER_ID}@3402000000>;tag={from_tag}", to=f"<sip:{channel}@3402010000>",
        call_id=call_id, cseq=cseq, contact=f"<sip:{UPPER_ID}@{UPPER[0]}:{UPPER[1]}>",
        headers=[("Subject", f"{channel}:{SSRC},{UPPER_ID}:0"), ("Content-Type", content_type)],
        body=body.encode() if isinstance(body, str) else body)


def offer(**kw: object) -> str:
    values: dict[str, object] = {"platform_id": UPPER_ID, "media_ip": "10.0.0.9", "port": 30000, "ssrc": SSRC}
    values.update(kw)
    return make_offer(**values)  # type: ignore[arg-type]


def sent(outputs: list[object]) -> list[SipRequest | SipResponse]:
    """What goes to the upper, through the serializer and the parser (the bytes are real)."""
    msgs = []
    for o in outputs:
        if isinstance(o, Reply):
            assert o.response.call_id == o.request.call_id
            msgs.append(parse_message(o.response.serialize()))
        elif isinstance(o, Outgoing):
            msgs.append(parse_message(o.request.serialize()))
    return msgs


def responses(outputs: list[object]) -> list[int]:
    return [m.status for m in sent(outputs) if isinstance(m, SipResponse)]


def events(outputs: list[object]) -> list[object]:
    return [o for o in outputs if not isinstance(o, Reply | Outgoing)]


def in_dialog(method: str, ok: SipResponse, *, cseq: int = 2, body: str = "", ctype: str | None = None,
              branch: str = "z9hG4bKbye", from_tag: str | None = None) -> SipRequest:
    """A request from the upper inside the dialog our 200 made."""
    headers = [("Content-Type", ctype)] if ctype else []
    return make_request(
        method, f"sip:{LOCAL_ID}@{ANNOUNCE}:15060",
        via=f"SIP/2.0/UDP {UPPER[0]}:{UPPER[1]};branch={branch}",
        from_=f"<sip:{UPPER_ID}@3402000000>;tag={from_tag or ok.from_tag}",
        to=f"<sip:{CHANNEL}@3402010000>;tag={ok.to_tag}", call_id=ok.call_id, cseq=cseq,
        headers=headers, body=body.encode())


def ack(ok: SipResponse, **kw: object) -> SipRequest:
    return in_dialog("ACK", ok, cseq=1, branch="z9hG4bKack", **kw)  # type: ignore[arg-type]


def answered(d: UpstreamDialogs, body: str, now: float = 0.0, port: int = 40000, **kw: object
             ) -> tuple[SipResponse, MediaRequested]:
    out = d.receive(invite(body, **kw), now, source_host=UPPER[0])  # type: ignore[arg-type]
    assert responses(out) == [100]
    (req,) = events(out)
    assert isinstance(req, MediaRequested)
    out = d.accept(req.call_id, port, now)
    (ok,) = sent(out)
    assert isinstance(ok, SipResponse) and ok.status == 200
    return ok, req


# -- live, playback, download ----------------------------------------------------------------


def test_live_udp_invite_trying_ok_ack_bye() -> None:
    d = dialogs()
    out = d.receive(invite(offer()), 0.0, source_host=UPPER[0])
    assert responses(out) == [100]
    (req,) = events(out)
    assert req == MediaRequested("call-1", UpstreamOffer(CHANNEL, "play", 0, 0, SSRC, "10.0.0.9", 30000, "udp",
                                                          96, None))
    trying = sent(out)[0]
    ok = sent(d.accept("call-1", 40000, 0.01))[0]
    assert isinstance(ok, SipResponse) and ok.status == 200 and ok.to_tag
    assert ok.cseq == (1, "INVITE") and ok.call_id == "call-1"
    assert isinstance(trying, SipResponse) and trying.to_tag == ok.to_tag  # one To tag for the upper
    assert ok.headers.get("Contact") == f"<sip:{LOCAL_ID}@{ANNOUNCE}:15060>"
    sdp = parse_sdp(ok.body)
    assert sdp.session_name == "Play" and sdp.ssrc == SSRC and sdp.media_address == MEDIA
    assert sdp.origin is not None and sdp.origin.address == MEDIA and sdp.origin.username == CHANNEL
    assert sdp.media_port == 40000 and not sdp.is_tcp and sdp.media_direction == "sendonly"
    assert sdp.rtpmap == {96: "PS/90000"}
    assert events(d.receive(ack(ok), 0.02)) == [MediaConfirmed("call-1")]
    assert d.confirmed("call-1")
    out = d.receive(in_dialog("BYE", ok), 5.0)
    assert responses(out) == [200]
    assert events(out) == [MediaEnded("call-1", "the upper hung up", True)]
    assert d.calls() == []


def test_playback_and_download_read_range_uri_and_speed() -> None:
    d = dialogs()
    _, req = answered(d, offer(session="Playback", channel_id=CHANNEL, start=1764800000, end=1764803600,
                               ssrc="1200000123"))
    assert (req.offer.mode, req.offer.start, req.offer.end, req.offer.ssrc) == \
        ("playback", 1764800000, 1764803600, "1200000123")
    ok, req = answered(d, offer(session="Download", channel_id=CHANNEL, start=1764800000, end=1764800600,
                                download_speed=8, ssrc="1200000124"), call_id="call-2", branch="z9hG4bKinv2")
    assert req.offer.mode == "download" and req.offer.download_speed == 8
    sdp = parse_sdp(ok.body)
    assert sdp.session_name == "Download" and (sdp.start_time, sdp.end_time) == (1764800000, 1764800600)


@pytest.mark.parametrize(("offered", "prefer", "ours", "answer_setup"), [
    ("tcp-passive", None, "tcp-active", "active"),  # the upper listens: we connect
    ("tcp-active", None, "tcp-passive", "passive"),  # the upper connects: we listen
    # the field's mix-ups: our configuration says the other role; the upper's SDP wins
    ("tcp-passive", "tcp-passive", "tcp-active", "active"),
    ("tcp-active", "tcp-active", "tcp-passive", "passive"),
])
def test_tcp_roles_follow_the_upper_offer(offered: str, prefer: str | None, ours: str, answer_setup: str) -> None:
    d = dialogs(prefer=prefer)
    ok, req = answered(d, offer(transport=offered), port=41000)
    assert req.offer.transport == ours
    sdp = parse_sdp(ok.body)
    assert sdp.is_tcp and sdp.setup == answer_setup and sdp.connection == "new"
    assert sdp.media_port == (9 if ours == "tcp-active" else 41000)


@pytest.mark.parametrize(("prefer", "ours"), [(None, "tcp-active"), ("tcp-passive", "tcp-passive"),
                                              ("udp", "tcp-active")])
def test_tcp_offer_without_setup_takes_our_preference(prefer: str | None, ours: str) -> None:
    body = offer(transport="tcp-passive").replace("a=setup:passive\r\n", "")
    _, req = answered(dialogs(prefer=prefer), body)
    assert req.offer.transport == ours


def test_unusable_address_stands_for_the_upper_source() -> None:
    d = dialogs()
    out = d.receive(invite(offer(media_ip="0.0.0.0")), 0.0, source_host=UPPER[0])
    (req,) = events(out)
    assert isinstance(req, MediaRequested) and req.offer.host == UPPER[0]


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "status"), [
    (offer().replace(f"y={SSRC}\r\n", ""), 400),  # no SSRC
    (offer().replace("s=Play", "s=Talk"), 488),  # voice broadcast is not served
    (offer().replace("96 97 98 99", "98").replace("a=rtpmap:96 PS/90000\r\n", ""), 415),  # no PS
    (offer(session="Playback", channel_id=CHANNEL, start=100, end=100), 400),  # empty range
    (offer().replace("m=video 30000", "m=audio 30000"), 415),
    (offer().replace("RTP/AVP", "RTP/SAVP"), 415),
    (offer().replace("m=video 30000", "m=video 0"), 400),
    ("v=0\r\ns=Play\r\n", 400),  # no m= line
    (b"\xff\xfe garbage", 400),
])
def test_offers_we_cannot_serve_get_the_standard_status(body: str | bytes, status: int) -> None:
    d = dialogs()
    out = d.receive(invite(body), 0.0)
    assert responses(out) == [status] and events(out) == [] and d.calls() == []


def test_not_sdp_and_no_channel_are_refused() -> None:
    d = dialogs()
    assert responses(d.receive(invite(offer(), content_type="text/plain"), 0.0)) == [415]
    assert responses(d.receive(invite(offer(), channel="bad!id"), 0.0)) == [400]


def test_read_offer_says_why() -> None:
    with pytest.raises(OfferRefused) as info:
        read_offer(invite(offer().replace(f"y={SSRC}\r\n", "")), source_host="10.0.0.1")
    assert info.value.status == 400 and "SSRC" in info.value.reason


def test_reject_outside_the_share_forgets_the_call() -> None:
    d = dialogs()
    out = d.receive(invite(offer()), 0.0)
    (req,) = events(out)
    assert isinstance(req, MediaRequested)
    out = d.reject(req.call_id, 404, "Not in this upper's share")
    (resp,) = sent(out)
    assert isinstance(resp, SipResponse) and resp.status == 404 and resp.reason == "Not in this upper's share"
    assert events(out) == [] and d.calls() == [] and d.next_deadline() is None
    assert d.accept(req.call_id, 40000, 0.1) == [] and d.reject(req.call_id, 500, None) == []


def test_too_many_calls_is_busy() -> None:
    d = dialogs(max_calls=1)
    answered(d, offer())
    out = d.receive(invite(offer(), call_id="call-2", branch="z9hG4bKinv2"), 0.0)
    assert responses(out) == [486] and events(out) == []


# -- timers ---------------------------------------------------------------------------------------


def test_retransmitted_invite_is_not_a_second_call() -> None:
    d = dialogs()
    d.receive(invite(offer()), 0.0)
    assert d.receive(invite(offer()), 0.5) == []
    ok = sent(d.accept("call-1", 40000, 0.6))[0]
    assert isinstance(ok, SipResponse)
    assert d.receive(invite(offer()), 0.7) == []
    assert d.calls() == ["call-1"]


def test_no_ack_hangs_up_after_64_t1() -> None:
    d = dialogs()
    answered(d, offer(), now=10.0)
    assert d.next_deadline() == 42.0
    assert d.tick(41.9) == []
    out = d.tick(42.0)
    byes = [m for m in sent(out) if isinstance(m, SipRequest)]
    assert [b.method for b in byes] == ["BYE"]
    assert events(out) == [MediaEnded("call-1", "no ACK from the upper", False)]


def test_ack_stops_the_clock() -> None:
    d = dialogs()
    ok, _ = answered(d, offer())
    assert events(d.receive(ack(ok), 1.0)) == [MediaConfirmed("call-1")]
    assert d.next_deadline() is None and d.tick(1000.0) == []
    assert events(d.receive(ack(ok), 1001)) == []  # a second ACK changes nothing


def test_an_invite_the_platform_never_decides_on_gets_480() -> None:
    d = dialogs(answer_within=8.0)
    d.receive(invite(offer()), 0.0)
    out = d.tick(8.0)
    assert responses(out) == [480]
    assert events(out) == [MediaEnded("call-1", "the stream did not open in time", False)]
    assert d.calls() == [] and d.accept("call-1", 40000, 9.0) == []


# -- BYE from us, MediaStatus ------------------------------------------------------------------


def test_our_bye_goes_to_the_upper_contact_inside_the_dialog() -> None:
    d = dialogs()
    ok, _ = answered(d, offer())
    d.receive(ack(ok), 0.1)
    out = d.hang_up("call-1", "channel left the share")
    (bye,) = sent(out)
    assert isinstance(bye, SipRequest) and bye.method == "BYE"
    assert bye.uri == f"sip:{UPPER_ID}@{UPPER[0]}:{UPPER[1]}"
    assert bye.from_tag == ok.to_tag and bye.to_tag == ok.from_tag and bye.call_id == ok.call_id
    assert bye.cseq == (1, "BYE")
    assert f"{ANNOUNCE}:15060" in (bye.headers.get("Via") or "")
    assert events(out) == [MediaEnded("call-1", "channel left the share", False)]
    assert d.hang_up("call-1", "again") == [] and d.calls() == []
    # the upper's BYE crossing ours: 200, nothing else happens
    out = d.receive(in_dialog("BYE", ok), 1.7)
    assert responses(out) == [200] and events(out) == []


def test_hang_up_before_answering_is_480() -> None:
    d = dialogs()
    d.receive(invite(offer()), 0.0)
    out = d.hang_up("call-1", "source failed")
    assert responses(out) == [480]
    assert events(out) == [MediaEnded("call-1", "source failed", False)]


def test_media_status_121_goes_up_in_the_dialog() -> None:
    d = dialogs()
    ok, _ = answered(d, offer(session="Playback", channel_id=CHANNEL, start=1, end=100))
    d.receive(ack(ok), 0.1)
    (msg,) = sent(d.media_status_end("call-1", CHANNEL))
    assert isinstance(msg, SipRequest) and msg.method == "MESSAGE" and msg.call_id == "call-1"
    body = manscdp.decode(msg.body)
    assert body.cmd_type == "MediaStatus" and body.get("NotifyType") == "121"


# -- in-dialog control and strangers -----------------------------------------------------------


def test_info_pause_and_speed_on_playback() -> None:
    d = dialogs()
    ok, _ = answered(d, offer(session="Playback", channel_id=CHANNEL, start=1, end=100))
    d.receive(ack(ok), 0.1)
    out = d.receive(in_dialog("INFO", ok, body=pause(1), ctype="Application/MANSRTSP"), 1.0)
    assert responses(out) == [200]
    (ev,) = events(out)
    assert isinstance(ev, PlaybackControl) and ev.request.action == "pause"
    out = d.receive(in_dialog("INFO", ok, cseq=3, body=speed(2, 2.0), ctype="Application/MANSRTSP"), 1.1)
    (ev,) = events(out)
    assert isinstance(ev, PlaybackControl) and ev.request.scale == 2.0
    out = d.receive(in_dialog("INFO", ok, cseq=4, body="DANCE RTSP/1.0\r\nCSeq: 3\r\n",
                              ctype="Application/MANSRTSP"), 1.2)
    assert responses(out) == [400] and events(out) == []
    out = d.receive(in_dialog("INFO", ok, cseq=5, body="x", ctype="text/plain"), 1.3)
    assert responses(out) == [415]
    out = d.receive(in_dialog("INFO", ok, cseq=2, body=pause(1), ctype="Application/MANSRTSP"), 1.4)
    assert responses(out) == [500]  # CSeq went back


def test_info_on_live_is_refused() -> None:
    d = dialogs()
    ok, _ = answered(d, offer())
    out = d.receive(in_dialog("INFO", ok, body=pause(1), ctype="Application/MANSRTSP"), 1.0)
    assert responses(out) == [488] and events(out) == []


def test_bye_with_wrong_tags_or_another_uppers_call_is_481_and_changes_nothing() -> None:
    mine, other = dialogs(), dialogs()
    ok, _ = answered(mine, offer())
    mine.receive(ack(ok), 0.1)
    # the right Call-ID, a guessed From tag
    out = mine.receive(in_dialog("BYE", ok, from_tag="guess"), 1.0)
    assert responses(out) == [481] and events(out) == []
    # everything of the dialog, sent through another upper's link
    out = other.receive(in_dialog("BYE", ok), 1.0)
    assert responses(out) == [481] and events(out) == []
    assert mine.calls() == ["call-1"] and mine.stray == 1 and other.stray == 1
    # an ACK with the wrong tags confirms nothing
    mine2 = dialogs()
    ok2, _ = answered(mine2, offer())
    assert events(mine2.receive(ack(ok2, from_tag="guess"), 0.2)) == []
    assert not mine2.confirmed("call-1")


def test_cancel_before_the_answer() -> None:
    d = dialogs()
    inv = invite(offer())
    d.receive(inv, 0.0)
    cancel = make_request("CANCEL", inv.uri, via=inv.headers.get("Via") or "", from_=inv.headers.get("From") or "",
                          to=inv.headers.get("To") or "", call_id=inv.call_id, cseq=1)
    out = d.receive(cancel, 0.5)
    assert sorted(responses(out)) == [200, 487]
    assert events(out) == [MediaEnded("call-1", "cancelled by the upper", True)]
    assert d.accept("call-1", 40000, 0.6) == []
    # a CANCEL for a transaction we do not have
    stray = make_request("CANCEL", inv.uri, via="SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKnope",
                         from_=inv.headers.get("From") or "", to=inv.headers.get("To") or "", call_id="nope", cseq=1)
    assert responses(d.receive(stray, 0.7)) == [481]


def test_reinvite_gets_the_same_answer_and_an_invite_for_an_unknown_dialog_481() -> None:
    d = dialogs()
    ok, _ = answered(d, offer())
    d.receive(ack(ok), 0.1)
    re = in_dialog("INVITE", ok, cseq=2, body=offer(), ctype="APPLICATION/SDP", branch="z9hG4bKre")
    out = d.receive(re, 1.0)
    (again,) = sent(out)
    assert isinstance(again, SipResponse) and again.status == 200 and again.body == ok.body
    stranger = invite(offer(), call_id="x")
    stranger.headers.set("To", f"<sip:{CHANNEL}@3402010000>;tag=made-up")
    assert responses(d.receive(stranger, 1.1)) == [481]


def test_unknown_method_in_dialog_is_405() -> None:
    d = dialogs()
    ok, _ = answered(d, offer())
    out = d.receive(in_dialog("OPTIONS", ok), 1.0)
    assert responses(out) == [405]
    # routing: in-dialog requests of ours, and not a MESSAGE outside our dialogs (a catalog query)
    assert d.owns(in_dialog("MESSAGE", ok))
    query = in_dialog("MESSAGE", ok)
    query.headers.set("Call-ID", "someone-elses")
    assert not d.owns(query)


def test_invite_whose_from_is_no_address_is_400_not_a_crash_later() -> None:
    """Found by the fuzzer: the dialog was built at accept() and raised there."""
    d = dialogs()
    bad = invite(offer())
    bad.headers.set("From", f"<sip:{UPPER_ID}@340200000+0>;tag=up1")
    out = d.receive(bad, 0.0)
    assert responses(out) == [400] and events(out) == [] and d.calls() == []


def test_invite_with_a_bare_cr_in_its_from_tag_is_400() -> None:
    """Found by the fuzzer: the SIP parser keeps a lone CR inside a header value; kept in the
    dialog it made our BYE unbuildable (ValueError) when the 200 went unacknowledged."""
    d = dialogs()
    bad = parse_message(invite(offer()).serialize().replace(b";tag=up1\r\n", b";tag=up1\r\xc6\n", 1))
    assert isinstance(bad, SipRequest)
    out = d.receive(bad, 0.0)
    (resp,) = sent(out)
    assert isinstance(resp, SipResponse) and resp.status == 400 and resp.reason == "From holds a CR or LF"
    assert d.calls() == [] and d.tick(1000.0) == []
