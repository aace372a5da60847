"""Taking a device over without its password (issue 10, item 3), tried against the registrar.

The adversary is on the camera network: it can send anything from its own address, and it
has seen one of the device's authenticated REGISTERs go by. It does not know the password.
Each attack is followed by the real device doing what it normally does, which must still work.
"""

from __future__ import annotations

from xueliang.gb28181.registrar import Registered, Registrar
from xueliang.gb28181.sip import (
    SipRequest,
    format_via,
    generate_branch,
    make_authorization,
    make_request,
    parse_challenge,
)

DEV = "34020000001320000001"
SERVER = "34020000002000000001"
REALM = "3402000000"
PASSWORD = "secret12"
DEVICE = ("192.0.2.10", 5060)
ATTACKER = ("192.0.2.66", 5060)
URI = f"sip:{SERVER}@{REALM}"


def register(auth: str | None = None, *, call_id: str = "c1", cseq: int = 1, dev: str = DEV) -> SipRequest:
    headers = [("Expires", "3600")]
    if auth:
        headers.append(("Authorization", auth))
    return make_request(
        "REGISTER", URI, via=format_via("UDP", "192.0.2.10", 5060, generate_branch()),
        from_=f"<sip:{dev}@{REALM}>;tag=1", to=f"<sip:{dev}@{REALM}>", call_id=call_id, cseq=cseq,
        contact=f"<sip:{dev}@192.0.2.10:5060>", headers=headers)


def challenge(r: Registrar, addr: tuple[str, int], now: float, *, dev: str = DEV, call_id: str = "c1") -> str:
    d = r.register(register(dev=dev, call_id=call_id), addr, "udp", now, 1e9)
    assert d.status == 401
    return dict(d.headers)["WWW-Authenticate"]


def answer(www: str, password: str = PASSWORD, *, dev: str = DEV, nc: int = 1) -> str:
    return make_authorization(username=dev, password=password, challenge=www, method="REGISTER", uri=URI, nc=nc,
                              cnonce="0a4f113b")


def login(r: Registrar, addr: tuple[str, int] = DEVICE, now: float = 100.0, call_id: str = "c1") -> SipRequest:
    """The real device registers from ``addr``; returns its authenticated REGISTER (what a sniffer sees)."""
    req = register(answer(challenge(r, addr, now, call_id=call_id)), call_id=call_id)
    d = r.register(req, addr, "udp", now, 1e9)
    assert d.status == 200, d.reason
    return req


def registrar(**kw: object) -> Registrar:
    return Registrar(REALM, PASSWORD, **kw)  # type: ignore[arg-type]


# ---- a keepalive (or any message) from elsewhere ------------------------------------------

def test_keepalive_from_another_address_does_not_move_the_device() -> None:
    r = registrar()
    login(r)
    for spoof in (ATTACKER, (DEVICE[0], 5099)):  # another host, or another port of the same host
        d = r.keepalive(DEV, spoof, 110.0)
        assert d.status == 404 and not d.events
        assert r.devices[DEV].addr == DEVICE
    assert r.foreign_messages == 2
    # the device itself keeps alive as before
    assert r.keepalive(DEV, DEVICE, 120.0).status == 200
    assert r.devices[DEV].addr == DEVICE and r.devices[DEV].last_seen == 120.0


def test_keepalive_over_another_transport_does_not_count() -> None:
    r = registrar()
    login(r)
    assert r.keepalive(DEV, DEVICE, 110.0, "tcp").status == 404
    assert r.devices[DEV].transport == "udp" and r.foreign_messages == 1


def test_a_foreign_keepalive_does_not_keep_a_silent_device_alive() -> None:
    r = registrar(keepalive_interval=60.0, keepalive_misses=3)
    login(r)
    for t in (150.0, 250.0):
        r.keepalive(DEV, ATTACKER, t)  # the attacker pretends the device is still there
    offline = r.expire(100.0 + 180.0 + 1)
    assert [o.device_id for o in offline] == [DEV]


def test_messages_count_only_from_the_registered_address() -> None:
    r = registrar()
    login(r)
    assert r.touch(DEV, ATTACKER, 110.0, "udp", "MESSAGE") is None
    assert r.devices[DEV].last_seen == 100.0 and r.foreign_messages == 1
    s = r.touch(DEV, DEVICE, 111.0, "udp", "MESSAGE")
    assert s is not None and s.last_seen == 111.0


def test_only_an_authenticated_registration_moves_a_device() -> None:
    """A device whose address really changed (NAT rebinding, new DHCP lease) re-registers."""
    r = registrar()
    login(r)
    moved = ("198.51.100.7", 40000)
    assert r.keepalive(DEV, moved, 110.0).status == 404  # told to register again
    d = r.register(register(answer(challenge(r, moved, 111.0))), moved, "udp", 111.0, 1e9)
    assert d.status == 200 and r.devices[DEV].addr == moved
    # an address change is an event of its own (device.moved), for whoever watches
    assert [(e.old, e.new) for e in d.events if type(e).__name__ == "Moved"] == [(DEVICE, moved)]
    assert r.keepalive(DEV, moved, 112.0).status == 200
    assert r.keepalive(DEV, DEVICE, 113.0).status == 404  # the old address no longer speaks for it


# ---- a captured REGISTER ------------------------------------------------------------------

