"""The registrar as a state machine: no sockets, time passed in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xueliang.gb28181.registrar import (
    AuthFailed,
    Offline,
    Online,
    Pending,
    Registered,
    Registrar,
    user_of,
)
from xueliang.gb28181.sip import (
    SipRequest,
    format_via,
    generate_branch,
    make_authorization,
    make_request,
)

DEV = "34020000001320000001"
SERVER = "34020000002000000001"
ADDR = ("192.0.2.10", 5060)


def register(expires: str | None = "3600", auth: str | None = None, call_id: str = "c1", dev: str = DEV,
             cseq: int = 1) -> SipRequest:
    headers = [] if expires is None else [("Expires", expires)]
    if auth:
        headers.append(("Authorization", auth))
    return make_request(
        "REGISTER", f"sip:{SERVER}@3402000000", via=format_via("UDP", "10.0.0.2", 5060, generate_branch()),
        from_=f"<sip:{dev}@3402000000>;tag=1", to=f"<sip:{dev}@3402000000>", call_id=call_id, cseq=cseq,
        contact=f"<sip:{dev}@10.0.0.2:5060>", headers=headers)


def login(r: Registrar, password: str = "secret12", now: float = 100.0, dev: str = DEV, call_id: str = "c1",
          expires: str = "3600"):  # type: ignore[no-untyped-def]
    challenge = r.register(register(expires, dev=dev, call_id=call_id), ADDR, "udp", now, 1e9)
    assert challenge.status == 401
    www = dict(challenge.headers)["WWW-Authenticate"]
    auth = make_authorization(username=dev, password=password, challenge=www, method="REGISTER",
                              uri=f"sip:{SERVER}@3402000000")
    return r.register(register(expires, auth, dev=dev, call_id=call_id), ADDR, "udp", now, 1e9)


def test_digest_registration_then_online_and_date() -> None:
    r = Registrar("3402000000", "secret12")
    d = login(r)
    assert d.status == 200
    h = dict(d.headers)
    assert h["Expires"] == "3600" and len(h["Date"]) == 23 and h["Date"][10] == "T"
    kinds = [type(e) for e in d.events]
    assert Registered in kinds and Online in kinds
    assert r.devices[DEV].online and r.devices[DEV].addr == ADDR


def test_qop_challenge_is_answered_too() -> None:
    r = Registrar("3402000000", "secret12", qop=True)
    assert login(r).status == 200


def test_wrong_password_403_then_ban() -> None:
    r = Registrar("3402000000", "secret12", ban_after=3, ban_seconds=60)
    for _ in range(2):
        d = login(r, password="wrong")
        assert d.status == 403 and isinstance(d.events[0], AuthFailed) and not d.events[0].banned
    d = login(r, password="wrong")
    assert d.status == 403 and d.events[0].banned  # type: ignore[union-attr]
    assert r.is_banned(ADDR[0], 101.0)
    # even the right password is refused while banned, and accepted after
    assert r.register(register(), ADDR, "udp", 120.0, 1e9).status == 403
    assert login(r, now=200.0).status == 200


def test_missing_expires_is_400_and_bad_id_is_400() -> None:
    r = Registrar("3402000000", "secret12")
    assert r.register(register(None), ADDR, "udp", 1.0, 1e9).status == 400
    d = r.register(register(dev="1234"), ADDR, "udp", 1.0, 1e9)
    assert d.status == 400 and "20 digits" in (d.reason or "")


def test_keepalive_timeout_and_expiry_make_offline() -> None:
    r = Registrar("3402000000", "secret12", keepalive_interval=60, keepalive_misses=3)
    login(r, now=0.0)
    assert r.keepalive(DEV, ADDR, 60.0).status == 200
    assert r.expire(200.0) == []  # 60 + 180 = 240 not reached
    off = r.expire(241.0)
    assert off == [Offline(DEV, "keepalive timeout")]
    back = r.keepalive(DEV, ADDR, 250.0)
    assert back.status == 200 and back.events == [Online(DEV, "keepalive")]
    # registration runs out before keepalives would
    r2 = Registrar("3402000000", "secret12")
    login(r2, now=0.0, expires="100")
    for t in (30.0, 60.0, 90.0):
        r2.keepalive(DEV, ADDR, t)
    assert r2.expire(101.0) == [Offline(DEV, "registration expired")]
    assert r2.keepalive(DEV, ADDR, 102.0).status == 404  # must register again


def test_unregister_and_unknown_keepalive() -> None:
    r = Registrar("3402000000", "secret12")
    assert r.keepalive(DEV, ADDR, 1.0).status == 404
    login(r)
    d = login(r, expires="0")
    assert d.status == 200 and d.events == [Offline(DEV, "unregistered")]


def test_register_then_unregister_within_one_second_each_gets_a_fresh_nonce() -> None:
    # A lower platform stopped within a second of registering (CSeq 3 and 4 after 1 and 2, as
    # a real client counts): its unregistration was challenged with the nonce it had already
    # used, refused as a replay, and it stayed online until its keepalives timed out.
    r = Registrar("3402000000", "secret12")
    nonces = []
    for cseq, expires in ((1, "3600"), (3, "0")):
        challenge = r.register(register(expires, cseq=cseq), ADDR, "udp", 100.5, 1e9)
        www = dict(challenge.headers)["WWW-Authenticate"]
        nonces.append(www)
        auth = make_authorization(username=DEV, password="secret12", challenge=www, method="REGISTER",
                                  uri=f"sip:{SERVER}@3402000000")
        d = r.register(register(expires, auth, cseq=cseq + 1), ADDR, "udp", 100.7, 1e9)
        assert d.status == 200, dict(d.headers)
    assert nonces[0] != nonces[1]
    assert d.events == [Offline(DEV, "unregistered")] and not r.devices[DEV].online
    # The used nonce itself, answered again under another CSeq, is still a replay.
    replay = r.register(register("3600", auth, cseq=9), ADDR, "udp", 100.9, 1e9)
    assert replay.status == 401 and r.replayed_registers == 1


def test_admission_pending_and_reject_and_per_device_password() -> None:
    pending = Registrar("3402000000", "secret12", admission="pending")
    d = login(pending)
    assert d.status == 403 and isinstance(d.events[0], Pending)
    pending.load(DEV, None, "accepted")  # an administrator accepted it
    assert login(pending).status == 200
    reject = Registrar("3402000000", "secret12", admission="reject")
    assert login(reject).status == 403
    reject.load(DEV, "own-pass-1", "accepted")
    assert login(reject, password="secret12").status == 403
    assert login(reject, password="own-pass-1").status == 200


def test_refresh_is_not_fresh_but_new_call_id_is() -> None:
    r = Registrar("3402000000", "secret12")
    first = login(r)
    assert next(e for e in first.events if isinstance(e, Registered)).fresh
    again = login(r, now=200.0)
    assert not next(e for e in again.events if isinstance(e, Registered)).fresh
    reboot = login(r, now=300.0, call_id="c2")  # a device restart comes with a new Call-ID
    assert next(e for e in reboot.events if isinstance(e, Registered)).fresh


def test_stale_nonce_is_rechallenged() -> None:
    r = Registrar("3402000000", "secret12")
    challenge = r.register(register(), ADDR, "udp", 0.0, 1e9)
    www = dict(challenge.headers)["WWW-Authenticate"]
    auth = make_authorization(username=DEV, password="secret12", challenge=www, method="REGISTER",
                              uri=f"sip:{SERVER}@3402000000")
    d = r.register(register(auth=auth), ADDR, "udp", 10_000.0, 1e9)
    assert d.status == 401 and "stale=TRUE" in dict(d.headers)["WWW-Authenticate"]


@given(st.text(alphabet=st.sampled_from(list('<>sip:@0123456789";, \tab.')), max_size=60))
def test_user_of_fast_path_agrees_with_the_full_parse(value: str) -> None:
    from xueliang.gb28181.registrar import _PLAIN_GB_USER
    from xueliang.gb28181.sip import SipParseError, parse_name_addr

    if _PLAIN_GB_USER.match(value) is None:
        return
    try:
        full = parse_name_addr(value).uri.user
    except (SipParseError, ValueError):
        return  # the fast path is more tolerant of what follows the user part
    assert user_of(value) == full


def _user_of_by_expression(value: str) -> str:
    """user_of as it was before its plain read: the regular expression, then the full parse."""
    from xueliang.gb28181.registrar import _PLAIN_GB_USER
    from xueliang.gb28181.sip import SipParseError, parse_name_addr

    m = _PLAIN_GB_USER.match(value)
    if m is not None:
        return m.group(1)
    try:
        return parse_name_addr(value).uri.user or ""
    except (SipParseError, ValueError):
        return ""


@given(st.one_of(
    st.text(alphabet=st.sampled_from(list('<>sip:@0123456789";, \tab.\u0663\u00b2\uff11')), max_size=40),
    st.tuples(st.sampled_from(["<sip:", "sip:", " <sip:", "<SIP:", "<sip:"]),
              st.text(alphabet=st.sampled_from(list("0123456789\u0663\u00b2\uff11x")), min_size=19, max_size=21),
              st.sampled_from(["@3402000000>", "@h", ">", "", "@"])).map("".join)))
def test_user_of_reads_as_the_expression_did(value: str) -> None:
    """The plain read of "<sip:" + 20 digits + "@" answers as the regular expression did, Unicode
    digits too (isdecimal() is \\d; isdigit() would take "²")."""
    assert user_of(value) == _user_of_by_expression(value)


@given(st.from_regex(r"\d{20}", fullmatch=True), st.sampled_from(["3402000000", "192.168.1.2:5060", "[::1]"]),
       st.sampled_from(["", ";tag=123", ";tag=a;x=y"]), st.booleans())
def test_user_of_reads_the_device_id(device_id: str, host: str, params: str, bracket: bool) -> None:
    value = f"<sip:{device_id}@{host}>{params}" if bracket else f"sip:{device_id}@{host}{params}"
    assert user_of(value) == device_id
