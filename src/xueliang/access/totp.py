"""TOTP second factor (RFC 6238 over RFC 4226 HOTP), HMAC-SHA1, 6 digits, 30-second steps: what
every authenticator app speaks. Written here on hmac/hashlib; pyotp would do the same."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

STEP = 30
DIGITS = 6
#: Steps accepted either side of now (clock drift).
WINDOW = 1


def new_secret() -> str:
    """160 random bits, base32 without padding (RFC 4226 recommends ≥ 128)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    s = secret.strip().replace(" ", "").upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def hotp(secret: str, counter: int, digits: int = DIGITS) -> str:
    mac = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_of(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP)


def code_at(secret: str, now: float | None = None) -> str:
    return hotp(secret, step_of(now))


def match(secret: str, code: str, now: float | None = None, after_step: int | None = None) -> int | None:
    """The time step ``code`` belongs to (within ±WINDOW), or None. Steps ≤ ``after_step`` are
    refused: a code is accepted once."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now_step = step_of(now)
    found = None
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        if hmac.compare_digest(hotp(secret, step), code):
            found = step
    if found is None or (after_step is not None and found <= after_step):
        return None
    return found


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """otpauth:// URI for a QR code (Google Authenticator key-uri format)."""
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode(
        {"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": STEP}
    )
    return f"otpauth://totp/{label}?{query}"
