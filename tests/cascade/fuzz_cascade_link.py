"""Coverage-guided fuzz target (atheris, libFuzzer) for what an upper sends a lower platform.

    python tests/cascade/fuzz_cascade_link.py [libFuzzer flags] [corpus dirs or files]

One input is a short conversation: the bytes are cut into pieces, and each piece goes to a
registered `UpperLink` either raw (a datagram) or as the body of a well-formed MESSAGE or
SUBSCRIBE from the upper (so the MANSCDP dispatch, the subscription table and the catalog parts
are reached, not only the SIP parser). Whatever the link hands out unanswered is answered, and
a catalog query gets a catalog. The contract: nothing raises; the link only ever outputs
datagrams and its own events; its tables stay bounded; its next deadline is never in the past.

``test_cascade_fuzz.py`` runs it for a bounded number of runs in the suite.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("XUELIANG_PURE_PYTHON", "1")

import atheris

with atheris.instrument_imports():
    from xueliang.gb28181 import manscdp
    from xueliang.gb28181.cascade import (
        CatalogQuery,
        ControlReceived,
        InviteReceived,
        RecordInfoQuery,
        UpperConfig,
        UpperLink,
    )
    from xueliang.gb28181.cascade import link as link_module
    from xueliang.gb28181.manscdp import CatalogItem
    from xueliang.gb28181.sip import Send, SipRequest, make_response, parse_message

UPPER = ("10.0.0.1", 5060)
UPPER_ID = "34020000002000000001"
LOCAL_ID = "34020100002000000001"
KNOWN_EVENTS = tuple(getattr(link_module, n) for n in link_module.__all__ if n[0].isupper()
                     and isinstance(getattr(link_module, n), type))
ITEMS = [CatalogItem(device_id=f"34020100001310{i:06d}", name=f"点位{i}", status="ON") for i in range(5)]


class ContractBroken(AssertionError):
    pass


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ContractBroken(what)


def registered() -> UpperLink:
    lk = UpperLink(UpperConfig(server_id=UPPER_ID, host=UPPER[0], port=UPPER[1], local_id=LOCAL_ID,
                               password="x", announce_host="203.0.113.7", announce_port=15060,
                               keepalive_interval=30.0), seed=1)
    out = lk.start(0.0)
    req = parse_message(next(o.data for o in out if isinstance(o, Send)))
    assert isinstance(req, SipRequest)
    lk.receive(make_response(req, 200, headers=[("Expires", "3600")]).serialize(), 0.01, UPPER)
    return lk


def wrap(method: str, body: bytes, n: int, extra: str = "") -> bytes:
    head = (f"{method} sip:{LOCAL_ID}@203.0.113.7:15060 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKf{n}\r\n"
            f"From: <sip:{UPPER_ID}@3402000000>;tag=u{n % 3}\r\nTo: <sip:{LOCAL_ID}@3402000000>{extra}\r\n"
            f"Call-ID: fz{n % 5}\r\nCSeq: {n + 1} {method}\r\nContact: <sip:{UPPER_ID}@10.0.0.1:5060>\r\n"
            f"Content-Type: Application/MANSCDP+xml\r\nEvent: Catalog\r\nExpires: {n * 37 % 4000}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def one_input(data: bytes) -> None:
    lk = registered()
    now = 1.0
    pieces = [p for p in data.split(b"\x00\x01") if p][:12]
    for n, piece in enumerate(pieces):
        mode = piece[0] % 5
        rest = piece[1:]
        if mode == 0:
            datagram = rest
        elif mode == 1:
            datagram = wrap("MESSAGE", rest, n)
        elif mode == 2:
            datagram = wrap("SUBSCRIBE", rest, n, ";tag=t" if rest[:1] == b"t" else "")
        elif mode == 3:
            datagram = wrap("MESSAGE", manscdp.encode_query("Catalog", n, LOCAL_ID) if n % 2 else rest, n)
        else:
            datagram = wrap("INVITE", rest, n)
        now += 0.5
        out = lk.receive(datagram, now, UPPER)
        for o in list(out):
            _check(isinstance(o, (Send, *KNOWN_EVENTS)), f"unexpected output {o!r}")
            if isinstance(o, CatalogQuery):
                out += lk.answer_catalog(o, ITEMS, now)
            elif isinstance(o, (ControlReceived, RecordInfoQuery, InviteReceived)):
                out += lk.respond(o.request, 403, now)
        for o in out:
            if isinstance(o, Send):
                _check(len(o.data) <= 65_536, "a datagram over 64 KiB")
        later = lk.tick(now + 40.0)
        for o in later:
            _check(isinstance(o, (Send, *KNOWN_EVENTS)), f"unexpected output {o!r}")
        now += 40.0
        d = lk.next_deadline()
        _check(d is None or d > now, f"a deadline in the past: {d} <= {now}")
        st = lk.status
        _check(st.subscriptions <= 3 * lk.config.max_subscriptions, "the subscription table grew unbounded")
        _check(st.catalog_answers <= lk.config.max_catalog_answers, "too many catalog answers")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
