"""HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 3261 §22.4).

Server side: `make_challenge` builds the WWW-Authenticate value, `parse_authorization`
reads the device's Authorization header (tolerantly: quoted or bare values, any order, any
spacing, no algorithm), `verify` checks it in constant time, with or without `qop=auth`.
`NonceFactory` issues stateless, MAC-signed (keyed BLAKE2b), time-stamped nonces, so the registrar keeps no
per-device state between the 401 and the second REGISTER.

Client side (device simulator, cascade registration to an upper platform): `parse_challenge`,
`compute_response`, `make_authorization`.

MD5 is what GB/T 28181 devices speak; MD5-sess, SHA-256 and SHA-256-sess are supported too.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from xueliang import _native

from .errors import SipParseError

__all__ = [
    "DigestChallenge",
    "DigestCredentials",
    "NonceFactory",
    "NonceLedger",
    "NonceStatus",
    "compute_ha1",
    "compute_response",
    "make_authorization",
    "make_challenge",
    "parse_authorization",
    "parse_challenge",
    "verify",
    "verify_ha1",
]


def _encode(text: str) -> bytes:
    """UTF-8, giving back the original bytes of undecodable input (surrogateescape)."""
    try:
        # Strict UTF-8 first: the same bytes for any text without surrogates, and compiled
        # it is one C call, where an error handler by name takes the codec registry's path.
        return text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _same(a: str, b: str) -> bool:
    """Constant-time string comparison that accepts any characters."""
    return hmac.compare_digest(_encode(a), _encode(b))


def _md5_of_openssl(data: bytes) -> Any:
    return hashlib.md5(data, usedforsecurity=False)


def _builtin_md5() -> Callable[[bytes], Any]:
    """CPython's own MD5 (module ``_md5``, built in unless the build left it out): a digest
    costs less than half of OpenSSL's through hashlib, whose per-call set-up outweighs the
    hashing of a hundred bytes (three digests a registration). The same digest either way."""
    try:
        return importlib.import_module("_md5").md5  # type: ignore[no-any-return]
    except ImportError:
        return _md5_of_openssl


_new_md5: Final[Callable[[bytes], Any]] = _builtin_md5()


def _md5(text: str) -> str:
    return str(_new_md5(_encode(text)).hexdigest())


def _sha256(text: str) -> str:
    return hashlib.sha256(_encode(text)).hexdigest()


_HASHES: Final[dict[str, Callable[[str], str]]] = {
    "MD5": _md5,
    "MD5-SESS": _md5,
    "SHA-256": _sha256,
    "SHA-256-SESS": _sha256,
}


def _hash_for(algorithm: str | None) -> Callable[[str], str]:
    if algorithm is None or algorithm == "MD5":  # what devices send, with no upper() to make
        return _md5
    fn = _HASHES.get(algorithm.upper())
    if fn is None:
        raise SipParseError(f"Unsupported digest algorithm {algorithm!r}")
    return fn


# -- header parameter lists ------------------------------------------------------------------


_PARAM: Final = re.compile(
    r'[ \t,]*([^=\s,"]+)[ \t]*=[ \t]*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^,"]*))[ \t]*(?:,|\Z)',
    re.S,
)
_ESCAPE: Final = re.compile(r"\\(.)", re.S)
#: The same parameter, whole match captured too: one C-level findall for the common case.
_PARAM_WHOLE: Final = re.compile("(" + _PARAM.pattern + ")", re.S)


_sipscan: Any = _native.extension("xueliang.gb28181.sip._sipscan")
#: The parameter list read in C when our extension is built (sip/_sipscan.c: what the one findall
#: below gives, for a value of printable ASCII whose matches tile it; None for anything else).
_auth_params_c: Callable[[str], tuple[str, dict[str, str]] | None] | None = (
    _sipscan.parse_auth_params if _sipscan is not None else None
)


def _parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """`Digest a="x", b=y,c = "z"` -> ("digest", {a: x, b: y, c: z}); names lower-cased."""
    fast = _auth_params_c
    if fast is not None:
        got = fast(value)
        if got is not None:
            return got
    return _parse_auth_params_py(value)


def _parse_auth_params_py(value: str) -> tuple[str, dict[str, str]]:
    """`_parse_auth_params` by the regexes: every value the C path leaves (and the truth for it)."""
    text = value.strip(" \t")
    head = text.split(None, 1)
    scheme = head[0] if head else ""
    rest = head[1] if len(head) > 1 else ""
    if "=" in scheme:  # no scheme at all: a bare parameter list
        scheme, rest = "", text
    found = _PARAM_WHOLE.findall(rest)
    if sum(len(f[0]) for f in found) != len(rest):
        return scheme.lower(), _checked_params(rest)
    # The matches tile the text: exactly what the checked loop would accept, in one C call.
    params: dict[str, str] = {}
    for _, name, quoted, bare in found:
        if quoted:
            params[name.lower()] = _ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            params[name.lower()] = bare.strip(" \t")
    return scheme.lower(), params


def _checked_params(rest: str) -> dict[str, str]:
    """The parameter list match by match; trailing separators allowed, anything else refused."""
    params: dict[str, str] = {}
    pos = 0
    end = len(rest.rstrip(" \t,"))
    for m in _PARAM.finditer(rest):
        if m.start() != pos:
            break
        name, quoted, bare = m.groups()
        if quoted is not None:
            params[name.lower()] = _ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            params[name.lower()] = bare.strip(" \t")
        pos = m.end()
        if pos >= end:
            break
    if pos < end:
        raise SipParseError("Malformed digest parameter list")
    return params


def _quote(value: str) -> str:
    if "\\" not in value and '"' not in value:  # a realm, a nonce: nothing to escape
        return '"' + value + '"'
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- server side -----------------------------------------------------------------------------


def make_challenge(
    realm: str,
    nonce: str,
    qop: bool = False,
    opaque: str | None = None,
    *,
    stale: bool = False,
    algorithm: str = "MD5",
) -> str:
    """The WWW-Authenticate (or Proxy-Authenticate) value for a 401 (407)."""
    parts = [f"Digest realm={_quote(realm)}", f"nonce={_quote(nonce)}"]
    if opaque is not None:
        parts.append(f"opaque={_quote(opaque)}")
    if stale:
        parts.append("stale=TRUE")
    parts.append(f"algorithm={algorithm}")
    if qop:
        parts.append('qop="auth"')
    return ", ".join(parts)


@dataclass(slots=True, init=False)
class DigestCredentials:
    """The parameters of an Authorization header.

    Read, never changed. Not a frozen dataclass, whose ``__init__`` sets each field through
    ``object.__setattr__`` (2 µs a REGISTER); this one, written out, mypyc compiles."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None
    qop: str | None
    nc: str | None
    cnonce: str | None
    opaque: str | None

    def __init__(self, username: str, realm: str, nonce: str, uri: str, response: str, algorithm: str | None = None,
                 qop: str | None = None, nc: str | None = None, cnonce: str | None = None,
                 opaque: str | None = None) -> None:
        self.username = username
        self.realm = realm
        self.nonce = nonce
        self.uri = uri
        self.response = response
        self.algorithm = algorithm
        self.qop = qop
        self.nc = nc
        self.cnonce = cnonce
        self.opaque = opaque


