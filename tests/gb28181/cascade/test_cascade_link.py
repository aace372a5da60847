"""The link to an upper platform, driven by hand and by a scripted upper: the bytes it sends,
the times it sends them, and what it makes of every answer (or silence)."""

from __future__ import annotations

import itertools

import pytest
from _cascade_upper import (
    LOCAL_ID,
    PASSWORD,
    REALM,
    UPPER,
    UPPER_ID,
    Upper,
    answer,
    config,
    events,
    expected_response,
    run,
    sent_requests,
)

from xueliang.gb28181 import manscdp
from xueliang.gb28181.cascade import (
    Backoff,
    Closed,
    KeepaliveMissed,
    LinkLost,
    LinkState,
    Registered,
    RegistrationFailed,
    UpperLink,
)
from xueliang.gb28181.sip import Send, SipRequest, parse_authorization, parse_message

SERVER_URI = f"sip:{UPPER_ID}@10.0.0.1:5060"
USER_URI = f"sip:{LOCAL_ID}@{REALM}"
CONTACT = f"<sip:{LOCAL_ID}@203.0.113.7:15060>"


def only_request(outputs: list[object]) -> SipRequest:
    reqs = sent_requests(outputs)
    assert len(reqs) == 1, outputs
    return reqs[0]


def challenge(qop: bool = True, nonce: str = "abc123", stale: bool = False) -> str:
    value = f'Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5'
    if qop:
        value += ', qop="auth"'
    if stale:
        value += ", stale=TRUE"
    return value


def register_ok(link: UpperLink, now: float = 0.0, expires: int = 3600) -> SipRequest:
    """Start `link` and take it through 401 and 200; returns the authorised REGISTER."""
    first = only_request(link.start(now))
    second = only_request(
        link.receive(answer(first, 401, [("WWW-Authenticate", challenge())]), now, UPPER)
    )
    out = link.receive(answer(second, 200, [("Expires", str(expires))]), now, UPPER)
    assert [type(e) for e in events(out)] == [Registered]
    assert link.state is LinkState.REGISTERED
    return second


# -- registration ------------------------------------------------------------------------------


@pytest.mark.parametrize("qop", [True, False])
def test_register_digest_and_200(qop: bool) -> None:
    link = UpperLink(config(), seed=1)
    assert link.state is LinkState.IDLE
    first = only_request(link.start(100.0))
    assert link.state is LinkState.REGISTERING
    assert first.method == "REGISTER"
    assert first.uri == SERVER_URI
    assert first.headers.get("From", "").startswith(f"<{USER_URI}>;tag=")
    assert first.headers.get("To") == f"<{USER_URI}>"
    assert first.headers.get("Contact") == CONTACT
    assert first.headers.get("Expires") == "3600"
    assert first.headers.get("Authorization") is None
    assert first.cseq == (1, "REGISTER")
    via = first.headers.get("Via") or ""
    assert via.startswith("SIP/2.0/UDP 203.0.113.7:15060;rport;branch=z9hG4bK")
    assert first.headers.get("X-GB-Ver") == "2.0"

    out = link.receive(answer(first, 401, [("WWW-Authenticate", challenge(qop))]), 100.1, UPPER)
    second = only_request(out)
    assert second.call_id == first.call_id
    assert second.from_tag == first.from_tag
    assert second.cseq == (2, "REGISTER")
    assert second.branch != first.branch
    assert second.headers.get("Expires") == "3600"
    creds = parse_authorization(second.headers.get("Authorization") or "")
    assert creds.username == LOCAL_ID
    assert creds.realm == REALM
    assert creds.nonce == "abc123"
    assert creds.uri == SERVER_URI
    if qop:
        assert creds.qop == "auth" and creds.nc == "00000001" and creds.cnonce
    else:
        assert creds.qop is None and creds.nc is None
    assert creds.response == expected_response(
        username=LOCAL_ID,
        password=PASSWORD,
        realm=REALM,
        nonce="abc123",
        method="REGISTER",
        uri=SERVER_URI,
        qop=creds.qop,
        nc=creds.nc,
        cnonce=creds.cnonce,
    )

    out = link.receive(
        answer(second, 200, [("Expires", "1800"), ("Date", "2026-12-04T07:00:00.000")]),
        100.2,
        UPPER,
    )
    assert not sent_requests(out)
    assert events(out) == [Registered(1800, 1900.2, False, "2026-12-04T07:00:00.000")]
    status = link.status
    assert status.state is LinkState.REGISTERED
    assert status.registered_until == pytest.approx(1900.2)
    assert status.granted_expires == 1800
    assert status.last_error is None
    # The first keepalive is one interval after the 200.
    assert link.next_deadline() == pytest.approx(160.2)
    assert status.next_action_at == pytest.approx(160.2)