def test_captured_register_replayed_from_another_address_is_challenged() -> None:
    r = registrar()
    captured = login(r)
    d = r.register(captured, ATTACKER, "udp", 130.0, 1e9)
    assert d.status == 401 and not d.events
    assert r.devices[DEV].addr == DEVICE


def test_a_nonce_serves_one_registration() -> None:
    r = registrar()
    www = challenge(r, DEVICE, 100.0)
    first = register(answer(www), cseq=1)
    assert r.register(first, DEVICE, "udp", 100.0, 1e9).status == 200
    # the same request again (our 200 was lost): answered again, nothing new happens
    again = r.register(first, DEVICE, "udp", 100.5, 1e9)
    assert again.status == 200
    assert not next(e for e in again.events if isinstance(e, Registered)).fresh
    # another registration with that nonce, even from the device's own address: a new challenge
    second = register(answer(www), cseq=2)
    d = r.register(second, DEVICE, "udp", 101.0, 1e9)
    assert d.status == 401 and "stale=TRUE" in dict(d.headers)["WWW-Authenticate"]
    assert r.replayed_registers == 1
    # which the device answers as usual
    fresh = register(answer(dict(d.headers)["WWW-Authenticate"]), cseq=3)
    assert r.register(fresh, DEVICE, "udp", 101.5, 1e9).status == 200


def test_with_qop_each_nonce_count_serves_once() -> None:
    r = registrar(qop=True)
    www = challenge(r, DEVICE, 100.0)
    assert parse_challenge(www).qop == ("auth",)
    assert r.register(register(answer(www, nc=1), cseq=1), DEVICE, "udp", 100.0, 1e9).status == 200
    # a refresh with the next nonce count is fine (RFC 7616 nonce reuse) ...
    assert r.register(register(answer(www, nc=2), cseq=2), DEVICE, "udp", 200.0, 1e9).status == 200
    # ... a count already used is not, whatever the CSeq says
    assert r.register(register(answer(www, nc=1), cseq=3), DEVICE, "udp", 201.0, 1e9).status == 401


def test_a_nonce_issued_to_one_address_does_not_work_from_another() -> None:
    """The attacker asks for a nonce from its own address and then spoofs the device's."""
    r = registrar()
    www = challenge(r, ATTACKER, 100.0)
    # even with the right password the nonce is refused elsewhere (a fresh challenge, no 200)
    assert r.register(register(answer(www)), DEVICE, "udp", 100.0, 1e9).status == 401


# ---- lock-out -------------------------------------------------------------------------------

def test_wrong_passwords_ban_the_address_not_the_device() -> None:
    r = registrar(ban_after=5, ban_seconds=300.0)
    for i in range(5):
        www = challenge(r, ATTACKER, 100.0 + i)
        d = r.register(register(answer(www, "guess-" + str(i))), ATTACKER, "udp", 100.0 + i, 1e9)
        assert d.status == 403
    assert r.is_banned(ATTACKER[0], 106.0)
    assert r.register(register(), ATTACKER, "udp", 106.0, 1e9).status == 403
    assert not r.is_banned(DEV, 106.0)
    login(r, DEVICE, now=106.0)  # the real device registers all the same
    assert r.devices[DEV].online


# ---- the ledger of used nonces --------------------------------------------------------------

def test_nonce_ledger_forgets_only_what_it_then_refuses() -> None:
    """Bounded memory never reopens a replay: past capacity the oldest uses are forgotten and
    every nonce issued up to theirs is refused from then on."""
    from xueliang.gb28181.sip import NonceLedger

    ledger = NonceLedger(max_age=300.0, capacity=3)
    nonces = [f"{t:010x}" + "ab" * 11 for t in (10, 11, 12, 13)]
    for n in nonces[:3]:
        assert ledger.use(n, "", 20.0, "owner")
    assert ledger.use(nonces[3], "", 20.0, "owner")  # the first one is forgotten now...
    assert len(ledger) == 3
    assert not ledger.use(nonces[0], "", 21.0, "someone")  # ...and refused
    assert not ledger.use(nonces[1], "", 21.0, "someone")  # still remembered: refused
    assert ledger.use(nonces[1], "", 21.0, "owner")  # its own retransmission
    assert ledger.use(f"{14:010x}" + "ab" * 11, "", 21.0, "owner")


def test_nonce_ledger_lets_stale_nonces_go() -> None:
    from xueliang.gb28181.sip import NonceLedger

    ledger = NonceLedger(max_age=300.0, capacity=100)
    for t in range(50):
        assert ledger.use(f"{t:010x}" + "cd" * 11, "", float(t), "o")
    ledger.use(f"{1000:010x}" + "cd" * 11, "", 1000.0, "o")
    assert len(ledger) == 1  # the others' nonces are stale anyway


def test_failure_counts_stay_bounded_and_bans_survive() -> None:
    """Wrong passwords from ever new addresses (an IPv6 prefix is endless) do not grow memory
    without bound, and forgetting never lifts a ban under way."""
    r = registrar(ban_after=2, ban_seconds=3600.0, failure_window=600.0)
    r._fail("203.0.113.9", 0.0)
    assert r._fail("203.0.113.9", 1.0)  # banned
    r._fail("2001:db8::bad", 0.0)
    assert r._fail("2001:db8::bad", 1.0)  # banned, and failing again in the loop below
    for i in range(100_100):
        r._fail(f"2001:db8::{i:x}", 700.0)
    assert len(r._failures) <= 100_001
    assert r.is_banned("203.0.113.9", 800.0) and r.is_banned("2001:db8::bad", 800.0)