def parse_authorization(value: str) -> DigestCredentials:
    """Parse an Authorization / Proxy-Authorization value; `SipParseError` when unusable."""
    scheme, params = _parse_auth_params(value)
    if scheme not in ("digest", ""):
        raise SipParseError(f"Unsupported authentication scheme {scheme[:20]!r}")
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in params]
    if missing:
        raise SipParseError(f"Authorization lacks {', '.join(missing)}")
    qop = params.get("qop") or None
    if qop is not None:
        qop = qop.lower()
        if qop not in ("auth", "auth-int"):
            raise SipParseError(f"Unsupported qop {qop[:20]!r}")
        if not params.get("nc") or not params.get("cnonce"):
            raise SipParseError("qop without nc or cnonce")
    return DigestCredentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        algorithm=params.get("algorithm") or None,
        qop=qop,
        nc=params.get("nc") or None,
        cnonce=params.get("cnonce") or None,
        opaque=params.get("opaque"),
    )


def compute_ha1(
    username: str,
    realm: str,
    password: str,
    *,
    algorithm: str | None = None,
    nonce: str = "",
    cnonce: str = "",
) -> str:
    """HA1 = H(username:realm:password); for -sess algorithms H(HA1:nonce:cnonce)."""
    h = _hash_for(algorithm)
    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm is not None and algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    return ha1


def _response_from_ha1(
    ha1: str,
    *,
    method: str,
    uri: str,
    nonce: str,
    algorithm: str | None,
    qop: str | None,
    nc: str | None,
    cnonce: str | None,
    body: bytes = b"",
) -> str:
    h = _hash_for(algorithm)
    if qop == "auth-int":
        ha2 = h(f"{method}:{uri}:{h(body.decode('latin-1'))}")
    else:
        ha2 = _ha2(h, method, uri)
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return h(f"{ha1}:{nonce}:{ha2}")


