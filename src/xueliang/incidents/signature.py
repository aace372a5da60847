"""Signed requests from emergency systems (110/119/120/122), sans-IO.

A request carries one header::

    Authorization: XL-HMAC-SHA256 Credential=<key id>, Timestamp=<unix seconds>,
                   BodyHash=<hex SHA-256 of the body>, Signature=<hex HMAC-SHA256>

The signature is HMAC-SHA256, under the link's secret, of the string to sign::

    XL-HMAC-SHA256 \\n METHOD \\n path \\n timestamp \\n body hash

(lines joined by a single ``\\n``; the path without the query, as sent). The platform
recomputes the body's hash, refuses a timestamp outside the replay window, and compares the
signature in constant time. Everything here is pure: bytes and the time in, a verdict out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

SCHEME = "XL-HMAC-SHA256"
MAX_HEADER = 512
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]{1,12}")
FIELDS = ("Credential", "Timestamp", "BodyHash", "Signature")


class SignatureError(ValueError):
    """A signature header that does not parse, or a request it does not sign."""


@dataclass(frozen=True, slots=True)
class SignedHeader:
    key_id: str
    timestamp: int
    body_hash: str
    signature: str

    def render(self) -> str:
        return (f"{SCHEME} Credential={self.key_id}, Timestamp={self.timestamp}, "
                f"BodyHash={self.body_hash}, Signature={self.signature}")


def parse(header: str) -> SignedHeader:
    """The header's fields; SignatureError naming what is wrong."""
    if len(header) > MAX_HEADER:
        raise SignatureError(f"the Authorization header is longer than {MAX_HEADER} characters")
    scheme, _, rest = header.strip().partition(" ")
    if scheme != SCHEME:
        raise SignatureError(f"the Authorization scheme must be {SCHEME}")
    values: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if not eq:
            raise SignatureError(f"{part.strip()[:40]!r} is not Name=value")
        if name not in FIELDS:
            raise SignatureError(f"unknown field {name[:40]!r} (fields: {', '.join(FIELDS)})")
        if name in values:
            raise SignatureError(f"{name} is given twice")
        values[name] = value
    missing = [f for f in FIELDS if f not in values]
    if missing:
        raise SignatureError(f"missing {', '.join(missing)}")
    if not _KEY_ID.fullmatch(values["Credential"]):
        raise SignatureError("Credential is a key id of 1-64 letters, digits, '.', '_' or '-'")
    if not _DIGITS.fullmatch(values["Timestamp"]):
        raise SignatureError("Timestamp is Unix time in whole seconds")
    for f in ("BodyHash", "Signature"):
        if not _HEX64.fullmatch(values[f]):
            raise SignatureError(f"{f} is 64 lowercase hexadecimal digits")
    return SignedHeader(values["Credential"], int(values["Timestamp"]), values["BodyHash"], values["Signature"])


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def string_to_sign(method: str, path: str, timestamp: int, body_sha256: str) -> bytes:
    return "\n".join((SCHEME, method.upper(), path, str(timestamp), body_sha256)).encode()


def sign(secret: bytes, method: str, path: str, body: bytes, timestamp: int, key_id: str) -> SignedHeader:
    """What a sender puts in its header (the tests and the documentation's example use it)."""
    h = body_hash(body)
    mac = hmac.new(secret, string_to_sign(method, path, timestamp, h), hashlib.sha256).hexdigest()
    return SignedHeader(key_id, timestamp, h, mac)


def check(h: SignedHeader, secret: bytes, method: str, path: str, body: bytes, now: float,
          window: float) -> None:
    """The header signs this request now; SignatureError otherwise (its message says which part)."""
    if abs(now - h.timestamp) > window:
        raise SignatureError(f"the timestamp is more than {window:g} s from the platform's clock")
    if not hmac.compare_digest(body_hash(body), h.body_hash):
        raise SignatureError("BodyHash is not the SHA-256 of the body")
    expected = hmac.new(secret, string_to_sign(method, path, h.timestamp, h.body_hash), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, h.signature):
        raise SignatureError("the signature does not verify")
