"""Property tests of the upper's media dialogs: whatever INVITE body, and whatever sequence of
requests (real, replayed, forged tags, garbage), the dialogs never raise, answer each request
with a response to that very request, end only calls they started, and read every offer they
accept back to what the offer builder wrote."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xueliang.gb28181.cascade.invite import (
    MODES,
    MediaEnded,
    MediaRequested,
    OfferRefused,
    Outgoing,
    Reply,
    UpstreamDialogs,
    read_offer,
)
from xueliang.gb28181.sdp import make_offer, parse_sdp
from xueliang.gb28181.sip import SipRequest, SipResponse, make_request, parse_message

UPPER_ID = "34020000002000000001"
CHANNEL = "34020100001320000001"


def invite(body: bytes, call_id: str = "c1", cseq: int = 1, from_tag: str = "up", to_tag: str | None = None,
           method: str = "INVITE", ctype: str = "APPLICATION/SDP") -> SipRequest:
    return make_request(
        method, f"sip:{CHANNEL}@3402010000", via="SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK" + call_id,
        from_=f"<sip:{UPPER_ID}@3402000000>;tag={from_tag}",
        to=f"<sip:{CHANNEL}@3402010000>" + (f";tag={to_tag}" if to_tag else ""),
        call_id=call_id, cseq=cseq, contact="<sip:upper@10.0.0.1:5060>",
        headers=[("Content-Type", ctype)], body=body)


offers = st.builds(
    lambda session, transport, port, ssrc, start, length, speed: make_offer(
        UPPER_ID, "10.1.2.3", port, f"{ssrc:010d}", session=session, transport=transport,
        channel_id=CHANNEL if session != "Play" else None, start=start if session != "Play" else 0,
        end=start + length if session != "Play" else 0, download_speed=speed if session == "Download" else None),
    st.sampled_from(["Play", "Playback", "Download"]), st.sampled_from(["udp", "tcp-passive", "tcp-active"]),
    st.integers(1, 65535), st.integers(0, 9_999_999_999), st.integers(0, 2_000_000_000), st.integers(1, 86400),
    st.integers(1, 32))


@settings(max_examples=300, deadline=None)
@given(offers)
def test_every_offer_the_builder_writes_reads_back(text: str) -> None:
    sdp = parse_sdp(text)
    got = read_offer(invite(text.encode()), source_host="10.0.0.1")
    assert got.channel_id == CHANNEL and got.mode == MODES[sdp.session_name.lower()]
    assert got.ssrc == sdp.ssrc and (got.host, got.port) == ("10.1.2.3", sdp.media_port)
    if got.mode != "play":
        assert (got.start, got.end) == (sdp.start_time, sdp.end_time)
    expected = {"udp": "udp", "tcp-passive": "tcp-active", "tcp-active": "tcp-passive"}[sdp.transport]
    assert got.transport == expected
    if got.mode == "download":
        assert got.download_speed == sdp.download_speed


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(str.encode),
    st.tuples(offers, st.integers(0, 2000), st.binary(max_size=12)).map(
        lambda t: (t[0].encode()[: t[1]] + t[2] + t[0].encode()[t[1]:])),  # a valid offer, spliced
))
def test_read_offer_refuses_with_a_status_or_returns_a_sane_offer(body: bytes) -> None:
    try:
        got = read_offer(invite(body), source_host="10.0.0.1")
    except OfferRefused as exc:
        assert 400 <= exc.status < 500 and exc.reason
        return
    assert got.mode in MODES.values()
    assert len(got.ssrc) == 10 and got.ssrc.isdigit()
    assert 0 <= got.port <= 65535 and got.transport in ("udp", "tcp-active", "tcp-passive")
    assert got.mode == "play" or got.start < got.end
    assert 0 <= got.payload_type <= 127


requests = st.tuples(
    st.sampled_from(["INVITE", "ACK", "BYE", "INFO", "CANCEL", "MESSAGE", "OPTIONS"]),
    st.sampled_from(["c1", "c2", "c3"]),
    st.integers(1, 5),
    st.sampled_from(["up", "other"]),
    st.sampled_from([None, "ours", "forged"]),
    st.one_of(offers.map(str.encode), st.binary(max_size=40), st.just(b"PAUSE RTSP/1.0\r\nCSeq: 1\r\n")),
    st.sampled_from(["APPLICATION/SDP", "Application/MANSRTSP", "text/plain"]),
)
actions = st.one_of(requests, st.tuples(st.just("accept"), st.sampled_from(["c1", "c2", "c3"])),
                    st.tuples(st.just("reject"), st.sampled_from(["c1", "c2", "c3"])),
                    st.tuples(st.just("hang_up"), st.sampled_from(["c1", "c2", "c3"])),
                    st.tuples(st.just("tick"), st.floats(0, 100)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, max_size=30))
def test_any_sequence_never_raises_and_answers_each_request_itself(steps: list[tuple[object, ...]]) -> None:
    d = UpstreamDialogs(local_id="34020100002000000001", contact_host="203.0.113.7", contact_port=5060,
                        media_host="203.0.113.8", max_calls=2, rng=random.Random(1))
    requested: set[str] = set()
    ok_tags: dict[str, str] = {}
    now = 0.0
    for s in steps:
        kind = s[0]
        if kind == "accept":
            out = d.accept(str(s[1]), 40000, now)
        elif kind == "reject":
            out = d.reject(str(s[1]), 404, "not shared")
        elif kind == "hang_up":
            out = d.hang_up(str(s[1]), "test")
        elif kind == "tick":
            now += float(s[1])  # type: ignore[arg-type]
            out = d.tick(now)
        else:
            method, call_id, cseq, from_tag, to_tag, body, ctype = s
            tag = ok_tags.get(str(call_id), "x") if to_tag == "ours" else ("forged" if to_tag else None)
            req = invite(body, str(call_id), int(cseq), str(from_tag), tag, str(method), str(ctype))  # type: ignore[arg-type]
            out = d.receive(req, now, "10.0.0.1")
            for o in out:
                if isinstance(o, Reply) and o.request is req:
                    assert method != "ACK", "an ACK is never answered"
        for o in out:
            if isinstance(o, Reply):
                resp = parse_message(o.response.serialize())
                assert isinstance(resp, SipResponse)
                assert resp.call_id == o.request.call_id and resp.cseq == o.request.cseq
                if resp.status == 200 and resp.cseq[1] == "INVITE" and resp.to_tag:
                    ok_tags[resp.call_id] = resp.to_tag
            elif isinstance(o, Outgoing):
                assert parse_message(o.request.serialize()).method in ("BYE", "MESSAGE")  # type: ignore[union-attr]
            elif isinstance(o, MediaRequested):
                requested.add(o.call_id)
            elif isinstance(o, MediaEnded):
                assert o.call_id in requested
        assert len(d.calls()) <= 2
        deadline = d.next_deadline()
        assert deadline is None or deadline >= now or d.calls()
