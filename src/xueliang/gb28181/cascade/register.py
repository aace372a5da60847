"""Registering to a SIP server as a GB/T 28181 device does: the REGISTER request and the digest
answer to its challenge, sans-IO.

A lower platform (下级平台) registers to its upper (上级平台) exactly as a camera registers to a
platform (GB/T 28181 §9.1): request URI ``sip:<serverId>@<host:port>``, From = To =
``sip:<ourId>@<domain>``, our Contact, Expires; a 401 with ``WWW-Authenticate: Digest`` is
answered with an MD5 ``Authorization`` on a REGISTER with the same Call-ID and the next CSeq.

These pieces are shared on purpose: the device simulator (``xueliang.sim.device.signalling``,
``_register_request`` and its challenge handling) does the same by hand and could use them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from xueliang.gb28181.sip import (
    DigestChallenge,
    SipParseError,
    SipRequest,
    SipResponse,
    make_authorization,
    make_request,
    parse_challenge,
)
from xueliang.gb28181.sip.message import BRANCH_MAGIC

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "Challenge",
    "DigestClient",
    "IdSource",
    "challenge_of",
    "register_request",
]

SUPPORTED_ALGORITHMS = frozenset({"MD5", "MD5-SESS", "SHA-256", "SHA-256-SESS"})
"""What `xueliang.gb28181.sip.digest` can compute; GB/T 28181 servers ask for MD5."""


class IdSource:
    """Branches, tags, Call-IDs and cnonces from one `random.Random`.

    A seeded generator makes a link's every byte reproducible in tests; in service it is
    `random.SystemRandom`, because a branch or Call-ID an outsider can guess lets them forge
    the upper's answers.
    """

    __slots__ = ("rng",)

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def hex(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def branch(self) -> str:
        # RFC 3261 §8.1.1.7: the magic cookie tells the upper it may match on the branch alone.
        return BRANCH_MAGIC + self.hex(96)

    def tag(self) -> str:
        # Decimal, as most GB/T 28181 devices write their tags.
        return str(self.rng.getrandbits(63))

    def call_id(self, host: str) -> str:
        return f"{self.hex(128)}@{host}"


def register_request(
    *,
    server_uri: str,
    user_uri: str,
    from_tag: str,
    call_id: str,
    cseq: int,
    via: str,
    contact: str,
    expires: int,
    authorization: tuple[str, str] | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> SipRequest:
    """One REGISTER (GB/T 28181 §9.1.2.1).

    ``authorization`` is (header name, value): ``Authorization`` after a 401,
    ``Proxy-Authorization`` after a 407. ``expires`` 0 unregisters.
    """
    extra: list[tuple[str, str]] = []
    if authorization is not None:
        extra.append(authorization)
    extra.append(("Expires", str(expires)))
    extra.extend(headers)
    return make_request(
        "REGISTER",
        server_uri,
        via=via,
        from_=f"<{user_uri}>;tag={from_tag}",
        to=f"<{user_uri}>",
        call_id=call_id,
        cseq=cseq,
        contact=contact,
        headers=extra,
    )


@dataclass(slots=True, frozen=True)
class Challenge:
    """A usable challenge and the header the answer goes in."""

    challenge: DigestChallenge
    answer_header: str  # "Authorization" (401) or "Proxy-Authorization" (407)


def challenge_of(response: SipResponse) -> Challenge | None:
    """The first Digest challenge of a 401/407 we can answer, or None.

    A server may offer several (SHA-256 first, MD5 second, RFC 8760); we take the first whose
    algorithm we compute. Anything malformed is skipped rather than raised: an upper's odd
    header must cost us one registration attempt, not the link.
    """
    if response.status == 401:
        source, answer = "WWW-Authenticate", "Authorization"
    elif response.status == 407:
        source, answer = "Proxy-Authenticate", "Proxy-Authorization"
    else:
        return None
    for line in response.headers.get_lines(source):
        try:
            parsed = parse_challenge(line)
        except SipParseError:
            continue
        if (parsed.algorithm or "MD5").upper() in SUPPORTED_ALGORITHMS:
            return Challenge(parsed, answer)
    return None


class DigestClient:
    """The client half of digest authentication (RFC 2617 §3.2.2) for one set of credentials.

    It counts nonce uses: with ``qop=auth`` every request answered with the same nonce must
    carry a higher ``nc`` (RFC 2617 §3.2.2), or a careful server sees a replay.
    """

    __slots__ = ("_ids", "_nc", "_nonce", "password", "username")

    def __init__(self, username: str, password: str, ids: IdSource) -> None:
        self.username = username
        self.password = password
        self._ids = ids
        self._nonce: str | None = None
        self._nc = 0

    def answer(self, challenge: DigestChallenge, method: str, uri: str) -> str:
        """The Authorization value for ``method uri`` (qop=auth when the server offers it)."""
        if challenge.nonce != self._nonce:
            self._nonce = challenge.nonce
            self._nc = 0
        self._nc += 1
        return make_authorization(
            username=self.username,
            password=self.password,
            challenge=challenge,
            method=method,
            uri=uri,
            nc=self._nc,
            cnonce=self._ids.hex(64),
        )