_HA2_CACHE: Final[dict[tuple[Callable[[str], str], str, str], str]] = {}


def _ha2(h: Callable[[str], str], method: str, uri: str) -> str:
    """H(method:uri), remembered: every device of a platform REGISTERs to the same URI."""
    key = (h, method, uri)
    value = _HA2_CACHE.get(key)
    if value is None:
        if len(_HA2_CACHE) >= 1024:  # URIs come from the network: keep the cache bounded
            _HA2_CACHE.clear()
        value = _HA2_CACHE[key] = h(f"{method}:{uri}")
    return value


def compute_response(
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    algorithm: str | None = None,
    body: bytes = b"",
) -> str:
    """The `response` hex digest (RFC 2617 §3.2.2.1)."""
    ha1 = compute_ha1(
        username, realm, password, algorithm=algorithm, nonce=nonce, cnonce=cnonce or ""
    )
    return _response_from_ha1(
        ha1,
        method=method,
        uri=uri,
        nonce=nonce,
        algorithm=algorithm,
        qop=qop,
        nc=nc,
        cnonce=cnonce,
        body=body,
    )


def verify_ha1(creds: DigestCredentials, method: str, ha1: str, body: bytes = b"") -> bool:
    """Check `creds` against a stored HA1 = H(username:realm:password)."""
    try:
        h = _hash_for(creds.algorithm)
    except SipParseError:
        return False
    if creds.algorithm is not None and creds.algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{creds.nonce}:{creds.cnonce or ''}")
    expected = _response_from_ha1(
        ha1,
        method=method,
        uri=creds.uri,
        nonce=creds.nonce,
        algorithm=creds.algorithm,
        qop=creds.qop,
        nc=creds.nc,
        cnonce=creds.cnonce,
        body=body,
    )
    return _same(expected, creds.response.lower())


def verify(creds: DigestCredentials, method: str, password: str, body: bytes = b"") -> bool:
    """True when `creds.response` is right for `password` (constant-time comparison).

    The nonce and realm are the caller's to check (see `NonceFactory.check`).
    """
    try:
        h = _hash_for(creds.algorithm)
    except SipParseError:
        return False
    return verify_ha1(creds, method, h(f"{creds.username}:{creds.realm}:{password}"), body)


# -- client side -----------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class DigestChallenge:
    """The parameters of a WWW-Authenticate / Proxy-Authenticate header."""

    realm: str
    nonce: str
    algorithm: str | None = None
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False


def parse_challenge(value: str) -> DigestChallenge:
    scheme, params = _parse_auth_params(value)
    if scheme not in ("digest", ""):
        raise SipParseError(f"Unsupported authentication scheme {scheme[:20]!r}")
    if "realm" not in params or "nonce" not in params:
        raise SipParseError("Challenge lacks realm or nonce")
    qop = tuple(q.strip(" \t").lower() for q in params.get("qop", "").split(",") if q.strip())
    return DigestChallenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=params.get("algorithm") or None,
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