def test_happy_path_refresh_and_keepalives() -> None:
    upper = Upper()
    link = UpperLink(config(), seed=2)
    log = run(link, upper, 4000.0, link.start(0.0))
    reqs = [(t, r) for t, r in upper.log]
    registers = [(t, r) for t, r in reqs if r.method == "REGISTER"]
    keepalives = [(t, r) for t, r in reqs if r.method == "MESSAGE"]
    # Two rounds (initial at 0, refresh at 2/3 of 3600 s), each REGISTER then REGISTER+auth.
    assert [round(t, 2) for t, _ in registers] == [0.0, 0.01, 2400.02, 2400.03]
    assert all(upper.verified) and len(upper.verified) == 2
    assert len({r.call_id for _, r in registers}) == 1  # a refresh keeps the Call-ID
    assert [r.cseq[0] for _, r in registers] == [1, 2, 3, 4]
    assert registers[2][1].headers.get("Authorization") is None
    assert [round(t, 2) for t, _ in keepalives][:3] == [60.02, 120.02, 180.02]
    gaps = {round(b[0] - a[0], 6) for a, b in itertools.pairwise(keepalives)}
    assert gaps == {60.0}
    assert len(keepalives) == int((4000 - 0.02) // 60)
    sns = []
    for _, r in keepalives:
        assert r.uri == SERVER_URI
        assert r.headers.get("Content-Type") == "Application/MANSCDP+xml"
        assert r.headers.get("To") == f"<sip:{UPPER_ID}@{REALM}>"
        msg = manscdp.decode(r.body)
        assert (msg.root, msg.cmd_type, msg.device_id) == ("Notify", "Keepalive", LOCAL_ID)
        assert msg.fields["Status"] == "OK"
        assert b'encoding="GB2312"' in r.body
        sns.append(msg.sn)
    assert sns == list(range(1, len(sns) + 1))
    assert len({r.call_id for _, r in keepalives}) == len(keepalives)
    regs = [o for _, o in log if isinstance(o, Registered)]
    assert [r.refreshed for r in regs] == [False, True]
    assert not [o for _, o in log if isinstance(o, (LinkLost, RegistrationFailed))]
    status = link.status
    assert status.registrations == 2
    assert status.keepalives_sent == status.keepalives_answered == len(keepalives)


@pytest.mark.parametrize(
    ("granted", "refresh_at"),
    [(3600, 2400.0), (60, 30.0), (90, 58.0), (1, 5.0)],
)
def test_refresh_time_follows_the_grant(granted: int, refresh_at: float) -> None:
    # Two thirds, but leaving 64*T1 for a refresh nobody answers; never below half; never
    # sooner than min_refresh, whatever the upper grants.
    link = UpperLink(config(keepalive_interval=10_000.0), seed=3)
    second = register_ok(link, expires=granted)
    del second
    assert link.next_deadline() == pytest.approx(min(refresh_at, granted))
    if granted > 5:
        refresh = only_request(link.tick(refresh_at))
        assert refresh.method == "REGISTER" and refresh.headers.get("Expires") == "3600"


def test_contact_expires_parameter_wins_over_header() -> None:
    link = UpperLink(config(), seed=4)
    first = only_request(link.start(0.0))
    second = only_request(
        link.receive(answer(first, 401, [("WWW-Authenticate", challenge())]), 0.0, UPPER)
    )
    out = link.receive(
        answer(second, 200, [("Contact", f"{CONTACT};expires=600"), ("Expires", "3600")]),
        0.0,
        UPPER,
    )
    assert events(out) == [Registered(600, 600.0, False, None)]


# -- failures and back-off ---------------------------------------------------------------------


def failure_rounds(link: UpperLink, upper: Upper, until: float) -> list[RegistrationFailed]:
    log = run(link, upper, until, link.start(0.0))
    return [o for _, o in log if isinstance(o, RegistrationFailed)]


@pytest.mark.parametrize("status", [401, 403])
def test_wrong_password_backs_off_growing_and_capped(status: int) -> None:
    backoff = Backoff(initial=2.0, maximum=60.0, jitter=0.2)
    upper = Upper(password="not-ours", wrong_password_status=status)
    link = UpperLink(config(backoff=backoff), seed=5)
    fails = failure_rounds(link, upper, 2000.0)
    assert fails and fails[0].status == status
    if status == 401:
        assert "wrong password" in fails[0].reason
    assert [f.failures for f in fails] == list(range(1, len(fails) + 1))
    # Each round is exactly two REGISTERs: no answer to the second 401 (or 403).
    registers = [t for t, r in upper.log if r.method == "REGISTER"]
    # (A round cut short by the end of the run may add one or two.)
    assert 2 * len(fails) <= len(registers) <= 2 * len(fails) + 2
    assert upper.verified and not any(upper.verified)
    # Delays: within [nominal*(1-jitter), nominal], doubling then capped at 60 s.
    starts = [0.0] + [f.retry_at for f in fails]
    for n, f in enumerate(fails, start=1):
        failed_at = starts[n - 1] + 0.02  # two round trips of 10 ms
        delay = f.retry_at - failed_at
        nominal = min(60.0, 2.0 * 2 ** (n - 1))
        assert nominal * 0.8 - 1e-9 <= delay <= nominal + 1e-9, (n, delay)
    assert max(f.retry_at - s for f, s in zip(fails, starts, strict=False)) <= 60.02 + 1e-9
    # Never a tight loop: about 2000 s / 60 s rounds once capped, far from thousands.
    assert len(fails) < 2000 / 48 + 6
    assert link.state is LinkState.BACKING_OFF
    status_view = link.status
    assert status_view.consecutive_failures == len(fails)
    assert status_view.last_status == status
    assert status_view.next_action_at == fails[-1].retry_at


def test_each_retry_is_a_fresh_registration() -> None:
    upper = Upper(wrong_password_status=403, password="x")
    link = UpperLink(config(), seed=6)
    failure_rounds(link, upper, 20.0)
    firsts = [r for _, r in upper.log if r.headers.get("Authorization") is None]
    assert len(firsts) >= 3
    assert len({r.call_id for r in firsts}) == len(firsts)
    assert all(r.cseq[0] == 1 for r in firsts)


def test_no_answer_retransmits_on_the_udp_schedule_then_backs_off() -> None:
    upper = Upper(register_silent=True)
    link = UpperLink(config(backoff=Backoff(initial=10.0, maximum=100.0, jitter=0.0)), seed=7)
    log = run(link, upper, 60.0, link.start(0.0))
    sends = [(t, o) for t, o in log if isinstance(o, Send)]
    first_round = [(t, o) for t, o in sends if t < 32.0]
    # T1 = 0.5 s doubling to T2 = 4 s.
    assert [t for t, _ in first_round] == [
        0.0,
        0.5,
        1.5,
        3.5,
        7.5,
        11.5,
        15.5,
        19.5,
        23.5,
        27.5,
        31.5,
    ]
    assert len({o.data for _, o in first_round}) == 1  # the same bytes each time
    fails = [(t, o) for t, o in log if isinstance(o, RegistrationFailed)]
    assert fails[0][0] == 32.0  # 64*T1
    assert fails[0][1] == RegistrationFailed("no answer from the upper platform", None, 42.0, 1)
    retry = [(t, o) for t, o in sends if t >= 32.0]
    assert retry[0][0] == 42.0
    assert sent_requests([retry[0][1]])[0].call_id != sent_requests([sends[0][1]])[0].call_id


def test_no_answer_over_tcp_does_not_retransmit() -> None:
    upper = Upper(register_silent=True)
    link = UpperLink(config(transport="TCP"), seed=8)
    log = run(link, upper, 31.9, link.start(0.0))
    sends = [o for _, o in log if isinstance(o, Send)]
    assert len(sends) == 1
    assert b"SIP/2.0/TCP 203.0.113.7:15060" in sends[0].data
    out = link.tick(32.0)
    assert [type(e) for e in out] == [RegistrationFailed]


def test_stale_challenge_is_answered_but_not_forever() -> None:
    link = UpperLink(config(), seed=9)
    req = only_request(link.start(0.0))
    req = only_request(
        link.receive(answer(req, 401, [("WWW-Authenticate", challenge())]), 0, UPPER)
    )
    for n in range(2):
        hdr = [("WWW-Authenticate", challenge(nonce=f"fresh{n}", stale=True))]
        req = only_request(link.receive(answer(req, 401, hdr), 0, UPPER))
        assert f'nonce="fresh{n}"' in (req.headers.get("Authorization") or "")
    hdr = [("WWW-Authenticate", challenge(nonce="again", stale=True))]
    out = link.receive(answer(req, 401, hdr), 0, UPPER)
    assert not sent_requests(out)
    assert [type(e) for e in out] == [RegistrationFailed]


def test_same_nonce_counts_up() -> None:
    link = UpperLink(config(keepalive_interval=10_000.0), seed=10)
    req = only_request(link.start(0.0))
    req = only_request(
        link.receive(answer(req, 401, [("WWW-Authenticate", challenge())]), 0, UPPER)
    )
    link.receive(answer(req, 200, [("Expires", "3600")]), 0, UPPER)
    refresh = only_request(link.tick(2400.0))
    again = only_request(
        link.receive(answer(refresh, 401, [("WWW-Authenticate", challenge())]), 2400, UPPER)
    )
    assert parse_authorization(again.headers.get("Authorization") or "").nc == "00000002"


def test_unusable_challenge_fails_the_round() -> None:
    link = UpperLink(config(), seed=11)
    req = only_request(link.start(0.0))
    out = link.receive(answer(req, 401, [("WWW-Authenticate", "Basic realm=x")]), 0, UPPER)
    assert not sent_requests(out)
    (fail,) = events(out)
    assert isinstance(fail, RegistrationFailed) and fail.reason == "unusable digest challenge"


def test_interval_too_brief_retries_with_min_expires_once() -> None:
    link = UpperLink(config(register_expires=30), seed=12)
    req = only_request(link.start(0.0))
    retry = only_request(link.receive(answer(req, 423, [("Min-Expires", "600")]), 0, UPPER))
    assert retry.headers.get("Expires") == "600" and retry.call_id == req.call_id
    out = link.receive(answer(retry, 423, [("Min-Expires", "900")]), 0, UPPER)
    assert [type(e) for e in out] == [RegistrationFailed]


def test_retry_after_is_honoured_within_the_cap() -> None:
    link = UpperLink(config(backoff=Backoff(initial=2.0, maximum=300.0, jitter=0.0)), seed=13)
    req = only_request(link.start(0.0))
    (fail,) = link.receive(answer(req, 503, [("Retry-After", "120 (maintenance)")]), 0, UPPER)
    assert fail == RegistrationFailed("503 Service Unavailable", 503, 120.0, 1)
    link2 = UpperLink(config(backoff=Backoff(initial=2.0, maximum=300.0, jitter=0.0)), seed=13)
    req = only_request(link2.start(0.0))
    (fail,) = link2.receive(answer(req, 503, [("Retry-After", "99999")]), 0, UPPER)
    assert isinstance(fail, RegistrationFailed) and fail.retry_at == 300.0


def test_refresh_failure_loses_the_link_and_backs_off() -> None:
    link = UpperLink(config(keepalive_interval=10_000.0), seed=14)
    register_ok(link)
    refresh = only_request(link.tick(2400.0))
    out = link.receive(answer(refresh, 403), 2400.0, UPPER)
    assert [type(e) for e in out] == [LinkLost, RegistrationFailed]
    assert link.state is LinkState.BACKING_OFF
    assert link.status.registered_until is None


# -- keepalives --------------------------------------------------------------------------------


def test_missed_keepalives_trigger_reregistration() -> None:
    upper = Upper(keepalive=lambda r: None)
    link = UpperLink(config(), seed=15)
    log = run(link, upper, 300.0, link.start(0.0))
    missed = [(t, o) for t, o in log if isinstance(o, KeepaliveMissed)]
    # Keepalives at 60, 120, 180 (+0.02), each given up after 64*T1 = 32 s.
    assert [(round(t, 2), o.missed) for t, o in missed] == [(92.02, 1), (152.02, 2), (212.02, 3)]
    lost = [(t, o) for t, o in log if isinstance(o, LinkLost)]
    assert [(round(t, 2), o.reason) for t, o in lost] == [(212.02, "3 keepalives missed")]
    registers = [(t, r) for t, r in upper.log if r.method == "REGISTER"]
    assert [round(t, 2) for t, _ in registers] == [0.0, 0.01, 212.02, 212.03]
    assert registers[2][1].call_id != registers[0][1].call_id  # from scratch
    assert registers[2][1].cseq[0] == 1
    # Each unanswered keepalive was retransmitted on the UDP schedule (11 sends in 32 s).
    ka = [t for t, o in log if isinstance(o, Send) and o.data.startswith(b"MESSAGE ")]
    assert len([t for t in ka if t < 212.02]) == 3 * 11
    assert [round(t - 272.04, 2) for t in ka if t > 212.02][:5] == [0.0, 0.5, 1.5, 3.5, 7.5]


def test_a_second_loss_in_a_row_backs_off() -> None:
    upper = Upper(keepalive=lambda r: 404)
    link = UpperLink(config(keepalive_interval=10.0), seed=16)
    log = run(link, upper, 100.0, link.start(0.0))
    kinds = [type(o).__name__ for _, o in log if not isinstance(o, Send)]
    assert kinds[:5] == ["Registered", "LinkLost", "Registered", "LinkLost", "RegistrationFailed"]
    registers = [t for t, r in upper.log if r.method == "REGISTER"]
    assert len(registers) < 20


@pytest.mark.parametrize("status", [401, 403, 404])
def test_keepalive_refused_reregisters_at_once(status: int) -> None:
    link = UpperLink(config(), seed=17)
    register_ok(link)
    ka = only_request(link.tick(60.0))
    assert ka.method == "MESSAGE"
    out = link.receive(answer(ka, status), 60.1, UPPER)
    assert isinstance(events(out)[0], LinkLost)
    reg = only_request(out)
    assert reg.method == "REGISTER" and reg.headers.get("Authorization") is None
    assert link.state is LinkState.REGISTERING
    assert link.status.registered_until is None


def test_keepalive_error_other_than_auth_counts_as_missed() -> None:
    link = UpperLink(config(), seed=18)
    register_ok(link)
    ka = only_request(link.tick(60.0))
    out = link.receive(answer(ka, 500), 60.1, UPPER)
    assert out == [KeepaliveMissed(1)]
    ka = only_request(link.tick(120.1))
    assert link.receive(answer(ka, 200), 120.2, UPPER) == []
    assert link.status.missed_keepalives == 0


def test_keepalive_charset_utf8() -> None:
    link = UpperLink(config(charset="UTF-8"), seed=19)
    register_ok(link)
    ka = only_request(link.tick(60.0))
    assert b'encoding="UTF-8"' in ka.body


# -- noise -------------------------------------------------------------------------------------


def test_garbage_and_stray_responses_are_ignored() -> None:
    link = UpperLink(config(), seed=20)
    req = only_request(link.start(0.0))
    before = link.next_deadline()
    stray = [
        b"",
        b"\x00\xff garbage",
        b"SIP/2.0 200 OK\r\n\r\n",
        answer(req, 200).replace(req.call_id.encode(), b"other-call-id"),
        answer(req, 200).replace(b"CSeq: 1 REGISTER", b"CSeq: 7 REGISTER"),
        answer(req, 200).replace((req.branch or "").encode(), b"z9hG4bKforged"),
        answer(req, 200).replace(b"CSeq: 1 REGISTER", b"CSeq: 1 MESSAGE"),
    ]
    for data in stray:
        assert link.receive(data, 0.1, UPPER) == []
    assert link.status.ignored_datagrams == len(stray)
    assert link.state is LinkState.REGISTERING
    assert link.next_deadline() == before
    # From another address, even a right answer is dropped.
    assert link.receive(answer(req, 200), 0.1, ("10.9.9.9", 5060)) == []
    assert link.state is LinkState.REGISTERING
    # The real answer still works.
    assert isinstance(link.receive(answer(req, 200), 0.2, UPPER)[0], Registered)


def test_crlf_keepalive_is_ignored_silently() -> None:
    link = UpperLink(config(), seed=21)
    link.start(0.0)
    assert link.receive(b"\r\n\r\n", 0.1, UPPER) == []
    assert link.status.ignored_datagrams == 0


def test_a_message_without_a_body_is_answered_400_not_handed_out() -> None:
    link = UpperLink(config(), seed=22)
    register_ok(link)
    query = (
        f"MESSAGE sip:{LOCAL_ID}@203.0.113.7:15060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKq1\r\n"
        f"From: <sip:{UPPER_ID}@{REALM}>;tag=1\r\nTo: <sip:{LOCAL_ID}@{REALM}>\r\n"
        "Call-ID: q1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    out = link.receive(query, 1.0, UPPER)
    sent = [parse_message(o.data) for o in out if isinstance(o, Send)]
    assert [getattr(m, "status", None) for m in sent] == [400]
    assert [type(o).__name__ for o in out if not isinstance(o, Send)] == ["Refused"]


# -- close -------------------------------------------------------------------------------------


def test_close_unregisters_with_expires_zero() -> None:
    link = UpperLink(config(), seed=23)
    authorised = register_ok(link)
    out = link.close(10.0)
    bye = only_request(out)
    assert link.state is LinkState.CLOSING
    assert bye.method == "REGISTER"
    assert bye.headers.get("Expires") == "0"
    assert bye.headers.get("Contact") == CONTACT
    assert bye.call_id == authorised.call_id
    assert bye.cseq == (3, "REGISTER")
    again = only_request(
        link.receive(answer(bye, 401, [("WWW-Authenticate", challenge(nonce="z"))]), 10.1, UPPER)
    )
    assert again.headers.get("Expires") == "0" and again.cseq == (4, "REGISTER")
    creds = parse_authorization(again.headers.get("Authorization") or "")
    assert creds.response == expected_response(
        username=LOCAL_ID,
        password=PASSWORD,
        realm=REALM,
        nonce="z",
        method="REGISTER",
        uri=SERVER_URI,
        qop=creds.qop,
        nc=creds.nc,
        cnonce=creds.cnonce,
    )
    assert link.receive(answer(again, 200, [("Expires", "0")]), 10.2, UPPER) == [
        Closed(unregistered=True)
    ]
    assert link.state is LinkState.CLOSED
    assert link.next_deadline() is None
    assert link.tick(10_000.0) == []
    assert link.close(10_001.0) == []
    assert link.start(10_002.0) == []


def test_close_without_answer_still_closes() -> None:
    link = UpperLink(config(), seed=24)
    register_ok(link)
    link.close(10.0)
    assert link.tick(41.9) != []  # retransmissions
    assert link.tick(42.0) == [Closed(unregistered=False)]


def test_close_while_not_registered_sends_nothing() -> None:
    link = UpperLink(config(), seed=25)
    req = only_request(link.start(0.0))
    link.receive(answer(req, 403), 0.0, UPPER)
    assert link.state is LinkState.BACKING_OFF
    assert link.close(1.0) == [Closed(unregistered=False)]
    assert link.next_deadline() is None
    # A late answer to anything changes nothing.
    assert link.receive(answer(req, 200), 2.0, UPPER) == []


def test_seeded_links_are_reproducible() -> None:
    a = UpperLink(config(), seed=99)
    b = UpperLink(config(), seed=99)
    assert [o for o in a.start(0.0)] == [o for o in b.start(0.0)]
    assert UpperLink(config(), seed=98).start(0.0) != UpperLink(config(), seed=99).start(0.0)


# -- TCP connection loss, defaults -------------------------------------------------------------


def test_tcp_connection_lost_while_registered_registers_again_at_once() -> None:
    link = UpperLink(config(transport="TCP"), seed=30)
    old = register_ok(link)
    out = link.connection_lost(50.0)
    assert isinstance(out[0], LinkLost) and out[0].reason == "connection lost"
    reg = only_request(out)
    assert reg.method == "REGISTER" and reg.call_id != old.call_id
    # Lost again before a keepalive was answered: back off this time.
    out = link.connection_lost(50.5)
    assert [type(e) for e in out] == [RegistrationFailed]
    assert link.state is LinkState.BACKING_OFF


def test_tcp_connection_lost_while_closing_closes() -> None:
    link = UpperLink(config(transport="TCP"), seed=31)
    register_ok(link)
    link.close(1.0)
    assert link.connection_lost(1.1) == [Closed(unregistered=False)]
    assert link.next_deadline() is None
    assert link.connection_lost(1.2) == []


def test_unseeded_links_differ_and_hide_the_password() -> None:
    a = only_request(UpperLink(config()).start(0.0))
    b = only_request(UpperLink(config()).start(0.0))
    assert a.call_id != b.call_id and a.branch != b.branch
    assert PASSWORD not in repr(config())
