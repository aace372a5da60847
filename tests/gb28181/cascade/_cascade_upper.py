"""A scripted upper platform for the cascade link tests: it reads what the link sent and
builds the upper's answers, checking digests with its own hashlib code (RFC 2617), not with
the project's digest module, so a shared mistake cannot hide."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from xueliang.gb28181.cascade import Output, UpperConfig, UpperLink
from xueliang.gb28181.sip import (
    Send,
    SipRequest,
    make_response,
    parse_authorization,
    parse_message,
)

UPPER_ID = "34020000002000000001"
LOCAL_ID = "34020100002000000001"
PASSWORD = "12345678"
REALM = "3402000000"
UPPER = ("10.0.0.1", 5060)


def config(**overrides: object) -> UpperConfig:
    values: dict[str, object] = {
        "server_id": UPPER_ID,
        "host": UPPER[0],
        "port": UPPER[1],
        "local_id": LOCAL_ID,
        "password": PASSWORD,
        "announce_host": "203.0.113.7",
        "announce_port": 15060,
        "register_expires": 3600,
        "keepalive_interval": 60.0,
    }
    values.update(overrides)
    return UpperConfig(**values)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def expected_response(
    *,
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """RFC 2617 §3.2.2.1, written out independently."""
    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    if qop:
        return md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return md5(f"{ha1}:{nonce}:{ha2}")


def sent_requests(outputs: list[Output]) -> list[SipRequest]:
    out = []
    for o in outputs:
        if isinstance(o, Send):
            assert o.addr == UPPER
            msg = parse_message(o.data)
            if isinstance(msg, SipRequest):  # our answers to the upper's requests are not ours to count
                out.append(msg)
    return out


def events(outputs: list[Output]) -> list[Output]:
    return [o for o in outputs if not isinstance(o, Send)]


def answer(request: SipRequest, status: int, headers: list[tuple[str, str]] | None = None) -> bytes:
    data: bytes = make_response(request, status, to_tag="upper1", headers=headers or []).serialize()
    return data


@dataclass
class Upper:
    """Answers REGISTER with digest (401, then 200 or 403) and keepalives with `keepalive`.

    `register` / `keepalive` may be replaced by a function returning the status (or None for
    silence) to script failures.
    """

    password: str = PASSWORD
    qop: bool = True
    nonce_counter: int = 0
    expires: int | None = None  # grant (default: what was asked)
    wrong_password_status: int = 401
    keepalive: Callable[[SipRequest], int | None] = lambda r: 200
    register_silent: bool = False
    log: list[tuple[float, SipRequest]] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)

    def challenge(self) -> str:
        self.nonce_counter += 1
        value = f'Digest realm="{REALM}", nonce="n{self.nonce_counter:04d}", algorithm=MD5'
        return value + (', qop="auth"' if self.qop else "")

    def handle(self, request: SipRequest, now: float) -> bytes | None:
        self.log.append((now, request))
        if request.method == "MESSAGE":
            status = self.keepalive(request)
            return None if status is None else answer(request, status)
        if self.register_silent:
            return None
        auth = request.headers.get("Authorization")
        if auth is None:
            return answer(request, 401, [("WWW-Authenticate", self.challenge())])
        creds = parse_authorization(auth)
        ok = creds.response == expected_response(
            username=creds.username,
            password=self.password,
            realm=creds.realm,
            nonce=creds.nonce,
            method="REGISTER",
            uri=creds.uri,
            qop=creds.qop,
            nc=creds.nc,
            cnonce=creds.cnonce,
        )
        self.verified.append(ok)
        if not ok:
            if self.wrong_password_status == 401:
                return answer(request, 401, [("WWW-Authenticate", self.challenge())])
            return answer(request, self.wrong_password_status)
        asked = request.expires
        granted = self.expires if self.expires is not None and asked else asked
        return answer(
            request, 200, [("Expires", str(granted)), ("Date", "2026-12-04T07:00:00.000")]
        )


def run(
    link: UpperLink,
    upper: Upper,
    until: float,
    outputs: list[Output],
    *,
    now: float = 0.0,
    latency: float = 0.01,
) -> list[tuple[float, Output]]:
    """Drive `link` against `upper` from `now` to `until`: deliver what it sends, feed the
    answers back after `latency`, tick at each deadline. Returns (time, output) of all."""
    log: list[tuple[float, Output]] = []
    pending: list[tuple[float, bytes]] = []

    def deliver(outs: list[Output], t: float) -> None:
        for o in outs:
            log.append((t, o))
            if isinstance(o, Send):
                req = parse_message(o.data)
                assert isinstance(req, SipRequest)
                data = upper.handle(req, t)
                if data is not None:
                    pending.append((t + latency, data))

    deliver(outputs, now)
    for _ in range(100_000):
        deadline = link.next_deadline()
        next_in = min((p[0] for p in pending), default=None)
        candidates = [d for d in (deadline, next_in) if d is not None]
        if not candidates:
            break
        t = max(now, min(candidates))
        if t > until:
            break
        now = t
        if next_in is not None and next_in <= now:
            pending.sort(key=lambda p: p[0])
            _at, data = pending.pop(0)
            deliver(link.receive(data, now, UPPER), now)
        else:
            deliver(link.tick(now), now)
    else:
        raise AssertionError("the link never went quiet: a tight loop?")
    return log


# -- the upper's requests ----------------------------------------------------------------------

_counter = iter(range(1, 10**9))


def upper_request(
    method: str,
    body: bytes = b"",
    *,
    from_user: str = UPPER_ID,
    to_user: str = LOCAL_ID,
    call_id: str | None = None,
    cseq: int = 1,
    branch: str | None = None,
    to_tag: str | None = None,
    from_tag: str = "up1",
    content_type: str | None = "Application/MANSCDP+xml",
    headers: list[tuple[str, str]] | None = None,
) -> bytes:
    """A request as an upper sends it to us (bytes, ready for `UpperLink.receive`)."""
    n = next(_counter)
    lines = [
        f"{method} sip:{to_user}@203.0.113.7:15060 SIP/2.0",
        f"Via: SIP/2.0/UDP {UPPER[0]}:{UPPER[1]};branch={branch or f'z9hG4bKup{n}'}",
        f"From: <sip:{from_user}@{REALM}>;tag={from_tag}",
        f"To: <sip:{to_user}@{REALM}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id or f'call-{n}'}",
        f"CSeq: {cseq} {method}",
        "Max-Forwards: 70",
        f"Contact: <sip:{from_user}@{UPPER[0]}:{UPPER[1]}>",
    ]
    if body and content_type:
        lines.append(f"Content-Type: {content_type}")
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def registered(link: UpperLink, now: float = 0.0) -> None:
    """Take `link` to REGISTERED against a scripted upper (401 then 200)."""
    upper = Upper()
    run(link, upper, now + 1.0, link.start(now), now=now)
    assert link.state.value == "registered", link.status