def make_authorization(
    *,
    username: str,
    password: str,
    challenge: DigestChallenge | str,
    method: str,
    uri: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """An Authorization value answering `challenge` (qop=auth when the server offers it)."""
    if isinstance(challenge, str):
        challenge = parse_challenge(challenge)
    qop = "auth" if "auth" in challenge.qop else None
    nc_text = f"{nc:08x}" if qop else None
    if qop and cnonce is None:
        cnonce = secrets.token_hex(8)
    response = compute_response(
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce if qop else None,
        algorithm=challenge.algorithm,
    )
    parts = [
        f"Digest username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={challenge.algorithm or 'MD5'}",
    ]
    if qop:
        parts.append(f"qop={qop}, nc={nc_text}, cnonce={_quote(cnonce or '')}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    return ", ".join(parts)


# -- stateless nonces ------------------------------------------------------------------------


class NonceStatus(Enum):
    VALID = "valid"
    STALE = "stale"  # authentic but too old: answer 401 with stale=TRUE
    INVALID = "invalid"


class NonceFactory:
    """Stateless nonces: hex timestamp + hex sequence + keyed BLAKE2b(secret; timestamp,
    sequence, context), 32 hex chars.

    `context` binds a nonce to something the caller knows again at check time (a device ID, a
    source address); leave it empty to accept the nonce from anyone. The sequence makes every
    nonce issued by one factory different, even two in the same second for the same context: a
    nonce serves one registration (NonceLedger), so a device that registers and then
    unregisters within a second must be challenged with a fresh one, not the one it used.
    """

    __slots__ = ("_keyed", "_secret", "_seq")

    _TS_LEN = 10  # hex digits of the integer timestamp
    _HEAD_LEN = 16  # and 6 of the sequence (wraps after 16.7 M nonces: never within a second)
    _MAC_LEN = 16

    def __init__(self, secret: bytes | None = None) -> None:
        secret = secret if secret is not None else secrets.token_bytes(32)
        # BLAKE2b takes keys of up to 64 bytes; a longer secret is condensed first.
        self._secret = secret if len(secret) <= 64 else hashlib.sha256(secret).digest()
        # The key's block hashed once: each MAC copies this state instead of hashing it again.
        self._keyed = hashlib.blake2b(key=self._secret, digest_size=self._MAC_LEN // 2)
        # Started at random so that two processes sharing a secret rarely issue the same one.
        self._seq = secrets.randbelow(1 << 24)

    def _mac(self, stamp_seq: str, context: str) -> str:
        # Keyed BLAKE2b is a MAC by design and costs a third of an HMAC-SHA256 here (two
        # nonces per registration of every device in a storm).
        h = self._keyed.copy()
        h.update(_encode(f"{stamp_seq}:{context}"))
        return h.hexdigest()

    def issue(self, now: float, context: str = "") -> str:
        self._seq = (self._seq + 1) & 0xFFFFFF
        # _TS_LEN (10) hex digits of the stamp, 6 of the sequence. A %-format, because compiled
        # an f-string with widths calls format() per field: 1.10-1.16 us an issue against 0.86-0.91.
        head = "%010x%06x" % (max(0, int(now)), self._seq)  # noqa: UP031
        return head + self._mac(head, context)

    def status(
        self, nonce: str, now: float, max_age: float = 300.0, context: str = ""
    ) -> NonceStatus:
        if len(nonce) != self._HEAD_LEN + self._MAC_LEN:
            return NonceStatus.INVALID
        head, mac = nonce[: self._HEAD_LEN], nonce[self._HEAD_LEN :]
        if not _same(mac, self._mac(head, context)):
            return NonceStatus.INVALID
        issued = int(head[: self._TS_LEN], 16)  # safe: the MAC proves we produced this hex stamp
        age = now - issued
        if age < -5.0:  # issued "in the future": clock stepped back, treat as stale
            return NonceStatus.STALE
        return NonceStatus.VALID if age <= max_age else NonceStatus.STALE

    def check(self, nonce: str, now: float, max_age: float = 300.0, context: str = "") -> bool:
        """True when we issued `nonce` (for `context`) at most `max_age` seconds ago."""
        return self.status(nonce, now, max_age, context) is NonceStatus.VALID


_STAMP_LEN: Final = 10  # NonceFactory._TS_LEN


class NonceLedger:
    """The (nonce, nc) pairs already answered, for as long as their nonces live: a nonce serves
    one registration (or, with qop, one nonce count), so a captured REGISTER cannot be played
    again. The nonces stay stateless until used; only accepted ones are remembered.

    A retransmission of the accepted request (the same ``owner``: source address, Call-ID, CSeq)
    is accepted again, since its first answer may have been lost. Bounded: when full, the oldest
    uses are forgotten and every nonce issued up to theirs is refused from then on (the device is
    simply challenged again), so forgetting never reopens a replay.
    """

    __slots__ = ("_seen", "_watermark", "capacity", "max_age")

    def __init__(self, max_age: float = 300.0, capacity: int = 200_000) -> None:
        self.max_age = max_age
        self.capacity = capacity
        self._seen: dict[tuple[str, str], tuple[int, object]] = {}
        self._watermark = -1

    def __len__(self) -> int:
        return len(self._seen)

    def use(self, nonce: str, nc: str, now: float, owner: object) -> bool:
        """Record a use of a nonce `NonceFactory` vouched for; False if it was used already."""
        seen = self._seen
        # Uses arrive in about the order their nonces were issued: forget from the front those
        # whose nonces are stale anyway.
        while seen:
            first = next(iter(seen.values()))
            if first[0] + self.max_age + 5.0 >= now:
                break
            del seen[next(iter(seen))]
        key = (nonce, nc)
        before = seen.get(key)
        if before is not None:
            return before[1] == owner
        issued = int(nonce[:_STAMP_LEN], 16)  # NonceFactory's hex timestamp
        if issued <= self._watermark:
            return False
        if len(seen) >= self.capacity:
            oldest = next(iter(seen))
            self._watermark = max(self._watermark, seen.pop(oldest)[0])
            if issued <= self._watermark:
                return False
        seen[key] = (issued, owner)
        return True
